"""Newton refinement of a ground state to float64 accuracy: what a gradient check asks of a solver.

A Krylov solver stops at a residual r = ||H psi - E psi|| of its tolerance (1e-12 relative for
the JAX Lanczos). The state error is then ~ r / gap, and a centered EP difference at beta carries
~ r / (beta gap) of it: at beta = 1e-3 a visible part of the O(beta^2) bias that a gradient check
measures. One Jacobi-Davidson correction (Sleijpen & van der Vorst, SIAM J. Matrix Anal. Appl.
17, 401 (1996); for the exact ground-state eigenpair it is Newton's method on
H psi = <psi|H|psi> psi with psi normalised),

    E = <psi|H|psi>,   r = H psi - E psi,   Q (H - E) Q t = -r,  t orthogonal to psi,
    psi <- (psi + t) / ||psi + t||,

squares the relative state error; the correction equation is the projected linear-response solve
(``linear_response.adjoint_state`` with source r, conjugate gradients). A few steps bring the
residual to the float64 floor of the matrix-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from .base import GroundStateSolver
from .linear_response import adjoint_state
from .registry import make_solver
from .state import GroundState

# Relative residual ||H psi - E psi|| / max(1, |E|) the refinement aims at (a few float64 ulps of
# ||H psi||); it stops earlier when a step no longer halves the residual (the rounding floor).
REFINE_TOL = 1e-15
# CG iterations of one Newton step at most. A residual just above REFINE_TOL can be at the rounding floor
# along the complement of psi (a projected right-hand side of ~3e-15 at 16 qubits), where CG cannot reach
# its relative tolerance and would run its default 20 dim iterations (1.3 million, most of an hour at 16
# qubits): the step then uses CG's last iterate (an inexact Newton step), kept only if it halves the residual.
REFINE_CG_MAXITER = 2000


def _rayleigh(operator, psi: np.ndarray) -> tuple[float, np.ndarray]:
    """(E = <psi|H|psi>, r = H psi - E psi) for a normalised psi."""
    h_psi = operator.matvec(psi)
    energy = float(np.real(np.vdot(psi, h_psi)))
    return energy, h_psi - energy * psi


@dataclass(frozen=True)
class Refined(GroundStateSolver):
    """``base``'s ground state followed by Newton (Jacobi-Davidson) steps to the float64 residual
    floor (module docstring): the accuracy a gradient check needs, at the cost of a few
    linear-response solves per phase. Dense solvers are returned as they are (already exact).

    Args:
        base: the solver whose state is refined (a registered name or a GroundStateSolver).
        max_steps: Newton steps at most (each squares the relative error; 3 is ample from 1e-12).

    Example:
        >>> import numpy as np
        >>> from qeqprop.hamiltonians.pauli import PauliTable
        >>> table = PauliTable(10, [f"Z{i} Z{i + 1}" for i in range(9)] + [f"X{i}" for i in range(10)])
        >>> op = table.operator(np.r_[-np.ones(9), -0.7 * np.ones(10)])
        >>> state = Refined("lanczos").solve(op, tol=1e-8)
        >>> bool(state.residual < 1e-13 * abs(state.energy))
        True
    """

    base: object = "jax"
    max_steps: int = 3
    name: ClassVar[str] = "refined"
    _solver: GroundStateSolver = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_solver", make_solver(self.base, "base"))
        if not isinstance(self.max_steps, (int, np.integer)) or isinstance(self.max_steps, bool) or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        state = self._solver.solve(operator, init=init, tol=tol, with_gap=with_gap)
        if self._solver.uses_dense(operator.n_qubits):
            return state
        psi = np.array(state.vector, dtype=np.result_type(operator.dtype, state.vector.dtype))
        psi /= np.linalg.norm(psi)
        energy, r = _rayleigh(operator, psi)
        residual = float(np.linalg.norm(r))
        applications = state.iterations + 1
        for _ in range(self.max_steps):
            if residual <= REFINE_TOL * max(1.0, abs(energy)):
                break
            current = replace(state, vector=psi, energy=energy)
            step = adjoint_state(operator, current, r, rtol=1e-14, maxiter=REFINE_CG_MAXITER, strict=False)
            trial = psi + step
            trial /= np.linalg.norm(trial)
            trial_energy, trial_r = _rayleigh(operator, trial)
            trial_residual = float(np.linalg.norm(trial_r))
            applications += 1
            if not trial_residual < 0.5 * residual:  # the rounding floor: keep the better state
                break
            psi, energy, r, residual = trial, trial_energy, trial_r, trial_residual
        return replace(state, vector=psi, energy=energy, residual=residual, iterations=applications,
                       solver=f"{state.solver}+refined")

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        """The base solver's vectors plus the correction's (psi, r, t, trial and CG's 4)."""
        return self._solver.working_set(n_qubits, itemsize) + 8

    def uses_dense(self, n_qubits: int) -> bool:
        return self._solver.uses_dense(n_qubits)
