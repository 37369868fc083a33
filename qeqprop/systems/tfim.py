"""Transverse-field Ising (TFIM) networks on any coupling graph.

    H(theta, x) = - sum_{(i,j) in E} J_ij Z_i Z_j - sum_j h_j(x) Z_j - sum_j Gamma_j X_j

Inputs enter as longitudinal fields, either through trainable input weights
(``input_mode="weights"``: h_j(x) = b_j + sum_i W_ij x_i) or as fixed fields on chosen
qubits (``input_mode="fields"``: h_{q_i}(x) = b_{q_i} + s x_i). Outputs are <Z_o> on the
output qubits. With every Gamma_j > 0 and a connected graph, H is stoquastic and its
ground state is unique (Perron-Frobenius), so EP is well defined.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..hamiltonians.parametrized import ParamSpec, ParametrizedHamiltonian, Term
from ..validation import as_finite_array, check_index_list, per_item
from .spin import SpinSystem

INPUT_MODES = ("weights", "fields")


def coupling_edges(graph, n_qubits: int) -> list[tuple[int, int]]:
    """Edges from a networkx graph, an edge list, "complete", "chain", or a symmetric
    coupling matrix given as an (n, n) numpy array (its nonzero pattern)."""
    if isinstance(graph, str):
        if graph == "complete":
            return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]
        if graph == "chain":
            return [(i, i + 1) for i in range(n_qubits - 1)]
        raise ValueError(f"graph must be 'complete', 'chain', a networkx graph, an edge list or a matrix, got {graph!r}")
    if hasattr(graph, "edges") and hasattr(graph, "nodes"):
        pairs: Iterable = graph.edges()
    else:
        if isinstance(graph, np.ndarray) and graph.shape == (n_qubits, n_qubits):
            matrix = as_finite_array("graph (coupling matrix)", graph)
            if not np.allclose(matrix, matrix.T, atol=0, rtol=1e-12):
                raise ValueError("graph (coupling matrix) must be symmetric, J_ij == J_ji; symmetrize it with (J + J.T) / 2")
            pairs = [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits) if matrix[i, j] != 0]
        else:
            pairs = graph
    edges, seen = [], set()
    for pair in pairs:
        try:
            i, j = (int(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"graph edge {pair!r} must be a pair of qubit indices") from None
        for q in (i, j):
            if not 0 <= q < n_qubits:
                raise ValueError(f"graph edge {pair!r}: qubit index {q} out of range 0..{n_qubits - 1}")
        if i == j:
            raise ValueError(f"graph edge {pair!r} is a self-loop; Z_i Z_i = 1 is a constant")
        key = (min(i, j), max(i, j))
        if key in seen:
            raise ValueError(f"graph edge {key} appears twice")
        seen.add(key)
        edges.append(key)
    return edges


class TFIMNetwork(SpinSystem):
    """A TFIM learner, H = -sum_(ij) J_ij Z_i Z_j - sum_j h_j(x) Z_j - sum_j Gamma_j X_j.

    Parameters: ``J`` (one per edge), ``b`` (fields), ``W`` (input weights, weights mode) and
    ``gamma`` (transverse fields, when ``train_gamma``).

    Args:
        n_qubits: register size; ``graph``: "complete", "chain", an edge list, a networkx graph
            or a symmetric coupling matrix's nonzero pattern.
        n_inputs, input_mode, input_qubits, input_scale: how inputs enter (module docstring).
        output_qubits: the qubits whose <Z> are the outputs (default: the last).
        gamma, train_gamma: transverse fields (fixed, or trainable from that start).
        init_std: scale of the random initial J, W (b: a tenth of it).
        **options: SpinSystem options (cost, solver, gap_tol, tol, temperature, ...).

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> net = qp.TFIMNetwork(4, "chain", n_inputs=2, output_qubits=[3])
        >>> params = net.init_params(0)
        >>> {k: v.shape for k, v in params.items()}
        {'J': (3,), 'b': (4,), 'W': (2, 4)}
        >>> state = net.equilibrate(params, np.array([0.5, -0.5]))
        >>> net.predict(state).shape, state.gap > 0
        ((1,), True)
    """

    def __init__(
        self,
        n_qubits: int,
        graph="complete",
        n_inputs: int = 0,
        output_qubits: Sequence[int] | None = None,
        input_mode: str = "weights",
        input_qubits: Sequence[int] | None = None,
        input_scale: float = 1.0,
        gamma: float | Sequence[float] = 1.0,
        train_gamma: bool = False,
        init_std: float = 0.5,
        **options,
    ):
        if not isinstance(n_qubits, (int, np.integer)) or n_qubits < 1:
            raise ValueError(f"n_qubits must be a positive integer, got {n_qubits!r}")
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.edges = coupling_edges(graph, n_qubits)
        self.output_qubits = check_index_list("output_qubits", output_qubits, n_qubits, default=[n_qubits - 1])
        gamma = per_item("gamma", gamma, n_qubits, "qubit")
        self.input_mode = input_mode
        n = n_qubits
        specs = self.coupling_specs(init_std)
        specs["b"] = ParamSpec((n,), std=0.1 * init_std)
        terms = [term for k, (i, j) in enumerate(self.edges) for term in self.coupling_terms(k, i, j)]
        terms += [Term(f"Z{j}", -1.0, "b", (j,)) for j in range(n)]
        if input_mode == "weights" and n_inputs > 0:
            specs["W"] = ParamSpec((n_inputs, n), std=init_std)
            terms += [Term(f"Z{j}", -1.0, "W", (i, j), input=i) for i in range(n_inputs) for j in range(n)]
        elif input_mode == "fields":
            default = list(range(n_inputs))
            self.input_qubits = check_index_list("input_qubits", input_qubits, n, default=default)
            if len(self.input_qubits) != n_inputs:
                raise ValueError(f"input_qubits must name one qubit per input ({n_inputs}), got {self.input_qubits}")
            terms += [Term(f"Z{q}", -float(input_scale), input=i) for i, q in enumerate(self.input_qubits)]
        if train_gamma:
            specs["gamma"] = ParamSpec((n,), mean=float(np.mean(gamma)), std=0.0)
            terms += [Term(f"X{j}", -1.0, "gamma", (j,)) for j in range(n)]
        else:
            terms += [Term(f"X{j}", -float(gamma[j])) for j in range(n) if gamma[j] != 0.0]
        self._gamma_init = gamma
        hamiltonian = ParametrizedHamiltonian(
            n, terms, specs, n_inputs=n_inputs, observables=[f"Z{q}" for q in self.output_qubits]
        )
        super().__init__(hamiltonian, **options)

    def repr_fields(self) -> dict:
        """SpinSystem's fields with the graph (its edges, or their count past 8) and the input mode."""
        fields = super().repr_fields()
        graph = self.edges if len(self.edges) <= 8 else f"<{len(self.edges)} edges>"
        return {"n_qubits": fields.pop("n_qubits"), "graph": graph, **fields, "input_mode": self.input_mode}

    def coupling_specs(self, init_std: float) -> dict[str, ParamSpec]:
        """The coupling parameters: J, one per edge (subclasses add their own exchange terms)."""
        return {"J": ParamSpec((len(self.edges),), std=init_std)}

    def coupling_terms(self, k: int, i: int, j: int) -> list[Term]:
        """The Terms of edge k = (i, j): -J_k Z_i Z_j."""
        return [Term(f"Z{i} Z{j}", -1.0, "J", (k,))]

    def init_params(self, rng=None) -> dict[str, np.ndarray]:
        params = super().init_params(rng)
        if "gamma" in params:
            params["gamma"] = self._gamma_init.copy()
        return params

    def coupling_matrix(self, params) -> np.ndarray:
        """The symmetric N x N matrix of J_ij (zero off the graph)."""
        matrix = np.zeros((self.n_qubits, self.n_qubits))
        for k, (i, j) in enumerate(self.edges):
            matrix[i, j] = matrix[j, i] = params["J"][k]
        return matrix

    def with_couplings(self, params, matrix) -> dict[str, np.ndarray]:
        """Copy of ``params`` whose J comes from a symmetric coupling matrix on this graph."""
        matrix = as_finite_array("matrix", matrix, (self.n_qubits, self.n_qubits))
        if not np.allclose(matrix, matrix.T, atol=0, rtol=1e-12):
            raise ValueError("matrix must be symmetric (J_ij == J_ji); symmetrize it with (J + J.T) / 2")
        on_graph = np.zeros_like(matrix, dtype=bool)
        for i, j in self.edges:
            on_graph[i, j] = on_graph[j, i] = True
        if np.any(matrix[~on_graph] != 0):
            raise ValueError("matrix has couplings on pairs that are not edges of this network's graph")
        new = {k: np.array(v, dtype=float) for k, v in params.items()}
        new["J"] = np.array([matrix[i, j] for i, j in self.edges])
        return new
