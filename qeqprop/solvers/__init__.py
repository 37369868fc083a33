"""Ground-state solvers: dense eigh, matrix-free Lanczos, and the linear-response solve."""

from .dense import DENSE_MAX_QUBITS, dense_ground_state
from .lanczos import lanczos_ground_state
from .linear_response import adjoint_state
from .state import DegenerateGroundStateWarning, GroundState, report_small_gap

SOLVERS = ("auto", "dense", "lanczos")
AUTO_DENSE_MAX_QUBITS = 10


def ground_state(operator, solver: str = "auto", init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
    """Ground state of a matrix-free operator by the named solver.

    ``auto`` picks dense ``eigh`` up to 10 qubits and Lanczos above.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if solver == "dense" or (solver == "auto" and operator.n_qubits <= AUTO_DENSE_MAX_QUBITS):
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
]
