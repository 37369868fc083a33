"""Exact ground and thermal states of harmonic oscillator networks: Gaussian states from one eigh.

    H = sum_i p_i^2 / (2 m_i) + 1/2 x^T K x - f^T x + c

with K (n x n, symmetric) the full stiffness matrix (springs, anchors, clamps, nudge), f the
forces and c a constant. With the mass-weighted stiffness A = M^-1/2 K M^-1/2 = U diag(w^2) U^T
(one ``scipy.linalg.eigh``), Omega = A^1/2 and the mass-weighted modes V = M^-1/2 U, the Gibbs
state rho = exp(-H/T)/Z at temperature T >= 0 (T = 0: the ground state) is Gaussian with

    mean        mu = K^-1 f = V diag(w^-2) V^T f                      (classical equilibrium, any T)
    covariance  C  = M^-1/2 s(Omega) M^-1/2 = V diag(s(w)) V^T,
                s(w) = hbar/(2w) coth(hbar w / 2T)                    (<q_a^2> of normal mode a)
                     -> hbar/(2w) as T -> 0 (zero-point spread),  -> T/w^2 as hbar -> 0
    energy      <H> = sum_a w_a^2 s(w_a) - 1/2 f^T K^-1 f + c         (E0 = hbar/2 tr Omega + ... at T = 0)
    free energy F = -T log Z = sum_a T log(2 sinh(hbar w_a / 2T)) - 1/2 f^T K^-1 f + c
    gap         E1 - E0 = hbar * w_min                                (one quantum, softest mode)

(per mode: T log(2 sinh(hbar w/2T)) = hbar w/2 + T log(1 - exp(-hbar w/T)); classical limit
C -> T K^-1). At hbar = 0 and T > 0 (the classical thermal elastic network) F is reported as
-1/2 f^T K^-1 f + c + sum_a T log(w_a / T): the hbar -> 0 limit of the quantum F less its
parameter-independent divergence n T log hbar (phase-space cell 2 pi in units of the action),
so dF/dtheta = <dH/dtheta>_T holds in every case.

A ground state exists iff every mass is positive and K is positive definite; hbar = 0 is the
classical elastic network (C = 0 at T = 0, E0 = minimum of the potential).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..validation import as_finite_array, check_temperature

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


def mode_variances(frequencies: np.ndarray, hbar: float, temperature: float) -> np.ndarray:
    """s(w) = <q^2> of a unit-mass mode of frequency w: hbar/(2w) coth(hbar w / 2T), with its
    limits hbar/(2w) at T = 0 and T/w^2 at hbar = 0 (0 when both vanish)."""
    w = frequencies
    if temperature == 0.0:
        return 0.5 * hbar / w
    if hbar == 0.0:
        return temperature / w**2
    return 0.5 * hbar / w / np.tanh(0.5 * hbar * w / temperature)


def mode_free_energies(frequencies: np.ndarray, hbar: float, temperature: float) -> np.ndarray:
    """Free energy per mode: hbar w/2 + T log(1 - exp(-hbar w/T)) = T log(2 sinh(hbar w/2T));
    hbar w/2 at T = 0, T log(w/T) at hbar = 0 (module docstring)."""
    w = frequencies
    if temperature == 0.0:
        return 0.5 * hbar * w
    if hbar == 0.0:
        return temperature * np.log(w / temperature)
    return 0.5 * hbar * w + temperature * np.log(-np.expm1(-hbar * w / temperature))


def variance_divided_differences(frequencies: np.ndarray, hbar: float, temperature: float) -> np.ndarray:
    """F_ab = (s(w_a) - s(w_b)) / (w_a^2 - w_b^2), F_aa = ds/d(w^2) at w_a: the divided
    differences of the mode variance as a function of the eigenvalue t = w^2 of A.

    With z = hbar w / 2T, e_a = 1 - exp(-2 z_a), coth z_a = (2 - e_a)/e_a and
    h(u) = (1 - exp(-u))/u (h(0) = 1), the cancellation-free closed form is

        F_ab = -hbar / (2 w_a w_b (w_a + w_b)) [ (coth z_a + coth z_b)/2
                                                 + 2 (z_a + z_b) exp(-2 min(z_a, z_b)) h(2|z_a - z_b|) / (e_a e_b) ],

    (the bracket is (coth z_a + coth z_b)/2 + (z_a + z_b)/2 sinh(z_a - z_b) / ((z_a - z_b) sinh z_a sinh z_b),
    rewritten without overflow), exact at degenerate frequencies; T = 0 gives -hbar / (2 w_a w_b (w_a + w_b)) and hbar = 0
    gives -T / (w_a^2 w_b^2), the divided differences of hbar/(2 sqrt t) and T/t.
    """
    w = frequencies
    wa, wb = w[:, None], w[None, :]
    if temperature == 0.0:
        return -0.5 * hbar / (wa * wb * (wa + wb))
    if hbar == 0.0:
        return -temperature / (wa * wb) ** 2
    z = 0.5 * hbar * w / temperature
    e = -np.expm1(-2.0 * z)
    coth = (2.0 - e) / e
    za, zb = z[:, None], z[None, :]
    u = 2.0 * np.abs(za - zb)
    spread = np.where(u > 0.0, -np.expm1(-u) / np.where(u > 0.0, u, 1.0), 1.0)
    tail = 2.0 * (za + zb) * np.exp(-2.0 * np.minimum(za, zb)) * spread / (e[:, None] * e[None, :])
    bracket = 0.5 * (coth[:, None] + coth[None, :]) + tail
    return -0.5 * hbar / (wa * wb * (wa + wb)) * bracket


@dataclass
class GaussianState:
    """A Gaussian Gibbs state (the ground state at T = 0): moments, energies and normal modes.

    ``energy`` is the mean energy <H> (E0 at T = 0), ``free_energy`` F = -T log Z (E0 at T = 0);
    ``frequencies`` are the normal-mode frequencies w_a (ascending), ``modes`` the matrix V
    whose columns are the mass-weighted normal modes.
    """

    mean: np.ndarray
    covariance: np.ndarray
    energy: float
    free_energy: float
    frequencies: np.ndarray
    modes: np.ndarray
    hbar: float
    temperature: float = 0.0
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
        """Exact first-order response of <O>_T for the quadratic observable O = 1/2 x^T D x - d^T x.

        Returns (first, second) = (-d<O>/df, 2 d<O>/dK) so that for any parameter theta of
        K and f,  d<O>/dtheta = 1/2 tr(dK/dtheta second) - (df/dtheta) . first,  the same
        contraction as <dH/dtheta> = 1/2 tr(dK/dtheta <x x^T>) - (df/dtheta) . <x>.
        With r = D mu - d and lam = K^-1 r (so d mu = K^-1 (df - dK mu)):

            first  = -lam
            second = -(lam mu^T + mu lam^T) + V (G o F) V^T,   G = V^T D V,
            F_ab   = (s(w_a) - s(w_b)) / (w_a^2 - w_b^2)       (variance_divided_differences),

        the last term from 1/2 tr(D C) = 1/2 tr(M^-1/2 D M^-1/2 s(A^1/2)) and the Daleckii-Krein
        derivative of the matrix function t -> s(t^1/2) (finite at degenerate frequencies: no
        eigh derivative). At T > 0 this is the exact Kubo-Mori (Duhamel) response of the Gibbs
        state, d<O>_T/deps = -1/T int_0^1 [tr(rho^s V rho^(1-s) O) - <V><O>] ds for H -> H + eps V,
        in closed form (not the plain covariance -<V O>_c / T, which misses the quantum
        non-commutativity); at T = 0, F_ab = -hbar / (2 w_a w_b (w_a + w_b)).
        """
        n = self.mean.size
        curvature = as_finite_array("curvature", curvature, (n, n))
        force = as_finite_array("force", force, (n,))
        w, v = self.frequencies, self.modes
        lam = v @ ((v.T @ (curvature @ self.mean - force)) / w**2)
        second = -(np.outer(lam, self.mean) + np.outer(self.mean, lam))
        if self.hbar > 0.0 or self.temperature > 0.0:
            rows = np.flatnonzero(np.any(curvature != 0.0, axis=1))
            projected = v[rows].T @ curvature[np.ix_(rows, rows)] @ v[rows]
            divided = variance_divided_differences(w, self.hbar, self.temperature)
            second += v @ (projected * divided) @ v.T
        return -lam, second


def gaussian_thermal_state(masses, stiffness, force, temperature: float, hbar: float = 1.0, constant: float = 0.0) -> GaussianState:
    """Gibbs state exp(-H/T)/Z of H = sum p_i^2/(2 m_i) + 1/2 x^T K x - f^T x + c at T >= 0
    (T = 0: the ground state), in closed form (module docstring)."""
    masses, stiffness, force, hbar = check_oscillator_inputs(masses, stiffness, force, hbar)
    temperature = check_temperature(temperature)
    w, v = normal_modes(masses, stiffness)
    mean = v @ ((v.T @ force) / w**2)
    variances = mode_variances(w, hbar, temperature)
    scaled = v * np.sqrt(variances)
    static = float(constant) - 0.5 * float(force @ mean)
    energy = static + float(np.sum(w**2 * variances))
    # F = E0 at T = 0 exactly: the two sums round differently (w^2 * hbar/2w against hbar w/2)
    free_energy = energy if temperature == 0.0 else static + float(np.sum(mode_free_energies(w, hbar, temperature)))
    return GaussianState(mean, scaled @ scaled.T, energy, free_energy, w, v, hbar, temperature)


def gaussian_ground_state(masses, stiffness, force, hbar: float = 1.0, constant: float = 0.0) -> GaussianState:
    """Ground state of H = sum p_i^2/(2 m_i) + 1/2 x^T K x - f^T x + c (module docstring)."""
    return gaussian_thermal_state(masses, stiffness, force, 0.0, hbar, constant)
