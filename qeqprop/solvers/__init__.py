"""Ground-state solvers: dense eigh, matrix-free Lanczos, and the linear-response solve."""

from .dense import DENSE_MAX_QUBITS, dense_ground_state
from .lanczos import KRYLOV_VECTORS, lanczos_ground_state
from .linear_response import adjoint_state
from .state import DegenerateGroundStateWarning, GroundState, report_small_gap

SOLVERS = ("auto", "dense", "lanczos")
AUTO_DENSE_MAX_QUBITS = 10


def uses_dense(solver: str, n_qubits: int) -> bool:
    return solver == "dense" or (solver == "auto" and n_qubits <= AUTO_DENSE_MAX_QUBITS)


def working_set_vectors(solver: str, n_qubits: int) -> int:
    """State vectors a solve holds at once: the 2^n x 2^n matrix for dense, the Krylov basis,
    the Hamiltonian's diagonal and the linear-response vectors for Lanczos."""
    return 3 << n_qubits if uses_dense(solver, n_qubits) else KRYLOV_VECTORS + 8


def ground_state(operator, solver: str = "auto", init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
    """Ground state of a matrix-free operator by the named solver.

    ``auto`` picks dense ``eigh`` up to 10 qubits and Lanczos above.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if uses_dense(solver, operator.n_qubits):
        return dense_ground_state(operator)
    return lanczos_ground_state(operator, init=init, tol=tol, with_gap=with_gap)


__all__ = [
    "SOLVERS",
    "DENSE_MAX_QUBITS",
    "DegenerateGroundStateWarning",
    "GroundState",
    "adjoint_state",
    "dense_ground_state",
    "ground_state",
    "lanczos_ground_state",
    "report_small_gap",
    "working_set_vectors",
]
