"""The ground-state object every quantum solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DegenerateGroundStateWarning, warn

# How a state was settled when its solver missed the tolerance on the first run (BatchedSolve.retries,
# BatchedLanczos "Missed tolerances"; MPSGroundState.retries, MPS "Missed tolerances"): in the first
# run, in a retry with a larger budget, by the single-state fallback solver, or accepted with a
# residual above the tolerance asked but within the solver's usable bound.
SETTLED_FIRST, SETTLED_RETRY, SETTLED_FALLBACK, SETTLED_USABLE = 0, 1, 2, 3


@dataclass
class GroundState:
    """psi with H psi = E psi, plus what a physicist asks about it.

    ``gap`` is E1 - E0 when the solver computed it (None otherwise), counting multiplicity (0 for
    a degenerate ground state; Krylov solvers certify it by a deflated solve: ``deflation``);
    ``iterations`` counts Hamiltonian applications (0 for dense; the deflated solve's included);
    ``residual`` is ||H psi - E psi||.
    ``expectations`` holds <P_s> over the model's Pauli table once a system has measured it.
    """

    vector: np.ndarray
    energy: float
    gap: float | None
    iterations: int
    residual: float
    solver: str
    expectations: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_qubits(self) -> int:
        return int(np.log2(self.vector.shape[0]))

    def probabilities(self) -> np.ndarray:
        """|psi_c|^2 in the computational basis (qubit 0 most significant)."""
        return np.abs(self.vector) ** 2


def report_small_gap(gap: float | None, gap_tol: float) -> None:
    """Warn when the gap is below ``gap_tol``: the ground state is (nearly) degenerate. The
    warning points at the caller's line (``errors.warn``)."""
    if gap is not None and gap < gap_tol:
        warn(
            f"spectral gap {gap:.3e} is below gap_tol={gap_tol:.1e}: the ground state is (nearly) "
            "degenerate and EP gradients are undefined there; break the symmetry (e.g. nonzero "
            f"fields) or train at a finite temperature, e.g. temperature={max(10 * gap_tol, 0.05):g} "
            "(SpinSystem(temperature=...), --temperature)",
            DegenerateGroundStateWarning,
        )
