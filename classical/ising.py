"""Classical Ising machine: the Gamma = 0 limit of the TFIM network, at temperature T.

    E(theta, x, s) = -sum_((i,j) in E) J_ij s_i s_j - sum_j h_j(x) s_j,   h_j(x) = b_j + sum_i W_ij x_i,

s in {-1, +1}^N: the diagonal of the TFIM Hamiltonian (qeqprop.systems.tfim, input_mode
"weights"; same parameter names J, b, W). Exact Gamma = 0 ground states are discrete, so
<dE/dtheta> jumps as theta moves and EP is undefined there (the quantum TFIM at Gamma = 0 is
degenerate-prone for the same reason). The smoothing used here is finite temperature: the
state is the Boltzmann distribution p(s) = exp(-E(s)/T) / Z, computed exactly, and EP
differentiates the free energy F = -T log Z, whose gradient dF/dtheta = <dE/dtheta> is smooth:

    dE/dJ_ij = -<s_i s_j>,   dE/db_j = -<s_j>,   dE/dW_ij = -x_i <s_j>.

Outputs <s_o>; the cost c(<s_o>, y) is a qeqprop cost (mse by default, like SpinSystem). As in
SpinSystem, the nudge is linear, E + beta sum_o w_o s_o with w = dc/d<s_o> at the free state,
so d/dbeta <dE/dtheta>_beta at beta = 0 equals dL/dtheta exactly. This is SpinSystem's Gibbs
state at Gamma = 0, computed without building 2^N x 2^N matrices.

Two exact solvers, both batched (a minibatch's Boltzmann states in a few BLAS calls):

- any graph: enumeration of all 2^N configurations, logits (B, 2^N) = ((pairs J)^T + h(X) S^T) / T.
- graph "layered" (the architecture of Laydevant et al., "Training an Ising machine with
  equilibrium propagation", Nat. Commun. 15, 3671, 2024: inputs -> hidden spins -> output spins,
  couplings only between the hidden and the output layer, inputs as fields on the hidden spins):
  the hidden spins are conditionally independent given the outputs sigma, so they are summed
  out in closed form,

      Z = sum_sigma exp(c . sigma / T) prod_j 2 cosh(u_j(sigma) / T),   u(sigma) = a + J sigma,

  (a = b_h + x W the hidden fields, c = b_o - beta w the output fields), <s_o> = sum_sigma
  p(sigma) sigma, <s_j> = sum_sigma p(sigma) tanh(u_j / T), <s_j s_o> = sum_sigma p(sigma)
  tanh(u_j / T) sigma_o: only the 2^n_outputs output patterns are enumerated, so the hidden
  layer can be wide (e.g. 120 spins on digits).

Reference gradient: JAX autodiff of theta -> <s_o> through the enumeration, contracted with
dc/d<s_o>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import logsumexp

from qeqprop.costs import Cost, make_cost
from qeqprop.systems.tfim import coupling_edges
from qeqprop.validation import as_finite_array, check_index_list, check_state_memory

from ._common import (
    ClassicalSystemMixin,
    check_int,
    check_positive_float,
    check_targets,
)

MAX_SPINS = 22
CACHE_ELEMENTS = 1 << 16  # float64 entries of one slice of a layered machine's (B, K, H) hidden fields


@dataclass
class BoltzmannState:
    """The Boltzmann distribution over the enumerated configurations and its moments (one sample)."""

    probabilities: np.ndarray
    mean: np.ndarray
    correlations: np.ndarray
    free_energy: float
    beta: float = 0.0


@dataclass
class HiddenSums:
    """The beta-independent part of a layered solve (module docstring) for a batch X: the hidden
    spins' sum_j log 2 cosh(u_j / T) (B, K) and tanh(u / T) (B, K, H) for every output pattern,
    with the params and X they were computed for (a nudged phase reuses them: the nudge acts on
    the output fields only)."""

    params: dict
    X: np.ndarray
    log_cosh: np.ndarray
    tanh: np.ndarray

    def matches(self, params, X) -> bool:
        return (np.array_equal(self.X, X) and self.params.keys() == params.keys()
                and all(np.array_equal(self.params[k], params[k]) for k in params))


@dataclass
class BoltzmannBatch:
    """Boltzmann states of a batch: the fields of BoltzmannState with a leading axis B (and, for
    a layered machine, the HiddenSums its nudged phases reuse)."""

    probabilities: np.ndarray
    mean: np.ndarray
    correlations: np.ndarray
    free_energy: np.ndarray
    beta: np.ndarray
    hidden_sums: HiddenSums | None = None

    def __len__(self) -> int:
        return len(self.mean)

    def take(self, index: int) -> BoltzmannState:
        return BoltzmannState(self.probabilities[index], self.mean[index], self.correlations[index],
                              float(self.free_energy[index]), float(self.beta[index]))

    def rows(self, index) -> BoltzmannBatch:
        """The samples at ``index`` (without hidden sums)."""
        return BoltzmannBatch(*(getattr(self, name)[index] for name in ("probabilities", "mean", "correlations", "free_energy", "beta")))

    @classmethod
    def stack(cls, states: Sequence[BoltzmannState]) -> BoltzmannBatch:
        return cls(*(np.array([getattr(s, name) for s in states]) for name in
                     ("probabilities", "mean", "correlations", "free_energy", "beta")))


def configurations(n_spins: int) -> np.ndarray:
    """All 2^n configurations as rows of +-1 (row r: spin i = +1 iff bit n-1-i of r is 0)."""
    bits = (np.arange(1 << n_spins)[:, None] >> np.arange(n_spins)[None, ::-1]) & 1
    return 1.0 - 2.0 * bits


def log_two_cosh(z: np.ndarray) -> np.ndarray:
    """log(2 cosh z) = |z| + log(1 + exp(-2 |z|)), overflow-free."""
    magnitude = np.abs(z)
    return magnitude + np.log1p(np.exp(-2.0 * magnitude))


class IsingMachine(ClassicalSystemMixin):
    """A finite-temperature classical Ising learner implementing the EnergySystem protocol.

    Parameters
    ----------
    n_spins, graph ("complete", "chain", networkx graph, edge list or coupling pattern),
        n_inputs, output_spins (default: the last spin) : as TFIMNetwork. graph "layered": the
        spins not in output_spins are hidden spins coupled to every output spin and to nothing
        else; inputs act on the hidden spins only (W is (n_inputs, n_hidden)); J holds one
        coupling per (hidden, output) pair, hidden-major (module docstring).
    temperature : T > 0 of the Boltzmann distribution (the smoothing; module docstring).
    cost : "mse", "cross_entropy", "pauli_mse" or a qeqprop Cost on the outputs <s_o>.
    init_std : init_params draws J, W ~ init_std N(0, 1) and b ~ 0.1 init_std N(0, 1)
        (layered: J and W divided by sqrt of the receiving spin's fan-in).

    Example:
        >>> import numpy as np
        >>> machine = IsingMachine(6, "layered", n_inputs=3, output_spins=[4, 5])
        >>> params, X = machine.init_params(0), np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
        >>> states = machine.batch_view(2).equilibrate(params, X)
        >>> bool(np.allclose(states.mean[1], machine.equilibrate(params, X[1]).mean, atol=1e-12))
        True
    """

    unit = "spins"

    def __init__(
        self,
        n_spins: int,
        graph="complete",
        n_inputs: int = 0,
        output_spins: Sequence[int] | None = None,
        temperature: float = 1.0,
        cost: str | Cost = "mse",
        init_std: float = 0.5,
    ):
        self.n_spins = self.n_units = check_int("n_spins", n_spins)
        self.n_inputs = check_int("n_inputs", n_inputs, minimum=0)
        self.output_spins = check_index_list("output_spins", output_spins, self.n_spins, default=[self.n_spins - 1], kind="spin")
        if not self.output_spins:
            raise ValueError("output_spins must name at least one spin")
        self.n_outputs = len(self.output_spins)
        self.layered = isinstance(graph, str) and graph == "layered"
        self.hidden = [s for s in range(self.n_spins) if s not in self.output_spins]
        if self.layered:
            if not self.hidden:
                raise ValueError("graph 'layered' needs hidden spins (spins not in output_spins)")
            self.edges = [(h, o) for h in self.hidden for o in self.output_spins]
            enumerated, what = self.n_outputs, "output spins"
        else:
            self.edges = coupling_edges(graph, self.n_spins)
            enumerated, what = self.n_spins, "spins"
        if enumerated > MAX_SPINS:
            raise ValueError(f"{enumerated} {what}: exact enumeration of 2^n configurations is limited to n <= {MAX_SPINS}")
        self.temperature = check_positive_float("temperature", temperature)
        self.cost_fn = make_cost(cost)
        self.init_std = float(init_std)
        check_state_memory(enumerated, 8, enumerated + len(self.edges), "Boltzmann enumeration")
        self.spins = configurations(enumerated)
        if self.layered:
            self.pairs = None
        else:
            ends = np.array(self.edges, dtype=int).reshape(-1, 2)
            self.pairs = self.spins[:, ends[:, 0]] * self.spins[:, ends[:, 1]]
        self.input_spins = self.hidden if self.layered else list(range(self.n_spins))

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"J": (len(self.edges),), "b": (self.n_spins,)}
        if self.n_inputs:
            shapes["W"] = (self.n_inputs, len(self.input_spins))
        return shapes

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        J = self.init_std * rng.standard_normal(len(self.edges))
        params = {"J": J / np.sqrt(len(self.hidden)) if self.layered else J,
                  "b": 0.1 * self.init_std * rng.standard_normal(self.n_spins)}
        if self.n_inputs:
            W = self.init_std * rng.standard_normal((self.n_inputs, len(self.input_spins)))
            params["W"] = W / np.sqrt(self.n_inputs) if self.layered else W
        return params

    def fields(self, params, x) -> np.ndarray:
        """h(x) = b + x W (W acting on the input spins)."""
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        return self.batch_fields(self.check_params(params), x[None])[0]

    def batch_fields(self, params, X: np.ndarray) -> np.ndarray:
        """h(X) = b + X W for a batch (B, n_spins)."""
        fields = np.broadcast_to(params["b"], (len(X), self.n_spins)).copy()
        if self.n_inputs:
            fields[:, self.input_spins] += X @ params["W"]
        return fields

    def energies(self, params, x) -> np.ndarray:
        """E(s) for every configuration (rows of ``spins``; any graph but "layered")."""
        self._needs_enumeration("energies")
        return -self.pairs @ self.check_params(params)["J"] - self.spins @ self.fields(params, x)

    def _needs_enumeration(self, what: str) -> None:
        if self.layered:
            raise ValueError(f"{what} needs the full enumeration of every spin; graph 'layered' sums the hidden spins out "
                             "(module docstring): build the machine with another graph")

    def _boltzmann(self, energies: np.ndarray, beta: float) -> BoltzmannState:
        logits = -energies / self.temperature
        log_z = logsumexp(logits)
        p = np.exp(logits - log_z)
        return BoltzmannState(p, p @ self.spins, p @ self.pairs, -self.temperature * float(log_z), beta)

    def solve_batch(self, params, X: np.ndarray, weights=None, beta=0.0, hidden_sums: HiddenSums | None = None) -> BoltzmannBatch:
        """Boltzmann states of E + beta sum_o w_o s_o for every row of X (B, n_inputs);
        ``weights`` (B, n_outputs) the nudges w or None; ``beta`` a float or one per sample;
        ``hidden_sums`` a layered solve's beta-independent part, reused where it matches params and X."""
        params = self.check_params(params)
        X = as_finite_array("X", X, (len(X), self.n_inputs))
        B, T = len(X), self.temperature
        betas = np.broadcast_to(np.asarray(beta, dtype=float), (B,)).copy() if weights is not None else np.zeros(B)
        fields = self.batch_fields(params, X)
        if weights is not None:
            fields[:, self.output_spins] -= betas[:, None] * weights
        if self.layered:
            if hidden_sums is None or not hidden_sums.matches(params, X):
                hidden_sums = self._hidden_sums(params, X, fields[:, self.hidden])
            logits = fields[:, self.output_spins] @ self.spins.T / T + hidden_sums.log_cosh
        else:
            logits = (self.pairs @ params["J"])[None] / T + fields @ self.spins.T / T
        log_z = logsumexp(logits, axis=1, keepdims=True)
        p = np.exp(logits - log_z)
        if self.layered:
            hidden = hidden_sums.tanh
            mean = np.zeros((B, self.n_spins))
            mean[:, self.output_spins] = p @ self.spins
            mean[:, self.hidden] = (p[:, None, :] @ hidden)[:, 0]
            correlations = (np.swapaxes(hidden, 1, 2) @ (p[:, :, None] * self.spins[None])).reshape(B, -1)
        else:
            mean, correlations = p @ self.spins, p @ self.pairs
        return BoltzmannBatch(p, mean, correlations, -T * log_z[:, 0], betas, hidden_sums)

    def _hidden_sums(self, params, X: np.ndarray, hidden_fields: np.ndarray) -> HiddenSums:
        """HiddenSums of a layered machine: u = (a + J sigma) / T for every output pattern sigma,
        computed in slices of samples that fit in cache (CACHE_ELEMENTS; the (B, K, H) array at once
        is memory-bound: 2x slower than one sample at a time at B = 32, K = 1024, H = 64)."""
        patterns = self.spins @ params["J"].reshape(len(self.hidden), self.n_outputs).T  # (K, H)
        B, T = len(X), self.temperature
        log_cosh, tanh = np.empty((B, len(patterns))), np.empty((B, *patterns.shape))
        rows = max(1, CACHE_ELEMENTS // patterns.size)
        for start in range(0, B, rows):
            u = (hidden_fields[start : start + rows, None, :] + patterns[None]) / T
            log_cosh[start : start + rows] = np.sum(log_two_cosh(u), axis=2)
            np.tanh(u, out=tanh[start : start + rows])
        return HiddenSums(params, X, log_cosh, tanh)

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init=None) -> BoltzmannState:
        """Boltzmann state of E + beta sum_o nudge_o s_o (exact: ``init`` is not needed); a batch of
        one through ``solve_batch``."""
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        nudged = nudge is not None and beta != 0.0
        weights = as_finite_array("nudge", nudge, (self.n_outputs,))[None] if nudged else None
        return self.solve_batch(params, x[None], weights, float(beta) if nudged else 0.0).take(0)

    def batch_view(self, batch_size: int) -> IsingBatch:
        """The batched view: every phase of a minibatch in one ``solve_batch`` (all nudged phases jointly)."""
        return IsingBatch(self)

    def clamp(self, params, x, outputs, init=None, tol: float = 1e-12, max_iter: int = 100) -> BoltzmannState:
        """Minimum-free-energy state with <s_o> held at ``outputs`` in [-1, 1]: outputs +-1
        condition on s_o; the others tilt p(s) ~ exp(-E(s)/T + lambda . s_o), lambda found by
        Newton's method on the convex dual log Z(lambda) - lambda . outputs."""
        self._needs_enumeration("clamp")
        outputs = check_targets(outputs, self.n_outputs, "outputs")
        if np.any(np.abs(outputs) > 1.0):
            raise ValueError(f"outputs must lie in [-1, 1] (they are magnetizations <s_o>), got {outputs.tolist()}")
        energies = self.energies(params, x)
        spins = self.spins[:, self.output_spins]
        hard = np.abs(outputs) == 1.0
        allowed = np.all(spins[:, hard] == outputs[hard], axis=1)
        energies = np.where(allowed, energies, np.inf)
        soft, targets = spins[:, ~hard], outputs[~hard]
        lam = np.zeros(targets.size)

        def dual(lam):
            return float(logsumexp(-energies / self.temperature + soft @ lam)) - float(lam @ targets)

        for _ in range(max_iter):
            state = self._boltzmann(energies - self.temperature * soft @ lam, 0.0)
            grad = state.probabilities @ soft - targets
            if np.max(np.abs(grad), initial=0.0) <= tol:
                return state
            centered = soft - state.probabilities @ soft
            hess = (centered * state.probabilities[:, None]).T @ centered
            step, size = np.linalg.lstsq(hess, grad, rcond=None)[0], 1.0
            while dual(lam - size * step) > dual(lam) - 1e-4 * size * float(grad @ step) and size > 1e-12:
                size *= 0.5
            lam = lam - size * step
        raise ValueError(f"clamp: the tilt did not reach outputs {targets.tolist()} in {max_iter} Newton steps "
                         f"(residual {np.max(np.abs(grad)):.3e}); magnetizations very near +-1 need larger tilts")

    def predict(self, state: BoltzmannState) -> np.ndarray:
        """<s_o>."""
        return state.mean[self.output_spins]

    def cost(self, state: BoltzmannState, y) -> float:
        return self.cost_fn.value(self.predict(state), y)

    def nudge(self, state: BoltzmannState, y) -> np.ndarray:
        """dc/d<s_o> at ``state``: the nudged energy is E + beta sum_o nudge_o s_o."""
        return self.cost_fn.grad(self.predict(state), y)

    def energy_grad(self, params, x, state: BoltzmannState) -> dict[str, np.ndarray]:
        """<dE/dtheta> (module docstring)."""
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        return {k: v[0] for k, v in self.energy_grads(params, x[None], state.mean[None], state.correlations[None]).items()}

    def energy_grads(self, params, X, mean: np.ndarray, correlations: np.ndarray) -> dict[str, np.ndarray]:
        """<dE/dtheta> for a batch (leading axis B)."""
        self.check_params(params)
        grads = {"J": -correlations, "b": -mean}
        if self.n_inputs:
            grads["W"] = -np.asarray(X)[:, :, None] * mean[:, None, self.input_spins]
        return grads

    @cached_property
    def _output_gradient(self):
        """jit of (params, x, w) -> d(w . <s_o>)/dtheta through the enumeration."""
        import jax
        import jax.numpy as jnp

        spins, out, temperature, inputs = jnp.asarray(self.spins), self.output_spins, self.temperature, self.input_spins
        pairs, hidden, n_out = (None if self.pairs is None else jnp.asarray(self.pairs)), self.hidden, self.n_outputs

        def weighted_outputs(p, x, w):
            fields = p["b"].at[jnp.asarray(inputs)].add(x @ p["W"]) if "W" in p else p["b"]
            if pairs is None:  # layered: hidden spins summed out
                u = (fields[jnp.asarray(hidden)][None] + spins @ p["J"].reshape(len(hidden), n_out).T) / temperature
                logits = spins @ fields[jnp.asarray(out)] / temperature + jnp.sum(jnp.logaddexp(u, -u), axis=1)
                return w @ (jax.nn.softmax(logits) @ spins)
            probabilities = jax.nn.softmax((pairs @ p["J"] + spins @ fields) / temperature)
            return w @ (probabilities @ spins[:, out])

        return jax.jit(jax.grad(weighted_outputs))

    def reference_grad(self, params, x, y, free: BoltzmannState | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta = (dc/d<s_o>) . d<s_o>/dtheta, the Jacobian by JAX autodiff of the
        enumerated Boltzmann average."""
        state = free if free is not None else self.equilibrate(params, x)
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        grad = self._output_gradient(self.check_params(params), x, self.nudge(state, y))
        return {k: np.asarray(v, dtype=np.float64) for k, v in grad.items()}


class IsingBatch:
    """The batch-first view (qeqprop.systems.protocol.BatchSystem) of an IsingMachine: states are
    BoltzmannBatch objects; all nudged phases of an EP step in one ``solve_batch`` (``joint_phases``)."""

    joint_phases = True

    def __init__(self, system: IsingMachine):
        self.system = system

    def equilibrate(self, params, X, nudge=None, beta=0.0, init=None):
        system = self.system
        sums = None if init is None else init.hidden_sums
        if not isinstance(beta, tuple):
            nudged = nudge is not None and beta != 0.0
            return system.solve_batch(params, X, np.asarray(nudge) if nudged else None, float(beta) if nudged else 0.0, sums)
        if system.layered:  # one beta at a time, each reusing the free phase's hidden sums
            return tuple(system.solve_batch(params, X, np.asarray(nudge), b, sums) for b in beta)
        B, k = len(X), len(beta)
        states = system.solve_batch(params, np.concatenate([X] * k), np.concatenate([np.asarray(nudge)] * k),
                                    np.repeat(np.asarray(beta, dtype=float), B))
        return tuple(states.rows(slice(m * B, (m + 1) * B)) for m in range(k))

    def reflect(self, free, nudged):
        return None

    def predict(self, states: BoltzmannBatch) -> np.ndarray:
        return states.mean[:, self.system.output_spins]

    def nudge(self, states: BoltzmannBatch, Y) -> np.ndarray:
        return np.array([self.system.cost_fn.grad(o, y) for o, y in zip(self.predict(states), Y)])

    def cost(self, states: BoltzmannBatch, Y) -> np.ndarray:
        return np.array([self.system.cost_fn.value(o, y) for o, y in zip(self.predict(states), Y)], dtype=float)

    def energy_grad(self, params, X, states: BoltzmannBatch) -> dict[str, np.ndarray]:
        return self.system.energy_grads(params, X, states.mean, states.correlations)

    def diagnostics(self, states: BoltzmannBatch) -> dict[str, np.ndarray]:
        return {}

    def take(self, states: BoltzmannBatch, index: int) -> BoltzmannState:
        return states.take(index)

    def stack(self, states) -> BoltzmannBatch:
        return states if isinstance(states, BoltzmannBatch) else BoltzmannBatch.stack(list(states))
