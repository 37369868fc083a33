// The grouped Pauli-sum application as an XLA FFI handler (CPU), for the JAX Lanczos solver:
//
//     (H psi)[c] = d_0[c] psi[c] + sum_g f_g[c] psi[c xor x_g],
//
// with f_g a scalar or a vector over c (PauliTable.compile's grouped form), a vector stored in full
// or compact (compile's compact_bits = period: f_g[c] read from row pext(c >> period, rows_g), column
// c mod 2^period, of its compact rows; a row holds whole register chunks). The state is read
// as doubles (a complex state interleaves re/im, so its flip x becomes 2x on the double index)
// in chunks of kChunk doubles held in registers across all groups: per group and chunk, one
// load per register at (c xor x), its lanes permuted in register by x's lowest bits (complex
// factors need no lane shuffle: two sums per register, Problem::chunk), each product added as it
// is loaded, two scalar flips of whole chunks summed before they join the register's sum (real
// states), and with AVX2 a complex chunk in two passes of half its registers (so that its sums fit
// the 16 vector registers: spilled sums and partner arrays had cost 1.4-1.8x on 2^16..2^24
// amplitudes). AVX-512's 32 registers hold a complex chunk's 2 x 4 sums in one pass, which halves
// the per-group work (index, factor row, dispatch) that dominates small states: 10-qubit sensor
// model, 5.0 instead of 7.0 us per application and sample (benchmarks/NOTES.md; chunks of 64 doubles
// in one pass, 2 x 8 sums, took 6.2 us).
// One pass writes the output; each group costs one load per register (no read-modify-write of
// the output), which is what makes it 4-6x faster than XLA's fused rolled slices on CPU. (Tiles
// of 2^12..2^16 doubles with the far groups added tile by tile were measured too: no faster on
// 2^20..2^24 amplitudes, the read-modify-write of the output costing what the streams saved.)
// The state may carry leading batch axes (diagonal and factors the same, one state's H each):
// the samples run one after another; chunks of a long state are split between the calling
// thread and XLA's intra-op thread pool, a short one (below kParallelMin) stays on the caller.
//
// The Lanczos variant fuses a step's one pass over the state (solvers/lanczos_passes.py, for
// jax_lanczos._extend):
//
//     w = H v - shift v - b_prev v_prev,   sums = (Re <v, w>, Im <v, w>, <w, w>),
//
// the sums accumulated per task of kChunksPerTask chunks and added in task order, so that the
// result does not depend on which thread ran which task. A third handler does the thick restart
// in place (lanczos_restart, further down).
//
// Compiled, cached and registered at first use by qeqprop/native/build.py against the installed
// jaxlib's FFI headers (-O3 -march=native).

#include <algorithm>
#include <atomic>
#include <complex>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#if defined(__BMI2__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int kWidth = 8;  // doubles per SIMD register
#else
constexpr int kWidth = 4;
#endif
typedef double vec __attribute__((vector_size(8 * kWidth)));

constexpr int kUnroll = 32 / kWidth;        // registers per chunk
constexpr int64_t kChunk = kWidth * kUnroll;  // doubles per chunk (32)
constexpr int64_t kParallelMin = 1 << 15;   // doubles below which one thread does it all
constexpr int64_t kChunksPerTask = 64;      // chunks claimed at a time by a thread

#define QEQPROP_INLINE inline __attribute__((always_inline))

QEQPROP_INLINE vec load(const double* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

QEQPROP_INLINE void store(double* p, vec v) { std::memcpy(p, &v, sizeof v); }

// lanes k -> v[k xor L] (L < kWidth): the in-register part of a flip.
template <int L, size_t... I>
QEQPROP_INLINE vec xor_lanes(vec v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (int(I) ^ L)...);
}

template <int L>
QEQPROP_INLINE vec xor_lanes(vec v) {
  if constexpr (L == 0) return v;
  else return xor_lanes<L>(v, std::make_index_sequence<kWidth>{});
}

// a * s for interleaved complex numbers (re, im, re, im, ...): re(a) s + im(a) (-im s, re s).
QEQPROP_INLINE vec complex_mul(vec a, vec s) {
  vec re, im, swapped, sign;
  for (int k = 0; k < kWidth; ++k) {
    re[k] = a[k & ~1];
    im[k] = a[k | 1];
    swapped[k] = s[k ^ 1];
    sign[k] = (k & 1) ? 1.0 : -1.0;
  }
  return re * s + im * (swapped * sign);
}

// The complex products from Problem::chunk's two sums: lanes (P_even - P_odd, Q_even + Q_odd).
template <size_t... I>
QEQPROP_INLINE vec combine(vec p, vec q, std::index_sequence<I...>) {
  return __builtin_shufflevector(p - xor_lanes<1>(p), q + xor_lanes<1>(q), (int(I) & 1 ? int(I) + kWidth : int(I))...);
}

QEQPROP_INLINE vec combine(vec p, vec q) { return combine(p, q, std::make_index_sequence<kWidth>{}); }

// factor * s: a real product, or a complex one on interleaved lanes.
template <bool Complex>
QEQPROP_INLINE vec times(vec factor, vec s) {
  if constexpr (Complex) return complex_mul(factor, s);
  else return factor * s;
}

// A scalar factor in every lane: re (real), or (re, im) interleaved (complex).
template <bool Complex>
QEQPROP_INLINE vec broadcast(double re, double im) {
  vec f;
  for (int l = 0; l < kWidth; ++l) f[l] = (Complex && (l & 1)) ? im : re;
  return f;
}

// conj(a) b accumulated lane by lane: re += a b (summed over the lanes: Re), and for complex
// lanes im += a_re b_im - a_im b_re (summed: Im).
template <bool Complex>
QEQPROP_INLINE void add_dot(vec a, vec b, vec& re, vec& im) {
  re += a * b;
  if constexpr (Complex) {
    vec sign;
    for (int l = 0; l < kWidth; ++l) sign[l] = (l & 1) ? -1.0 : 1.0;
    im += a * (xor_lanes<1>(b) * sign);
  }
}

// The bits of value at the set bits of mask, packed into the low bits (BMI2's pext).
QEQPROP_INLINE uint64_t extract_bits(uint64_t value, uint64_t mask) {
#if defined(__BMI2__)
  return _pext_u64(value, mask);
#else
  uint64_t out = 0;
  for (uint64_t bit = 1; mask; mask &= mask - 1, bit <<= 1)
    if (value & mask & (~mask + 1)) out |= bit;
  return out;
#endif
}

QEQPROP_INLINE double lane_sum(vec v) {
  double total = 0.0;
  for (int l = 0; l < kWidth; ++l) total += v[l];
  return total;
}

struct Sums {
  double overlap_re = 0, overlap_im = 0, squared = 0;
};

struct Problem {
  const double* diag;            // d_0, as doubles
  const double* psi;             // the state (v), as doubles
  double* out;                   // H psi, or w in the Lanczos variant
  const int64_t* masks;          // x_g on the double index (complex: 2 x_g)
  const int64_t* slots;          // -1: f_g = scalars[g]; else f_g = vectors[slots[g]]
  const double* scalars;         // one double (real) or two (complex) per group
  const double* const* vectors;  // vector factors, as doubles
  const int64_t* rows;           // per group: -1, a full vector; else a compact one's row bits (support >> period)
  int64_t period;                // a compact factor's row length is 2^period amplitudes (fewer for a shorter state)
  const vec* lanes;              // per group: its scalar factor in every lane and (complex) swapped (run)
  int64_t groups;
  int64_t length;                // doubles in the state
  const double* previous;        // Lanczos variant: v_prev (else unused)
  double* copy;                  // Lanczos variant: receives v, in place of v_prev (same buffer)
  double shift, b_prev;          // Lanczos variant: w = H v - shift v - b_prev v_prev

  // Amplitude a's position in group g's factor vector (compact: its row and column).
  QEQPROP_INLINE int64_t factor_index(int64_t g, int64_t a) const {
    if (rows[g] < 0) return a;
    const uint64_t row = extract_bits(uint64_t(a) >> period, uint64_t(rows[g]));
    return int64_t((row << period) | (uint64_t(a) & ((uint64_t(1) << period) - 1)));
  }

  // acc[u] += f psi[c' xor x] (and cross[u] += swap(f) psi[c' xor x], complex) for registers
  // c' = c + kWidth (first + u), u < U: register (first + u) xor block of the partner chunk, its
  // lanes permuted by x's low bits L; f one scalar register or (Vector) the factor's registers at
  // fv. Each product is added as it is loaded (no array of partner registers: with it, the
  // compiler spilled the chunk's registers to the stack on every group). Aligned: block 0 and
  // L 0 (a flip of whole chunks, most groups of a long state) without the index arithmetic.
  template <int L, int U, bool Complex, bool Vector, bool Aligned>
  static QEQPROP_INLINE void add_group(vec* acc, vec* cross, vec f, vec swapped, const double* fv, const double* partner,
                                       int64_t block, int first) {
    for (int u = 0; u < U; ++u) {
      const vec s = xor_lanes<L>(load(partner + (Aligned ? first + u : (first + u) ^ block) * kWidth));
      if constexpr (Vector) {
        f = load(fv + kWidth * (first + u));
        if constexpr (Complex) swapped = xor_lanes<1>(f);
      }
      acc[u] += f * s;
      if constexpr (Complex) cross[u] += swapped * s;
    }
  }

  template <int U, bool Complex, bool Vector>
  static QEQPROP_INLINE void add_group(vec* acc, vec* cross, vec f, vec swapped, const double* fv, const double* partner,
                                       int64_t x, int first) {
    const int64_t block = (x & (kChunk - 1)) / kWidth;
    if ((x & (kChunk - 1)) == 0) return add_group<0, U, Complex, Vector, true>(acc, cross, f, swapped, fv, partner, 0, first);
    switch (x & (kWidth - 1)) {
#define QEQPROP_CASE(L) \
  case L:               \
    add_group<(L) % kWidth, U, Complex, Vector, false>(acc, cross, f, swapped, fv, partner, block, first); \
    break;
      QEQPROP_CASE(0) QEQPROP_CASE(1) QEQPROP_CASE(2) QEQPROP_CASE(3)
      QEQPROP_CASE(4) QEQPROP_CASE(5) QEQPROP_CASE(6) QEQPROP_CASE(7)
#undef QEQPROP_CASE
    }
  }

  // One chunk of (H psi) (or of w, accumulating the sums' registers). A complex chunk keeps two
  // sums per register so that no group shuffles its factor's lanes (interleaved f = (f_re, f_im),
  // s = (s_re, s_im)):
  //
  //     P += f s   (lanes f_re s_re, f_im s_im),   Q += swap(f) s   (lanes f_im s_re, f_re s_im),
  //
  // and f s = (P_even - P_odd, Q_even + Q_odd) once per register after all groups (combine).
  // The chunk runs in passes of U registers over all groups, U = kUnroll (real; complex with
  // AVX-512's 32 registers) or kUnroll / 2 (complex with AVX2: its two sums per register), so that
  // the sums stay in the vector registers.
  template <bool Complex, bool Lanczos>
  QEQPROP_INLINE void chunk(int64_t c, vec* sums) const {
    constexpr int U = Complex && kWidth < 8 ? kUnroll / 2 : kUnroll;
    constexpr int64_t per = Complex ? 2 : 1;
    for (int first = 0; first < kUnroll; first += U) {
      vec acc[U], cross[U];
      for (int u = 0; u < U; ++u) {
        const vec d = load(diag + c + kWidth * (first + u)), v = load(psi + c + kWidth * (first + u));
        acc[u] = d * v;
        if constexpr (Complex) cross[u] = xor_lanes<1>(d) * v;
      }
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t x = masks[g];
        const double* partner = psi + (c ^ (x & ~(kChunk - 1)));
        if (!Complex && g + 1 < groups && ((x | masks[g + 1]) & (kChunk - 1)) == 0 && slots[g] < 0 && slots[g + 1] < 0) {
          // two scalar groups flipping whole chunks (a real state): f s + f' s' summed before it joins
          // the chunk's sum, so that each sum register waits for one addition per two groups
          const double* other = psi + (c ^ masks[g + 1]);
          const vec f = lanes[2 * g], f_other = lanes[2 * (g + 1)];
          for (int u = 0; u < U; ++u)
            acc[u] += f * load(partner + kWidth * (first + u)) + f_other * load(other + kWidth * (first + u));
          ++g;
        } else if (slots[g] < 0)
          add_group<U, Complex, false>(acc, cross, lanes[2 * g], lanes[2 * g + 1], nullptr, partner, x, first);
        else
          add_group<U, Complex, true>(acc, cross, vec{}, vec{}, vectors[slots[g]] + per * factor_index(g, c / per), partner,
                                      x, first);
      }
      if constexpr (Complex)
        for (int u = 0; u < U; ++u) acc[u] = combine(acc[u], cross[u]);
      for (int u = 0; u < U; ++u) {
        const int64_t at = c + kWidth * (first + u);
        if constexpr (Lanczos) {
          const vec v = load(psi + at);
          acc[u] -= shift * v + b_prev * load(previous + at);
          store(copy + at, v);  // after v_prev's register at this place was read
          add_dot<Complex>(v, acc[u], sums[0], sums[1]);
          sums[2] += acc[u] * acc[u];
        }
        store(out + at, acc[u]);
      }
    }
  }

  // Chunks [first, last) as one task.
  template <bool Complex, bool Lanczos>
  Sums chunks(int64_t first, int64_t last) const {
    vec sums[3] = {vec{}, vec{}, vec{}};
    for (int64_t k = first; k < last; ++k) chunk<Complex, Lanczos>(k * kChunk, sums);
    return Sums{lane_sum(sums[0]), lane_sum(sums[1]), lane_sum(sums[2])};
  }

  // States shorter than one chunk (a few qubits), element by element.
  template <typename S, bool Lanczos>
  Sums small() const {
    const S* p = reinterpret_cast<const S*>(psi);
    const S* d = reinterpret_cast<const S*>(diag);
    const S* f = reinterpret_cast<const S*>(scalars);
    const S* before = reinterpret_cast<const S*>(previous);
    S* o = reinterpret_cast<S*>(out);
    const int64_t dim = length * sizeof(double) / sizeof(S), half = sizeof(S) / sizeof(double) - 1;
    Sums total;
    for (int64_t c = 0; c < dim; ++c) {
      S acc = d[c] * p[c];
      for (int64_t g = 0; g < groups; ++g) {
        const S factor = slots[g] < 0 ? f[g] : reinterpret_cast<const S*>(vectors[slots[g]])[factor_index(g, c)];
        acc += factor * p[c ^ (masks[g] >> half)];
      }
      if constexpr (Lanczos) {
        acc -= shift * p[c] + b_prev * before[c];
        reinterpret_cast<S*>(copy)[c] = p[c];
        const std::complex<double> overlap = std::conj(std::complex<double>(p[c])) * std::complex<double>(acc);
        total.overlap_re += overlap.real();
        total.overlap_im += overlap.imag();
        total.squared += std::norm(std::complex<double>(acc));
      }
      o[c] = acc;
    }
    return total;
  }
};

// Runs task(t) for t = 0 .. tasks-1 on this thread and, when `parallel`, on XLA's intra-op pool
// too. Tasks are claimed from a shared counter: a helper that starts late finds nothing left,
// and the caller waits only for claimed tasks, so it never waits on a helper the pool has not
// started (nor touches `task`'s captures after returning).
template <typename Task>
void parallel_tasks(ffi::ThreadPool& pool, int64_t tasks, bool parallel, const Task& task) {
  const int64_t helpers = parallel ? std::max<int64_t>(pool.num_threads() - 1, 0) : 0;
  struct Shared {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto shared = std::make_shared<Shared>();
  auto work = [shared, tasks, task]() {
    int64_t t;
    while ((t = shared->next.fetch_add(1)) < tasks) {
      task(t);
      shared->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule(decltype(work)(work));
  work();
  while (shared->done.load(std::memory_order_acquire) < tasks) std::this_thread::yield();
}

// Runs the problem's chunks as tasks of kChunksPerTask (in parallel for long states) and
// returns the tasks' sums added in task order.
template <bool Complex, bool Lanczos>
Sums run(const Problem& problem, ffi::ThreadPool& pool) {
  if (problem.length < kChunk) {
    if constexpr (Complex) return problem.small<std::complex<double>, Lanczos>();
    else return problem.small<double, Lanczos>();
  }
  std::vector<vec> lanes(2 * problem.groups);  // vector groups' entries stay unused
  for (int64_t g = 0; g < problem.groups; ++g) {
    const double* f = problem.scalars + (Complex ? 2 * g : g);
    lanes[2 * g] = broadcast<Complex>(f[0], Complex ? f[1] : 0.0);
    if constexpr (Complex) lanes[2 * g + 1] = broadcast<true>(f[1], f[0]);
  }
  Problem with_lanes = problem;
  with_lanes.lanes = lanes.data();
  const int64_t total = problem.length / kChunk;
  const int64_t tasks = (total + kChunksPerTask - 1) / kChunksPerTask;
  std::vector<Sums> parts(tasks);
  Sums* out = parts.data();
  parallel_tasks(pool, tasks, problem.length >= kParallelMin, [&problem = with_lanes, out, total](int64_t t) {
    const int64_t first = t * kChunksPerTask;
    out[t] = problem.chunks<Complex, Lanczos>(first, std::min(first + kChunksPerTask, total));
  });
  Sums result;
  for (const Sums& part : parts) {
    result.overlap_re += part.overlap_re;
    result.overlap_im += part.overlap_im;
    result.squared += part.squared;
  }
  return result;
}

// A problem with the storage its mask and factor pointers point into; strides[i] the doubles per
// sample of factor vector i (full: the state's; compact: its rows').
struct Described {
  Problem problem{};
  std::vector<int64_t> doubled;
  std::vector<const double*> columns;
  std::vector<int64_t> strides;
};

// Checks the operands of `batch` samples (stacked along the leading axes; 1 for the Lanczos
// variant) and fills in the problem's operator part for sample 0 (everything but out/previous).
template <ffi::DataType T>
ffi::Error describe(Described& described, const ffi::Buffer<T>& diag, const ffi::Buffer<T>& scalars, const ffi::Buffer<T>& psi,
                    const ffi::RemainingArgs& vectors, ffi::Span<const int64_t> masks, ffi::Span<const int64_t> slots,
                    ffi::Span<const int64_t> rows, int64_t period, int64_t batch = 1) {
  constexpr int64_t per = T == ffi::DataType::C128 ? 2 : 1;
  Problem& problem = described.problem;
  std::vector<int64_t>& doubled = described.doubled;
  std::vector<const double*>& columns = described.columns;
  const int64_t total = int64_t(psi.element_count()), dim = total / batch;
  if (int64_t(diag.element_count()) != total)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: diagonal and state differ in length");
  if (masks.size() != slots.size() || rows.size() != slots.size() || int64_t(scalars.element_count()) != batch * int64_t(masks.size()))
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: masks, slots, rows and scalars differ in length");
  if (period < 0 || period > 40 || ((int64_t(1) << period) * per) % kChunk != 0)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: a compact row must hold whole register chunks");
  std::vector<int64_t>& strides = described.strides;
  strides.assign(vectors.size(), -1);
  for (size_t g = 0; g < slots.size(); ++g)
    if (slots[g] >= 0 && slots[g] < int64_t(vectors.size()))
      strides[slots[g]] = per * (rows[g] < 0 ? dim : std::min(int64_t(1) << period, dim) << __builtin_popcountll(uint64_t(rows[g])));
  for (size_t i = 0; i < vectors.size(); ++i) {
    auto v = vectors.get<ffi::Buffer<T>>(i);
    if (v.has_error()) return v.error();
    if (strides[i] < 0 || int64_t(v->element_count()) * per != batch * strides[i])
      return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                        "qeqprop pauli_apply: a factor vector's length is not the state's (full) or its compact rows'");
    columns.push_back(reinterpret_cast<const double*>(v->untyped_data()));
  }
  doubled.assign(masks.begin(), masks.end());
  for (size_t g = 0; g < doubled.size(); ++g) {
    if (doubled[g] < 0 || doubled[g] >= dim || slots[g] >= int64_t(columns.size()))
      return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: a flip mask or factor slot is out of range");
    doubled[g] *= per;
  }
  problem.diag = reinterpret_cast<const double*>(diag.untyped_data());
  problem.psi = reinterpret_cast<const double*>(psi.untyped_data());
  problem.masks = doubled.data();
  problem.slots = slots.begin();
  problem.rows = rows.begin();
  problem.period = period;
  problem.scalars = reinterpret_cast<const double*>(scalars.untyped_data());
  problem.vectors = columns.data();
  problem.groups = int64_t(doubled.size());
  problem.length = dim * per;
  return ffi::Error::Success();
}

// out_b = H_b psi_b for a batch: psi (..., D), its leading axes the batch (none: one state),
// diag and every factor vector of psi's shape, scalars (..., groups). The samples run one
// after another on this thread (a state long enough for the thread pool, kParallelMin doubles,
// also on the pool): batched Lanczos calls this from several threads, one core each.
template <ffi::DataType T>
ffi::Error apply(ffi::ThreadPool pool, ffi::Buffer<T> diag, ffi::Buffer<T> scalars, ffi::Buffer<T> psi,
                 ffi::RemainingArgs vectors, ffi::ResultBuffer<T> out, ffi::Span<const int64_t> masks,
                 ffi::Span<const int64_t> slots, ffi::Span<const int64_t> rows, int64_t period) {
  const auto dims = psi.dimensions();
  if (dims.size() == 0)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: the state must have an amplitude axis");
  if (psi.element_count() == 0) return ffi::Error::Success();
  const int64_t batch = int64_t(psi.element_count()) / dims.back();
  Described described;
  if (ffi::Error error = describe(described, diag, scalars, psi, vectors, masks, slots, rows, period, batch); error.failure())
    return error;
  const Problem& first = described.problem;
  if (out->element_count() != psi.element_count())
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop pauli_apply: output and state differ in length");
  std::vector<const double*> columns(described.columns);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t offset = b * first.length;
    Problem problem = first;
    problem.diag += offset;
    problem.psi += offset;
    problem.out = reinterpret_cast<double*>(out->untyped_data()) + offset;
    problem.scalars += b * first.groups * (T == ffi::DataType::C128 ? 2 : 1);
    for (size_t i = 0; i < columns.size(); ++i) columns[i] = described.columns[i] + b * described.strides[i];
    problem.vectors = columns.data();
    run<T == ffi::DataType::C128, false>(problem, pool);
  }
  return ffi::Error::Success();
}

// w = H v - shift v - b_prev v_prev and sums = (Re <v, w>, Im <v, w>, <w, w>); coefficients = (shift, b_prev);
// v is copied into v_prev's buffer (aliased to the third result), so that the caller's next
// v_prev needs no copy of its own.
template <ffi::DataType T>
ffi::Error lanczos_residual(ffi::ThreadPool pool, ffi::Buffer<T> diag, ffi::Buffer<T> scalars, ffi::Buffer<T> v,
                            ffi::Buffer<T> previous, ffi::Buffer<ffi::F64> coefficients, ffi::RemainingArgs vectors,
                            ffi::ResultBuffer<T> w, ffi::ResultBuffer<ffi::F64> sums, ffi::ResultBuffer<T> copy,
                            ffi::Span<const int64_t> masks, ffi::Span<const int64_t> slots, ffi::Span<const int64_t> rows,
                            int64_t period) {
  Described described;
  if (ffi::Error error = describe(described, diag, scalars, v, vectors, masks, slots, rows, period); error.failure()) return error;
  Problem& problem = described.problem;
  if (w->element_count() != v.element_count() || previous.element_count() != v.element_count() ||
      copy->element_count() != v.element_count() || coefficients.element_count() != 2 || sums->element_count() != 3)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "qeqprop lanczos_residual: v, v_prev and w differ in length, or coefficients/sums are not of length 2/3");
  problem.out = reinterpret_cast<double*>(w->untyped_data());
  problem.previous = reinterpret_cast<const double*>(previous.untyped_data());
  problem.copy = reinterpret_cast<double*>(copy->untyped_data());
  problem.shift = coefficients.typed_data()[0];
  problem.b_prev = coefficients.typed_data()[1];
  const Sums result = run<T == ffi::DataType::C128, true>(problem, pool);
  double* out = sums->typed_data();
  out[0] = result.overlap_re;
  out[1] = result.overlap_im;
  out[2] = result.squared;
  return ffi::Error::Success();
}

// The thick restart of jax_lanczos.thick_restart_lanczos (solvers/lanczos_passes.py), in place on the solver's buffers,
// for real weights Y (m, k) and couplings s (k):
//
//     u_i = sum_j Y[j, i] v_j   (written over basis rows 0..k-1),
//     r = v - sum_i u_i <u_i, v>,   v = r / |r|,   v_prev = sum_i s_i u_i,
//
// in three passes (rows whose weights are all zero are not read), or nothing at all when
// `skip` is set: after the final cycle, whose kept vectors are never used. Per register column
// the k results are accumulated (8 at a time) before any is written, so writing u_i over the
// rows being read is safe.
constexpr int64_t kRestartBlock = 512;  // doubles per task
constexpr int64_t kMaxKept = 64;

struct Restart {
  const double* weights;  // (m, k)
  const double* couplings;
  double* basis;          // (m, length)
  double* v;
  double* v_prev;
  const int64_t* rows;    // rows with a nonzero weight
  int64_t used, k, length;
};

template <int K>
QEQPROP_INLINE void accumulate(const Restart& r, int64_t i0, int64_t t, vec* u) {
  vec acc[K];
  for (int i = 0; i < K; ++i) acc[i] = vec{};
  for (int64_t q = 0; q < r.used; ++q) {
    const vec row = load(r.basis + r.rows[q] * r.length + t);
    const double* w = r.weights + r.rows[q] * r.k + i0;
    for (int i = 0; i < K; ++i) acc[i] += w[i] * row;
  }
  for (int i = 0; i < K; ++i) u[i0 + i] = acc[i];
}

// Pass 1 over [first, last): u_i in place, and the tile's <u_i, v> into dots (2k doubles).
template <bool Complex>
void restart_kept(const Restart& r, int64_t first, int64_t last, double* dots) {
  vec u[kMaxKept], re[kMaxKept], im[kMaxKept];
  for (int64_t i = 0; i < r.k; ++i) re[i] = im[i] = vec{};
  for (int64_t t = first; t < last; t += kWidth) {
    int64_t i0 = 0;
    for (; i0 + 8 <= r.k; i0 += 8) accumulate<8>(r, i0, t, u);
    switch (r.k - i0) {
#define QEQPROP_CASE(K) \
  case K:               \
    accumulate<K>(r, i0, t, u); \
    break;
      QEQPROP_CASE(1) QEQPROP_CASE(2) QEQPROP_CASE(3) QEQPROP_CASE(4) QEQPROP_CASE(5) QEQPROP_CASE(6) QEQPROP_CASE(7)
#undef QEQPROP_CASE
      default:
        break;
    }
    const vec v = load(r.v + t);
    for (int64_t i = 0; i < r.k; ++i) {
      store(r.basis + i * r.length + t, u[i]);
      add_dot<Complex>(u[i], v, re[i], im[i]);
    }
  }
  for (int64_t i = 0; i < r.k; ++i) {
    dots[2 * i] = lane_sum(re[i]);
    dots[2 * i + 1] = lane_sum(im[i]);
  }
}

// Pass 2: v -= sum_i u_i <u_i, v>; returns the tile's |v|^2.
template <bool Complex>
double restart_project(const Restart& r, int64_t first, int64_t last, const double* dots) {
  vec squared = vec{};
  for (int64_t t = first; t < last; t += kWidth) {
    vec v = load(r.v + t);
    for (int64_t i = 0; i < r.k; ++i)
      v -= times<Complex>(broadcast<Complex>(dots[2 * i], dots[2 * i + 1]), load(r.basis + i * r.length + t));
    store(r.v + t, v);
    squared += v * v;
  }
  return lane_sum(squared);
}

// Pass 3: v /= |v|, v_prev = sum_i s_i u_i.
void restart_finish(const Restart& r, int64_t first, int64_t last, double inverse_norm) {
  for (int64_t t = first; t < last; t += kWidth) {
    store(r.v + t, load(r.v + t) * inverse_norm);
    vec previous = vec{};
    for (int64_t i = 0; i < r.k; ++i) previous += r.couplings[i] * load(r.basis + i * r.length + t);
    store(r.v_prev + t, previous);
  }
}

template <ffi::DataType T>
ffi::Error restart(ffi::ThreadPool pool, ffi::Buffer<ffi::F64> weights, ffi::Buffer<ffi::F64> couplings,
                   ffi::Buffer<ffi::F64> skip, ffi::Buffer<T> basis, ffi::Buffer<T> v, ffi::Buffer<T> v_prev,
                   ffi::ResultBuffer<T> basis_out, ffi::ResultBuffer<T> v_out, ffi::ResultBuffer<T> v_prev_out) {
  constexpr bool kComplex = T == ffi::DataType::C128;
  constexpr int64_t per = kComplex ? 2 : 1;
  const auto wd = weights.dimensions(), bd = basis.dimensions();
  if (wd.size() != 2 || bd.size() != 2 || wd[0] != bd[0] || int64_t(couplings.element_count()) != wd[1] ||
      int64_t(v.element_count()) != bd[1] || int64_t(v_prev.element_count()) != bd[1] || wd[1] > kMaxKept ||
      wd[1] > bd[0])
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "qeqprop lanczos_restart: weights (m, k <= 64), couplings (k), basis (m, dim), v and v_prev (dim) do not match");
  if (basis_out->untyped_data() != basis.untyped_data() || v_out->untyped_data() != v.untyped_data() ||
      v_prev_out->untyped_data() != v_prev.untyped_data())
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop lanczos_restart: the buffers must be aliased in place");
  if (skip.typed_data()[0] != 0.0) return ffi::Error::Success();
  if (bd[1] * per < kWidth)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop lanczos_restart: states shorter than one register");
  const int64_t m = bd[0], k = wd[1], length = bd[1] * per;
  const double* y = weights.typed_data();
  std::vector<int64_t> rows;
  for (int64_t j = 0; j < m; ++j)
    if (std::any_of(y + j * k, y + (j + 1) * k, [](double w) { return w != 0.0; })) rows.push_back(j);
  const Restart r{y, couplings.typed_data(), reinterpret_cast<double*>(basis_out->untyped_data()),
                  reinterpret_cast<double*>(v_out->untyped_data()), reinterpret_cast<double*>(v_prev_out->untyped_data()),
                  rows.data(), int64_t(rows.size()), k, length};
  const int64_t blocks = (length + kRestartBlock - 1) / kRestartBlock;
  const bool parallel = length >= kParallelMin;
  auto range = [length](int64_t block) { return std::make_pair(block * kRestartBlock, std::min((block + 1) * kRestartBlock, length)); };
  std::vector<double> dots(blocks * 2 * k), squares(blocks);
  double* d = dots.data();
  double* sq = squares.data();
  parallel_tasks(pool, blocks, parallel, [&r, d, k, range](int64_t b) {
    auto [first, last] = range(b);
    restart_kept<kComplex>(r, first, last, d + b * 2 * k);
  });
  std::vector<double> total(2 * k, 0.0);  // added in block order: the same for any thread count
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < 2 * k; ++i) total[i] += dots[b * 2 * k + i];
  const double* overlaps = total.data();
  parallel_tasks(pool, blocks, parallel, [&r, sq, overlaps, range](int64_t b) {
    auto [first, last] = range(b);
    sq[b] = restart_project<kComplex>(r, first, last, overlaps);
  });
  double norm2 = 0.0;
  for (int64_t b = 0; b < blocks; ++b) norm2 += squares[b];
  const double inverse = 1.0 / std::max(std::sqrt(norm2), 1e-300);
  parallel_tasks(pool, blocks, parallel, [&r, inverse, range](int64_t b) {
    auto [first, last] = range(b);
    restart_finish(r, first, last, inverse);
  });
  return ffi::Error::Success();
}

}  // namespace

#define QEQPROP_APPLY(T)                                               \
  ffi::Ffi::Bind()                                                     \
      .Ctx<ffi::ThreadPool>()                                          \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .RemainingArgs()                                                 \
      .Ret<ffi::Buffer<T>>()                                           \
      .Attr<ffi::Span<const int64_t>>("masks")                         \
      .Attr<ffi::Span<const int64_t>>("slots")                         \
      .Attr<ffi::Span<const int64_t>>("rows")                          \
      .Attr<int64_t>("period")

#define QEQPROP_LANCZOS(T)                                             \
  ffi::Ffi::Bind()                                                     \
      .Ctx<ffi::ThreadPool>()                                          \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .RemainingArgs()                                                 \
      .Ret<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<ffi::F64>>()                                    \
      .Ret<ffi::Buffer<T>>()                                           \
      .Attr<ffi::Span<const int64_t>>("masks")                         \
      .Attr<ffi::Span<const int64_t>>("slots")                         \
      .Attr<ffi::Span<const int64_t>>("rows")                          \
      .Attr<int64_t>("period")

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropPauliApplyF64, apply<ffi::DataType::F64>, QEQPROP_APPLY(ffi::DataType::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropPauliApplyC128, apply<ffi::DataType::C128>, QEQPROP_APPLY(ffi::DataType::C128));
XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosResidualF64, lanczos_residual<ffi::DataType::F64>,
                              QEQPROP_LANCZOS(ffi::DataType::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosResidualC128, lanczos_residual<ffi::DataType::C128>,
                              QEQPROP_LANCZOS(ffi::DataType::C128));

#define QEQPROP_RESTART(T)                                             \
  ffi::Ffi::Bind()                                                     \
      .Ctx<ffi::ThreadPool>()                                          \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<T>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosRestartF64, restart<ffi::DataType::F64>, QEQPROP_RESTART(ffi::DataType::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosRestartC128, restart<ffi::DataType::C128>, QEQPROP_RESTART(ffi::DataType::C128));
