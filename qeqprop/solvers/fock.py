"""Truncated Fock-space exact diagonalization of (an)harmonic oscillator networks, with QuTiP.

    H = sum_i p_i^2 / (2 m_i) + 1/2 x^T K x - f^T x + sum_i lambda_i x_i^4 + c

Mode i gets the number states |0>, ..., |cutoff - 1> of an oscillator of mass m_i and
frequency w0_i centred at x0_i:

    x_i = x0_i + sqrt(hbar / (2 m_i w0_i)) (a_i + a_i^dag)
    p_i = i sqrt(hbar m_i w0_i / 2) (a_i^dag - a_i)

with x0 the classical minimum of the potential V(x) and w0_i the self-consistent harmonic
frequency of mode i, m_i w0_i^2 = V''_ii(x0) + 12 lambda_i hbar / (2 m_i w0_i) (the quartic
term averaged over the basis' own zero-point spread; w0_i^2 = K_ii / m_i when harmonic), so the
basis only has to hold the quantum fluctuations. H is assembled as a CSR ``qutip.Qobj`` from
these truncated operators (products taken in the truncated space), its Hermitian flag is
checked (which also keeps QuTiP on its Hermitian eigensolver) and its two lowest eigenpairs
come from the sparse solver (gap = E1 - E0). The cutoff grows by 2 from 4 until the ground
energy changes by less than ``tol``. Requires hbar > 0, K positive definite and lambda_i >= 0
(V convex: one classical minimum, a unique ground state). This is the independent check of
the Gaussian solver and the solver for anharmonic (lambda != 0) networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

from ..validation import as_finite_array
from .gaussian import check_oscillator_inputs, normal_modes, per_mode
from .linear_response import adjoint_state

if TYPE_CHECKING:  # QuTiP (~1 s to import, with matplotlib) loads on the first Fock-space solve
    import qutip

MIN_CUTOFF = 4
CUTOFF_STEP = 2
FOCK_MAX_DIM = 1 << 20


@dataclass(frozen=True)
class FockBasis:
    """Truncated number basis per mode (module docstring): centre x0, frequencies w0, cutoff."""

    masses: np.ndarray
    center: np.ndarray
    omega0: np.ndarray
    hbar: float
    cutoff: int

    @property
    def dims(self) -> list[int]:
        return [self.cutoff] * self.masses.size

    @property
    def dim(self) -> int:
        return self.cutoff**self.masses.size

    def with_cutoff(self, cutoff: int) -> "FockBasis":
        return FockBasis(self.masses, self.center, self.omega0, self.hbar, int(cutoff))

    def identity(self) -> qutip.Qobj:
        import qutip

        return qutip.qeye(self.dims, dtype="csr")

    def _ladders(self) -> list[qutip.Qobj]:
        """a_i = 1 x ... x a x ... x 1 (annihilation on mode i)."""
        import qutip

        local, eye = qutip.destroy(self.cutoff, dtype="csr"), qutip.qeye(self.cutoff, dtype="csr")
        n = self.masses.size
        return [qutip.tensor([local if k == i else eye for k in range(n)]) for i in range(n)]

    def positions(self) -> list[qutip.Qobj]:
        """x_i = x0_i + sqrt(hbar / (2 m_i w0_i)) (a_i + a_i^dag)."""
        scale = np.sqrt(self.hbar / (2.0 * self.masses * self.omega0))
        identity = self.identity()
        return [c * identity + s * (a + a.dag()) for a, c, s in zip(self._ladders(), self.center, scale)]

    def momenta(self) -> list[qutip.Qobj]:
        """p_i = i sqrt(hbar m_i w0_i / 2) (a_i^dag - a_i)."""
        scale = np.sqrt(0.5 * self.hbar * self.masses * self.omega0)
        return [1j * s * (a.dag() - a) for a, s in zip(self._ladders(), scale)]


class _MatrixOperator:
    """The operator interface of solvers.linear_response (matvec, shape, dim, dtype) on a sparse matrix."""

    def __init__(self, matrix):
        self.matrix, self.shape, self.dim, self.dtype = matrix, matrix.shape, matrix.shape[0], matrix.dtype

    def matvec(self, vector: np.ndarray) -> np.ndarray:
        return self.matrix @ vector


@dataclass
class FockState:
    """Ground state psi in a truncated Fock basis, with <x_i>, <x_i x_j>, the gap E1 - E0, the
    Hamiltonian it diagonalizes and the position operators (scipy CSR) it was measured with:
    mean_i = <psi|x_i|psi>, second_moment_ij = <psi|x_i x_j|psi>."""

    vector: np.ndarray
    energy: float
    gap: float
    basis: FockBasis
    hamiltonian: qutip.Qobj
    positions: list
    mean: np.ndarray
    second_moment: np.ndarray
    solver: str = "fock"

    @property
    def covariance(self) -> np.ndarray:
        """<x_i x_j> - <x_i><x_j>."""
        return self.second_moment - np.outer(self.mean, self.mean)

    def response(self, curvature: np.ndarray, force: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First-order response of <O>, O = 1/2 x^T D x - d^T x, by linear response in this basis.

        Solves (H - E0) lam = -Q O psi (Q = 1 - |psi><psi|, solvers.linear_response) and returns
        (first, second) = (2 Re <lam|x_i|psi>, 2 Re <lam|x_i x_j|psi>), so that for any
        parameter theta of K and f, d<O>/dtheta = 2 Re <lam|dH/dtheta|psi>
        = 1/2 tr(dK/dtheta second) - (df/dtheta) . first. Exact for the truncated H.
        """
        n = self.mean.size
        curvature = as_finite_array("curvature", curvature, (n, n))
        force = as_finite_array("force", force, (n,))
        moved = [x @ self.vector for x in self.positions]
        source = -sum(d * v for d, v in zip(force, moved))
        for i, j in zip(*np.nonzero(curvature)):
            source = source + 0.5 * curvature[i, j] * (self.positions[i] @ moved[j])
        operator = _MatrixOperator(self.hamiltonian.data.as_scipy())
        lam = adjoint_state(operator, self, source)
        first = np.array([2.0 * np.vdot(lam, v).real for v in moved])
        moved_lam = [x @ lam for x in self.positions]
        second = np.array([[2.0 * np.vdot(a, b).real for b in moved] for a in moved_lam])
        return first, 0.5 * (second + second.T)


def check_quartic(quartic, n: int) -> np.ndarray:
    """lambda_i >= 0 per mode (None: harmonic)."""
    if quartic is None:
        return np.zeros(n)
    quartic = per_mode("quartic", quartic, n)
    if np.any(quartic < 0.0):
        raise ValueError(f"quartic coefficients must be >= 0 (lambda x^4 < 0 is unbounded below), got {quartic.tolist()}")
    return quartic


def self_consistent_frequency(masses: np.ndarray, curvature: np.ndarray, quartic_spread: np.ndarray) -> np.ndarray:
    """Positive root w of m w^3 - a w - b = 0 (m w^2 = a + b / w) per mode, a > 0, b >= 0.

    Newton from the upper bound max(sqrt(2a/m), (2b/m)^1/3): the cubic is convex and increasing
    beyond its root, so the iterates decrease monotonically onto it.
    """
    m, a, b = masses, curvature, quartic_spread
    w = np.maximum(np.sqrt(2.0 * a / m), np.cbrt(2.0 * b / m))
    for _ in range(100):
        step = (m * w**3 - a * w - b) / (3.0 * m * w**2 - a)
        w = w - step
        if np.all(np.abs(step) <= 1e-15 * w):
            break
    return w


def default_basis(masses, stiffness, force, hbar: float, quartic=None, cutoff: int = MIN_CUTOFF) -> FockBasis:
    """Basis centred at the classical minimum x0 of V = 1/2 x^T K x - f^T x + sum lambda_i x_i^4,
    with m_i w0_i^2 = V''_ii(x0) + 12 lambda_i hbar / (2 m_i w0_i), V''_ii = K_ii + 12 lambda_i x0_i^2."""
    masses, stiffness, force, hbar = check_oscillator_inputs(masses, stiffness, force, hbar)
    quartic = check_quartic(quartic, masses.size)
    center = np.linalg.solve(stiffness, force)
    if np.any(quartic > 0.0):
        result = minimize(
            lambda x: 0.5 * x @ stiffness @ x - force @ x + quartic @ x**4,
            center,
            jac=lambda x: stiffness @ x - force + 4.0 * quartic * x**3,
            hess=lambda x: stiffness + np.diag(12.0 * quartic * x**2),
            method="trust-exact",
        )
        center = result.x
    curvature = np.diag(stiffness) + 12.0 * quartic * center**2
    omega0 = self_consistent_frequency(masses, curvature, 6.0 * quartic * hbar / masses)
    return FockBasis(masses, center, omega0, hbar, int(cutoff))


def fock_hamiltonian(basis: FockBasis, stiffness: np.ndarray, force: np.ndarray, quartic: np.ndarray, constant: float = 0.0) -> qutip.Qobj:
    """H (module docstring) on ``basis`` as a Hermitian CSR qutip.Qobj."""
    xs, ps = basis.positions(), basis.momenta()
    hamiltonian = float(constant) * basis.identity()
    for i, (x, p) in enumerate(zip(xs, ps)):
        square = x @ x
        hamiltonian += p @ p / (2.0 * basis.masses[i]) + 0.5 * stiffness[i, i] * square - force[i] * x
        if quartic[i] != 0.0:
            hamiltonian += quartic[i] * (square @ square)
        for j in range(i + 1, len(xs)):
            if stiffness[i, j] != 0.0:
                hamiltonian += stiffness[i, j] * (x @ xs[j])
    if not hamiltonian.isherm:
        raise RuntimeError("the assembled Fock-space Hamiltonian is not Hermitian; report this as a bug")
    return hamiltonian


def _diagonalize(basis: FockBasis, stiffness, force, quartic, constant) -> FockState:
    if basis.dim > FOCK_MAX_DIM:
        raise ValueError(
            f"Fock space of {basis.masses.size} modes at cutoff {basis.cutoff} has {basis.dim} states "
            f"(limit {FOCK_MAX_DIM}); use fewer modes, a smaller max_cutoff, or the Gaussian solver"
        )
    hamiltonian = fock_hamiltonian(basis, stiffness, force, quartic, constant)
    energies, kets = hamiltonian.eigenstates(sparse=True, eigvals=2)
    psi = kets[0].full().ravel()
    matrix = hamiltonian.data.as_scipy()
    positions = [x.data.as_scipy() for x in basis.positions()]
    moved = [x @ psi for x in positions]
    mean = np.array([np.vdot(psi, v).real for v in moved])
    second = np.array([[np.vdot(a, b).real for b in moved] for a in moved])
    energy = float(np.vdot(psi, matrix @ psi).real)
    gap = float(np.real(energies[1] - energies[0]))
    return FockState(psi, energy, gap, basis, hamiltonian, positions, mean, 0.5 * (second + second.T))


def fock_ground_state(
    masses,
    stiffness,
    force,
    hbar: float = 1.0,
    quartic=None,
    constant: float = 0.0,
    basis: FockBasis | None = None,
    max_cutoff: int = 24,
    tol: float = 1e-10,
) -> FockState:
    """Ground state of H (module docstring) by sparse ED in a truncated Fock basis.

        H = sum_i p_i^2 / (2 m_i) + 1/2 x^T K x - f^T x + sum_i lambda_i x_i^4 + c,
        H psi = E0 psi in span{|n_1 ... n_N>, n_i < cutoff},   gap = E1 - E0,

    Without ``basis``: ``default_basis`` at cutoffs 4, 6, ..., max_cutoff until the ground
    energy changes by less than ``tol`` (absolute, energy units) between two cutoffs; a
    ValueError says when ``max_cutoff`` is too small. With ``basis`` (e.g. a free state's, so
    nudged phases share one truncation): that basis only.
    """
    masses, stiffness, force, hbar = check_oscillator_inputs(masses, stiffness, force, hbar)
    if hbar <= 0.0:
        raise ValueError("hbar must be > 0 for Fock-space ED; the classical limit hbar = 0 needs the Gaussian solver")
    quartic = check_quartic(quartic, masses.size)
    normal_modes(masses, stiffness)  # K positive definite, or a ValueError: no ground state
    if basis is not None:
        if basis.masses.size != masses.size or basis.hbar != hbar:
            raise ValueError(f"basis is for {basis.masses.size} modes at hbar={basis.hbar}; this H has {masses.size} at hbar={hbar}")
        return _diagonalize(basis, stiffness, force, quartic, constant)
    if not isinstance(max_cutoff, (int, np.integer)) or max_cutoff < MIN_CUTOFF + CUTOFF_STEP:
        raise ValueError(f"max_cutoff must be an integer >= {MIN_CUTOFF + CUTOFF_STEP} (two cutoffs to compare), got {max_cutoff!r}")
    if not np.isfinite(tol) or tol <= 0.0:
        raise ValueError(f"tol must be a positive number (energy units), got {tol}")
    start = default_basis(masses, stiffness, force, hbar, quartic)
    previous = _diagonalize(start, stiffness, force, quartic, constant)
    for cutoff in range(MIN_CUTOFF + CUTOFF_STEP, max_cutoff + 1, CUTOFF_STEP):
        state = _diagonalize(start.with_cutoff(cutoff), stiffness, force, quartic, constant)
        change = abs(state.energy - previous.energy)
        if change < tol:
            return state
        previous = state
    raise ValueError(
        f"max_cutoff={max_cutoff} is too small: the ground energy still changed by {change:.2e} "
        f"(> tol={tol:.1e}) from cutoff {previous.basis.cutoff - CUTOFF_STEP} to {previous.basis.cutoff}; "
        "raise max_cutoff (the Fock space grows as cutoff^modes) or loosen tol"
    )
