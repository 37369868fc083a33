"""XXZ (anisotropic Heisenberg) exchange networks on any coupling graph.

    H(theta, x) = - sum_{(i,j) in E} [ J_ij (X_i X_j + Y_i Y_j) + Jz_ij Z_i Z_j ]
                  - sum_j h_j(x) Z_j - sum_j Gamma_j X_j,

    Jz_ij = Delta_ij J_ij,      h_j(x) = b_j + sum_i W_ij x_i.

Same sign convention as the TFIM network (qeqprop.systems.tfim): positive couplings are
ferromagnetic, fields pull <Z_j> towards sign(h_j); with J = 0 and trainable Jz this *is* the
TFIM network. Delta = 1 is the Heisenberg model, Delta = 0 the XY model. Outputs are <Z_o> on
the output qubits.

Why a transverse field. Without it (Gamma = 0) H commutes with the total magnetization
M = sum_j Z_j (U(1) symmetry): its eigenstates sit in sectors of fixed M, and as the input
fields h(x) move, levels of different sectors *cross*: the ground state is exactly degenerate
on whole hypersurfaces of input space, where EP (and the loss) are undefined. The transverse
field couples the sectors (X_j changes M by +-2) and leaves no symmetry for generic fields
(with h = 0, only the Z2 parity prod_j X_j), so crossings become avoided ones. H is real
symmetric (X X, Y Y, Z Z and the fields are real in the Z basis), and a real symmetric matrix
with no symmetry needs two conditions to make two levels meet (von Neumann-Wigner): a generic
one-parameter path, such as a training run or a sweep of one input, never hits a degeneracy.
"Generic" includes no spatial symmetry: uniform couplings and fields on a symmetric graph
(a uniform chain is mirror-symmetric) keep crossings between symmetry sectors even at
Gamma > 0; random initial and trained parameters break such symmetries. With ferromagnetic
XY exchange (every J_ij >= 0, any Jz) and every Gamma_j > 0, H is moreover stoquastic (all
off-diagonal entries <= 0 in the Z basis) and irreducible (single spin flips connect all basis
states), so its ground state is unique by Perron-Frobenius. The free phase still reports
its gap, and a gap below ``gap_tol`` warns (DegenerateGroundStateWarning).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..hamiltonians.parametrized import ParamSpec, ParametrizedHamiltonian, Term
from ..validation import as_finite_array, check_index_list
from .spin import SpinSystem
from .tfim import coupling_edges


def per_item(name: str, value, count: int, what: str) -> np.ndarray:
    """A scalar broadcast to (count,), or an array of that shape (ValueError naming ``name``)."""
    if np.ndim(value) == 0:
        value = np.full(count, value, dtype=float)
    return as_finite_array(f"{name} (one per {what})", value, (count,))


class XXZNetwork(SpinSystem):
    """An XXZ learner (module docstring): exchange X X + Y Y + Delta Z Z on the edges of ``graph``,
    trainable longitudinal fields and input weights, a transverse field.

    Trainable parameters: ``J`` (XY exchange, one per edge), ``b`` (fields), ``W`` (input
    weights, when n_inputs > 0); with ``train_delta`` also ``Jz`` (ZZ exchange per edge, so the
    anisotropy Delta_ij = Jz_ij / J_ij is learned; H must stay linear in theta, hence Jz rather
    than Delta itself), and with ``train_gamma`` the transverse fields ``gamma``.

    Args:
        n_qubits: number of qubits N.
        graph: "complete", "chain", a networkx graph, an edge list or a symmetric matrix's pattern.
        n_inputs: input features; they enter as fields h_j = b_j + sum_i W_ij x_i.
        output_qubits: qubits whose <Z> are the outputs (default: the last one).
        delta: anisotropy Delta (scalar or one per edge; default 1, the Heisenberg point): fixed,
            or Jz's start Jz = Delta J with ``train_delta``.
        train_delta: train Jz independently of J.
        gamma: transverse field Gamma (scalar or per qubit); keep it nonzero (module docstring).
        train_gamma: train the transverse fields (they start at ``gamma``).
        init_std: init_params draws J, W ~ init_std N(0, 1) and b ~ 0.1 init_std N(0, 1).
        **options: SpinSystem options (cost, solver, temperature, tol, nudge_tol, gap_tol, ...).

    Example:
        >>> import numpy as np
        >>> from qeqprop.systems.xxz import XXZNetwork
        >>> net = XXZNetwork(3, "chain", n_inputs=1, delta=0.5, train_delta=True)
        >>> params = net.init_params(0)
        >>> sorted(params), params["J"].shape
        (['J', 'Jz', 'W', 'b'], (2,))
        >>> bool(np.allclose(net.anisotropy(params), 0.5))
        True
        >>> state = net.equilibrate(params, np.array([0.3]))
        >>> net.diagnostics(state)["gap"] > 0.1, net.predict(state).shape
        (True, (1,))
    """

    def __init__(
        self,
        n_qubits: int,
        graph="complete",
        n_inputs: int = 0,
        output_qubits: Sequence[int] | None = None,
        delta: float | Sequence[float] = 1.0,
        train_delta: bool = False,
        gamma: float | Sequence[float] = 1.0,
        train_gamma: bool = False,
        init_std: float = 0.5,
        **options,
    ):
        if not isinstance(n_qubits, (int, np.integer)) or n_qubits < 2:
            raise ValueError(f"n_qubits must be an integer >= 2 (exchange needs pairs), got {n_qubits!r}")
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 0:
            raise ValueError(f"n_inputs must be a non-negative integer, got {n_inputs!r}")
        n = int(n_qubits)
        self.edges = coupling_edges(graph, n)
        if not self.edges:
            raise ValueError("graph has no edges: an exchange network needs at least one coupled pair")
        self.output_qubits = check_index_list("output_qubits", output_qubits, n, default=[n - 1])
        self.delta = per_item("delta", delta, len(self.edges), "edge")
        self.gamma = per_item("gamma", gamma, n, "qubit")
        self.train_delta, self.train_gamma = bool(train_delta), bool(train_gamma)
        terms, specs = self._terms(n, int(n_inputs), float(init_std))
        hamiltonian = ParametrizedHamiltonian(n, terms, specs, n_inputs=int(n_inputs),
                                              observables=[f"Z{q}" for q in self.output_qubits])
        super().__init__(hamiltonian, **options)

    def _terms(self, n: int, n_inputs: int, init_std: float) -> tuple[list[Term], dict[str, ParamSpec]]:
        """The Terms of H (module docstring) and the ParamSpecs of their parameters."""
        specs = {"J": ParamSpec((len(self.edges),), std=init_std)}
        terms = []
        for k, (i, j) in enumerate(self.edges):
            terms += [Term(f"X{i} X{j}", -1.0, "J", (k,)), Term(f"Y{i} Y{j}", -1.0, "J", (k,))]
            if self.train_delta:
                terms.append(Term(f"Z{i} Z{j}", -1.0, "Jz", (k,)))
            elif self.delta[k] != 0.0:
                terms.append(Term(f"Z{i} Z{j}", -float(self.delta[k]), "J", (k,)))
        if self.train_delta:
            specs["Jz"] = ParamSpec((len(self.edges),))  # init_params sets Jz = Delta J
        specs["b"] = ParamSpec((n,), std=0.1 * init_std)
        terms += [Term(f"Z{q}", -1.0, "b", (q,)) for q in range(n)]
        if n_inputs:
            specs["W"] = ParamSpec((n_inputs, n), std=init_std)
            terms += [Term(f"Z{q}", -1.0, "W", (i, q), input=i) for i in range(n_inputs) for q in range(n)]
        if self.train_gamma:
            specs["gamma"] = ParamSpec((n,))  # init_params sets the given gamma
            terms += [Term(f"X{q}", -1.0, "gamma", (q,)) for q in range(n)]
        else:
            terms += [Term(f"X{q}", -float(g)) for q, g in enumerate(self.gamma) if g != 0.0]
        return terms, specs

    def init_params(self, rng=None) -> dict[str, np.ndarray]:
        """J, W, b drawn (class docstring); Jz = Delta J and gamma = the given fields where trained."""
        params = super().init_params(rng)
        if self.train_delta:
            params["Jz"] = self.delta * params["J"]
        if self.train_gamma:
            params["gamma"] = self.gamma.copy()
        return params

    def anisotropy(self, params) -> np.ndarray:
        """Delta_ij per edge: Jz / J when trained (NaN where J_ij = 0), else the fixed ``delta``."""
        if not self.train_delta:
            return self.delta.copy()
        params = self.hamiltonian.check_params(params)
        J = np.asarray(params["J"], dtype=float)
        return np.divide(params["Jz"], J, out=np.full_like(J, np.nan), where=J != 0.0)
