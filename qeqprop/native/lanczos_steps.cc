// Steps of the batched Lanczos block (qeqprop/solvers/batched_lanczos.py, _block) as one XLA FFI
// call for a whole batch, so that a block's inner loop is not dozens of XLA ops on tiny vectors
// per step. For every sample b (one after another, on the calling thread) and step j = start ..
// start + count - 1, with the sample's operator H_b in pauli_apply.cc's grouped form:
//
//     basis[b, j] = v                               (complex states as interleaved (Re, Im) doubles)
//     w = H_b v,   w <- w - p_b (p_b^H w)            (deflated: p_b a unit vector, else skipped)
//     a_j = Re <v, w>,   w <- w - a_j v - b_prev v_prev
//     w <- w - V (V^H w)  over basis rows 0..j     ("full": one classical Gram-Schmidt pass)
//     w <- w - g_b (g_b^H w)                        ("ground": selective, g_b the guard vector)
//     b_j = |w|,   alive' = alive and b_j > 100 eps max(1, |a_j|)
//     v_prev <- v,   v <- alive' ? w / b_j : 0,   b_prev <- alive' ? b_j : 0
//
// (Lanczos 1950; selective orthogonalisation: Parlett & Scott 1979), the same arithmetic as the
// XLA scan it replaces (up to the order of additions). Outputs per sample and step: a_j,
// b_j (0 after a breakdown) and alive before the step. The basis, v and v_prev are updated in
// place (aliased); (b_prev, alive) go in and out as `state` (B, 2).
//
// The H application is pauli_apply.cc's Problem / run, included here with its handler symbols
// left out (they are defined once, by pauli_apply.cc's own translation unit).

#include <tuple>

#include "xla/ffi/api/ffi.h"

#pragma push_macro("XLA_FFI_DEFINE_HANDLER_SYMBOL")
#undef XLA_FFI_DEFINE_HANDLER_SYMBOL
#define XLA_FFI_DEFINE_HANDLER_SYMBOL(...)
#include "pauli_apply.cc"
#pragma pop_macro("XLA_FFI_DEFINE_HANDLER_SYMBOL")

namespace {

constexpr double kTiny = 100 * 2.220446049250313e-16;  // 100 eps (float64), the breakdown threshold

// (Re, Im) of conj(a) . b over n doubles (Complex: interleaved re/im pairs; Im is 0 for real).
template <bool Complex>
std::pair<double, double> dot(const double* a, const double* b, int64_t n) {
  vec re[4] = {vec{}, vec{}, vec{}, vec{}}, im[4] = {vec{}, vec{}, vec{}, vec{}};
  int64_t k = 0;
  for (; k + 4 * kWidth <= n; k += 4 * kWidth)
    for (int u = 0; u < 4; ++u) add_dot<Complex>(load(a + k + u * kWidth), load(b + k + u * kWidth), re[u], im[u]);
  for (; k + kWidth <= n; k += kWidth) add_dot<Complex>(load(a + k), load(b + k), re[0], im[0]);
  double r = lane_sum((re[0] + re[1]) + (re[2] + re[3])), i = lane_sum((im[0] + im[1]) + (im[2] + im[3]));
  for (; k < n; k += Complex ? 2 : 1) {
    if constexpr (Complex) {
      r += a[k] * b[k] + a[k + 1] * b[k + 1];
      i += a[k] * b[k + 1] - a[k + 1] * b[k];
    } else {
      r += a[k] * b[k];
    }
  }
  return {r, i};
}

// w <- w - c x for the number c = (re, im) (Complex: interleaved; im unused for real); returns
// |w|^2 after the update (summed on the way, sparing a pass for the norm).
template <bool Complex>
double subtract(double* w, double re, double im, const double* x, int64_t n) {
  const vec c = broadcast<Complex>(re, im);
  vec squares = vec{};
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const vec updated = load(w + k) - times<Complex>(c, load(x + k));
    store(w + k, updated);
    squares += updated * updated;
  }
  double total = lane_sum(squares);
  for (; k < n; k += Complex ? 2 : 1) {
    if constexpr (Complex) {
      const double xr = x[k], xi = x[k + 1];
      w[k] -= re * xr - im * xi;
      w[k + 1] -= re * xi + im * xr;
      total += w[k] * w[k] + w[k + 1] * w[k + 1];
    } else {
      w[k] -= re * x[k];
      total += w[k] * w[k];
    }
  }
  return total;
}

// w <- w - a v - b u (real a, b; explicit registers: the compiler cannot rule out aliasing);
// returns |w|^2 after the update.
double recurrence(double* w, double a, const double* v, double b, const double* u, int64_t n) {
  vec squares = vec{};
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const vec updated = load(w + k) - (a * load(v + k) + b * load(u + k));
    store(w + k, updated);
    squares += updated * updated;
  }
  double total = lane_sum(squares);
  for (; k < n; ++k) {
    w[k] -= a * v[k] + b * u[k];
    total += w[k] * w[k];
  }
  return total;
}

// out <- scale x.
void scaled(double* out, double scale, const double* x, int64_t n) {
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) store(out + k, scale * load(x + k));
  for (; k < n; ++k) out[k] = scale * x[k];
}

// out <- out + scale x.
void add_scaled(double* out, double scale, const double* x, int64_t n) {
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) store(out + k, load(out + k) + scale * load(x + k));
  for (; k < n; ++k) out[k] += scale * x[k];
}

// w <- w - p (p^H w); returns |w|^2 after the update.
template <bool Complex>
double project_out(double* w, const double* p, int64_t n) {
  const auto [re, im] = dot<Complex>(p, w, n);
  return subtract<Complex>(w, re, im, p, n);
}

// One sample's buffers for Steps::advance.
struct Sample {
  double* basis;          // (m, n) rows in real view
  double* v;              // (n)
  double* v_prev;         // (n)
  const double* guard;    // (n) or null
  const double* deflate;  // (n) or null
  double* coefficients;   // (3, count): a, b, alive
  double* state;          // (2): b_prev, alive
};

// The steps for one sample at a time (advance), its operator in `problem` (psi = v, out = w).
template <bool Complex>
struct Steps {
  int64_t n, dim, start, count, mode;  // n doubles per state, dim amplitudes; mode 0 none, 1 ground, 2 full
  std::vector<double> w, hr, hi;  // scratch: w and full reorthogonalisation's overlaps

  Steps(int64_t n, int64_t dim, int64_t start, int64_t count, int64_t mode, int64_t rows)
      : n(n), dim(dim), start(start), count(count), mode(mode), w(n), hr(rows), hi(rows) {}

  // w <- w - V (V^H w) over rows 0..rows-1 (classical Gram-Schmidt, one pass: all overlaps
  // h_k = <V_k, w> first, then the updates).
  void orthogonalize(const double* basis, int64_t rows) {
    for (int64_t k = 0; k < rows; ++k) std::tie(hr[k], hi[k]) = dot<Complex>(basis + k * n, w.data(), n);
    for (int64_t k = 0; k < rows; ++k) subtract<Complex>(w.data(), hr[k], hi[k], basis + k * n, n);
  }

  // v lives in its basis row: the call's first v is copied into row `start` once, and each v_next is
  // written straight into the next row (after the call's last step into s.v, the carry); v_prev is
  // the row before, or s.v_prev at the first step. So no step copies a vector; s.v_prev gets the
  // last row at the end.
  void advance(Problem problem, const Sample& s, ffi::ThreadPool& pool) {
    problem.out = w.data();
    double b_prev = s.state[0];
    bool alive = s.state[1] != 0.0;
    std::memcpy(s.basis + start * n, s.v, n * sizeof(double));  // basis row start <- v
    const double* v_prev = s.v_prev;
    for (int64_t t = 0; t < count; ++t) {
      const int64_t j = start + t;
      double* v = s.basis + j * n;
      problem.psi = v;
      run<Complex, false>(problem, pool);
      if (s.deflate) project_out<Complex>(w.data(), s.deflate, n);
      const double a = dot<Complex>(v, w.data(), n).first;
      double squared = recurrence(w.data(), a, v, b_prev, v_prev, n);
      if (mode == 2) {
        orthogonalize(s.basis, j + 1);
        squared = dot<false>(w.data(), w.data(), n).first;
      }
      if (mode == 1) squared = project_out<Complex>(w.data(), s.guard, n);
      const double b = std::sqrt(squared);
      const bool alive_next = alive && b > kTiny * std::max(1.0, std::abs(a));
      s.coefficients[t] = a;
      s.coefficients[count + t] = alive_next ? b : 0.0;
      s.coefficients[2 * count + t] = alive ? 1.0 : 0.0;
      scaled(t + 1 < count ? v + n : s.v, alive_next ? 1.0 / b : 0.0, w.data(), n);  // v_next
      v_prev = v;
      b_prev = alive_next ? b : 0.0;
      alive = alive_next;
    }
    std::memcpy(s.v_prev, v_prev, n * sizeof(double));
    s.state[0] = b_prev;
    s.state[1] = alive ? 1.0 : 0.0;
  }
};

// An output aliased to its input (XLA's input_output_aliases) is updated in place; otherwise the
// input is copied into it first.
template <typename In, typename Out>
double* in_place(const In& in, Out& out) {
  double* target = reinterpret_cast<double*>(out->untyped_data());
  if (target != in.untyped_data()) std::memcpy(target, in.untyped_data(), in.size_bytes());
  return target;
}

// The handler (file comment): basis (B, m, W) float64 (W = D, or 2D interleaved for complex) or empty (a fresh basis: the rows
// outside the steps' written as zeros, without reading an input), v and v_prev (B, D), state (B, 2),
// guard (B, D) (mode 1) or empty, deflate (B, D) or empty, start (the first row written, a
// scalar); coefficients (B, 3, count). mode: 0 none, 1 ground, 2 full.
template <ffi::DataType T>
ffi::Error lanczos_steps(ffi::ThreadPool pool, ffi::Buffer<T> diag, ffi::Buffer<T> scalars, ffi::Buffer<ffi::F64> basis,
                         ffi::Buffer<T> v, ffi::Buffer<T> v_prev, ffi::Buffer<ffi::F64> state, ffi::Buffer<T> guard,
                         ffi::Buffer<T> deflate, ffi::Buffer<ffi::S64> start, ffi::RemainingArgs vectors,
                         ffi::ResultBuffer<ffi::F64> basis_out, ffi::ResultBuffer<T> v_out, ffi::ResultBuffer<T> v_prev_out,
                         ffi::ResultBuffer<ffi::F64> state_out, ffi::ResultBuffer<ffi::F64> coefficients,
                         ffi::Span<const int64_t> masks, ffi::Span<const int64_t> slots, ffi::Span<const int64_t> factor_rows,
                         int64_t period, int64_t mode) {
  constexpr bool kComplex = T == ffi::DataType::C128;
  constexpr int64_t per = kComplex ? 2 : 1;
  const auto vd = v.dimensions(), bd = basis_out->dimensions(), cd = coefficients->dimensions();
  const bool fresh = basis.element_count() == 0;  // no basis in: rows outside the steps' are zeroed
  if (vd.size() != 2 || bd.size() != 3 || cd.size() != 3)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "qeqprop lanczos_steps: v (B, D), basis (B, m, W), coefficients (B, 3, count)");
  const int64_t batch = vd[0], dim = vd[1], rows = bd[1], count = cd[2], first_row = start.typed_data()[0];
  if (batch == 0 || count == 0) return ffi::Error::Success();
  if (bd[0] != batch || bd[2] != dim * per || (!fresh && basis.element_count() != basis_out->element_count()) || cd[0] != batch || cd[1] != 3 || int64_t(v_prev.element_count()) != batch * dim ||
      int64_t(state.element_count()) != 2 * batch || first_row < 0 || first_row + count > rows || mode < 0 || mode > 2 ||
      (mode == 1 && int64_t(guard.element_count()) != batch * dim) ||
      (deflate.element_count() != 0 && int64_t(deflate.element_count()) != batch * dim))
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "qeqprop lanczos_steps: the shapes of basis, v_prev, state, guard, deflate or the step range do not match");
  Described described;
  if (ffi::Error error = describe(described, diag, scalars, v, vectors, masks, slots, factor_rows, period, batch); error.failure()) return error;
  double* basis_data = fresh ? reinterpret_cast<double*>(basis_out->untyped_data()) : in_place(basis, basis_out);
  double* v_data = in_place(v, v_out);
  double* previous = in_place(v_prev, v_prev_out);
  double* states = in_place(state, state_out);
  const double* guards = mode == 1 ? reinterpret_cast<const double*>(guard.untyped_data()) : nullptr;
  const double* deflates = deflate.element_count() ? reinterpret_cast<const double*>(deflate.untyped_data()) : nullptr;
  const Problem& first = described.problem;
  const int64_t n = first.length;
  Steps<kComplex> steps(n, dim, first_row, count, mode, rows);
  std::vector<const double*> columns(described.columns);
  for (int64_t b = 0; b < batch; ++b) {
    Problem problem = first;
    problem.diag += b * n;
    problem.scalars += b * first.groups * per;
    for (size_t i = 0; i < columns.size(); ++i) columns[i] = described.columns[i] + b * described.strides[i];
    problem.vectors = columns.data();
    const Sample sample{basis_data + b * rows * n, v_data + b * n, previous + b * n, guards ? guards + b * n : nullptr,
                        deflates ? deflates + b * n : nullptr, coefficients->typed_data() + b * 3 * count, states + 2 * b};
    if (fresh) {
      std::fill(sample.basis, sample.basis + first_row * n, 0.0);
      std::fill(sample.basis + (first_row + count) * n, sample.basis + rows * n, 0.0);
    }
    steps.advance(problem, sample, pool);
  }
  return ffi::Error::Success();
}

// out[b, p] = sum_{k < used} coefficients[b, k, p] basis[b, k] (the block's Ritz vectors V_b^T y_{b,p}
// in real view): basis (B, m, W) and out (B, P, W) float64, coefficients (B, m, P), used (a scalar: the
// rows written so far, min(used, m); the rows after it are zeros and are not read). Column tiles of
// kTile doubles: a tile of the P output rows stays in L1 while every basis row's tile is read once
// and added to all of them, so the basis (bandwidth-bound: a chunk's is several MiB) is read once.
ffi::Error basis_combination(ffi::Buffer<ffi::F64> basis, ffi::Buffer<ffi::F64> coefficients,
                             ffi::Buffer<ffi::S64> used, ffi::ResultBuffer<ffi::F64> out) {
  constexpr int64_t kTile = 512;
  const auto bd = basis.dimensions(), cd = coefficients.dimensions(), od = out->dimensions();
  if (bd.size() != 3 || cd.size() != 3 || od.size() != 3 || cd[0] != bd[0] || cd[1] != bd[1] || od[0] != bd[0] ||
      od[1] != cd[2] || od[2] != bd[2])
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "qeqprop basis_combination: basis (B, m, W), coefficients (B, m, P), out (B, P, W)");
  const int64_t batch = bd[0], width = bd[2], count = cd[2];
  const int64_t rows = std::clamp<int64_t>(used.typed_data()[0], 0, bd[1]), stride = bd[1];
  std::fill(out->typed_data(), out->typed_data() + out->element_count(), 0.0);
  for (int64_t b = 0; b < batch; ++b) {
    const double* v = basis.typed_data() + b * stride * width;
    const double* y = coefficients.typed_data() + b * stride * count;
    double* o = out->typed_data() + b * count * width;
    for (int64_t first = 0; first < width; first += kTile) {
      const int64_t n = std::min(kTile, width - first);
      for (int64_t k = 0; k < rows; ++k)
        for (int64_t p = 0; p < count; ++p) add_scaled(o + p * width + first, y[k * count + p], v + k * width + first, n);
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropBasisCombination, basis_combination,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::S64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>());

#define QEQPROP_STEPS(T)                                               \
  ffi::Ffi::Bind()                                                     \
      .Ctx<ffi::ThreadPool>()                                          \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<ffi::F64>>()                                    \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<T>>()                                           \
      .Arg<ffi::Buffer<ffi::S64>>()                                    \
      .RemainingArgs()                                                 \
      .Ret<ffi::Buffer<ffi::F64>>()                                    \
      .Ret<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<T>>()                                           \
      .Ret<ffi::Buffer<ffi::F64>>()                                    \
      .Ret<ffi::Buffer<ffi::F64>>()                                    \
      .Attr<ffi::Span<const int64_t>>("masks")                         \
      .Attr<ffi::Span<const int64_t>>("slots")                         \
      .Attr<ffi::Span<const int64_t>>("rows")                          \
      .Attr<int64_t>("period")                                         \
      .Attr<int64_t>("mode")

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosStepsF64, lanczos_steps<ffi::DataType::F64>, QEQPROP_STEPS(ffi::DataType::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropLanczosStepsC128, lanczos_steps<ffi::DataType::C128>, QEQPROP_STEPS(ffi::DataType::C128));
