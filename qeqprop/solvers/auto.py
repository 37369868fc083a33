"""``Auto``: dense ``eigh`` for small registers, a Krylov solver above."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import GroundStateSolver
from .dense import Dense
from .jax_lanczos import JaxLanczos
from .state import GroundState

AUTO_DENSE_MAX_QUBITS = 8


@dataclass(frozen=True)
class Auto(GroundStateSolver):
    """Dense ``eigh`` up to ``dense_max_qubits`` qubits, ``krylov`` above; registered as "auto".

    Why a crossover: ``eigh`` costs O(8^n) but no iterations, Krylov methods O(2^n) per H
    application times their iterations plus fixed per-solve overhead; up to 2^8 = 256 amplitudes
    the dense solve wins (and gives the exact gap), above it the Krylov solver does.

    Args:
        dense_max_qubits: largest register solved densely.
        krylov: the solver above it (default ``JaxLanczos()``).
    """

    dense_max_qubits: int = AUTO_DENSE_MAX_QUBITS
    krylov: GroundStateSolver = field(default_factory=JaxLanczos)
    name: ClassVar[str] = "auto"

    def choose(self, n_qubits: int) -> GroundStateSolver:
        """The solver a register of ``n_qubits`` qubits goes to."""
        return Dense() if self.uses_dense(n_qubits) else self.krylov

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        return self.choose(operator.n_qubits).solve(operator, init=init, tol=tol, with_gap=with_gap)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        return self.choose(n_qubits).working_set(n_qubits, itemsize)

    def uses_dense(self, n_qubits: int) -> bool:
        return n_qubits <= self.dense_max_qubits
