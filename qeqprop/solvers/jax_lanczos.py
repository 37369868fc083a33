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
``tol * max(1, |theta_0|)`` (and, when ``want_gap``, that of the second pair below GAP_TOL: the
Krylov estimate theta_1 - theta_0 of ``solve_states``, which does not see multiplicities). The true residual ||H psi - E psi|| is then
computed once (one H application) and decides; if orthogonality was lost, the cycle restarts.
A single Krylov space cannot see an exactly degenerate partner of the ground state (it only
holds v0's projection onto the eigenspace), so the gap is not taken from it: a second,
deflated solve (``deflate=psi_0``: every new Krylov vector projected orthogonal to psi_0, from a
fresh random start) gives E_1 counting multiplicity (``deflation``); it stops as soon as its
residual is below ``gap_accuracy (theta_1 - E_0)`` above GAP_STOP_MIN_DIM amplitudes (``gap_stop``:
the gap to that relative accuracy; a degenerate ground state cannot pass it, and GAP_TOL stays
the floor). A Krylov space that closes
early (b = 0, e.g. 2^n <= m) pushes the unused diagonal entries far above the spectrum.

Reorthogonalisation: twice against the whole basis for small registers (the basis fits in
cache); above ``FULL_REORTH_MAX_DIM`` only the recurrence runs (full reorthogonalisation would
cost more than H psi), plus one projection of the restart vector against the kept Ritz
vectors; the true residual keeps the result honest. Memory: m + k + 8 state vectors
(``solve_vectors``).

Compilation: ``solve_state`` is one jitted function of a ``JaxPauliOperator``, a pytree whose
structure (flip masks, vector factors, native kernel) is static, so jit compiles it once per
structure, dtype and basis shape and reuses it for every new coefficient vector. The step's
pass and the restart are ``lanczos_passes``' (fused native passes on CPU). ``JaxLanczos`` is the
solver object (``base.GroundStateSolver``); ``jax_ground_state`` the function behind it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from functools import partial
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._jax import announce_compile  # (and float64)
from ..errors import NotConvergedError
from ..hamiltonians.jax_kernel import JaxPauliOperator
from ..hamiltonians.native_kernel import cpu_compact_bits
from ..validation import check_state_memory
from .base import GroundStateSolver
from .deflation import GAP_ACCURACY, GAP_SEED, GAP_TOL, certified_gap
from .lanczos_passes import lanczos_residual, restart, xla_lanczos_residual, xla_restart
from .state import GroundState

_PUSH = 1e30  # diagonal value for rows not (yet) in the Krylov space
# Smallest residual tolerance (relative to max(1, |E|)) asked of a float32 solve: float32 rounding
# (eps 1.2e-7 times ||H||) leaves residuals of a few 1e-7 relative (measured 5e-7 at 10 qubits),
# and asking for 1e-12 ran every cycle into a NaN residual.
SINGLE_TOL_MIN = 1e-6
FULL_REORTH_MAX_DIM = 1 << 14
# Lanczos steps between Ritz convergence checks inside a cycle: at 2^20 a check inside the loop
# costs ~1 ms against a ~14 ms step (one core), so checking every 4th step saves more than the
# at most 3 steps it runs past convergence (1.66-1.70 s against 1.68-1.99 s for checking every step).
CHECK_EVERY = 4
# The gap's early stop (LanczosOptions.gap_accuracy) applies above this many amplitudes: below, the
# deflated solve to GAP_TOL costs milliseconds, and small models keep their gaps exact to ~1e-12.
GAP_STOP_MIN_DIM = 1 << 14
# From this many amplitudes a solve ends with gc.collect(): a host-to-device transfer (the
# operator's diagonal, a warm start) keeps its numpy source alive until the cyclic collector runs
# (measured with jax 0.10.2: jnp.asarray, jnp.array and device_put alike), so a centered EP gradient
# held the previous phases' diagonals, one state vector each, through the next solve. A collection
# costs 20-40 ms against seconds per solve at 2^22.
COLLECT_MIN_DIM = 1 << 22
# The fewest Krylov rows ``LanczosOptions.size`` gives when ``basis_bytes`` allows fewer (from 2^25
# amplitudes in float64): each row is 0.5 GiB at 26 qubits. Measured on the 20-qubit all-to-all TFIM of
# benchmarks/ep_gradient.py, cold ground state plus centered EP: 390 H applications with 12 rows, 400 with 11,
# 417 with 10; a 26-qubit run peaked at 10.2 GiB with 10 rows (12.6 GiB before this floor and the
# COLLECT_MIN_DIM collection). 11 keeps it under 12 GB at a 3% cost in H applications.
MIN_KRYLOV = 11


def _limit(value, tol, gap_stop):
    """The residual a Ritz pair of value theta must reach: tol max(1, |theta|), or with ``gap_stop``
    = (E_0, accuracy) (a deflated gap solve, ``deflation``'s early stop) the larger of that and
    accuracy (theta - E_0)."""
    limit = tol * jnp.maximum(1.0, jnp.abs(value))
    if gap_stop is None:
        return limit
    ground, accuracy = gap_stop
    return jnp.maximum(limit, accuracy * (value - ground))


def _converged(b, vectors, values, row, tol, want_gap, gap_stop=None):
    """Residual estimates b |y_i[row]| of the two lowest Ritz pairs against their limits."""
    limits = jnp.stack([_limit(values[0], tol, gap_stop), jnp.maximum(tol, GAP_TOL) * jnp.maximum(1.0, jnp.abs(values[1]))])
    ok = b * jnp.abs(vectors[row, :2]) < limits
    return ok[0] & (ok[1] | ~want_gap)


def _extend(step_pass, basis, T, v, v_prev, b_prev, j0, full_reorth, tol, want_gap, early_stop, gap_stop=None):
    """Lanczos steps j0, j0+1, ... writing basis rows and T until the basis is full, the space
    closes (b = 0) or (``early_stop``) the Ritz estimates converge. ``step_pass(v, v_prev, shift,
    b_prev)`` is the step's pass over the state (``lanczos_passes``). Returns the new
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
                return _converged(b, vectors, values, j, tol, want_gap, gap_stop)

            done = done | jax.lax.cond(look, check, lambda T: jnp.array(False), T)
        return j + 1, basis, T, v_next, v, b, a, alive_next, done

    def more(carry):
        j, *_, done = carry
        return (j < m) & ~done

    init = (j0, basis, T, v, v_prev, b_prev, jnp.zeros((), real), jnp.array(True), jnp.array(False))
    rows, basis, T, v, _, b, *_ = jax.lax.while_loop(more, step, init)
    return basis, T, v, b, rows


def _deflated(step_pass, matvec, p):
    """The step's pass and H application of Q H Q on range(Q), Q = 1 - |p><p| (``deflation``): w
    projected by Q, |Q w|^2 = |w|^2 - |<p, w>|^2 (p a unit vector; <v, w> is unchanged for v ⊥ p)."""

    def step(v, v_prev, shift, b_prev):
        w, overlap, squared, v = step_pass(v, v_prev, shift, b_prev)
        c = jnp.vdot(p, w)
        return w - c * p, overlap, squared - jnp.abs(c) ** 2, v

    def apply(v):
        w = matvec(v)
        return w - jnp.vdot(p, w) * p

    return step, apply


def thick_restart_lanczos(matvec, v0, m: int, keep: int, tol, max_cycles: int, want_gap, full_reorth: bool = True,
                          early_stop: bool = True, basis=None, step_pass=None, restart=None, deflate=None,
                          gap_stop=None):
    """Lowest eigenpair by thick-restart Lanczos (module docstring):
    (psi, energy, gap estimate theta_1 - theta_0, true residual, H applications, basis).

    Args:
        matvec: psi -> H psi (traceable).
        v0: the start vector (normalised here).
        m, keep: basis rows per cycle and Ritz vectors kept over a restart.
        tol: residual tolerance relative to max(1, |E|).
        max_cycles: cycle cap.
        want_gap: > 0 asks for the second Ritz pair too (the gap estimate).
        full_reorth: re-orthogonalise every step against the whole basis (small registers).
        early_stop: check the Ritz estimates every CHECK_EVERY steps inside a cycle.
        basis: the (m, dim) Krylov workspace (zeros when None); its rows are overwritten before
            they are read, and the filled workspace is returned so that a caller can donate it
            to the next solve (``jax_ground_state``).
        step_pass: the Lanczos step's pass ``(v, v_prev, shift, b_prev) -> (w, <v, w>, <w, w>, v)``
            (``lanczos_passes``), by default XLA ops on ``matvec``.
        restart: the thick restart (``lanczos_passes.xla_restart``'s signature), by default XLA ops.
        deflate: None, or a unit vector p: solve Q H Q on range(Q), Q = 1 - |p><p| (v0 is
            projected too), whose lowest eigenvalue is E_1 when p is the ground state (``deflation``).
        gap_stop: None, or (E_0, accuracy) for a deflated gap solve: the lowest pair also stops at
            residual <= accuracy (theta - E_0) (``deflation``'s early stop; tol stays the floor).
    """
    dim = v0.shape[0]
    dtype = v0.dtype
    real = jnp.zeros((), dtype).real.dtype
    want_gap = jnp.asarray(want_gap) > 0
    empty = jnp.diag(jnp.full(m, _PUSH, real))
    step_pass = partial(xla_lanczos_residual, matvec) if step_pass is None else step_pass
    restart = xla_restart if restart is None else restart
    if deflate is not None:
        step_pass, matvec = _deflated(step_pass, matvec, deflate)
        v0 = v0 - jnp.vdot(deflate, v0) * deflate

    def cycle(state):
        basis, T, v, v_prev, b_prev, j0, count, cycles, *_ = state
        basis, T, v, b, rows = _extend(step_pass, basis, T, v, v_prev, b_prev, j0, full_reorth, tol, want_gap,
                                       early_stop, gap_stop)
        values, vectors = jnp.linalg.eigh(T)
        estimate_ok = _converged(b, vectors, values, rows - 1, tol, want_gap, gap_stop) | (b == 0.0)
        # rows >= rows hold an earlier cycle's or solve's vectors: their weights are zeroed
        vectors = jnp.where((jnp.arange(m) < rows)[:, None], vectors, 0.0)
        psi = vectors[:, 0].astype(dtype) @ basis  # lowest Ritz vector (XLA's gemv)
        psi = psi / jnp.linalg.norm(psi)

        def true_residual(psi):
            hpsi = matvec(psi)
            energy = jnp.real(jnp.vdot(psi, hpsi))
            return energy, jnp.linalg.norm(hpsi - energy * psi), 1

        def estimated(psi):
            return values[0], b * jnp.abs(vectors[rows - 1, 0]), 0

        energy, residual, extra = jax.lax.cond(estimate_ok, true_residual, estimated, psi)
        finished = estimate_ok & (residual <= _limit(energy, tol, gap_stop))

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


def default_keep(m: int) -> int:
    """Ritz vectors kept over a restart: a sixth of the basis but at least 3, and at most m - 2
    (at least 1), so that 2 rows are left to extend. Keeping more saves H applications only up to
    a point (a sixth of 48 rows took as few applications as a quarter on the 16-20 qubit TFIMs of
    benchmarks/ground_state.py, and fewer than 4), while every kept vector is one more pass of
    the restart over the state."""
    return max(1, min(max(3, m // 6), m - 2))


def random_start(dim: int, dtype, seed: int = 0):
    """The fixed cold start: uniform on [-1, 1) per amplitude from jax.random key ``seed``
    (reproducible, with weight in every symmetry sector; the deflated gap solve uses GAP_SEED).
    Drawn inside the jitted solve, which spares a host draw and its transfer to the device."""
    real = jnp.zeros((), dtype).real.dtype
    return jax.random.uniform(jax.random.key(seed), (dim,), real, -1.0, 1.0).astype(dtype)


@partial(jax.jit, static_argnames=("keep", "max_cycles", "full_reorth"), donate_argnames=("v0", "basis"))
def solve_state(operator: JaxPauliOperator, v0, tol, want_gap, basis, deflate=None, gap_stop=None, *, keep: int,
                max_cycles: int, full_reorth: bool):
    """One thick-restart solve (``thick_restart_lanczos``) on a ``JaxPauliOperator``, compiled once
    per operator structure, dtype, basis shape and static options by jit's own cache (the
    operator is a pytree whose structure is static). H is applied by ``operator.apply`` and the
    step's pass and the restart are ``lanczos_passes``' (native on CPU where available).

    ``v0`` None draws the fixed cold start (``random_start``; seed GAP_SEED for a deflated solve)
    in the program; ``basis`` (m, dim) is the Krylov workspace. Both are donated. ``want_gap`` > 0
    asks for the Krylov gap estimate; ``deflate`` (a unit vector or None) solves on its orthogonal
    complement, and ``gap_stop`` = (E_0, accuracy) lets that deflated solve stop early
    (``thick_restart_lanczos``). Returns (psi, energy, gap, residual, H applications, basis)."""
    m = basis.shape[0]
    if v0 is None:
        v0 = random_start(operator.dim, basis.dtype, 0 if deflate is None else GAP_SEED)
    return thick_restart_lanczos(operator.apply, v0, m, keep, tol, max_cycles, want_gap, full_reorth, early_stop=True,
                                 basis=basis, step_pass=partial(lanczos_residual, operator),
                                 restart=partial(restart, native=operator.native), deflate=deflate, gap_stop=gap_stop)


@partial(jax.jit, static_argnames=("m", "keep", "max_cycles", "full_reorth"))
def solve_states(operators: JaxPauliOperator, starts, tol, want_gap, *, m: int, keep: int | None = None,
                 max_cycles: int = 60, full_reorth: bool | None = None):
    """``solve_state`` under ``jax.vmap``: ``operators`` is a stack of operators sharing one
    structure (leaves with a leading batch axis, e.g. ``jax.tree.map(jnp.stack, *ops)``), ``starts``
    (B, dim); ``tol`` and ``want_gap`` are shared. Every sample runs whole cycles (no early stop
    inside a cycle) on the XLA gather kernel and XLA passes. ``keep`` None: ``default_keep(m)``;
    ``full_reorth`` None: dim <= FULL_REORTH_MAX_DIM. Returns (psi, energy, gap, residual,
    applications), each with the batch axis; the gap is the Krylov estimate theta_1 - theta_0,
    which does not see a degenerate ground state (the certified gap: ``jax_ground_state``)."""
    dim = starts.shape[-1]
    keep = default_keep(m) if keep is None else keep
    full_reorth = dim <= FULL_REORTH_MAX_DIM if full_reorth is None else full_reorth

    def one(operator, v0):
        matvec = partial(operator.xla_apply, gather=True)
        return thick_restart_lanczos(matvec, v0, m, keep, tol, max_cycles, want_gap, full_reorth, early_stop=False)[:-1]

    return jax.vmap(one)(operators, starts)


@dataclass(frozen=True)
class LanczosOptions:
    """Krylov size per cycle (cold and warm-started), capped so the basis fits ``basis_bytes``;
    Ritz vectors kept over a restart (None: ``default_keep``), residual tolerance (relative to
    max(1, |E|)), cycle cap, and the relative accuracy of the certified gap above
    GAP_STOP_MIN_DIM amplitudes (the deflated solve stops at residual <= gap_accuracy (theta_1 - E_0),
    ``deflation``; None: GAP_TOL alone)."""

    krylov: int = 48
    tol: float = 1e-12
    max_cycles: int = 60
    basis_bytes: int = 3 << 29
    keep: int | None = None
    warm_krylov: int = 24
    gap_accuracy: float | None = GAP_ACCURACY

    def __post_init__(self):
        if self.gap_accuracy is not None and not 0.0 < self.gap_accuracy < 1.0:
            raise ValueError(f"LanczosOptions.gap_accuracy must be in (0, 1) (e.g. {GAP_ACCURACY}) or None (the "
                             f"deflated gap solve to GAP_TOL), got {self.gap_accuracy}")

    def size(self, dim: int, itemsize: int = 16, warm: bool = False) -> int:
        """Basis rows: ``krylov``, or ``warm_krylov`` for a warm start up to FULL_REORTH_MAX_DIM
        (every step re-orthogonalises against the whole basis there, so a nudged phase, which
        converges within 24 rows, is cheaper in a short one); above, warm starts use ``krylov``
        rows too and so reuse the free phase's workspace (``KrylovWorkspace``). Capped by
        ``basis_bytes`` (at least MIN_KRYLOV rows) and the dimension."""
        fits = max(MIN_KRYLOV, self.basis_bytes // (dim * itemsize))
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


class KrylovWorkspace:
    """The Krylov basis of the latest solve, donated to the next solve of the same shape and dtype.

    Why: a fresh (m, 2^n) buffer pays a page fault per 4 KiB page on its first write, on every
    solve; at 2^20 and above that is a sizeable share of a Lanczos step (benchmarks/ep_gradient.py
    measures the solves). Reused, the pages are already mapped. At most one basis is held: one of
    another shape is dropped before a new one is made, so two never coexist.
    """

    def __init__(self):
        self._held: list = []

    def take(self, shape: tuple[int, int], dtype):
        """The held basis if it has this shape and dtype (it is donated: the workspace lets go of
        it), else zeros (the held one, of another shape, is dropped first)."""
        held = self._held.pop() if self._held else None
        if held is not None and held.shape == shape and held.dtype == np.dtype(dtype):
            return held
        del held
        return jnp.zeros(shape, dtype)

    def give(self, basis) -> None:
        """Hold ``basis`` (a solve's returned workspace) for the next solve."""
        self._held[:] = [basis]

    @property
    def held_bytes(self) -> int:
        """Bytes of the held basis: the next solve reuses it, or drops it before making its own."""
        return sum(int(held.nbytes) for held in self._held)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the held bases (none or one)."""
        return [held.shape for held in self._held]

    def release(self) -> None:
        """Free the held basis (m state vectors)."""
        self._held.clear()


WORKSPACE = KrylovWorkspace()  # shared by every JAX Lanczos solve of this process


def release_workspace() -> None:
    """Free the Krylov basis held between JAX Lanczos solves (m state vectors)."""
    WORKSPACE.release()


def jax_ground_state(operator, init=None, options: LanczosOptions = LanczosOptions(), with_gap: bool = True,
                     precision: str = "double") -> GroundState:
    """Ground state of a PauliOperator by the jitted thick-restart Lanczos (see module docstring):
    lowest Ritz pair of H in Krylov spaces span{v, Hv, H^2 v, ...}, until ||H psi - E psi|| <= tol max(1, |E|).

    Args:
        operator: a ``PauliOperator``.
        init: warm-start vector (dim,) or None (the fixed cold start ``random_start``).
        options: Krylov size, kept vectors, tolerance and cycle cap (``LanczosOptions``).
        with_gap: also the certified gap E_1 - E_0: E_1 from a second solve on the orthogonal
            complement of psi_0 (``deflation``; cold, to the residual GAP_TOL max(1, |E_1|), above
            GAP_STOP_MIN_DIM amplitudes to max(that, options.gap_accuracy (E_1 - E_0)): the gap to
            that relative accuracy or better),
            which sees a degenerate ground state that one Krylov space cannot.
        precision: "double" or "single" (float32 / complex64; tol must be >= SINGLE_TOL_MIN).

    Returns:
        A ``GroundState`` whose ``vector`` is a read-only view of the solver's output buffer (copy
        it to modify it).
    """
    # compact vector factors where the native kernel runs (float64/complex128 on CPU): the operator
    # never holds (nor the kernel reads) a 2^n vector per Z-dependent flip group
    kernel = JaxPauliOperator(operator, precision, compact=precision == "double" and cpu_compact_bits() is not None)
    if precision == "single" and not options.tol >= SINGLE_TOL_MIN:
        raise ValueError(f"LanczosOptions.tol = {options.tol:g} is below what float32 reaches; with precision='single' "
                         f"use tol >= {SINGLE_TOL_MIN:g} (e.g. LanczosOptions(tol=1e-5)), or precision='double'")
    itemsize = np.dtype(kernel.dtype).itemsize
    m = options.size(operator.dim, itemsize, warm=init is not None)
    keep = options.kept(m)
    check_state_memory(operator.n_qubits, itemsize, solve_vectors(m, keep), what="JAX Lanczos", held_bytes=WORKSPACE.held_bytes)
    if init is None:  # a fixed random start (random_start), drawn in the solve
        start = None
    else:
        if np.shape(init) != (operator.dim,):
            raise ValueError(f"init must be a state vector of shape ({operator.dim},), got {np.shape(init)}")
        start = jnp.array(init, dtype=kernel.dtype, copy=True)  # donated to the solve
    full_reorth = operator.dim <= FULL_REORTH_MAX_DIM
    early_gap = options.gap_accuracy is not None and operator.dim > GAP_STOP_MIN_DIM

    def solve(start, m, keep, tol, deflate=None, gap_stop=None):
        announce_compile(f"the JAX Lanczos solver{' (deflated, for the gap)' if deflate is not None else ''} ({operator.dim} amplitudes, Krylov size {m})",
                         ("lanczos", kernel.structure, kernel.dtype, start is None, m, keep, options.max_cycles, full_reorth,
                          deflate is None))
        basis = WORKSPACE.take((m, operator.dim), kernel.dtype)
        psi, energy, _, residual, applications, basis = solve_state(
            kernel, start, tol, 0.0, basis, deflate, gap_stop, keep=keep, max_cycles=options.max_cycles,
            full_reorth=full_reorth)
        WORKSPACE.give(basis)
        energy, residual, applications = float(energy), float(residual), int(applications)
        if not residual <= float(_limit(energy, tol, gap_stop)) * 10:
            raise NotConvergedError(
                f"JAX Lanczos {'(deflated, for the gap) ' if deflate is not None else ''}did not converge: residual "
                f"{residual:.2e} after {applications} H applications; raise LanczosOptions.max_cycles or krylov"
            )
        return psi, energy, residual, applications

    psi, energy, residual, applications = solve(start, m, keep, options.tol)
    del start
    gap = None
    if with_gap:
        cold = options.size(operator.dim, itemsize)
        _, second, _, more = solve(None, cold, options.kept(cold), max(options.tol, GAP_TOL), deflate=psi,
                                   gap_stop=(energy, options.gap_accuracy) if early_gap else None)
        gap, applications = certified_gap(energy, second), applications + more
    # a read-only view of the solver's output buffer (no host copy; one only for precision="single")
    psi = np.asarray(psi, dtype=operator.dtype)
    if operator.dim >= COLLECT_MIN_DIM:
        del kernel
        gc.collect()  # this call's transfer sources (COLLECT_MIN_DIM)
    return GroundState(psi, energy, gap, applications, residual, "jax")


TOL_FLOOR = 1e-12  # the smallest residual tolerance JaxLanczos.solve asks for (float64 rounding)


@dataclass(frozen=True)
class JaxLanczos(GroundStateSolver):
    """The jitted thick-restart Lanczos (``jax_ground_state``) as a solver object, registered as "jax".

    ``solve``'s ``tol`` bounds the relative residual ||H psi - E psi|| / max(1, |E|) (floored at
    TOL_FLOOR) and replaces ``options.tol``; ``init`` warm-starts the first cycle (a warm start
    uses ``options.warm_krylov`` rows on small registers). Memory: ``solve_vectors`` state vectors.

    Args:
        options: Krylov size, kept Ritz vectors, cycle cap, basis memory cap.
        precision: "double" or "single".
    """

    options: LanczosOptions = field(default_factory=LanczosOptions)
    precision: str = "double"
    name: ClassVar[str] = "jax"

    def __post_init__(self):
        if self.precision not in ("double", "single"):
            raise ValueError(f"precision must be 'double' or 'single', got {self.precision!r}")

    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> GroundState:
        options = replace(self.options, tol=max(tol, TOL_FLOOR))
        return jax_ground_state(operator, init=init, options=options, with_gap=with_gap, precision=self.precision)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        m = self.options.size(1 << n_qubits, itemsize)
        return solve_vectors(m, self.options.kept(m))
