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

from ..hamiltonians.parametrized import ParamSpec, Term
from ..validation import per_item
from .tfim import TFIMNetwork


class XXZNetwork(TFIMNetwork):
    """An XXZ learner (module docstring): exchange X X + Y Y + Delta Z Z on the edges of ``graph``,
    trainable longitudinal fields and input weights, a transverse field.

    Trainable parameters: ``J`` (XY exchange, one per edge), ``b`` (fields), ``W`` (input
    weights, when n_inputs > 0); with ``train_delta`` also ``Jz`` (ZZ exchange per edge, so the
    anisotropy Delta_ij = Jz_ij / J_ij is learned; H must stay linear in theta, hence Jz rather
    than Delta itself), and with ``train_gamma`` the transverse fields ``gamma``.

    Args:
        n_qubits, graph: as TFIMNetwork (at least one edge).
        delta: anisotropy Delta (scalar or one per edge; default 1, the Heisenberg point): fixed,
            or Jz's start Jz = Delta J with ``train_delta``.
        train_delta: train Jz independently of J.
        **options: TFIMNetwork options (n_inputs, output_qubits, input_mode, gamma (keep it
            nonzero: module docstring), train_gamma, init_std) and SpinSystem options (cost,
            solver, temperature, tol, nudge_tol, gap_tol, ...).

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

    def __init__(self, n_qubits: int, graph="complete", *, delta: float | Sequence[float] = 1.0,
                 train_delta: bool = False, **options):
        if not isinstance(n_qubits, (int, np.integer)) or n_qubits < 2:
            raise ValueError(f"n_qubits must be an integer >= 2 (exchange needs pairs), got {n_qubits!r}")
        self._delta, self.train_delta = delta, bool(train_delta)
        super().__init__(n_qubits, graph, **options)

    def coupling_specs(self, init_std: float) -> dict[str, ParamSpec]:
        """J per edge, and Jz per edge with ``train_delta`` (init_params sets Jz = Delta J)."""
        if not self.edges:
            raise ValueError("graph has no edges: an exchange network needs at least one coupled pair")
        self.delta = per_item("delta", self._delta, len(self.edges), "edge")
        specs = super().coupling_specs(init_std)
        if self.train_delta:
            specs["Jz"] = ParamSpec((len(self.edges),))
        return specs

    def coupling_terms(self, k: int, i: int, j: int) -> list[Term]:
        """-J_k (X_i X_j + Y_i Y_j) - Jz_k Z_i Z_j, Jz_k = Delta_k J_k unless trained."""
        terms = [Term(f"X{i} X{j}", -1.0, "J", (k,)), Term(f"Y{i} Y{j}", -1.0, "J", (k,))]
        if self.train_delta:
            return terms + [Term(f"Z{i} Z{j}", -1.0, "Jz", (k,))]
        return terms + ([Term(f"Z{i} Z{j}", -float(self.delta[k]), "J", (k,))] if self.delta[k] != 0.0 else [])

    def init_params(self, rng=None) -> dict[str, np.ndarray]:
        """J, W, b drawn (TFIMNetwork); Jz = Delta J where trained, gamma = the given fields where trained."""
        params = super().init_params(rng)
        if self.train_delta:
            params["Jz"] = self.delta * params["J"]
        return params

    def anisotropy(self, params) -> np.ndarray:
        """Delta_ij per edge: Jz / J when trained (NaN where J_ij = 0), else the fixed ``delta``."""
        if not self.train_delta:
            return self.delta.copy()
        params = self.hamiltonian.check_params(params)
        J = np.asarray(params["J"], dtype=float)
        return np.divide(params["Jz"], J, out=np.full_like(J, np.nan), where=J != 0.0)
