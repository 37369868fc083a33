"""Restarted Lanczos ground states in JAX: jittable, vmappable over samples, warm-startable.

One cycle builds an m-step Krylov basis V (fully re-orthogonalised, twice) from v0,

    H V^T = V^T T + beta_m v_m e_m^T,   T = tridiag(beta, alpha, beta),

takes the lowest Ritz pair (theta_0, psi = V^T y_0) of T and restarts from psi (plus a
small share of the second Ritz vector when a gap estimate theta_1 - theta_0 is wanted)
until the residual ||H psi - theta_0 psi|| is below ``tol``. Memory: m state vectors.
A Krylov space that closes early (beta_j = 0, e.g. 2^n <= m) is detected: the remaining
diagonal entries are pushed far above the spectrum so they never yield a Ritz value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from ..hamiltonians.jax_kernel import JaxPauliOperator, matvec_kernel
from ..validation import check_state_memory
from .state import GroundState

_PUSH = 1e30  # diagonal value for steps after a Krylov breakdown
GAP_TOL = 1e-6  # relative residual asked of the second Ritz pair (gap estimate)


def _ritz(alpha, beta):
    """Eigen-decomposition of the tridiagonal T(alpha, beta[:-1])."""
    tridiagonal = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    return jnp.linalg.eigh(tridiagonal)


def _lanczos_cycle(matvec, v0, m: int, full_reorth: bool, tol, want_gap, early_stop: bool):
    """Up to m Lanczos steps from v0: (Ritz values, Ritz coefficient vectors, basis V (m, D)).

    Stops early once the lowest Ritz pair's residual estimate beta_j |y_0[j]| (and the
    second one's, when ``want_gap``, below GAP_TOL) is below ``tol * max(1, |theta|)``: it needs no
    extra H application; without ``early_stop`` (batched solves, where the per-step Ritz
    problem of every sample costs more than it saves) all m steps run. ``full_reorth``
    re-orthogonalises against the whole basis (twice); otherwise only the three-term
    recurrence runs (large registers: the basis does not fit in cache, and full
    re-orthogonalisation would cost more than H psi; the true residual checked after
    every cycle keeps the result honest).
    """
    dim = v0.shape[0]
    real = jnp.zeros((), v0.dtype).real.dtype
    v0 = v0 / jnp.linalg.norm(v0)
    tiny = 100 * jnp.finfo(real).eps
    index = jnp.arange(m)

    def step(carry):
        j, basis, alpha, beta, v, v_prev, b_prev, alive, _ = carry
        basis = basis.at[j].set(v)
        w = matvec(v)
        a = jnp.real(jnp.vdot(v, w))
        w = w - a * v - b_prev * v_prev
        if full_reorth:
            for _ in range(2):
                w = w - basis.T @ (basis.conj() @ w)
        b = jnp.linalg.norm(w)
        alive_next = alive & (b > tiny * jnp.maximum(1.0, jnp.abs(a)))
        alpha = alpha.at[j].set(jnp.where(alive, a, _PUSH))
        beta = beta.at[j].set(jnp.where(alive_next, b, 0.0))
        v_next = jnp.where(alive_next, w / jnp.where(alive_next, b, 1.0), jnp.zeros_like(w))
        done = ~alive_next
        if early_stop:
            values, vectors = _ritz(alpha, jnp.where(index < j, beta, 0.0))
            # the second pair only feeds the gap estimate: GAP_TOL is enough there
            limits = jnp.stack([tol, jnp.maximum(tol, GAP_TOL)]) * jnp.maximum(1.0, jnp.abs(values[:2]))
            converged = b * jnp.abs(vectors[j, :2]) < limits
            done = done | (converged[0] & (converged[1] | ~want_gap))
        return j + 1, basis, alpha, beta, v_next, v, jnp.where(alive_next, b, 0.0), alive_next, done

    def more(carry):
        j, *_, done = carry
        return (j < m) & ~done

    init = (jnp.zeros((), jnp.int32), jnp.zeros((m, dim), v0.dtype), jnp.full(m, _PUSH, real), jnp.zeros(m, real),
            v0, jnp.zeros_like(v0), jnp.zeros((), real), jnp.array(True), jnp.array(False))
    steps, basis, alpha, beta, *_ = jax.lax.while_loop(more, step, init)
    values, vectors = _ritz(alpha, jnp.where(index < steps - 1, beta, 0.0))
    return values, vectors, basis, steps


def restarted_lanczos(matvec, v0, m: int, tol: float, max_cycles: int, gap_share: float, full_reorth: bool = True,
                      early_stop: bool = True):
    """Lowest eigenpair by restarted Lanczos: (psi, energy, gap estimate, residual, H applications)."""
    real = jnp.zeros((), v0.dtype).real.dtype

    def cycle(state):
        psi, _, _, _, count = state
        values, vectors, basis, steps = _lanczos_cycle(matvec, psi, m, full_reorth, tol, gap_share > 0, early_stop)
        psi = basis.T @ vectors[:, 0].astype(basis.dtype)
        psi = psi / jnp.linalg.norm(psi)
        second = basis.T @ vectors[:, 1].astype(basis.dtype)
        hpsi = matvec(psi)
        energy = jnp.real(jnp.vdot(psi, hpsi))
        residual = jnp.linalg.norm(hpsi - energy * psi)
        restart = psi + gap_share * second / jnp.maximum(jnp.linalg.norm(second), 1e-300)
        return restart, energy, values[1] - values[0], residual, count + steps + 1, psi

    def body(carry):
        return cycle(carry[:5])

    def cond(carry):
        _, energy, _, residual, count, _ = carry
        return (residual > tol * jnp.maximum(1.0, jnp.abs(energy))) & (count < max_cycles * (m + 1))

    init = (v0, jnp.zeros((), real), jnp.zeros((), real), jnp.array(jnp.inf, real), jnp.zeros((), jnp.int32), v0)
    restart, energy, gap, residual, count, psi = jax.lax.while_loop(cond, body, init)
    return psi, energy, gap, residual, count


FULL_REORTH_MAX_DIM = 1 << 14


@lru_cache(maxsize=64)
def compiled_solver(structure, m: int, max_cycles: int, batched: bool):
    """jit(solve(diagonal, factors, v0, tol, gap_share)) for one model structure;
    ``batched`` vmaps over (diagonals, factors, starts) with shared tol and gap_share."""
    kernel = matvec_kernel(structure)
    full_reorth = (1 << structure[0]) <= FULL_REORTH_MAX_DIM

    def solve(diagonal, factors, v0, tol, gap_share):
        return restarted_lanczos(partial(kernel, diagonal, factors), v0, m, tol, max_cycles, gap_share, full_reorth,
                                 early_stop=not batched)

    return jax.jit(jax.vmap(solve, in_axes=(0, 0, 0, None, None)) if batched else solve)


@dataclass(frozen=True)
class LanczosOptions:
    """Krylov size per cycle (capped so the basis fits ``basis_bytes``), residual tolerance
    (relative to max(1, |E|)) and cycle cap."""

    krylov: int = 48
    tol: float = 1e-12
    max_cycles: int = 60
    basis_bytes: int = 2 << 30

    def size(self, dim: int, itemsize: int = 16) -> int:
        fits = max(16, self.basis_bytes // (dim * itemsize))
        return int(min(self.krylov, dim, fits))


def jax_ground_state(operator, init=None, options: LanczosOptions = LanczosOptions(), with_gap: bool = True,
                     precision: str = "double") -> GroundState:
    """Ground state of a PauliOperator by the jitted restarted Lanczos (see module docstring)."""
    kernel = JaxPauliOperator(operator, precision)
    m = options.size(operator.dim, np.dtype(kernel.dtype).itemsize)
    check_state_memory(operator.n_qubits, np.dtype(kernel.dtype).itemsize, m + 6, what="JAX Lanczos")
    if init is None:
        v0 = np.random.default_rng(0).standard_normal(operator.dim)
    else:
        v0 = np.asarray(init)
        if v0.shape != (operator.dim,):
            raise ValueError(f"init must be a state vector of shape ({operator.dim},), got {v0.shape}")
    solve = compiled_solver(kernel.structure, m, options.max_cycles, False)
    psi, energy, gap, residual, applications = solve(
        kernel.diagonal, kernel.factors, jnp.asarray(v0, dtype=kernel.dtype), options.tol, 0.1 if with_gap else 0.0
    )
    residual = float(residual)
    if not residual <= options.tol * max(1.0, abs(float(energy))) * 10:
        raise RuntimeError(
            f"JAX Lanczos did not converge: residual {residual:.2e} after {int(applications)} H applications; "
            "raise LanczosOptions.max_cycles or krylov"
        )
    psi = np.asarray(psi)
    return GroundState(psi.astype(operator.dtype), float(energy), float(gap) if with_gap else None,
                       int(applications), residual, "jax")
