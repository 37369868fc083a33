"""One registry of ground-state solvers: names (the strings systems, the CLI and configs use)
to factories of ``GroundStateSolver`` objects, and the functions that take either."""

from __future__ import annotations

from typing import Callable

from .auto import Auto
from .base import GroundStateSolver
from .dense import Dense
from .jax_lanczos import JaxLanczos
from .lanczos import Arpack
from .mps import MPS
from .state import GroundState

REGISTRY: dict[str, Callable[[], GroundStateSolver]] = {
    "auto": Auto,
    "dense": Dense,
    "lanczos": Arpack,
    "jax": JaxLanczos,
    "mps": MPS,
}
SOLVERS = tuple(REGISTRY)
# State vectors an EP gradient holds besides a matrix-free solve's working set: the operator's
# diagonal, the free, nudged and reflected states, and the expectation and linear-response work vectors.
EP_VECTORS = 8


def make_solver(solver: "str | GroundStateSolver" = "auto", argument: str = "solver") -> GroundStateSolver:
    """The solver object for a registered name, or ``solver`` itself when it already is one.

    Args:
        solver: a name in SOLVERS ("auto", "dense", "lanczos", "jax", "mps") or a ``GroundStateSolver``.
        argument: the argument's name for the error message.

    Raises:
        ValueError: naming ``argument``, the valid names and what was given.

    Example:
        >>> from qeqprop.solvers import JaxLanczos, LanczosOptions, make_solver
        >>> make_solver("lanczos").name
        'lanczos'
        >>> make_solver(JaxLanczos(LanczosOptions(krylov=32))).options.krylov
        32
        >>> make_solver("eigh")
        Traceback (most recent call last):
        ...
        ValueError: solver must be one of ('auto', 'dense', 'lanczos', 'jax', 'mps') or a GroundStateSolver, got 'eigh'
    """
    if isinstance(solver, GroundStateSolver):
        return solver
    if isinstance(solver, str) and solver in REGISTRY:
        return REGISTRY[solver]()
    raise ValueError(f"{argument} must be one of {SOLVERS} or a GroundStateSolver, got {solver!r}")


def uses_dense(solver: "str | GroundStateSolver", n_qubits: int) -> bool:
    """Whether ``solver`` diagonalises the dense matrix at ``n_qubits`` qubits."""
    return make_solver(solver).uses_dense(n_qubits)


def working_set_vectors(solver: "str | GroundStateSolver", n_qubits: int, itemsize: int = 8) -> int:
    """State vectors an EP gradient holds at once: the solver's working set (for dense, the
    2^n x 2^n matrix dominates everything else), plus EP_VECTORS for matrix-free solvers; none for
    a solver that holds no state vectors (working set 0: MPS)."""
    solver = make_solver(solver)
    vectors = solver.working_set(n_qubits, itemsize)
    return vectors if solver.uses_dense(n_qubits) or vectors == 0 else vectors + EP_VECTORS


def ground_state(operator, solver: "str | GroundStateSolver" = "auto", init=None, tol: float = 1e-12,
                 with_gap: bool = True) -> GroundState:
    """Ground state of a matrix-free operator by ``solver`` (a registered name or a solver object).

    ``auto`` picks dense ``eigh`` up to 8 qubits and the jitted JAX Lanczos above; ``lanczos`` is
    scipy's ARPACK (the reference path). ``tol`` is ARPACK's eigenvalue tolerance, or the JAX
    residual tolerance ||H psi - E psi|| / max(1, |E|) (floored at 1e-12); dense ignores it.
    """
    return make_solver(solver).solve(operator, init=init, tol=tol, with_gap=with_gap)
