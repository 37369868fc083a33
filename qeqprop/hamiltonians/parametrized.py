"""Parametrized spin Hamiltonians H(theta, x) as linear combinations of Pauli strings.

Every term is ``weight * [theta_p] * [x_i] * P_s`` (the bracketed factors optional), so

    H(theta, x) = H0 + sum_k x_k A_k + sum_k theta_k B_k + sum_{k,i} theta_k x_i C_{k,i},

which covers fixed fields, input fields, trainable couplings and trainable input weights
(h_j = b_j + sum_i W_ij x_i). The coefficient of string s is linear in theta:

    c_s(theta, x) = sum_{terms t on s} w_t theta_{p_t} x_{i_t},
    dH/dtheta_p   = sum_s J_{s p}(x) P_s,     J_{s p}(x) = sum_{t: s_t = s, p_t = p} w_t x_{i_t},

so every local gradient <dH/dtheta> = J(x)^T <P> comes from one pass of Pauli
expectations. The model outputs are observables O_j = sum_s M_{j s} P_s (Pauli words, weighted
sums, projectors: qeqprop.hamiltonians.observables) on the same Pauli table, so their
expectations <O_j> = M <P> come from the same pass and a nudge beta sum_j w_j O_j is just the
extra coefficients beta M^T w.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np

from ..validation import as_finite_array, check_params
from .observables import format_pauli_sum, format_sum, pauli_sum
from .pauli import PauliString, PauliTable


def _one_hot(rows: np.ndarray, size: int) -> np.ndarray:
    """Matrix with a single 1 per row t, in column rows[t]."""
    matrix = np.zeros((len(rows), size))
    matrix[np.arange(len(rows)), rows] = 1.0
    return matrix


def gradient_rows(jacobian: np.ndarray) -> np.ndarray:
    """Table strings that enter some dH/dtheta at this input (nonzero Jacobian rows)."""
    return np.flatnonzero(np.any(jacobian != 0.0, axis=1))


@dataclass(frozen=True)
class Term:
    """One term ``weight * theta[param][index] * x[input] * string`` of H(theta, x)."""

    string: PauliString | str
    weight: float = 1.0
    param: str | None = None
    index: tuple[int, ...] = ()
    input: int | None = None


@dataclass(frozen=True)
class ParamSpec:
    """Shape and initial distribution of one parameter array: theta = mean + std * N(0, 1) per
    entry; ``mean`` is a number or a (nested) tuple broadcastable to ``shape`` (one mean per entry)."""

    shape: tuple[int, ...]
    mean: float | tuple = 0.0
    std: float = 0.0

    def __post_init__(self):
        try:
            np.broadcast_to(np.asarray(self.mean, dtype=np.float64), tuple(self.shape))
        except ValueError:
            raise ValueError(f"ParamSpec mean {self.mean!r} does not broadcast to shape {tuple(self.shape)}") from None

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """mean + std * N(0, 1), shape ``shape`` (a fresh array)."""
        return np.asarray(self.mean, dtype=np.float64) + self.std * rng.standard_normal(tuple(self.shape))


class ParametrizedHamiltonian:
    """H(theta, x) on ``n_qubits`` with named parameter arrays and ``n_inputs`` inputs.

    ``observables`` are the model outputs O_j, each a Pauli word or any Pauli sum
    (qeqprop.hamiltonians.observables.pauli_sum: {word: coefficient}, (coefficient, word)
    pairs, ``projector(...)``, a PennyLane operator). Their strings share the table (at indices
    ``observable_index``) and carry no coefficient in H itself; ``output_matrix`` M gives
    <O_j> = sum_s M_{j s} <P_s> (``outputs``) and the nudge coefficients M^T w (``nudge_coefficients``).

    ``str(h)`` is the Pauli sum, e.g. "-1.0 * J[0] * (Z0 Z1) + 0.5 * X2 + -1.0 * W[0, 1] * x[0] * (Z1)".
    """

    def __init__(
        self,
        n_qubits: int,
        terms: Sequence[Term],
        params: Mapping[str, ParamSpec | tuple[int, ...]],
        n_inputs: int = 0,
        observables: Sequence = (),
    ):
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 0:
            raise ValueError(f"n_inputs must be a non-negative integer, got {n_inputs!r}")
        self.n_qubits = int(n_qubits)
        self.n_inputs = int(n_inputs)
        self.terms = terms = tuple(terms)  # as given (qeqprop.serialization saves them)
        self.param_specs = {
            name: spec if isinstance(spec, ParamSpec) else ParamSpec(tuple(spec)) for name, spec in params.items()
        }
        self.param_shapes = {name: tuple(spec.shape) for name, spec in self.param_specs.items()}
        offsets, total = {}, 0
        for name, shape in self.param_shapes.items():
            offsets[name] = total
            total += int(np.prod(shape, dtype=np.int64))
        self._offsets, self.n_params = offsets, total

        strings: list[PauliString] = []
        position: dict[PauliString, int] = {}

        def slot(string) -> int:
            string = PauliString.coerce(string)
            if string not in position:
                position[string] = len(strings)
                strings.append(string)
            return position[string]

        rows, weights, flat_params, inputs = [], [], [], []
        for term in terms:
            rows.append(slot(term.string))
            weight = float(term.weight)
            if not np.isfinite(weight):
                raise ValueError(f"term {term} has a non-finite weight")
            weights.append(weight)
            flat_params.append(self._flat_index(term) if term.param is not None else -1)
            if term.input is not None and not 0 <= term.input < self.n_inputs:
                raise ValueError(f"term {term} uses input {term.input} but n_inputs={self.n_inputs}")
            inputs.append(-1 if term.input is None else int(term.input))
        self.n_hamiltonian_strings = len(strings)
        self.output_sums = [pauli_sum(o, f"observables[{j}]") for j, o in enumerate(observables)]
        entries = [(j, slot(p), a) for j, pairs in enumerate(self.output_sums) for p, a in pairs]
        self.observable_index = np.array(list(dict.fromkeys(s for _, s, _ in entries)), dtype=np.int64)
        self.table = PauliTable(self.n_qubits, strings)
        self.output_matrix = np.zeros((len(self.output_sums), len(strings)))
        for j, s, a in entries:
            self.output_matrix[j, s] += a
        self._rows = np.array(rows, dtype=np.int64)
        self._weights = np.array(weights, dtype=np.float64)
        self._params = np.array(flat_params, dtype=np.int64)
        self._inputs = np.array(inputs, dtype=np.int64)
        # Fixed scatter matrices (terms -> strings, trainable terms -> parameters), built once:
        # coefficients and local gradients are evaluated for every sample of every phase.
        self._trainable = self._params >= 0
        self._string_scatter = _one_hot(self._rows, len(self.table))
        self._param_scatter = _one_hot(self._params[self._trainable], self.n_params)

    def _flat_index(self, term: Term) -> int:
        if term.param not in self.param_shapes:
            raise ValueError(f"term {term} uses unknown parameter {term.param!r}; declared: {sorted(self.param_shapes)}")
        shape = self.param_shapes[term.param]
        index = tuple(term.index)
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            raise ValueError(f"term {term} indexes parameter {term.param!r} of shape {shape} with {index}")
        return self._offsets[term.param] + int(np.ravel_multi_index(index, shape)) if shape else self._offsets[term.param]

    # -- parameters -------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        return {name: spec.draw(rng) for name, spec in self.param_specs.items()}

    def check_params(self, params) -> dict[str, np.ndarray]:
        return check_params(params, self.param_shapes)

    def check_input(self, x) -> np.ndarray:
        return as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))

    def flatten(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        params = self.check_params(params)
        return np.concatenate([params[name].ravel() for name in self.param_shapes]) if self.n_params else np.zeros(0)

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        flat = np.asarray(flat)
        return {
            name: flat[self._offsets[name] : self._offsets[name] + int(np.prod(shape, dtype=np.int64))].reshape(shape)
            for name, shape in self.param_shapes.items()
        }

    def unflatten_batch(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """(B, n_params) flat vectors -> ``{name: (B, *shape)}``."""
        flat = np.asarray(flat)
        return {
            name: flat[:, self._offsets[name] : self._offsets[name] + int(np.prod(shape, dtype=np.int64))].reshape((len(flat),) + shape)
            for name, shape in self.param_shapes.items()
        }

    # -- coefficients -----------------------------------------------------------------
    def check_inputs(self, xs) -> np.ndarray:
        """A batch of inputs, shape (B, n_inputs)."""
        xs = as_finite_array("xs", xs)
        if xs.ndim != 2:
            raise ValueError(f"xs must have shape (batch, {self.n_inputs}), got {xs.shape}")
        return as_finite_array("xs", xs, (xs.shape[0], self.n_inputs))

    def _term_factors(self, xs: np.ndarray) -> np.ndarray:
        """w_t x_{i_t} per sample and term, shape (B, T) (x factor 1 for input-free terms)."""
        ones = np.ones((xs.shape[0], len(self._weights)))
        inputs = xs[:, np.maximum(self._inputs, 0)] if self.n_inputs else ones
        return self._weights * np.where(self._inputs >= 0, inputs, ones)

    def coefficients_batch(self, params, xs) -> np.ndarray:
        """c(theta, x_b) for a batch of inputs, shape (B, n_strings) (observables get 0)."""
        theta = self.flatten(params)
        factors = self._term_factors(self.check_inputs(xs))
        theta_factor = np.where(self._params >= 0, theta[np.maximum(self._params, 0)] if theta.size else 1.0, 1.0)
        return (factors * theta_factor) @ self._string_scatter

    def coefficients(self, params, x) -> np.ndarray:
        """c(theta, x) over the whole table (observables get 0)."""
        return self.coefficients_batch(params, self.check_input(x)[None])[0]

    def energy_grad_batch(self, xs, expectations: np.ndarray) -> np.ndarray:
        """<dH/dtheta>_b = J(x_b)^T <P>_b as flat vectors, shape (B, n_params)."""
        factors = self._term_factors(self.check_inputs(xs))[:, self._trainable]
        per_term = factors * np.real(expectations)[:, self._rows[self._trainable]]
        return per_term @ self._param_scatter

    def jacobian(self, x) -> np.ndarray:
        """J(x) = dc/dtheta, shape (n_strings, n_params)."""
        x = self.check_input(x)
        jac = np.zeros((len(self.table), self.n_params))
        trainable = self._trainable
        np.add.at(jac, (self._rows[trainable], self._params[trainable]), self._term_factors(x[None])[0, trainable])
        return jac

    def energy_grad(self, x, expectations: np.ndarray) -> dict[str, np.ndarray]:
        """<dH/dtheta> = J(x)^T <P> from the table's expectation values."""
        flat = self.energy_grad_batch(self.check_input(x)[None], np.asarray(expectations)[None])[0]
        return self.unflatten(flat)

    def operator(self, params, x, nudge: np.ndarray | None = None):
        """Matrix-free H(theta, x) [+ sum_j nudge_j O_j] as a PauliOperator."""
        coeffs = self.coefficients(params, x)
        if nudge is not None:
            coeffs = coeffs + self.nudge_coefficients(nudge)
        return self.table.operator(coeffs)

    # -- outputs ----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return len(self.output_sums)

    def outputs(self, expectations: np.ndarray) -> np.ndarray:
        """<O_j> = sum_s M_{j s} <P_s> from the table's expectations (..., S) -> (..., n_outputs)."""
        return np.real(expectations) @ self.output_matrix.T

    @cached_property
    def output_strings(self) -> np.ndarray:
        """Indices of the strings the outputs read (the columns of M with a nonzero entry)."""
        return np.flatnonzero(np.any(self.output_matrix != 0, axis=0))

    def outputs_of(self, expectations: np.ndarray) -> np.ndarray:
        """``outputs`` from the expectations of ``output_strings`` alone (..., len(output_strings))."""
        return np.real(expectations) @ self.output_matrix[:, self.output_strings].T

    def nudge_coefficients(self, weights: np.ndarray) -> np.ndarray:
        """Table coefficients of sum_j w_j O_j: w (..., n_outputs) -> M^T w (..., S)."""
        return np.asarray(weights, dtype=np.float64) @ self.output_matrix

    def output_norms(self) -> np.ndarray:
        """||O_j - (identity part)|| <= sum_{s: P_s != I} |M_{j s}| per output (Pauli strings have norm 1)."""
        identity = np.array([not s.ops for s in self.table.strings])
        return np.abs(self.output_matrix[:, ~identity]).sum(axis=1)

    # -- text ---------------------------------------------------------------------------
    def term_text(self) -> list[tuple[str, str]]:
        """(coefficient, factor) text per term: "0.5", "X2" for a fixed term; "-1.0 * W[0, 1] *
        x[0]", "(Z1)" for a trainable input weight (weight 1 omitted)."""
        flat_names = []
        for name, shape in self.param_shapes.items():
            flat_names += [f"{name}[{', '.join(map(str, i))}]" if shape else name for i in np.ndindex(shape)]
        parts = []
        for row, weight, param, inp in zip(self._rows, self._weights, self._params, self._inputs):
            factors = ([flat_names[param]] if param >= 0 else []) + ([f"x[{inp}]"] if inp >= 0 else [])
            word = str(self.table.strings[row])
            if not factors:
                parts.append((repr(float(weight)), word))
            else:
                coeff = " * ".join(([] if weight == 1.0 else [repr(float(weight))]) + factors)
                parts.append((coeff, f"({word})"))
        return parts

    def __str__(self) -> str:
        return format_sum(self.term_text())

    def __repr__(self) -> str:
        outputs = [format_pauli_sum(pairs) for pairs in self.output_sums]
        return (f"ParametrizedHamiltonian(n_qubits={self.n_qubits}, n_inputs={self.n_inputs}, "
                f"params={self.param_shapes}, outputs={outputs}): H = {self}")
