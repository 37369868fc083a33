"""Ground-state solvers: dense eigh, matrix-free Lanczos, and the linear-response solve."""

from .dense import DENSE_MAX_QUBITS, dense_ground_state
from .jax_lanczos import LanczosOptions, jax_ground_state, release_workspace, solve_vectors
from .lanczos import KRYLOV_VECTORS, lanczos_ground_state
from .linear_response import adjoint_state
from .state import DegenerateGroundStateWarning, GroundState, report_small_gap

SOLVERS = ("auto", "dense", "lanczos", "jax")
AUTO_DENSE_MAX_QUBITS = 8


def uses_dense(solver: str, n_qubits: int) -> bool:
    return solver == "dense" or (solver == "auto" and n_qubits <= AUTO_DENSE_MAX_QUBITS)


def working_set_vectors(solver: str, n_qubits: int, itemsize: int = 8) -> int:
    """State vectors an EP gradient holds at once: the 2^n x 2^n matrix for dense; for Lanczos
    the solve's working set plus 8 (the operator's diagonal, the free, nudged and reflected
    states, and the expectation and linear-response work vectors)."""
    if uses_dense(solver, n_qubits):
        return 3 << n_qubits
    if solver in ("auto", "jax"):
        options = LanczosOptions()
        m = options.size(1 << n_qubits, itemsize)
        return solve_vectors(m, options.kept(m)) + 8
    return KRYLOV_VECTORS + 8


def ground_state(operator, solver: str = "auto", init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
    """Ground state of a matrix-free operator by the named solver.

    ``auto`` picks dense ``eigh`` up to 8 qubits (2^8 = 256: eigh beats Krylov) and the jitted JAX Lanczos above;
    ``lanczos`` is scipy's ARPACK (the reference path). ``tol`` is ARPACK's eigenvalue
    tolerance, or the JAX residual tolerance ||H psi - E psi|| / max(1, |E|) (floored at 1e-12).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if uses_dense(solver, operator.n_qubits):
        return dense_ground_state(operator)
    if solver == "lanczos":
        return lanczos_ground_state(operator, init=init, tol=tol, with_gap=with_gap)
    return jax_ground_state(operator, init=init, options=LanczosOptions(tol=max(tol, 1e-12)), with_gap=with_gap)


__all__ = [
    "SOLVERS",
    "DENSE_MAX_QUBITS",
    "DegenerateGroundStateWarning",
    "GroundState",
    "LanczosOptions",
    "jax_ground_state",
    "adjoint_state",
    "dense_ground_state",
    "ground_state",
    "lanczos_ground_state",
    "release_workspace",
    "report_small_gap",
    "uses_dense",
    "working_set_vectors",
]
