"""Exact Gibbs states of small registers and their linear response (finite-temperature EP).

    rho = exp(-H / T) / Z,    Z = tr exp(-H / T),    F = -T log Z,    dF/dtheta = <dH/dtheta>_rho.

From the eigendecomposition H = sum_m E_m |m><m| with Boltzmann weights p_m, the response
of <O> to a perturbation V (H -> H + eps V) is

    d<O>/deps = sum_{m,n} O_nm V_mn G_mn - <O> sum_m V_mm (-p_m / T),
    G_mn = (p_m - p_n) / (E_m - E_n)   (m != n, E_m != E_n),   G_mm = -p_m / T,

the divided difference of p(E) = exp(-E/T)/Z, exact for degenerate levels too; so a
degenerate ground state (where zero-temperature EP is undefined) is harmless at T > 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validation import check_state_memory, check_temperature
from .dense import DENSE_MAX_QUBITS


@dataclass
class GibbsState:
    """A thermal state: spectrum E_m, eigenvectors |m>, Boltzmann weights
    p_m = exp(-E_m / T) / Z and free energy F = -T log Z."""

    energies: np.ndarray
    vectors: np.ndarray
    probabilities: np.ndarray
    temperature: float
    free_energy: float
    expectations: np.ndarray | None = field(default=None, repr=False)

    @property
    def energy(self) -> float:
        """Mean energy <H> = sum_m p_m E_m."""
        return float(self.probabilities @ self.energies)

    @property
    def gap(self) -> float:
        return float(self.energies[1] - self.energies[0]) if len(self.energies) > 1 else float("inf")

    def density_matrix(self) -> np.ndarray:
        return (self.vectors * self.probabilities) @ self.vectors.conj().T

    def response_kernel(self) -> np.ndarray:
        """G_mn: the divided differences of the Boltzmann weights (see module docstring)."""
        e, p, t = self.energies, self.probabilities, self.temperature
        de = e[:, None] - e[None, :]
        close = np.abs(de) <= 1e-12 * max(1.0, float(np.abs(e).max()))
        safe = np.where(close, 1.0, de)
        # for (near-)degenerate pairs the divided difference is the derivative -p/T
        return np.where(close, -0.5 * (p[:, None] + p[None, :]) / t, (p[:, None] - p[None, :]) / safe)


def thermal_expectations(table, state: GibbsState, cutoff: float = 1e-16) -> np.ndarray:
    """<P_s>_rho = sum_m p_m <m|P_s|m> over the table (weights below ``cutoff`` skipped)."""
    total = np.zeros(len(table))
    for p, vector in zip(state.probabilities, state.vectors.T):
        if p > cutoff:
            total += p * table.expectations(vector)
    return total


def gibbs_state(operator, temperature: float) -> GibbsState:
    """Exact Gibbs state of ``operator`` at ``temperature`` > 0 by dense diagonalisation.

        H = sum_m E_m |m><m|,   p_m = exp(-(E_m - E_0)/T) / sum_n exp(-(E_n - E_0)/T),
        F = E_0 - T log sum_m exp(-(E_m - E_0)/T)   (= -T log Z, shifted for overflow safety).
    """
    temperature = check_temperature(temperature, positive=True)
    n = operator.n_qubits
    if n > DENSE_MAX_QUBITS:
        raise ValueError(f"n_qubits={n}: exact Gibbs states diagonalise 2^{n} x 2^{n}; use at most {DENSE_MAX_QUBITS} qubits")
    check_state_memory(n, np.dtype(operator.dtype).itemsize, 3 << n, what="the exact Gibbs state")
    energies, vectors = np.linalg.eigh(operator.to_dense())
    shifted = -(energies - energies[0]) / temperature
    weights = np.exp(shifted)
    partition = weights.sum()
    free_energy = float(energies[0] - temperature * np.log(partition))
    return GibbsState(energies, vectors, weights / partition, temperature, free_energy)


def thermal_response(state: GibbsState, observable: np.ndarray, perturbations: list[np.ndarray]) -> np.ndarray:
    """d<O>/deps_k for H -> H + sum_k eps_k V_k, with dense O and V_k (see module docstring)."""
    u = state.vectors
    o = u.conj().T @ observable @ u
    kernel = state.response_kernel()
    mean_o = float(np.real(state.probabilities @ np.diag(o)))
    out = np.empty(len(perturbations))
    for k, v in enumerate(perturbations):
        vm = u.conj().T @ v @ u
        out[k] = np.real(np.sum(o.T * vm * kernel)) - mean_o * np.real(np.diag(vm) @ (-state.probabilities / state.temperature))
    return out
