"""Batched fixed-length Lanczos: the lowest eigenpairs of B Hamiltonians at once.

For small registers the batch is the parallel axis. One block runs exactly ``steps``
Lanczos steps on every sample (no data-dependent loop per sample), with the batch as the
leading axis of every array:

    H_b V_b^T = V_b^T T_b + beta_{b,m} v_{b,m} e_m^T,   T_b = tridiag(beta_b, alpha_b, beta_b),

then one batched eigh of the (B, m, m) tridiagonal matrices gives the Ritz pairs
(theta_{b,k}, y_{b,k}), the ground state psi_b = V_b^T y_{b,0} is assembled once and its
true residual ||H_b psi_b - E_b psi_b|| (E_b = <psi_b|H_b|psi_b>) is measured with one
more H application. ``with_gap`` also gives the Krylov estimate theta_{b,1} - theta_{b,0} from
the same space, accepted when the second pair's residual estimate
beta_{b,m} |y_{b,1}[m]| / max(1, |theta_{b,1}|) is below ``GAP_TOL``; it cannot see a
degenerate ground state, so the free phase's gap (``BatchedLanczos.solve``) comes instead from
a second batched solve with ``deflate`` = the ground states: every Krylov vector projected
orthogonal to psi_b, from a fresh random start, whose lowest eigenvalue is E_{b,1} counting
multiplicity (``deflation``).

Beyond the three-term recurrence each new vector is orthogonalised ("full": against the
whole basis, one classical Gram-Schmidt pass as batched matrix-vector products; "ground":
selectively, against the lowest Ritz vector of a recent T_k; "none"): the lowest
Ritz pair converges without it (Paige), while the gap needs at least the selective form
(otherwise a ghost copy of theta_0 may pose as theta_1).

Convergence is checked once per block for the whole batch; samples that miss the
tolerance get further blocks restarted from their Ritz vector, up to ``max_blocks``; the
samples that still miss it are reported (``BatchedSolve.converged``), and ``BatchedLanczos``
retries them (a longer block, then a single-state solver) before it raises. The Ritz residual estimates after m/2 and m steps
give the measured geometric convergence rate, from which the block length the next
solve of a similar batch needs is extrapolated (``steps_for``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .._jax import announce_compile  # (and float64)
from ..config import usable_cores
from ..errors import NotConvergedError
from ..hamiltonians.jax_kernel import JaxPauliOperator, batched_apply, structure_of
from ..hamiltonians.native_kernel import cpu_compact_bits, native_available, on_cpu
from ..hamiltonians.pauli import compact_length
from ..native.build import TRIDIAGONAL_TARGET
from .base import BatchGroundStateSolver, GroundStateSolver
from .batched_passes import basis_combination, native_lanczos_steps, native_steps_supported
from .deflation import GAP_TOL, certified_gap, gap_start, gap_tolerances
from .registry import make_solver
from .state import SETTLED_FALLBACK, SETTLED_FIRST, SETTLED_RETRY, SETTLED_USABLE

logger = logging.getLogger(__name__)

# Block lengths are multiples of this (each length compiles once). 4 rather than 8: the learned lengths of
# the 10-qubit sensor model's training (benchmarks/training_throughput.py, beta 0.4) fall from 40 / 32 / 24
# (free, gap, nudged) to 36 / 28-32 / 20, 110 instead of 124 H applications per sample, 6-11% less CPU time per
# training sample at batch 10 and 128, with as many compilations over 128 minibatches (two).
STEP_QUANTUM = 4
MIN_BLOCK_STEPS = 8  # the shortest block ``steps_for`` asks for: its half block still measures a decay rate
MIN_FREE_STEPS = 16  # the shortest first free-phase block (``first_free_steps``)
FREE_STEPS_TOL = 1e-12  # the tolerance the free phase's first block (``free_steps``) is sized for


def _real_view(v):
    """A complex vector (..., D) as the real vector (..., 2D) of its interleaved (Re, Im) pairs
    (numpy's memory layout of complex128, which the native steps store as is); real vectors unchanged."""
    if not jnp.iscomplexobj(v):
        return v
    return jnp.stack([v.real, v.imag], axis=-1).reshape(v.shape[:-1] + (2 * v.shape[-1],))


def _complex_view(r, dim: int, dtype):
    """Inverse of _real_view."""
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        return r
    pairs = r.reshape(r.shape[:-1] + (dim, 2))
    return jax.lax.complex(pairs[..., 0], pairs[..., 1])


def _remove_basis(basis, w):
    """w - V V^H w for the real-view basis V (B, k, D or 2D): complex products as real ones
    (XLA's CPU complex matrix-vector products are far slower than real ones). With h = V^H w,
    Re h_k = <v_k, w> and Im h_k = <v_k, -i w> in the real view, and V h = V Re h + i V Im h."""
    if not jnp.iscomplexobj(w):
        return w - jnp.einsum("bkd,bk->bd", basis, jnp.einsum("bkd,bd->bk", basis, w))
    dim = w.shape[-1]
    h_re = jnp.einsum("bkd,bd->bk", basis, _real_view(w))
    h_im = jnp.einsum("bkd,bd->bk", basis, _real_view(-1j * w))
    a, c = jnp.einsum("bkd,bk->bd", basis, h_re), jnp.einsum("bkd,bk->bd", basis, h_im)
    return w - (_complex_view(a, dim, w.dtype) + 1j * _complex_view(c, dim, w.dtype))


ORTHOGONALIZATIONS = ("full", "ground", "none")
# Steps between refreshes of the selective-orthogonalisation guard (a batched tridiagonal eigh
# and one pass over the basis each): gaps equal eigh to 7e-13 after 160 steps at 10 qubits
# (TFIM and the complex model, 32 and 16 samples), where the plain recurrence gave gap 0.
GUARD_STEPS = 32
GUARD_FIRST = 8  # steps before the first guard (a restart starts from a converged y_0, whose ghost grows at once)


def _closed(alpha, beta, alive):
    """alpha with the entries after a breakdown (beta_j = 0: the Krylov space closed) set above
    the sample's Gershgorin bound, so that they never yield one of the lowest Ritz values."""
    bound = jnp.max(jnp.where(alive, jnp.abs(alpha) + 2 * beta, 0.0), axis=1, keepdims=True)
    return jnp.where(alive, alpha, 2 * bound + 1.0)


def _block(apply, v0, steps: int, orthogonalize: str, native=None):
    """``steps`` Lanczos steps on every sample: (alpha (B, m), beta (B, m), basis (B, m, D)),
    the basis in real view (_real_view: (B, m, 2D) for complex states).

    The steps run as an XLA scan over ``step`` (``apply`` the batch's H application), or, where
    ``native`` is given (``batched_passes.native_lanczos_steps`` with the operators, deflation and
    ``orthogonalize`` bound) and the program runs on CPU, as one native call per stretch of steps
    between guard refreshes: the same arithmetic without a dozen XLA ops per step.

    ``orthogonalize`` says what each new vector w is orthogonalised against beyond the
    three-term recurrence: "full", the whole basis (one classical Gram-Schmidt pass);
    "ground", selective orthogonalisation (Parlett & Scott) against the lowest Ritz vector
    y_0 of T_k, refreshed after the first GUARD_FIRST steps and then every GUARD_STEPS steps
    (rows beyond k closed as after a breakdown), w <- w - y_0 (y_0^H w) at every step:
    rounding errors feed the basis only along converged Ritz vectors (Paige), and of the lowest two pairs only y_0 converges far enough for a ghost copy of
    theta_0 to pose as theta_1 (in exact arithmetic w is orthogonal to y_0 already, so this
    changes nothing else); "none", the plain recurrence (the lowest pair still converges).
    """
    if orthogonalize not in ORTHOGONALIZATIONS:
        raise ValueError(f"orthogonalize must be one of {ORTHOGONALIZATIONS}, got {orthogonalize!r}")
    batch, dim = v0.shape
    real = jnp.zeros((), v0.dtype).real.dtype
    tiny = 100 * jnp.finfo(real).eps
    v0 = v0 / jnp.linalg.norm(v0, axis=1, keepdims=True)
    width = 2 * dim if jnp.iscomplexobj(v0) else dim

    def step(guard, carry, j):
        basis, v, v_prev, b_prev, alive = carry
        basis = jax.lax.dynamic_update_slice_in_dim(basis, _real_view(v)[:, None, :], j, axis=1)
        w = apply(v)
        a = jnp.real(jnp.sum(jnp.conj(v) * w, axis=1))
        w = w - a[:, None] * v - b_prev[:, None] * v_prev
        if orthogonalize == "full":
            w = _remove_basis(basis, w)
        elif orthogonalize == "ground":
            w = w - guard * jnp.sum(jnp.conj(guard) * w, axis=1, keepdims=True)
        b = jnp.linalg.norm(w, axis=1)
        alive_next = alive & (b > tiny * jnp.maximum(1.0, jnp.abs(a)))
        b_out = jnp.where(alive_next, b, 0.0)
        v_next = jnp.where(alive_next[:, None], w / jnp.where(alive_next, b, 1.0)[:, None], 0.0)
        return (basis, v_next, v, b_out, alive_next), (a, b_out, alive)

    def advance(carry, guard, start, count):
        """``count`` steps from basis row ``start``: (carry, (alpha, beta, alive) each (count, B))."""
        xla = lambda carry, guard: jax.lax.scan(partial(step, guard), carry, start + jnp.arange(count))
        if native is None:
            return xla(carry, guard)
        return on_cpu(partial(native, start=start, count=count), xla, carry, guard)  # (a Python start stays one)

    carry = (jnp.zeros((batch, steps, width), real), v0, jnp.zeros_like(v0), jnp.zeros(batch, real),
             jnp.ones(batch, bool))
    if orthogonalize != "ground":
        carry, (alpha, beta, alive) = advance(carry, None, 0, steps)
        return _closed(alpha.T, beta.T, alive.T), beta.T, carry[0]

    def steps_from(state, start, count):
        carry, guard, alpha, beta, alive = state
        carry, part = advance(carry, guard, start, count)
        alpha, beta, alive = (jax.lax.dynamic_update_slice_in_dim(full, p.T, start, axis=1)
                              for full, p in zip((alpha, beta, alive), part))
        return carry, guard, alpha, beta, alive

    def period(state, start, count=GUARD_STEPS):
        """``count`` steps, then the new guard y_0 of T_k (k steps so far; rows >= k closed)."""
        carry, _, alpha, beta, alive = state = steps_from(state, start, count)
        _, y = _lowest_pairs(_closed(alpha, beta, alive), beta[:, :-1], count=1)
        ritz = _complex_view(basis_combination(carry[0], y, start + count)[:, 0], dim, v0.dtype)
        return (carry, ritz / jnp.linalg.norm(ritz, axis=1, keepdims=True), alpha, beta, alive), None

    empty = jnp.zeros((batch, steps), real)
    state = (carry, jnp.zeros_like(v0), empty, empty, jnp.zeros((batch, steps), bool))
    first = min(GUARD_FIRST, steps)
    state, _ = period(state, 0, first)
    periods = (steps - first) // GUARD_STEPS
    if periods:  # (a scan traces its body even for no iterations)
        state, _ = jax.lax.scan(period, state, first + GUARD_STEPS * jnp.arange(periods))
    done = first + periods * GUARD_STEPS
    if done < steps:
        state = steps_from(state, done, steps - done)
    carry, _, alpha, beta, alive = state
    return _closed(alpha, beta, alive), beta, carry[0]


def _host_lowest_pairs(alpha: np.ndarray, beta: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``_lowest_pairs`` on the host: LAPACK's bisection and inverse iteration (stebz, stein) per
    sample through scipy; a sample with non-finite entries gets NaN (its residual then fails)."""
    alpha, beta = np.asarray(alpha), np.asarray(beta)
    values = np.full(alpha.shape[:1] + (count,), np.nan)
    vectors = np.full(alpha.shape + (count,), np.nan)
    for b in range(alpha.shape[0]):
        if np.isfinite(alpha[b]).all() and np.isfinite(beta[b]).all():
            values[b], vectors[b] = scipy.linalg.eigh_tridiagonal(alpha[b], beta[b], select="i",
                                                                  select_range=(0, count - 1), check_finite=False)
    return values, vectors


def _lowest_pairs(alpha, beta, count: int = 2):
    """Lowest ``count`` eigenpairs of the tridiagonal matrices (alpha (B, j), beta (B, j - 1)):
    values (B, count), vectors (B, j, count), by bisection and inverse iteration. With the native
    library, its ``qeqprop_tridiagonal_lowest`` handler computes them inside the XLA program
    (qeqprop/native/tridiagonal.cc: LAPACK's stebz + stein algorithm, several samples at once);
    else a ``jax.pure_callback`` of ``_host_lowest_pairs`` (scipy's LAPACK per sample). The native call keeps host callbacks out of the
    block programs, so JAX's persistent compilation cache stores them (it refuses programs with
    callbacks), and drops scipy's ~60 us of Python per sample and call. Why not
    jax.scipy.linalg.eigh_tridiagonal: the same algorithm, but it takes 2.5 s to trace and compile
    per use (a block program has two to four)."""
    shapes = (jax.ShapeDtypeStruct(alpha.shape[:1] + (count,), alpha.dtype),
              jax.ShapeDtypeStruct(alpha.shape + (count,), alpha.dtype))
    if native_available():
        return jax.ffi.ffi_call(TRIDIAGONAL_TARGET, shapes, vmap_method="broadcast_all")(alpha, beta, count=np.int64(count))
    return jax.pure_callback(partial(_host_lowest_pairs, count=count), shapes, alpha, beta)


# Krylov basis per chunk of samples: stays in cache while written and reread. 8 MiB: two workers'
# chunks fit half of a 32 MiB L3 (sensor model, B=128: 4-6% less CPU time than 16 MiB, under load).
CACHE_BYTES = 8 << 20


def size_bucket(count: int) -> int:
    """The smallest number with at most three significant bits (1..8, 10, 12, 14, 16, 20, 24, 28,
    32, 40, ...) that is >= ``count``: padding to it wastes less than a quarter of the work (a batch
    of 10 on two workers runs chunks of 5; with buckets 2^k and 3 2^(k-2) it ran 6, 20% padding)."""
    count = max(1, int(count))
    low = 1 << max(0, count.bit_length() - 3)
    return low * -(-count // low)


def batch_layout(batch: int, workers: int, largest: int) -> tuple[int, int, int]:
    """(chunk, parts, padded): the batch as ``parts`` <= ``workers`` concurrent slices of whole
    chunks of ``chunk`` samples (at most ``largest``, ``chunk_size``), padded to ``padded`` samples.
    The chunk is a size bucket (``size_bucket``), so that batch sizes up to ``workers`` * ``largest``
    run one of few compiled programs (four per octave), padding less than a quarter of the work; larger batches are
    whole chunks per slice (padded by less than ``parts`` chunks)."""
    share = -(-batch // max(1, workers))
    chunk = min(size_bucket(share), largest)
    parts = int(min(workers, -(-batch // chunk)))
    return chunk, parts, chunk * parts * -(-batch // (chunk * parts))


def chunk_size(batch: int, steps: int, dim: int, itemsize: int) -> int:
    """Samples per chunk: the largest power of two whose Krylov bases (chunk, steps, D) fit
    CACHE_BYTES: re-orthogonalisation rereads the basis every step and the Ritz vectors at the
    end of a block read it once, so a chunk whose basis stays in cache is read from cache, and
    a whole batch's basis from memory."""
    fit = max(1, CACHE_BYTES // (steps * dim * itemsize))
    return min(batch, 1 << (fit.bit_length() - 1))


def _projected(p, matvec, v):
    """Q matvec(v) (Q v for ``matvec`` None), Q = 1 - |p><p| per sample (p (B, D) unit vectors)."""
    w = v if matvec is None else matvec(v)
    return w - p * jnp.sum(jnp.conj(p) * w, axis=1, keepdims=True)


@partial(jax.jit, static_argnames=("steps", "orthogonalize", "with_gap", "chunk", "native_steps"))
def solve_block(operators: JaxPauliOperator, starts, deflate=None, *, steps: int, orthogonalize: str, with_gap: bool,
                chunk: int, native_steps: bool = True):
    """One block (see module docstring) for a stack of operators sharing one structure (leaves with
    a leading batch axis) warm-started from ``starts`` (B, D); the batch (a multiple of ``chunk``)
    runs as consecutive chunks of ``chunk`` samples. Compiled once per operator structure, batch
    shape and static options by jit's own cache (the operator is a pytree with static structure).
    ``deflate`` (B, D) unit vectors p_b, or None: solve Q_b H_b Q_b on range(Q_b), Q_b = 1 - |p_b><p_b|
    (each H application's result and the start projected by Q_b). The steps run as native calls
    (``batched_passes``) where the operators' native kernel is loaded, unless ``native_steps`` is
    False (the XLA scan, e.g. for comparisons).

    Returns (psi (B, D), energy, gap, residual, estimate, half_estimate, restart): ``residual`` the
    true ||H psi - E psi||, ``estimate`` the relative Ritz residual estimates (B, pairs) of the lowest
    pair (and with the gap the second) after all m steps, ``half_estimate`` the same after m/2 steps (for the
    convergence rates), ``restart`` the start of a further block (with the gap, psi plus a tenth of
    the second Ritz vector).
    """
    apply = batched_apply  # native batched kernel on CPU, else the vmapped XLA gather
    half = steps // 2
    pairs = 2 if with_gap else 1  # Ritz pairs needed: the second only for the gap

    def block(args):
        operators, v0, p = args
        matvec = partial(apply, operators)
        if p is not None:
            matvec, v0 = partial(_projected, p, matvec), _projected(p, None, v0)
        native = (partial(native_lanczos_steps, operators, p, orthogonalize)
                  if native_steps and native_steps_supported(operators, v0.dtype) else None)
        alpha, beta, basis = _block(matvec, v0, steps, orthogonalize, native)
        values, vectors = _lowest_pairs(alpha, beta[:, :-1], pairs)
        estimate = beta[:, -1:] * jnp.abs(vectors[:, -1, :]) / jnp.maximum(1.0, jnp.abs(values))
        half_values, half_vectors = _lowest_pairs(alpha[:, :half], beta[:, : half - 1], pairs)
        half_estimate = beta[:, half - 1 : half] * jnp.abs(half_vectors[:, -1, :]) / jnp.maximum(1.0, jnp.abs(half_values))
        ritz = _complex_view(basis_combination(basis, vectors), v0.shape[-1], v0.dtype)
        psi = ritz[:, 0] / jnp.linalg.norm(ritz[:, 0], axis=1, keepdims=True)
        hpsi = matvec(psi)
        energy = jnp.real(jnp.sum(jnp.conj(psi) * hpsi, axis=1))
        residual = jnp.linalg.norm(hpsi - energy[:, None] * psi, axis=1)
        gap = values[:, -1] - values[:, 0]  # zero without the gap
        restart = psi
        if with_gap:
            restart = psi + 0.1 * ritz[:, 1] / jnp.linalg.norm(ritz[:, 1], axis=1, keepdims=True)
        return psi, energy, gap, residual, estimate, half_estimate, restart

    split = lambda a: a.reshape((-1, chunk) + a.shape[1:])
    out = jax.lax.map(block, jax.tree.map(split, (operators, starts, deflate)))
    return tuple(a.reshape((-1,) + a.shape[2:]) for a in out)


def default_workers() -> int:
    """Concurrent block calls: the CPU cores this process may run on (XLA's CPU backend runs
    a batched block of small vectors on one thread, while calls from several Python threads run
    side by side, one core each), and 1 on an accelerator (its own parallelism covers the batch)."""
    if jax.default_backend() != "cpu":
        return 1
    return usable_cores()


_POOL: dict[int, ThreadPoolExecutor] = {}


def _in_parts(block, pieces, starts: np.ndarray):
    """block(operators_k, starts_k, deflate_k) on the slices of the batch at once (one thread each;
    ``pieces`` [(operators_k, deflate_k)] with numpy leaves, ``starts`` (B, D) numpy cut into
    len(pieces) equal slices; the slices hold whole chunks, so the numbers equal one call's),
    outputs as numpy arrays concatenated along the batch."""
    size = starts.shape[0] // len(pieces)

    def part(k):
        operators, deflate = pieces[k]
        return [np.asarray(a) for a in block(operators, starts[k * size : (k + 1) * size], deflate)]

    if len(pieces) == 1:
        outs = [part(0)]
    else:
        parts = len(pieces)
        pool = _POOL.get(parts) or _POOL.setdefault(parts, ThreadPoolExecutor(parts, thread_name_prefix="qeqprop-block"))
        outs = list(pool.map(part, range(parts)))
    return [np.concatenate(column) for column in zip(*outs)]


STEP_MARGIN = 1.1  # block length asked: the extrapolated need plus 10%, rounded up to a quantum


def first_free_steps(steps: int, tol: float) -> int:
    """The first free-phase block for tolerance ``tol`` when ``steps`` is sized for FREE_STEPS_TOL:
    from a random start the Ritz residual falls geometrically, so the steps needed grow like
    log(1/tol): steps log(tol) / log(FREE_STEPS_TOL), rounded up to STEP_QUANTUM, never more than
    ``steps`` nor fewer than MIN_FREE_STEPS. (The 10-qubit sensor model: 64 steps reach 1e-12, 32
    reach 1.6e-6, its EP tolerance at beta = 0.4.)"""
    scale = min(1.0, np.log(tol) / np.log(FREE_STEPS_TOL)) if tol < 1.0 else 0.0
    return int(min(steps, max(MIN_FREE_STEPS, STEP_QUANTUM * np.ceil(steps * scale / STEP_QUANTUM))))


def steps_for(tols, steps: int, estimate: np.ndarray, half_estimate: np.ndarray) -> int:
    """Block length (a multiple of STEP_QUANTUM, STEP_MARGIN times the need, at least MIN_BLOCK_STEPS) after which every
    sample's Ritz residual estimates (B, pairs) reach ``tols`` (one per pair, or (B, pairs)), extrapolating the
    geometric decay measured between m/2 and m steps: r_j ~ r_{m/2} rho^{j - m/2}, rho = (r_m / r_{m/2})^{2/m}."""
    half = steps // 2
    floor = 1e-300
    tols = np.maximum(np.asarray(tols, dtype=np.float64), floor)
    ratio = np.maximum(estimate, floor) / np.maximum(half_estimate, floor)
    rate = np.log(np.minimum(ratio, 1.0 - 1e-12)) / (steps - half)  # log rho < 0
    needed = half + np.log(tols / np.maximum(half_estimate, floor)) / rate
    needed = np.where(half_estimate <= tols, half, needed)
    worst = float(np.max(needed))
    return max(MIN_BLOCK_STEPS, int(STEP_QUANTUM * np.ceil(STEP_MARGIN * worst / STEP_QUANTUM)))


USABLE_FACTOR = 100.0  # default ``usable`` of BatchedLanczos


@dataclass
class BatchedSolve:
    """Ground states of a batch: vectors (B, D), energies, gaps (NaN without gap), true
    residuals, H applications per sample, and the block length the measured convergence
    rate asks for next time (``steps_for``); per sample (B,): ``converged`` (the residual met
    ``asked``, the residual asked: tol max(1, |E|)), ``retries`` (how the sample was settled:
    SETTLED_FIRST, SETTLED_RETRY, SETTLED_FALLBACK or SETTLED_USABLE) and ``extra_applications``
    (H applications beyond ``applications``: the retry's and the fallback solver's)."""

    vectors: np.ndarray
    energies: np.ndarray
    gaps: np.ndarray
    residuals: np.ndarray
    applications: int
    next_steps: int
    converged: np.ndarray | None = None
    asked: np.ndarray | None = None
    retries: np.ndarray | None = None
    extra_applications: np.ndarray | None = None

    def __post_init__(self):
        count = len(self.energies)
        if self.converged is None:
            self.converged = np.ones(count, bool)
        if self.asked is None:
            self.asked = np.full(count, np.nan)
        if self.retries is None:
            self.retries = np.full(count, SETTLED_FIRST)
        if self.extra_applications is None:
            self.extra_applications = np.zeros(count, np.int64)

    @property
    def iterations(self) -> np.ndarray:
        """H applications per sample (B,): ``applications`` plus ``extra_applications``."""
        return self.applications + self.extra_applications


def batched_ground_states(
    structure,
    diagonal,
    factors,
    starts,
    tol: float,
    steps: int,
    with_gap: bool = False,
    orthogonalize: str = "full",
    max_blocks: int = 6,
    workers: int | None = None,
    deflate=None,
    floor=None,
) -> BatchedSolve:
    """Lowest eigenpairs of a batch of Hamiltonians given in grouped form (jax_kernel).

    ``diagonal`` (B, D), ``factors`` per flip (B,) or (B, D), ``starts`` (B, D) (warm starts, in the
    dtype of the solve: float64, or complex128 for complex H).
    Converged: ||H psi - E psi|| <= tol max(1, |E|) for every sample (and, with ``with_gap``,
    the second Ritz pair's relative estimate below GAP_TOL); samples that miss it get further
    blocks from their restart vectors, up to ``max_blocks``; the result's ``converged`` says which
    met it (BatchedLanczos retries the others).
    The batch runs as ``workers`` concurrent slices (None: ``default_workers()``); the results do
    not depend on it. ``deflate`` (B, D) unit vectors, or None: solve on their orthogonal
    complements (``solve_block``), e.g. the ground states, for E_1; with ``floor`` (B,) their energies
    E_0, a sample's deflated solve stops early at the relative residual ``deflation.gap_tolerances``
    (max(tol, GAP_ACCURACY (E - E_0) / max(1, |E|))): the gap to 1%, enough for what it is used for.
    """
    if steps < STEP_QUANTUM or steps % STEP_QUANTUM:
        raise ValueError(f"steps must be a positive multiple of {STEP_QUANTUM}, got {steps}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if not isinstance(max_blocks, (int, np.integer)) or max_blocks < 1:
        raise ValueError(f"max_blocks must be a positive integer, got {max_blocks!r}")
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer (or None for the CPU cores), got {workers!r}")
    starts = np.asarray(starts)
    batch, dim = starts.shape
    chunk, parts, padded = batch_layout(batch, workers, chunk_size(batch, steps, dim, starts.dtype.itemsize))
    pad = padded - batch  # the last sample repeated up to whole chunks per slice
    extend = lambda a: np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
    diagonal, factors, starts = extend(np.asarray(diagonal)), tuple(extend(np.asarray(f)) for f in factors), extend(starts)
    deflate = None if deflate is None else extend(np.asarray(deflate))
    floor = None if floor is None else extend(np.asarray(floor))
    size = len(starts) // parts
    cuts = [slice(k * size, (k + 1) * size) for k in range(parts)]
    # each slice's operators with numpy leaves, handed to the jitted block as they are (jit's own
    # dispatch takes numpy arguments in ~1 us each; jax.device_put or jnp.asarray take ~100 us per
    # array, a device-side slice per leaf and block more: more than a block of 10 samples' arithmetic)
    native = native_available()
    pieces = [(JaxPauliOperator.from_arrays(structure, diagonal[cut], tuple(f[cut] for f in factors), native),
               None if deflate is None else deflate[cut]) for cut in cuts]
    block = partial(solve_block, steps=int(steps), orthogonalize=str(orthogonalize), with_gap=bool(with_gap), chunk=chunk)
    announce_compile(f"the batched Lanczos block{' (deflated, for the gap)' if deflate is not None else ''} ({dim} amplitudes, {starts.shape[0] // parts} samples per call, {steps} steps)",
                     ("batched", structure, starts.shape, starts.dtype, steps, orthogonalize, with_gap, chunk, parts,
                      deflate is None))
    psi = starts
    done = np.zeros(psi.shape[0], bool)
    vectors = energies = gaps = residuals = None
    applications, next_steps = 0, STEP_QUANTUM
    for block_index in range(max_blocks):
        out = _in_parts(block, pieces, psi)
        new_psi, new_energy, new_gap, new_residual, estimate, half_estimate = out[:6]
        applications += steps + 1
        if vectors is None:
            vectors, energies, gaps, residuals = new_psi, new_energy, new_gap, new_residual
        else:
            redo = ~done
            vectors[redo], energies[redo], gaps[redo], residuals[redo] = (
                new_psi[redo], new_energy[redo], new_gap[redo], new_residual[redo])
        # per sample with a floor: from the Ritz values kept so far (this block's for the samples it redid)
        sample_tol = np.maximum(tol, gap_tolerances(floor, energies)) if floor is not None else tol
        tols = np.maximum(np.array((tol, max(tol, GAP_TOL))[: estimate.shape[1]])[None, :], np.reshape(sample_tol, (-1, 1)))
        gap_ok = estimate[:, 1] <= tols[:, 1] if with_gap else True
        done = done | ((residuals <= sample_tol * np.maximum(1.0, np.abs(energies))) & gap_ok)
        if block_index == 0:  # the rate from a fresh start (restarts begin near convergence)
            next_steps = steps_for(tols, steps, estimate, half_estimate)
        if done.all():
            break
        psi = np.where(done[:, None], vectors, out[6])
    keep = slice(0, batch)
    asked = np.broadcast_to(sample_tol * np.maximum(1.0, np.abs(energies)), energies.shape)
    return BatchedSolve(vectors[keep], energies[keep], gaps[keep] if with_gap else np.full(batch, np.nan), residuals[keep],
                        applications, next_steps, converged=done[keep].copy(), asked=asked[keep].copy())


# Blocks re-orthogonalise fully unless the register holds this many block lengths: runs far
# inside the space need only selective orthogonalisation against the ground Ritz vector (cold
# free and gap solves) or none (warm-started nudged phases; the residual is still checked).
PLAIN_RATIO = 8
# State vectors a batched solve holds per sample besides its share of the Krylov bases and its
# vector factors: diagonal, start, psi, restart vector, two Ritz vectors, H psi, and the step's v, v_prev, w.
SAMPLE_VECTORS = 10


class BatchedLanczos(BatchGroundStateSolver):
    """Batched Lanczos for one Pauli table (``table.compile`` gives the grouped form); block
    lengths adapt to the measured convergence. The batch member of the solver family
    (``base.BatchGroundStateSolver``): ``solve`` takes the stacked coefficient vectors of many
    Hamiltonians of this table and their warm starts and returns a ``BatchedSolve``.

    ``solve(..., with_gap=True)`` (free phases) is two batched solves: the ground states, then E_1
    on their orthogonal complements from a fresh random start (``deflation``: the gap counts
    multiplicity, so a degenerate ground state reads gap 0), each sample stopped at the relative
    residual ``deflation.gap_tolerances`` (the gap to GAP_ACCURACY = 1%, GAP_TOL the floor); its first
    block is 32 steps (the 10-qubit sensor model's gap needs 24: 5.5 vs 8.4 ms per sample at batch 10 with 64).
    ``free_steps`` / ``nudged_steps`` / ``gap_steps`` are the first block lengths (multiples of STEP_QUANTUM) of
    the free, nudged and deflated solves (``free_steps`` for tol = FREE_STEPS_TOL, shortened for a
    looser one: ``first_free_steps``); after every solve the next length of that phase and tolerance
    (``learned``, ``schedule``) is extrapolated from
    the Ritz residual decay of its first block (``steps_for``: the need of the slowest sample plus
    10%, rounded up to a multiple of STEP_QUANTUM), capped at ``max_steps``. ``workers`` concurrent slices of
    the batch (None: the CPU cores; ``default_workers``) do not change the numbers.

    Missed tolerances: a sample that misses its tolerance after ``max_blocks`` blocks is not the
    end of a run. It is settled in stages, recorded per sample in ``BatchedSolve.retries``:

    1. SETTLED_RETRY: the samples that missed are solved again as their own batch (padded to its
       size bucket, ``batch_layout``, for few compilations) from their best vectors, ``retry_blocks`` blocks of
       ``max_steps`` steps with full re-orthogonalisation (0: skip to stage 2);
    2. SETTLED_FALLBACK: the ones still missing are solved one at a time by the single-state solver
       ``fallback`` ("lanczos": ARPACK, "jax", "dense"; None: skip), warm-started from their best
       vector, with the gap of the free phase from its own deflated solve;
    3. SETTLED_USABLE: a sample still above its tolerance is accepted when its residual is within
       ``usable`` times the residual asked (for a free phase, its gap solve's too): the EP
       estimate then carries an error ~ residual / (beta gap) instead of ~ tol / (beta gap).

    Past that, NotConvergedError names the sample, its residual and the options to change. Every
    stage is logged (logger "qeqprop.solvers.batched_lanczos": INFO for retries, WARNING for
    stage 3).
    """

    name: ClassVar[str] = "batched"

    def __init__(self, table, free_steps: int = 64, nudged_steps: int = 32, max_steps: int = 160,
                 max_blocks: int = 6, workers: int | None = None, gap_steps: int = 32, retry_blocks: int | None = None,
                 fallback: str | GroundStateSolver | None = "lanczos", usable: float = USABLE_FACTOR):
        for name, value in (("free_steps", free_steps), ("nudged_steps", nudged_steps), ("gap_steps", gap_steps),
                            ("max_steps", max_steps)):
            if not isinstance(value, (int, np.integer)) or value < STEP_QUANTUM or value % STEP_QUANTUM:
                raise ValueError(f"{name} must be a positive multiple of {STEP_QUANTUM}, got {value!r}")
        retry_blocks = max_blocks if retry_blocks is None else retry_blocks
        for name, value, least in (("max_blocks", max_blocks, 1), ("retry_blocks", retry_blocks, 0)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if not (isinstance(usable, (int, float, np.floating)) and usable >= 1.0):
            raise ValueError(f"usable must be a number >= 1 (accepted residual / asked residual), got {usable!r}")
        self.fallback = None if fallback is None else make_solver(fallback, "fallback")
        self.retry_blocks, self.usable = int(retry_blocks), float(usable)
        self.table = table
        self.dtype = jnp.float64 if table.is_real else jnp.complex128
        self.max_steps = min(int(max_steps), STEP_QUANTUM * -(-table.dim // STEP_QUANTUM))
        self.steps = {phase: min(int(steps), self.max_steps)
                      for phase, steps in (("free", free_steps), ("nudged", nudged_steps), ("gap", gap_steps))}
        self.max_blocks = int(max_blocks)
        self.workers = workers
        # "phase@tol" -> the block length the measured convergence of the latest such solve asks for
        # (``schedule``; a free phase at an EP tolerance and one at the evaluation tolerance learn apart)
        self.learned: dict[str, int] = {}

    def solve(self, coeffs: np.ndarray, starts: np.ndarray, tol: float, with_gap: bool, cold: bool | None = None) -> BatchedSolve:
        """Ground states for stacked coefficient vectors (B, n_strings), warm-started from ``starts``
        (B, D); with ``with_gap`` also the certified gaps (class docstring). ``cold``: the starts are
        far from the ground states (a free phase: its block lengths, selective orthogonalisation
        against the ground Ritz vector); False: warm starts (a nudged phase); None: ``with_gap``."""
        bits = cpu_compact_bits()
        diagonal, flips = self.table.compile(coeffs, compact_bits=bits)
        supports = None if bits is None else {x: self.table.support(x) for x, _ in flips}
        operator = (structure_of(self.table.n_qubits, [(x, f[0]) for x, f in flips], supports),
                    np.asarray(diagonal, self.dtype), tuple(np.asarray(f, self.dtype) for _, f in flips))
        result = self._run(operator, "free" if (with_gap if cold is None else cold) else "nudged", starts, tol)
        second = None
        if with_gap:
            start = np.broadcast_to(gap_start(self.table.dim, self.dtype), result.vectors.shape)
            second = self._run(operator, "gap", start, max(tol, GAP_TOL), deflate=result.vectors, floor=result.energies)
            result.gaps = np.array([certified_gap(e0, e1) for e0, e1 in zip(result.energies, second.energies)])
            result.applications += second.applications
            result.extra_applications += second.extra_applications
            result.retries = np.maximum(result.retries, second.retries)
        self._settle(result, second, coeffs, tol)
        return result

    def _run(self, operator, phase: str, starts, tol: float, deflate=None, floor=None) -> BatchedSolve:
        """One batched solve of ``phase`` ("free", "nudged" or "gap"), its block length adapted."""
        key = f"{phase}@{float(tol):.6g}"
        steps = self.learned.get(key)
        if steps is None:
            steps = first_free_steps(self.steps[phase], tol) if phase == "free" else self.steps[phase]
        # far inside the space: the free phase orthogonalises selectively against its ground Ritz
        # vector (the plain recurrence stalled at residual 7e-9 on a 9-qubit Ising chain without
        # fields); the nudged and gap phases (tolerance 1e-6 or a warm start) run the plain recurrence
        # (30% faster gap solves at 10 qubits)
        orthogonalize = "full" if self.table.dim < PLAIN_RATIO * steps else ("ground" if phase == "free" else "none")
        result = batched_ground_states(*operator, np.asarray(starts, self.dtype), tol, steps, False, orthogonalize,
                                       self.max_blocks, self.workers, deflate=deflate, floor=floor)
        # follow the measured need (each new length compiles once; the margin damps flapping)
        self.learned[key] = min(self.max_steps, result.next_steps)
        missed = np.flatnonzero(~result.converged)
        if missed.size and self.retry_blocks:
            self._retry(operator, phase, result, missed, tol, deflate, floor)
        return result

    def _retry(self, operator, phase: str, result: BatchedSolve, missed: np.ndarray, tol: float, deflate, floor) -> None:
        """Stage 1 (class docstring): the ``missed`` samples of ``result`` again, in place; a sample
        takes the retry's state where it converged or its residual / asked residual fell."""
        logger.info("batched Lanczos (%s phase): %d of %d samples missed the tolerance after %d blocks; retrying them "
                    "with %d blocks of %d steps", phase, missed.size, len(result.energies), self.max_blocks,
                    self.retry_blocks, self.max_steps)
        structure, diagonal, factors = operator  # (batched_ground_states pads the batch to its size bucket)
        pick = lambda a: None if a is None else np.asarray(a)[missed]
        again = batched_ground_states(structure, pick(diagonal), tuple(pick(f) for f in factors),
                                      np.asarray(result.vectors[missed], self.dtype), tol, self.max_steps, False, "full",
                                      self.retry_blocks, self.workers, deflate=pick(deflate), floor=pick(floor))
        better = again.converged | (again.residuals / again.asked < result.residuals[missed] / result.asked[missed])
        for name in ("vectors", "energies", "residuals", "asked", "converged"):
            getattr(result, name)[missed[better]] = getattr(again, name)[better]
        result.retries[missed] = SETTLED_RETRY
        result.extra_applications[missed] += again.applications

    def _settle(self, result: BatchedSolve, second: BatchedSolve | None, coeffs: np.ndarray, tol: float) -> None:
        """Stages 2 and 3 (class docstring) for the samples of ``result`` (and of its gap solve
        ``second``) still above their tolerance, in place; NotConvergedError past them."""
        gap_missed = np.zeros(len(result.energies), bool) if second is None else ~second.converged
        for b in np.flatnonzero(~result.converged | gap_missed):
            state, why = None, "no fallback solver"
            if self.fallback is not None:
                try:
                    state = self.fallback.solve(self.table.operator(coeffs[b]), init=result.vectors[b], tol=tol,
                                                with_gap=second is not None)
                except NotConvergedError as exc:
                    why = f"the {self.fallback.name} fallback: {exc}"
            if state is not None:  # its gap (if asked) comes from its own converged deflated solve
                result.vectors[b], result.energies[b], result.residuals[b] = state.vector, state.energy, state.residual
                result.asked[b] = tol * max(1.0, abs(state.energy))
                result.converged[b] = state.residual <= result.asked[b]
                result.extra_applications[b] += state.iterations
                if second is not None:
                    result.gaps[b], gap_missed[b] = state.gap, False
                why = f"the {self.fallback.name} fallback reached residual {state.residual:.2e}"
                if result.converged[b]:
                    result.retries[b] = SETTLED_FALLBACK
                    logger.info("batched Lanczos: sample %d settled by the %s fallback", b, self.fallback.name)
                    continue
            self._accept_usable(result, second, b, gap_missed[b], why)

    def _accept_usable(self, result: BatchedSolve, second: BatchedSolve | None, b: int, gap_missed: bool, why: str) -> None:
        """Stage 3 (class docstring) for sample ``b``: SETTLED_USABLE with a WARNING log, or NotConvergedError."""
        checks = [("ground state", result.residuals[b], result.asked[b])]
        if gap_missed:
            checks.append(("gap (deflated) solve", second.residuals[b], second.asked[b]))
        for what, residual, asked in checks:
            if not residual <= self.usable * asked:
                phase = "free" if second is not None else "nudged"
                raise NotConvergedError(
                    f"batched Lanczos did not converge for sample {b} of {len(result.energies)} ({phase} phase, {what}): "
                    f"residual {residual:.2e} (asked {asked:.2e}, usable up to {self.usable:g}x that) after "
                    f"max_blocks={self.max_blocks} blocks, a retry of retry_blocks={self.retry_blocks} blocks of "
                    f"max_steps={self.max_steps} steps, and {why}; raise max_steps, max_blocks or retry_blocks, "
                    "or choose another fallback (SpinSystem(batched={...}) or fit(solver_options={...})), or loosen tol"
                )
        result.retries[b] = SETTLED_USABLE
        logger.warning("batched Lanczos: sample %d accepted above its tolerance (%s; within usable=%g times the "
                       "residual asked)", b, ", ".join(f"{w} residual {r:.2e}, asked {a:.2e}" for w, r, a in checks),
                       self.usable)

    @property
    def schedule(self) -> dict[str, int]:
        """The learned block lengths {"phase@tol": steps} (a copy; JSON data: a checkpoint keeps it)."""
        return dict(self.learned)

    def restore(self, schedule: dict[str, int]) -> None:
        """Continue from ``schedule`` (as ``schedule`` returned it): a resumed run then solves as the
        straight one did. ValueError for lengths that are not positive multiples of STEP_QUANTUM."""
        for key, steps in schedule.items():
            if not (isinstance(steps, (int, np.integer)) and steps >= STEP_QUANTUM and steps % STEP_QUANTUM == 0):
                raise ValueError(f"schedule[{key!r}] must be a positive multiple of {STEP_QUANTUM}, got {steps!r}")
        self.learned = {str(key): int(steps) for key, steps in schedule.items()}

    def working_set(self, n_qubits: int | None = None, itemsize: int | None = None, batch: int = 1) -> int:
        """State vectors (of 2^n amplitudes) a solve of ``batch`` samples holds at once: per sample
        SAMPLE_VECTORS plus its vector factors, and the Krylov bases of the chunks solved at once
        (``workers`` slices of ``chunk_size`` samples, ``max_steps`` rows each). ``n_qubits`` and
        ``itemsize`` default to the table's (8 bytes real, 16 complex)."""
        n_qubits = self.table.n_qubits if n_qubits is None else int(n_qubits)
        itemsize = np.dtype(self.dtype).itemsize if itemsize is None else int(itemsize)
        dim = 1 << n_qubits
        bits = cpu_compact_bits()
        # vector factors in state vectors: full ones one each, compact ones their rows' share (compact_points)
        vector_factors = sum(1.0 if bits is None else compact_length(n_qubits, self.table.support(x), bits) / dim
                             for x, members in self.table.groups.items() if x != 0 and np.any(self.table.z_masks[members] != 0))
        chunk = chunk_size(batch, self.max_steps, dim, itemsize)
        workers = default_workers() if self.workers is None else self.workers
        concurrent = min(batch, chunk * min(workers, -(-batch // chunk)))
        return int(np.ceil(batch * (SAMPLE_VECTORS + vector_factors))) + concurrent * self.max_steps
