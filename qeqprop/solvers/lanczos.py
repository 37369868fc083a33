"""Matrix-free Lanczos ground states: scipy ``eigsh`` (implicitly restarted Lanczos) on a
LinearOperator wrapping the model's one Pauli-sum application, warm-startable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ..errors import NotConvergedError
from ..validation import check_state_memory
from .base import GroundStateSolver
from .dense import dense_ground_state
from .state import GroundState

# eigsh keeps ncv = max(2k + 1, 20) Krylov vectors plus a few work vectors.
KRYLOV_VECTORS = 24


def lanczos_ground_state(
    operator,
    init: np.ndarray | None = None,
    tol: float = 1e-12,
    with_gap: bool = True,
    maxiter: int | None = None,
) -> GroundState:
    """Lowest eigenpair (two with ``with_gap``) of H by Lanczos, ``which='SA'``.

    ``init`` warm-starts the Krylov space (e.g. the free-phase state for a nudged phase).
    """
    n = operator.n_qubits
    check_state_memory(n, np.dtype(operator.dtype).itemsize, KRYLOV_VECTORS, what="Lanczos (eigsh)")
    count = [0]

    def matvec(v):
        count[0] += 1
        return operator.matvec(v)

    linear = LinearOperator(operator.shape, matvec=matvec, matmat=lambda v: operator.matvec(v), dtype=operator.dtype)
    k = 2 if with_gap and operator.dim > 2 else 1
    if operator.dim <= k + 1:
        return dense_ground_state(operator)
    if init is None:
        # A fixed start vector keeps runs (and resumed training) bit-for-bit reproducible.
        v0 = np.random.default_rng(0).standard_normal(operator.dim).astype(operator.dtype)
    else:
        v0 = np.asarray(init, dtype=operator.dtype)
        if v0.shape != (operator.dim,):
            raise ValueError(f"init must be a state vector of shape ({operator.dim},), got {v0.shape}")
    try:
        energies, vectors = eigsh(linear, k=k, which="SA", v0=v0, tol=tol, maxiter=maxiter)
    except ArpackNoConvergence as exc:
        raise NotConvergedError(
            f"Lanczos did not converge after {count[0]} Hamiltonian applications (tol={tol}); "
            "raise maxiter or loosen tol"
        ) from exc
    order = np.argsort(energies)
    energies, vectors = energies[order], vectors[:, order]
    psi = vectors[:, 0] / np.linalg.norm(vectors[:, 0])
    hpsi = operator.matvec(psi)
    energy = float(np.real(np.vdot(psi, hpsi)))
    residual = float(np.linalg.norm(hpsi - energy * psi))
    gap = float(energies[1] - energies[0]) if k == 2 else None
    return GroundState(psi, energy, gap, count[0], residual, "lanczos")


@dataclass(frozen=True)
class Arpack(GroundStateSolver):
    """scipy's ARPACK (``eigsh``, implicitly restarted Lanczos, ``which="SA"``) on a LinearOperator
    wrapping the model's Pauli-sum application, as a solver object registered as "lanczos": the
    reference Krylov path (``lanczos_ground_state``). ``tol`` is ARPACK's relative eigenvalue
    tolerance; ``init`` is ARPACK's start vector ``v0``; ``maxiter`` its restart cap (None: ARPACK's).
    Memory: KRYLOV_VECTORS state vectors (ncv = 20 Krylov vectors and work vectors)."""

    maxiter: int | None = None
    name: ClassVar[str] = "lanczos"

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        return lanczos_ground_state(operator, init=init, tol=tol, with_gap=with_gap, maxiter=self.maxiter)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        return KRYLOV_VECTORS
