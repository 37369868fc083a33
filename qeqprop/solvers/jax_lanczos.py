"""Thick-restart Lanczos ground states in JAX: jittable, vmappable over samples, warm-startable.

A cycle extends a Krylov basis V (rows) with the Lanczos recurrence until it holds m vectors,

    H V^T = V^T T + b v_m e_{m-1}^T,

where the projected matrix T is tridiagonal except for its leading "arrowhead" block: after a
restart the first k rows of V are the k lowest Ritz vectors u_i = V^T y_i of the previous
cycle (T[:k, :k] = diag(theta_i)), coupled to the carried-over residual direction v_m by
s_i = b y_i[m-1] (Wu & Simon's thick restart, mathematically ARPACK's implicit restart with
exact shifts). Keeping k Ritz vectors keeps most of the Krylov information, so a cold solve
needs about as many H applications as unrestarted Lanczos in m vectors of memory.

The residual of Ritz pair i is ||H u_i - theta_i u_i|| = b |y_i[j]| (no extra H application):
a cycle stops (checked every CHECK_EVERY steps) as soon as it is below
``tol * max(1, |theta_0|)`` (and, when a gap is wanted,
that of the second pair below GAP_TOL: the gap estimate theta_1 - theta_0 then comes from the
same Krylov space, accurate to that residual). The true residual ||H psi - E psi|| is then
computed once (one H application) and decides; if orthogonality was lost, the cycle restarts.
A single Krylov space cannot see an exactly degenerate partner of the ground state (it only
holds v0's projection onto the eigenspace): the random start makes near-degenerate (split)
pairs visible, exact degeneracy needs the dense solver. A Krylov space that closes early
(b = 0, e.g. 2^n <= m) pushes the unused diagonal entries far above the spectrum.

Reorthogonalisation: twice against the whole basis for small registers (the basis fits in
cache); above ``FULL_REORTH_MAX_DIM`` only the recurrence runs (full reorthogonalisation would
cost more than H psi), plus one projection of the restart vector against the kept Ritz
vectors; the true residual keeps the result honest. Memory: m + k + 8 state vectors
(``solve_vectors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from ..errors import NotConvergedError
from ..hamiltonians.jax_kernel import (JaxPauliOperator, fast_lanczos_residual, fast_matvec_kernel, lanczos_residual_of,
                                       matvec_kernel)
from ..hamiltonians.native_kernel import TARGETS, native_library, native_restart
from ..validation import check_state_memory
from .state import GroundState

_PUSH = 1e30  # diagonal value for rows not (yet) in the Krylov space
GAP_TOL = 1e-6  # relative residual asked of the second Ritz pair (gap estimate)
# Smallest residual tolerance (relative to max(1, |E|)) asked of a float32 solve: float32 rounding
# (eps 1.2e-7 times ||H||) leaves residuals of a few 1e-7 relative (measured 5e-7 at 10 qubits),
# and asking for 1e-12 ran every cycle into a NaN residual.
SINGLE_TOL_MIN = 1e-6
FULL_REORTH_MAX_DIM = 1 << 14
# Lanczos steps between Ritz convergence checks inside a cycle: at 2^20 a check inside the loop
# costs ~1 ms against a ~14 ms step (one core), so checking every 4th step saves more than the
# at most 3 steps it runs past convergence (1.66-1.70 s against 1.68-1.99 s for checking every step).
CHECK_EVERY = 4


def _converged(b, vectors, values, row, tol, want_gap):
    """Residual estimates b |y_i[row]| of the two lowest Ritz pairs against their limits."""
    limits = jnp.stack([tol, jnp.maximum(tol, GAP_TOL)]) * jnp.maximum(1.0, jnp.abs(values[:2]))
    ok = b * jnp.abs(vectors[row, :2]) < limits
    return ok[0] & (ok[1] | ~want_gap)


def _extend(step_pass, basis, T, v, v_prev, b_prev, j0, full_reorth, tol, want_gap, early_stop):
    """Lanczos steps j0, j0+1, ... writing basis rows and T until the basis is full, the space
    closes (b = 0) or (``early_stop``) the Ritz estimates converge. ``step_pass(v, v_prev, shift,
    b_prev)`` is the step's pass over the state (``lanczos_residual_of``). Returns the new
    (basis, T, residual direction, last coupling b, rows filled)."""
    m = basis.shape[0]
    real = T.dtype
    tiny = 100 * jnp.finfo(real).eps
    index = jnp.arange(m)

    def step(carry):
        j, basis, T, v, v_prev, b_prev, shift, alive, _ = carry
        # (H - shift) v - b_prev v_prev, <v, w>, <w, w>, and v again: the native pass writes it into
        # v_prev's buffer, and reading it from there (for the basis row too) spares the loop's
        # (v, v_prev) -> (v_next, v) shuffle XLA's copies of states (3 per step otherwise)
        w, overlap, squared, v = step_pass(v, v_prev, shift, b_prev)
        basis = basis.at[j].set(v)
        a = jnp.real(overlap) + shift
        if full_reorth:
            w = w - overlap * v
            filled = (index <= j).astype(real)
            for _ in range(2):
                w = w - basis.T @ (filled * (basis.conj() @ w))
            b = jnp.linalg.norm(w)
        else:
            # b^2 = |w|^2 - |<v, w>|^2 from the same pass as <v, w> (v is a unit vector): 2.3x
            # faster per step than materialising w - a v and its norm (measured at 2^20).
            # The shift (the previous diagonal entry) keeps |<v, w>| ~ b, so there is no
            # cancellation; where b^2 is still a tiny share of |w|^2 it is computed directly.
            pythagoras = squared - jnp.abs(overlap) ** 2
            b = jax.lax.cond(pythagoras > 1e-4 * squared, lambda: jnp.sqrt(pythagoras),
                             lambda: jnp.linalg.norm(w - overlap * v))
            w = w - overlap * v  # fused into v_next below
        alive_next = alive & (b > tiny * jnp.maximum(1.0, jnp.abs(a)))
        T = T.at[j, j].set(jnp.where(alive, a, _PUSH))
        below = jnp.maximum(j - 1, 0)
        coupling = jnp.where(j > j0, b_prev, T[j, below])  # row j0 keeps its arrowhead couplings
        T = T.at[j, below].set(coupling).at[below, j].set(coupling)
        b = jnp.where(alive_next, b, 0.0)
        v_next = jnp.where(alive_next, w / jnp.where(alive_next, b, 1.0), jnp.zeros_like(w))
        done = ~alive_next
        if early_stop:  # the 48 x 48 eigh (0.15 ms) costs half an H psi at 2^16
            look = ((j - j0) % CHECK_EVERY == CHECK_EVERY - 1) & alive_next

            def check(T):
                values, vectors = jnp.linalg.eigh(T)
                return _converged(b, vectors, values, j, tol, want_gap)

            done = done | jax.lax.cond(look, check, lambda T: jnp.array(False), T)
        return j + 1, basis, T, v_next, v, b, a, alive_next, done

    def more(carry):
        j, *_, done = carry
        return (j < m) & ~done

    init = (j0, basis, T, v, v_prev, b_prev, jnp.zeros((), real), jnp.array(True), jnp.array(False))
    rows, basis, T, v, _, b, *_ = jax.lax.while_loop(more, step, init)
    return basis, T, v, b, rows


def thick_restart_lanczos(matvec, v0, m: int, keep: int, tol, max_cycles: int, want_gap, full_reorth: bool = True,
                          early_stop: bool = True, basis=None, step_pass=None, restart=None):
    """Lowest eigenpair by thick-restart Lanczos (module docstring):
    (psi, energy, gap estimate theta_1 - theta_0, true residual, H applications, basis).

    ``step_pass`` is the Lanczos step's pass (``_extend``), by default ``lanczos_residual_of(matvec)``,
    and ``restart`` the restart (``xla_restart``'s signature), by default ``xla_restart``;
    ``compiled_solver`` gives native ones on CPU.

    ``basis`` (m, dim) is the Krylov workspace (zeros when None); its rows are overwritten
    before they are read, and the filled workspace is returned so that a caller can donate it
    to the next solve (``jax_ground_state``)."""
    dim = v0.shape[0]
    dtype = v0.dtype
    real = jnp.zeros((), dtype).real.dtype
    want_gap = jnp.asarray(want_gap) > 0
    empty = jnp.diag(jnp.full(m, _PUSH, real))
    step_pass = lanczos_residual_of(matvec) if step_pass is None else step_pass
    restart = xla_restart if restart is None else restart

    def cycle(state):
        basis, T, v, v_prev, b_prev, j0, count, cycles, *_ = state
        basis, T, v, b, rows = _extend(step_pass, basis, T, v, v_prev, b_prev, j0, full_reorth, tol, want_gap,
                                       early_stop)
        values, vectors = jnp.linalg.eigh(T)
        estimate_ok = _converged(b, vectors, values, rows - 1, tol, want_gap) | (b == 0.0)
        # rows >= rows hold an earlier cycle's or solve's vectors: their weights are zeroed
        vectors = jnp.where((jnp.arange(m) < rows)[:, None], vectors, 0.0)
        psi = vectors[:, 0].astype(dtype) @ basis  # lowest Ritz vector (XLA's gemv: 13 ms at 48 x 2^20)
        psi = psi / jnp.linalg.norm(psi)

        def true_residual(psi):
            hpsi = matvec(psi)
            energy = jnp.real(jnp.vdot(psi, hpsi))
            return energy, jnp.linalg.norm(hpsi - energy * psi), 1

        def estimated(psi):
            return values[0], b * jnp.abs(vectors[rows - 1, 0]), 0

        energy, residual, extra = jax.lax.cond(estimate_ok, true_residual, estimated, psi)
        finished = estimate_ok & (residual <= tol * jnp.maximum(1.0, jnp.abs(energy)))

        # restart (the native one skips it after the final cycle): kept Ritz vectors u_i, arrowhead
        # couplings s_i = b y_i[rows-1], residual direction v orthogonalised against the u_i
        couplings = b * vectors[rows - 1, :keep]
        basis, v, v_prev = restart(vectors[:, :keep], couplings, finished, basis, v, v_prev)
        T = empty.at[jnp.arange(keep), jnp.arange(keep)].set(values[:keep])
        T = T.at[keep, :keep].set(couplings).at[:keep, keep].set(couplings)
        return (basis, T, v, v_prev, jnp.ones((), real), jnp.asarray(keep, jnp.int32), count + rows - j0 + extra,
                cycles + 1, psi, energy, values[1] - values[0], residual, finished)

    def cond(state):
        *_, cycles, _, _, _, _, finished = state
        return ~finished & (cycles < max_cycles)

    v0 = v0 / jnp.linalg.norm(v0)
    zero = jnp.zeros((), real)
    if basis is None or full_reorth:  # full re-orthogonalisation reads every row
        basis = jnp.zeros((m, dim), dtype)
    init = (basis, empty, v0, jnp.zeros_like(v0), zero, jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), v0, zero, zero, jnp.array(jnp.inf, real), jnp.array(False))
    state = jax.lax.while_loop(cond, cycle, init)
    count, psi, energy, gap, residual = state[6], *state[8:12]
    return psi, energy, gap, residual, count, state[0]


def xla_restart(weights, couplings, skip, basis, v, v_prev):
    """The thick restart by XLA ops: the kept Ritz vectors u_i = sum_j weights[j, i] basis[j]
    over basis rows 0..k-1, v orthogonalised against them and normalised, and
    v_prev = sum_i couplings[i] u_i (H v_k's component along the u_i). ``skip`` (the final
    cycle, whose results are not used) is ignored: the work is done anyway."""
    kept = weights.astype(basis.dtype).T @ basis
    v = v - kept.T @ (kept.conj() @ v)
    v = v / jnp.maximum(jnp.linalg.norm(v), 1e-300)
    return basis.at[:weights.shape[1]].set(kept), v, couplings.astype(basis.dtype) @ kept


def fast_restart(weights, couplings, skip, basis, v, v_prev):
    """``xla_restart``, by ``native_restart`` (in place, three passes, nothing for the final
    cycle) on CPU for float64/complex128 states where the native kernel is available: at 2^20
    a converged warm start (one cycle) took 41 ms instead of 70, and the solve's temporary
    block shrank from 88 to 24 MB."""
    # the handler takes at most 64 kept vectors and states of at least one register; tiny states
    # (full reorthogonalisation anyway) keep the XLA ops
    native = (native_library() is not None and jnp.dtype(basis.dtype) in TARGETS and weights.shape[1] <= 64
              and basis.shape[1] >= 64)
    if not native:
        return xla_restart(weights, couplings, skip, basis, v, v_prev)
    return jax.lax.platform_dependent(weights, couplings, skip, basis, v, v_prev, cpu=native_restart,
                                      default=xla_restart)


def default_keep(m: int) -> int:
    """Ritz vectors kept over a restart: a sixth of the basis but at least 3, and at most m - 2
    (at least 1), so that 2 rows are left to extend. At 48 rows, 8 kept take as few H
    applications as 12 (113 / 105 / 125 for the 16 / 18 / 20-qubit TFIM of
    benchmarks/ground_state.py; 4 took 117 / 109 / 133). With ``xla_restart`` the kept vectors
    are a temporary block page-faulted afresh by every solve, a third smaller than a quarter's:
    20-qubit solve 4 % faster, 24.6k instead of 32.8k page faults (measured before the native
    restart, which keeps them in the basis)."""
    return max(1, min(max(3, m // 6), m - 2))


@lru_cache(maxsize=64)
def compiled_solver(structure, m: int, max_cycles: int, batched: bool, keep: int | None = None):
    """jit(solve(diagonal, factors, v0, tol, want_gap)) for one model structure (``want_gap`` > 0
    asks for the gap estimate); ``batched`` vmaps over (diagonals, factors, starts) with shared
    tol and want_gap. ``keep`` Ritz vectors survive a restart (default ``default_keep(m)``)."""
    kernel = matvec_kernel(structure, vmapped=True) if batched else fast_matvec_kernel(structure)
    step = None if batched else fast_lanczos_residual(structure)
    restart = None if batched else fast_restart
    full_reorth = (1 << structure[0]) <= FULL_REORTH_MAX_DIM
    keep = default_keep(m) if keep is None else keep

    def solve(diagonal, factors, v0, tol, want_gap, basis=None):
        if v0 is None:  # the cold start, drawn in the program (jax_ground_state passes the workspace)
            v0 = random_start(diagonal.shape[-1], basis.dtype)
        out = thick_restart_lanczos(partial(kernel, diagonal, factors), v0, m, keep, tol, max_cycles, want_gap,
                                    full_reorth, early_stop=not batched, basis=basis,
                                    step_pass=None if step is None else partial(step, diagonal, factors),
                                    restart=restart)
        return out if basis is not None else out[:-1]

    if batched:
        return jax.jit(jax.vmap(solve, in_axes=(0, 0, 0, None, None)))
    return jax.jit(solve, donate_argnums=(2, 5))  # the start vector's buffer and the workspace


def random_start(dim: int, dtype):
    """The fixed cold start: uniform on [-1, 1) per amplitude from jax.random key 0 (reproducible,
    with weight in every symmetry sector). Drawn inside the jitted solve: at 2^20 a host-drawn
    normal start and its transfer cost 20-30 ms, this 6 ms."""
    real = jnp.zeros((), dtype).real.dtype
    return jax.random.uniform(jax.random.key(0), (dim,), real, -1.0, 1.0).astype(dtype)


@dataclass(frozen=True)
class LanczosOptions:
    """Krylov size per cycle (cold and warm-started), capped so the basis fits ``basis_bytes``;
    Ritz vectors kept over a restart (None: ``default_keep``), residual tolerance (relative to
    max(1, |E|)) and cycle cap."""

    krylov: int = 48
    tol: float = 1e-12
    max_cycles: int = 60
    basis_bytes: int = 3 << 29
    keep: int | None = None
    warm_krylov: int = 24

    def size(self, dim: int, itemsize: int = 16, warm: bool = False) -> int:
        """Basis rows: ``krylov``, or ``warm_krylov`` for a warm start up to FULL_REORTH_MAX_DIM
        (every step re-orthogonalises against the whole basis there, so a nudged phase, which
        converges within 24 rows, is cheaper in a short one); above, warm starts use ``krylov``
        rows too and so reuse the free phase's workspace (``_take_workspace``). Capped by
        ``basis_bytes`` (at least 12: 1.5 GiB at 2^24 in float64) and the dimension."""
        fits = max(12, self.basis_bytes // (dim * itemsize))
        rows = self.warm_krylov if warm and dim <= FULL_REORTH_MAX_DIM else self.krylov
        return int(min(rows, dim, fits))

    def kept(self, m: int) -> int:
        keep = default_keep(m) if self.keep is None else int(self.keep)
        if not 1 <= keep <= max(1, m - 2):
            raise ValueError(f"LanczosOptions.keep must be between 1 and krylov - 2 = {m - 2}, got {keep}")
        return keep


def solve_vectors(m: int, keep: int) -> int:
    """State vectors one solve holds at once: the basis (m), the kept Ritz vectors (keep), and
    the diagonal, start, v, v_prev, w, H psi, psi and its host copy (8)."""
    return m + keep + 8


# The Krylov basis of the latest solve, donated to the next one of the same shape and dtype: a
# fresh (m, 2^n) buffer pays a page fault per 4 KiB on first write, which at 2^20 cost about
# 4 ms per Lanczos step on top of a 12 ms step (measured on one core); reused, it costs nothing.
_WORKSPACE: list = []


def _take_workspace(shape: tuple[int, int], dtype):
    """The held basis if it has this shape and dtype (it is donated: the list lets go of it),
    else zeros (the held one, of another shape, is dropped first so both never coexist)."""
    held = _WORKSPACE.pop() if _WORKSPACE else None
    if held is not None and held.shape == shape and held.dtype == np.dtype(dtype):
        return held
    del held
    return jnp.zeros(shape, dtype)


def release_workspace() -> None:
    """Free the Krylov basis held between JAX Lanczos solves (m state vectors)."""
    _WORKSPACE.clear()


def jax_ground_state(operator, init=None, options: LanczosOptions = LanczosOptions(), with_gap: bool = True,
                     precision: str = "double") -> GroundState:
    """Ground state of a PauliOperator by the jitted thick-restart Lanczos (see module docstring):
    lowest Ritz pair of H in Krylov spaces span{v, Hv, H^2 v, ...}, until ||H psi - E psi|| <= tol max(1, |E|).

    The returned ``vector`` is a read-only view of the solver's output buffer (copy it to modify it)."""
    kernel = JaxPauliOperator(operator, precision)
    if precision == "single" and not options.tol >= SINGLE_TOL_MIN:
        raise ValueError(f"LanczosOptions.tol = {options.tol:g} is below what float32 reaches; with precision='single' "
                         f"use tol >= {SINGLE_TOL_MIN:g} (e.g. LanczosOptions(tol=1e-5)), or precision='double'")
    itemsize = np.dtype(kernel.dtype).itemsize
    m = options.size(operator.dim, itemsize, warm=init is not None)
    keep = options.kept(m)
    check_state_memory(operator.n_qubits, itemsize, solve_vectors(m, keep), what="JAX Lanczos")
    if init is None:  # a fixed random start (random_start), drawn in the solve
        start = None
    else:
        if np.shape(init) != (operator.dim,):
            raise ValueError(f"init must be a state vector of shape ({operator.dim},), got {np.shape(init)}")
        start = jnp.array(init, dtype=kernel.dtype, copy=True)  # donated to the solve
    solve = compiled_solver(kernel.structure, m, options.max_cycles, False, keep)
    basis = _take_workspace((m, operator.dim), kernel.dtype)
    psi, energy, gap, residual, applications, basis = solve(kernel.diagonal, kernel.factors, start, options.tol,
                                                            1.0 if with_gap else 0.0, basis)
    _WORKSPACE[:] = [basis]
    del start
    residual = float(residual)
    if not residual <= options.tol * max(1.0, abs(float(energy))) * 10:
        raise NotConvergedError(
            f"JAX Lanczos did not converge: residual {residual:.2e} after {int(applications)} H applications; "
            "raise LanczosOptions.max_cycles or krylov"
        )
    # a read-only view of the solver's output buffer (no host copy; one only for precision="single")
    psi = np.asarray(psi, dtype=operator.dtype)
    return GroundState(psi, float(energy), float(gap) if with_gap else None,
                       int(applications), residual, "jax")
