"""Low-temperature Gibbs states of large spin registers from the lowest k eigenpairs.

When T is small against the level spacings above the ground state, the Gibbs state is
carried by a few low levels:

    rho_k = sum_{m<k} p_m |m><m|,   p_m = exp(-(E_m - E_0)/T) / Z_k,   Z_k = sum_{m<k} exp(-(E_m - E_0)/T),
    F_k = E_0 - T log Z_k,

with E_m, |m> the k lowest eigenpairs of the matrix-free H (scipy ``eigsh``, which="SA",
warm-startable), so no 2^n x 2^n matrix is ever formed.

Error bound. Let E_low be a lower bound on every neglected eigenvalue: the smallest eigenvalue
of H on the orthogonal complement of the k kept vectors, from a second, deflated eigsh on
Q H Q + sigma P (P = sum_m |m><m|, Q = 1 - P). Its lowest eigenvalue is min(E_low, sigma);
sigma - E_0 is twice the larger of E_{k-1} - E_0 and the spacing that meets ``tol``, so E_low is the first
neglected level unless that lies far beyond need. Lanczos can miss a copy of a degenerate
level (a start vector inside a symmetry sector makes this likely); such a level shows up
below E_{k-1} in the deflated solve, replaces the highest kept level, and the check repeats,
so the kept levels are the lowest k, never a silent error.

With D = 2^n, the neglected Boltzmann weight w = Z_rest / (Z_k + Z_rest) obeys

    w <= eps = (D - k) exp(-(E_low - E_0)/T) / Z_k,

and for any observable <O>_rho - <O>_rho_k = w (<O>_rest - <O>_k), so

    |<O>_rho - <O>_rho_k| <= 2 ||O|| eps = ||O|| error_bound      (||P|| = 1 for a Pauli string)
    0 <= F_k - F = T log(1 + Z_rest/Z_k) <= T eps.

The bound assumes converged eigenpairs (eigsh runs to machine precision; the largest residual
||H v - E v|| is reported as ``residual``). The state supports expectations
(solvers.thermal.thermal_expectations), not the Kubo-Mori response: that couples the kept
levels to the whole neglected spectrum, so ``response_kernel`` raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ..errors import NotConvergedError
from ..validation import check_state_memory, check_temperature
from .thermal import GibbsState


@dataclass(kw_only=True)
class KrylovGibbsState(GibbsState):
    """A Gibbs state truncated to the lowest k levels, with its error bound (module docstring).

    ``neglected_weight`` is eps, ``error_bound`` = 2 eps bounds |<P>_rho - <P>_rho_k| for any
    observable of norm <= 1, ``lowest_neglected`` is E_low, ``iterations`` counts Hamiltonian
    applications of all eigsh runs, ``residual`` is max_m ||H |m> - E_m |m>||.
    """

    neglected_weight: float
    error_bound: float
    lowest_neglected: float
    iterations: int
    residual: float
    solver: str = "krylov"

    @property
    def gap(self) -> float:
        """E_1 - E_0; with k = 1 the lower bound E_low - E_0."""
        upper = self.energies[1] if len(self.energies) > 1 else self.lowest_neglected
        return float(upper - self.energies[0])

    @property
    def free_energy_error(self) -> float:
        """Bound T eps on F_k - F >= 0."""
        return self.temperature * self.neglected_weight

    def response_kernel(self) -> np.ndarray:
        raise ValueError(
            "a Krylov (lowest-k) Gibbs state has no Kubo-Mori response: it couples the kept levels to the "
            "neglected spectrum; use solvers.thermal.gibbs_state (exact, dense) for the reference gradient"
        )


def _check_arguments(operator, temperature: float, k: int, tol: float) -> tuple[float, int, float]:
    temperature = check_temperature(temperature, positive=True)
    if not isinstance(k, (int, np.integer)) or not 1 <= k < operator.dim - 1:
        raise ValueError(f"k must be an integer in 1..{operator.dim - 2} (levels kept of 2^{operator.n_qubits}), got {k!r}")
    tol = float(tol)
    if not np.isfinite(tol) or tol <= 0.0:
        raise ValueError(f"tol must be a positive number (bound on expectation errors), got {tol}")
    return temperature, int(k), tol


def krylov_gibbs_state(operator, temperature: float, k: int, tol: float = 1e-8, init: np.ndarray | None = None) -> KrylovGibbsState:
    """Gibbs state of ``operator`` at ``temperature`` from its lowest ``k`` eigenpairs.

    ``init`` warm-starts eigsh: a state vector (2^n,) or a block (2^n, j) of vectors (e.g. the
    free phase's ``vectors``; their sum starts the Krylov space). Raises ValueError when the
    error bound 2 eps (module docstring) exceeds ``tol``.
    """
    temperature, k, tol = _check_arguments(operator, temperature, k, tol)
    n, dim = operator.n_qubits, operator.dim
    ncv = min(dim, max(2 * k + 1, 20))
    check_state_memory(n, np.dtype(operator.dtype).itemsize, ncv + 2 * k + 8, what=f"the lowest {k} eigenpairs (eigsh)")
    # fixed random start vectors keep runs bit-for-bit reproducible
    noise = np.random.default_rng(0).standard_normal((2, dim)).astype(operator.dtype)
    start = noise[0]
    if init is not None:
        init = np.asarray(init, dtype=operator.dtype)
        if init.shape[0] != dim or init.ndim > 2:
            raise ValueError(f"init must be a state vector ({dim},) or a block ({dim}, j), got {init.shape}")
        start = init if init.ndim == 1 else init.sum(axis=1)
    count = [0]

    def apply(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return operator.matvec(v)

    energies, vectors = _eigsh(LinearOperator(operator.shape, matvec=apply, dtype=operator.dtype), k, start, count)
    rounding = 1e-10 * max(1.0, float(np.abs(energies).max()))
    for attempt in range(k + 1):
        order = np.argsort(energies)
        energies, vectors = energies[order], vectors[:, order]
        weights = np.exp(-(energies - energies[0]) / temperature)
        partition = float(weights.sum())
        needed = temperature * float(np.log(2.0 * (dim - k) / (tol * partition)))  # E_low - E_0 meeting tol
        sigma = energies[0] + 2.0 * max(energies[-1] - energies[0], needed)
        lowest, vector = _lowest_in_complement(apply, operator, vectors, sigma, noise[1], count)
        skipped = lowest < energies[-1] - rounding
        if not skipped or attempt == k:
            break
        # eigsh skipped a level below E_{k-1} (a missed degenerate copy): keep it instead of E_{k-1}
        others = vectors[:, :-1]
        vector = vector - others @ (others.conj().T @ vector)
        energies[-1], vectors[:, -1] = lowest, vector / np.linalg.norm(vector)
    eps = float((dim - k) * np.exp(-(lowest - energies[0]) / temperature) / partition)
    if 2.0 * eps > tol:
        note = f"eigsh still skips levels below E_{k - 1}; " if skipped else ""
        raise ValueError(
            f"k={k} levels at temperature={temperature:g}: error bound {2.0 * eps:.2e} > tol={tol:.1e} ({note}neglected "
            f"levels start {lowest - energies[0]:.4g} above E_0, need >= {needed:.4g}); raise k (e.g. k={2 * k}), "
            "lower the temperature, or use solvers.thermal.gibbs_state (exact, dense)"
        )
    residual = float(np.max(np.linalg.norm(operator.matvec(vectors) - vectors * energies, axis=0)))
    return KrylovGibbsState(
        energies, vectors, weights / partition, temperature, float(energies[0] - temperature * np.log(partition)),
        neglected_weight=eps, error_bound=2.0 * eps, lowest_neglected=lowest, iterations=count[0], residual=residual,
    )


def _lowest_in_complement(apply, operator, vectors: np.ndarray, sigma: float, probe: np.ndarray, count: list[int]) -> tuple[float, np.ndarray]:
    """Lowest eigenpair of Q H Q + sigma P, P the projector on ``vectors``, Q = 1 - P, by eigsh
    started at Q ``probe``: min(lowest neglected level, sigma) (module docstring)."""

    def deflated(v: np.ndarray) -> np.ndarray:
        kept = vectors @ (vectors.conj().T @ v)
        moved = apply(v - kept)
        return moved - vectors @ (vectors.conj().T @ moved) + sigma * kept

    complement = probe - vectors @ (vectors.conj().T @ probe)
    value, vector = _eigsh(LinearOperator(operator.shape, matvec=deflated, dtype=operator.dtype), 1, complement, count)
    return float(value[0]), vector[:, 0]


def _eigsh(linear: LinearOperator, k: int, start: np.ndarray, count: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest eigenpairs to machine precision (tol=0), RuntimeError if ARPACK stalls."""
    try:
        return eigsh(linear, k=k, which="SA", v0=start, tol=0.0)
    except ArpackNoConvergence as exc:
        raise NotConvergedError(
            f"eigsh did not converge to the lowest {k} eigenpair(s) after {count[0]} Hamiltonian applications; "
            "use a smaller k or solvers.thermal.gibbs_state for small registers"
        ) from exc
