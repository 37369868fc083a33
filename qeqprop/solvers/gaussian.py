"""Exact ground states of harmonic oscillator networks: Gaussian states from one eigh.

    H = sum_i p_i^2 / (2 m_i) + 1/2 x^T K x - f^T x + c

with K (n x n, symmetric) the full stiffness matrix (springs, anchors, clamps, nudge), f the
forces and c a constant. With the mass-weighted stiffness A = M^-1/2 K M^-1/2 = U diag(w^2) U^T
(one ``scipy.linalg.eigh``), Omega = A^1/2 and the mass-weighted modes V = M^-1/2 U:

    mean        mu = K^-1 f = V diag(w^-2) V^T f                      (classical equilibrium)
    covariance  C  = hbar/2 M^-1/2 Omega^-1 M^-1/2 = hbar/2 V diag(w^-1) V^T
    energy      E0 = hbar/2 tr Omega - 1/2 f^T K^-1 f + c
    gap         E1 - E0 = hbar * w_min                                (one quantum, softest mode)

A ground state exists iff every mass is positive and K is positive definite; hbar = 0 is the
classical elastic network (C = 0, E0 = minimum of the potential).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..validation import as_finite_array

# A mass-weighted stiffness whose smallest eigenvalue is below this fraction of its largest is
# treated as singular: its mean K^-1 f would carry relative errors above ~1e-6.
STIFFNESS_RTOL = 1e-10


def per_mode(name: str, value, n: int) -> np.ndarray:
    """A scalar broadcast to (n,), or an (n,) array; finite either way."""
    return as_finite_array(name, np.full(n, value) if np.ndim(value) == 0 else value, (n,))


def check_masses(masses) -> np.ndarray:
    """A 1-d array of positive masses (one per oscillator)."""
    masses = as_finite_array("masses", masses)
    if masses.ndim != 1 or masses.size == 0:
        raise ValueError(f"masses must be a 1-d array with one mass per oscillator, got shape {masses.shape}")
    if np.any(masses <= 0.0):
        raise ValueError(f"masses must all be > 0 (kinetic energy p^2/2m), got {masses[masses <= 0.0].tolist()}")
    return masses


def check_hbar(hbar: float) -> float:
    """hbar >= 0 (0 is the classical limit)."""
    try:
        hbar = float(hbar)
    except (TypeError, ValueError):
        raise ValueError(f"hbar must be a number >= 0, got {hbar!r}") from None
    if not np.isfinite(hbar) or hbar < 0.0:
        raise ValueError(f"hbar must be a finite number >= 0 (0 is the classical limit), got {hbar}")
    return hbar


def check_oscillator_inputs(masses, stiffness, force, hbar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Validate (masses, K, f, hbar): shapes, finiteness, m_i > 0, K = K^T, hbar >= 0."""
    masses = check_masses(masses)
    n = masses.size
    stiffness = as_finite_array("stiffness", stiffness, (n, n))
    if not np.allclose(stiffness, stiffness.T, atol=0.0, rtol=1e-12):
        raise ValueError("stiffness must be symmetric, K_ij == K_ji; symmetrize it with (K + K.T) / 2")
    return masses, stiffness, as_finite_array("force", force, (n,)), check_hbar(hbar)


def normal_modes(masses: np.ndarray, stiffness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal-mode frequencies w (ascending) and mass-weighted modes V = M^-1/2 U, from
    M^-1/2 K M^-1/2 = U diag(w^2) U^T; V^T K V = diag(w^2) and V^T M V = 1.

    Raises ValueError when K is not positive definite: a floppy (zero-frequency) or unstable
    mode leaves the Hamiltonian without a ground state.
    """
    scale = 1.0 / np.sqrt(masses)
    weighted = stiffness * scale[:, None] * scale[None, :]
    squared, vectors = scipy.linalg.eigh(weighted, check_finite=False, driver="evd")
    if squared[-1] <= 0.0 or squared[0] <= STIFFNESS_RTOL * squared[-1]:
        raise ValueError(
            f"stiffness matrix is not positive definite (eigenvalues of M^-1/2 K M^-1/2 span "
            f"{squared[0]:.3e} .. {squared[-1]:.3e}): the network has a floppy (zero-frequency) or "
            "unstable mode, so H has no ground state; anchor every connected component "
            "(anchors kappa_i > 0 or clamped inputs) and keep spring constants positive"
        )
    return np.sqrt(squared), vectors * scale[:, None]


@dataclass
class GaussianState:
    """The Gaussian ground state: first and second moments, energy and normal modes.

    ``frequencies`` are the normal-mode frequencies w_a (ascending), ``modes`` the matrix V
    whose columns are the mass-weighted normal modes.
    """

    mean: np.ndarray
    covariance: np.ndarray
    energy: float
    frequencies: np.ndarray
    modes: np.ndarray
    hbar: float
    solver: str = "gaussian"

    @property
    def omega_min(self) -> float:
        """Smallest normal-mode frequency."""
        return float(self.frequencies[0])

    @property
    def gap(self) -> float:
        """E1 - E0 = hbar * omega_min (0 in the classical limit)."""
        return self.hbar * self.omega_min

    @property
    def second_moment(self) -> np.ndarray:
        """<x_i x_j> = C_ij + mu_i mu_j."""
        return self.covariance + np.outer(self.mean, self.mean)

    def response(self, curvature: np.ndarray, force: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact first-order response of <O> for the quadratic observable O = 1/2 x^T D x - d^T x.

        Returns (first, second) = (-d<O>/df, 2 d<O>/dK) so that for any parameter theta of
        K and f,  d<O>/dtheta = 1/2 tr(dK/dtheta second) - (df/dtheta) . first,  the same
        contraction as <dH/dtheta> = 1/2 tr(dK/dtheta <x x^T>) - (df/dtheta) . <x>.
        With r = D mu - d and lam = K^-1 r (so d mu = K^-1 (df - dK mu)):

            first  = -lam
            second = -(lam mu^T + mu lam^T) + hbar/2 V (G o F) V^T,   G = V^T D V,
            F_ab   = (w_a^-1 - w_b^-1) / (w_a^2 - w_b^2) = -1 / (w_a w_b (w_a + w_b)),

        the last term from 1/2 tr(D C) = hbar/4 tr(M^-1/2 D M^-1/2 A^-1/2) and the divided
        differences F of t -> t^-1/2 (finite at degenerate frequencies: no eigh derivative).
        """
        n = self.mean.size
        curvature = as_finite_array("curvature", curvature, (n, n))
        force = as_finite_array("force", force, (n,))
        w, v = self.frequencies, self.modes
        lam = v @ ((v.T @ (curvature @ self.mean - force)) / w**2)
        second = -(np.outer(lam, self.mean) + np.outer(self.mean, lam))
        if self.hbar > 0.0:
            rows = np.flatnonzero(np.any(curvature != 0.0, axis=1))
            projected = v[rows].T @ curvature[np.ix_(rows, rows)] @ v[rows]
            divided = -1.0 / (w[:, None] * w[None, :] * (w[:, None] + w[None, :]))
            second += 0.5 * self.hbar * (v @ (projected * divided) @ v.T)
        return -lam, second


def gaussian_ground_state(masses, stiffness, force, hbar: float = 1.0, constant: float = 0.0) -> GaussianState:
    """Ground state of H = sum p_i^2/(2 m_i) + 1/2 x^T K x - f^T x + c (module docstring)."""
    masses, stiffness, force, hbar = check_oscillator_inputs(masses, stiffness, force, hbar)
    w, v = normal_modes(masses, stiffness)
    mean = v @ ((v.T @ force) / w**2)
    scaled = v / np.sqrt(w)
    covariance = 0.5 * hbar * (scaled @ scaled.T) if hbar > 0.0 else np.zeros_like(stiffness)
    energy = 0.5 * hbar * float(np.sum(w)) - 0.5 * float(force @ mean) + float(constant)
    return GaussianState(mean, covariance, energy, w, v, hbar)
