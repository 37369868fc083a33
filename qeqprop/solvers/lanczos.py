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
from .deflation import GAP_TOL, certified_gap, gap_start
from .dense import dense_ground_state
from .state import GroundState

# eigsh keeps ncv = max(2k + 1, 20) Krylov vectors plus a few work vectors.
KRYLOV_VECTORS = 24


def _lowest(linear, v0, tol: float, maxiter: int | None, count: list) -> tuple[float, np.ndarray]:
    """eigsh's lowest Ritz pair (which="SA", k=1) of ``linear`` from ``v0``."""
    try:
        energies, vectors = eigsh(linear, k=1, which="SA", v0=v0, tol=tol, maxiter=maxiter)
    except ArpackNoConvergence as exc:
        raise NotConvergedError(
            f"Lanczos did not converge after {count[0]} Hamiltonian applications (tol={tol}); "
            "raise maxiter or loosen tol"
        ) from exc
    return float(energies[0]), vectors[:, 0]


def lanczos_ground_state(
    operator,
    init: np.ndarray | None = None,
    tol: float = 1e-12,
    with_gap: bool = True,
    maxiter: int | None = None,
) -> GroundState:
    """Lowest eigenpair of H by Lanczos (eigsh, ``which='SA'``), and with ``with_gap`` the
    certified gap E_1 - E_0 from a second eigsh on Q H Q + sigma |psi_0><psi_0| (``deflation``;
    sigma = 1 + 2 sum_s |c_s| lies above the spectrum, so that a random restart ARPACK makes
    after a breakdown cannot bring psi_0 back as the lowest direction).

    ``init`` warm-starts the Krylov space (e.g. the free-phase state for a nudged phase).
    """
    n = operator.n_qubits
    check_state_memory(n, np.dtype(operator.dtype).itemsize, KRYLOV_VECTORS, what="Lanczos (eigsh)")
    if operator.dim <= 3:
        return dense_ground_state(operator)
    count = [0]

    def matvec(v):
        count[0] += 1
        return operator.matvec(v)

    linear = LinearOperator(operator.shape, matvec=matvec, dtype=operator.dtype)
    if init is None:
        # A fixed start vector keeps runs (and resumed training) bit-for-bit reproducible.
        v0 = np.random.default_rng(0).standard_normal(operator.dim).astype(operator.dtype)
    else:
        v0 = np.asarray(init, dtype=operator.dtype)
        if v0.shape != (operator.dim,):
            raise ValueError(f"init must be a state vector of shape ({operator.dim},), got {v0.shape}")
    _, psi = _lowest(linear, v0, tol, maxiter, count)
    psi = psi / np.linalg.norm(psi)
    hpsi = operator.matvec(psi)
    energy = float(np.real(np.vdot(psi, hpsi)))
    residual = float(np.linalg.norm(hpsi - energy * psi))
    gap = None
    if with_gap:
        sigma = 1.0 + 2.0 * float(np.sum(np.abs(operator.coeffs)))

        def deflated(v):
            v = np.ravel(v)
            w = matvec(v - psi * np.vdot(psi, v))
            return w - psi * np.vdot(psi, w) + sigma * psi * np.vdot(psi, v)

        start = gap_start(operator.dim, operator.dtype)
        second, _ = _lowest(LinearOperator(operator.shape, matvec=deflated, dtype=operator.dtype),
                            start - psi * np.vdot(psi, start), max(tol, GAP_TOL), maxiter, count)
        gap = certified_gap(energy, second)
    return GroundState(psi, energy, gap, count[0], residual, "lanczos")


@dataclass(frozen=True)
class Arpack(GroundStateSolver):
    """scipy's ARPACK (``eigsh``, implicitly restarted Lanczos, ``which="SA"``) on a LinearOperator
    wrapping the model's Pauli-sum application, as a solver object registered as "lanczos": the
    reference Krylov path (``lanczos_ground_state``; the gap from a deflated second eigsh,
    ``deflation``). ``tol`` is ARPACK's relative eigenvalue tolerance; ``init`` is ARPACK's start vector ``v0``; ``maxiter`` its restart cap (None: ARPACK's).
    Memory: KRYLOV_VECTORS state vectors (ncv = 20 Krylov vectors and work vectors)."""

    maxiter: int | None = None
    name: ClassVar[str] = "lanczos"

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        return lanczos_ground_state(operator, init=init, tol=tol, with_gap=with_gap, maxiter=self.maxiter)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        return KRYLOV_VECTORS
