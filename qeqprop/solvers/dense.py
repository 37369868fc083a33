"""Dense ground states by numpy ``eigh`` (small registers: 2^n x 2^n matrix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..validation import check_state_memory
from .base import GroundStateSolver
from .state import GroundState

DENSE_MAX_QUBITS = 14


def dense_ground_state(operator) -> GroundState:
    """Lowest eigenpair of ``operator.to_dense()`` by ``eigh``: H psi_0 = E_0 psi_0, gap = E_1 - E_0 (exact)."""
    n = operator.n_qubits
    if n > DENSE_MAX_QUBITS:
        raise ValueError(
            f"n_qubits={n}: the dense solver builds a 2^{n} x 2^{n} matrix; use solver='lanczos' "
            f"above {DENSE_MAX_QUBITS} qubits"
        )
    check_state_memory(n, np.dtype(operator.dtype).itemsize, 3 << n, what="the dense solver")
    matrix = operator.to_dense()
    energies, vectors = np.linalg.eigh(matrix)
    psi = vectors[:, 0]
    gap = float(energies[1] - energies[0]) if len(energies) > 1 else None
    residual = float(np.linalg.norm(matrix @ psi - energies[0] * psi))
    return GroundState(psi, float(energies[0]), gap, 0, residual, "dense")


@dataclass(frozen=True)
class Dense(GroundStateSolver):
    """Dense ``eigh`` as a solver object, registered as "dense": exact energy, state and gap from
    the full spectrum of the 2^n x 2^n matrix (``dense_ground_state``). No start vector and no
    tolerance (``init`` and ``tol`` are ignored; the gap is always computed). Up to
    DENSE_MAX_QUBITS; memory 3 x 2^n state vectors (the matrix, its eigenvectors, eigh's work)."""

    name: ClassVar[str] = "dense"

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        return dense_ground_state(operator)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        return 3 << n_qubits

    def uses_dense(self, n_qubits: int) -> bool:
        return True
