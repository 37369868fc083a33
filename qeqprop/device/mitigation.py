"""Zero-noise extrapolation (ZNE) of the measured Pauli expectations.

Global unitary folding (Giurgica-Tiron et al., "Digital zero noise extrapolation for quantum
error mitigation", IEEE QCE 2020) runs each circuit C as C (C^dagger C)^k, scale factor
lambda = 2k + 1: the same unitary with lambda times the gates, hence (to first order) lambda
times the gate noise (``qml.noise.fold_global``). With estimates <P>_k at scale factors
lambda_k, Richardson extrapolation to lambda = 0 is the Lagrange polynomial through the points,

    <P>_0 = sum_k w_k <P>_k,     w_k = prod_{j != k} lambda_j / (lambda_j - lambda_k),

and, the scales being measured on independent shots, Cov(<P>_0) = sum_k w_k^2 Cov_k: ZNE trades
bias for variance (for (1, 3, 5): w = (1.875, -1.25, 0.375), sum_k w_k^2 = 5.2 times the shot
variance of one scale) and costs len(scale_factors) circuits per basis, folded ones lambda times as deep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pennylane as qml


@dataclass(frozen=True)
class ZeroNoiseExtrapolation:
    """Richardson ZNE over odd integer ``scale_factors`` (global folding; module docstring)."""

    scale_factors: tuple[int, ...] = (1, 3, 5)

    def __post_init__(self):
        scales = tuple(self.scale_factors)
        if len(scales) < 2 or len(set(scales)) != len(scales) or any(
            isinstance(s, bool) or int(s) != s or s < 1 or s % 2 == 0 for s in scales
        ):
            raise ValueError(f"scale_factors must be at least two distinct odd integers >= 1 (e.g. (1, 3, 5)), got {self.scale_factors!r}")
        object.__setattr__(self, "scale_factors", tuple(int(s) for s in scales))

    @property
    def weights(self) -> np.ndarray:
        """Lagrange weights w_k of the extrapolation to scale 0.

        Example:
            >>> ZeroNoiseExtrapolation((1, 3)).weights.tolist()
            [1.5, -0.5]
        """
        s = np.asarray(self.scale_factors, dtype=float)
        return np.array([np.prod([s[j] / (s[j] - s[k]) for j in range(len(s)) if j != k]) for k in range(len(s))])

    def fold(self, circuit: qml.tape.QuantumScript) -> list[qml.tape.QuantumScript]:
        """``circuit`` at every scale factor (scale 1 is the circuit itself)."""
        return [circuit if s == 1 else qml.noise.fold_global(circuit, s)[0][0] for s in self.scale_factors]

    def combine(self, means: np.ndarray, covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extrapolated means and covariance from per-scale ``means`` (K, ...) and ``covariances``
        (K, ..., S, S): sum_k w_k means_k, sum_k w_k^2 Cov_k."""
        w = self.weights
        return np.tensordot(w, means, axes=1), np.tensordot(w**2, covariances, axes=1)
