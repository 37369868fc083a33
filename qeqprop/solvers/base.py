"""What a ground-state solver is: the interfaces every solver object implements.

A system does not call a solver function by name; it holds a solver object and asks it two
things: the ground state of an operator, and (before anything 2^n-sized is built) how many state
vectors that will take. Solvers differ in how they find the lowest eigenpair

    H psi_0 = E_0 psi_0,    E_0 = min_psi <psi|H|psi> / <psi|psi>,

(dense ``eigh`` of the 2^n x 2^n matrix, or Krylov methods that only apply H) and in what they
offer on the way: a warm start (a Krylov space started from a nearby state, which is how EP's
nudged phases converge in a fraction of a cold solve's applications) and the gap E_1 - E_0
(exact from ``eigh``; from a deflated second solve for Krylov methods, since one Krylov space
cannot see a degenerate ground state: ``deflation``).

``GroundStateSolver`` is the single-state interface; ``BatchGroundStateSolver`` is its batch
member (``batched_lanczos.BatchedLanczos``): one Pauli table, many coefficient vectors,
all solved together. Strings name the registered solvers (``registry.make_solver``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from .state import GroundState


class GroundStateSolver(ABC):
    """A ground-state solver for one matrix-free operator at a time.

    Implementations: ``Dense`` (``eigh``), ``Arpack`` (scipy's implicitly restarted Lanczos,
    registered as "lanczos"), ``JaxLanczos`` (jitted thick-restart Lanczos, "jax") and ``Auto``
    (dense up to a size, Krylov above). They are small immutable objects: make one per
    configuration and reuse it; equal configurations compare equal.

    Example:
        >>> import numpy as np
        >>> from qeqprop.hamiltonians.pauli import PauliTable
        >>> from qeqprop.solvers import GroundStateSolver, make_solver
        >>> op = PauliTable(2, ["Z0 Z1", "X0", "X1"]).operator(np.array([-1.0, -0.5, -0.5]))
        >>> solver = make_solver("dense")
        >>> isinstance(solver, GroundStateSolver), solver.name
        (True, 'dense')
        >>> state = solver.solve(op)
        >>> print(f"{state.energy:.6f}")  # E_0 = -sqrt(J^2 + 4 h^2) = -sqrt(2) for J = 1, h = 1/2
        -1.414214
        >>> solver.working_set(2)  # state vectors: the 4 x 4 matrix and eigh's work, 3 * 2^n
        12
    """

    name: ClassVar[str]

    @abstractmethod
    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        """The ground state of ``operator`` (a ``PauliOperator``).

        Args:
            operator: the Hamiltonian (``n_qubits``, ``dim``, ``dtype``, ``matvec``, ``to_dense``).
            init: a warm-start state vector of shape (dim,), or None for the solver's fixed cold
                start; solvers without a start vector (dense) ignore it.
            tol: the solver's convergence tolerance (each solver says which quantity it bounds).
            with_gap: also compute the gap E_1 - E_0, counting multiplicity (the free phase's
                degeneracy check: a degenerate ground state reads gap 0 on every solver).

        Returns:
            A ``GroundState`` (vector, energy, gap or None, H applications, residual, solver name).

        Raises:
            NotConvergedError: the tolerance was not reached.
            ValueError: bad input (shape of ``init``, a size over the memory budget).
        """

    @abstractmethod
    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        """State vectors (of 2^n_qubits amplitudes of ``itemsize`` bytes) one solve holds at
        once: what a memory check multiplies by the state's size before anything is built."""

    def uses_dense(self, n_qubits: int) -> bool:
        """Whether a solve at this size diagonalises the dense matrix (so exact spectra, e.g. Gibbs
        states, are affordable too)."""
        return False


class BatchGroundStateSolver(ABC):
    """The batch member of the solver family: ground states of many Hamiltonians sharing one
    Pauli table, H_b = sum_s coeffs[b, s] P_s, solved together (the batch is the parallel axis:
    one compiled program, no Python loop per sample). Made for one table; ``solve`` takes the
    stacked coefficients and warm starts and returns a ``BatchedSolve`` (vectors, energies, gaps,
    residuals, applications). Implementation: ``batched_lanczos.BatchedLanczos``."""

    name: ClassVar[str]

    @abstractmethod
    def solve(self, coeffs, starts, tol: float, with_gap: bool, cold: bool | None = None):
        """Ground states for coefficient vectors ``coeffs`` (B, n_strings) warm-started from
        ``starts`` (B, 2^n); converged when every ||H_b psi_b - E_b psi_b|| <= tol max(1, |E_b|).
        ``cold``: whether the starts are far from the ground states (None: ``with_gap``, which only
        free phases ask)."""

    @abstractmethod
    def working_set(self, n_qubits: int, itemsize: int = 8, batch: int = 1) -> int:
        """State vectors a solve of ``batch`` samples holds at once."""
