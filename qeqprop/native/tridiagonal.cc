// The lowest eigenpairs of a batch of real symmetric tridiagonal matrices as an XLA FFI handler
// (CPU), for the batched Lanczos solver's Ritz pairs (solvers/batched_lanczos._lowest_pairs):
//
//     T_b = tridiag(beta_b, alpha_b, beta_b),   T_b z = theta z,   the `count` lowest (theta, z).
//
// The algorithm of LAPACK's dstebz + dstein (what scipy.linalg.eigh_tridiagonal(select="i") calls):
//   values: bisection on Sturm counts, nu(x) = #{i : q_i < 0},  q_0 = a_0 - x,
//           q_i = (a_i - x) - b_(i-1)^2 / q_(i-1)  (|q_i| < pivmin -> -pivmin, dstebz's guard),
//           from the widened Gershgorin interval until the bracket is 2 eps |T| + pivmin wide
//           (dstebz's abstol 0), theta_k >= theta_(k-1) narrowing each next search;
//   vectors: inverse iteration (T - theta) x_(t+1) = x_t with T - theta factored once by Gaussian
//           elimination with partial pivoting (dgttrf; zero pivots -> eps |T|), three solves from a
//           fixed pseudo-random start, each followed by Gram-Schmidt against the earlier vectors of
//           the same cluster (eigenvalues within 1e-3 |T|, dstein's rule), unit norm, the largest
//           component positive (dstein's sign).
// Hand-written, not a call to LAPACK, because the batched Lanczos solver asks for these pairs a few
// times per block on short matrices (m = 8-160) and LAPACK's bisection is one dependent division
// chain per Sturm sweep: here the sweeps of kLanes samples interleave, measured ~10x faster than
// dstebz + dstein called from C++ for m = 32-64, and 3-20x faster than scipy.linalg.eigh_tridiagonal
// per sample (benchmarks/ritz_pairs.py). Being inside the XLA program
// (no host callback), the block programs also go into JAX's persistent compilation cache.
//
// Inputs alpha (B, m), beta (B, m - 1) float64; outputs values (B, count), vectors (B, m, count).
// A sample with a non-finite entry gets NaN values and vectors: the solver's residual test then
// fails it alone.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kLanes = 8;           // samples whose Sturm sweeps interleave
constexpr int kMaxBisections = 128;  // a float64 bracket halves to its width in < 64 steps
constexpr int kSolves = 3;          // inverse-iteration solves per vector
constexpr double kCluster = 1e-3;   // eigenvalues within kCluster |T|: one cluster (dstein's ORTOL)

const double kEps = std::numeric_limits<double>::epsilon();
const double kSafeMin = std::numeric_limits<double>::min();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// One sample's interval data for the bisection.
struct Bracket {
  double lo, hi, pivmin, atol, norm;
  bool finite;
};

// The sample's Gershgorin interval widened as dstebz widens it, its pivmin and absolute tolerance.
Bracket bracket(const double* a, const double* b, int64_t m) {
  Bracket out{INFINITY, -INFINITY, 0.0, 0.0, 0.0, true};
  double e2max = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const double left = i > 0 ? std::fabs(b[i - 1]) : 0.0, right = i + 1 < m ? std::fabs(b[i]) : 0.0;
    out.finite &= std::isfinite(a[i]) && std::isfinite(right);
    out.lo = std::min(out.lo, a[i] - left - right);
    out.hi = std::max(out.hi, a[i] + left + right);
    e2max = std::max(e2max, right * right);
  }
  if (!out.finite) return {-1.0, 1.0, kSafeMin, kEps, 1.0, false};
  out.norm = std::max(std::fabs(out.lo), std::fabs(out.hi));
  out.pivmin = kSafeMin * std::max(1.0, e2max);
  out.atol = 2 * kEps * out.norm + out.pivmin;
  const double widen = 2 * kEps * out.norm * static_cast<double>(m) + 2 * out.pivmin;
  out.lo -= widen, out.hi += widen;
  return out;
}

// Values `count` of kLanes samples by interleaved bisection; a (m, kLanes) and e2 (m, kLanes) hold
// the diagonals and squared off-diagonals lane by lane (e2 row i couples i and i + 1).
void bisect(const double* a, const double* e2, int64_t m, const Bracket* brackets, int64_t count, double* values) {
  double low[kLanes], high[kLanes], mid[kLanes], q[kLanes], negative[kLanes];
  for (int l = 0; l < kLanes; ++l) low[l] = brackets[l].lo;
  for (int64_t k = 0; k < count; ++k) {
    for (int l = 0; l < kLanes; ++l) high[l] = brackets[l].hi;
    for (int step = 0; step < kMaxBisections; ++step) {
      bool done = true;
      for (int l = 0; l < kLanes; ++l) {
        mid[l] = 0.5 * (low[l] + high[l]);
        done &= high[l] - low[l] <= brackets[l].atol + 2 * kEps * std::max(std::fabs(low[l]), std::fabs(high[l]));
      }
      if (done) break;
      for (int l = 0; l < kLanes; ++l) {
        const double t = a[l] - mid[l];
        q[l] = std::fabs(t) < brackets[l].pivmin ? -brackets[l].pivmin : t;
        negative[l] = q[l] < 0 ? 1.0 : 0.0;
      }
      for (int64_t i = 1; i < m; ++i) {
        const double* ai = a + i * kLanes;
        const double* ei = e2 + (i - 1) * kLanes;
        for (int l = 0; l < kLanes; ++l) {
          const double t = (ai[l] - mid[l]) - ei[l] / q[l];
          q[l] = std::fabs(t) < brackets[l].pivmin ? -brackets[l].pivmin : t;
          negative[l] += q[l] < 0 ? 1.0 : 0.0;
        }
      }
      for (int l = 0; l < kLanes; ++l) (negative[l] > static_cast<double>(k) ? high[l] : low[l]) = mid[l];
    }
    for (int l = 0; l < kLanes; ++l) values[l * count + k] = 0.5 * (low[l] + high[l]);
  }
}

// T - theta = P L U (dgttrf: U has the diagonal d, superdiagonals up and up2; L the multipliers
// sub; swap[i]: rows i and i + 1 exchanged), zero pivots replaced by eps |T|.
struct Factors {
  std::vector<double> d, up, up2, sub;
  std::vector<char> swap;

  explicit Factors(int64_t m) : d(m), up(m), up2(m), sub(m), swap(m) {}

  void factor(const double* a, const double* b, int64_t m, double theta, double norm) {
    for (int64_t i = 0; i < m; ++i) {
      d[i] = a[i] - theta;
      up[i] = sub[i] = i + 1 < m ? b[i] : 0.0;
      up2[i] = 0.0;
      swap[i] = 0;
    }
    for (int64_t i = 0; i + 1 < m; ++i) {
      if (std::fabs(d[i]) >= std::fabs(sub[i])) {
        sub[i] = d[i] != 0.0 ? sub[i] / d[i] : 0.0;
        d[i + 1] -= sub[i] * up[i];
      } else {
        const double fact = d[i] / sub[i];
        d[i] = sub[i];
        sub[i] = fact;
        const double temp = up[i];
        up[i] = d[i + 1];
        d[i + 1] = temp - fact * d[i + 1];
        if (i + 2 < m) {
          up2[i] = up[i + 1];
          up[i + 1] = -fact * up[i + 1];
        }
        swap[i] = 1;
      }
    }
    const double tiny = std::max(kEps * norm, kSafeMin);
    for (int64_t i = 0; i < m; ++i)
      if (std::fabs(d[i]) < tiny) d[i] = d[i] < 0 ? -tiny : tiny;
  }

  void solve(double* x, int64_t m) const {
    for (int64_t i = 0; i + 1 < m; ++i) {
      if (swap[i]) {
        const double temp = x[i];
        x[i] = x[i + 1];
        x[i + 1] = temp - sub[i] * x[i];
      } else {
        x[i + 1] -= sub[i] * x[i];
      }
    }
    x[m - 1] /= d[m - 1];
    if (m > 1) x[m - 2] = (x[m - 2] - up[m - 2] * x[m - 1]) / d[m - 2];
    for (int64_t i = m - 3; i >= 0; --i) x[i] = (x[i] - up[i] * x[i + 1] - up2[i] * x[i + 2]) / d[i];
  }
};

// x / ||x||_2 after scaling by the largest |x_i| (no overflow); sign: largest component positive.
void normalize(double* x, int64_t m, bool fix_sign) {
  int64_t top = 0;
  for (int64_t i = 1; i < m; ++i)
    if (std::fabs(x[i]) > std::fabs(x[top])) top = i;
  const double scale = x[top] != 0.0 ? 1.0 / std::fabs(x[top]) : 1.0;
  double norm2 = 0.0;
  for (int64_t i = 0; i < m; ++i) norm2 += (x[i] * scale) * (x[i] * scale);
  double factor = scale / std::sqrt(norm2);
  if (fix_sign && x[top] < 0) factor = -factor;
  for (int64_t i = 0; i < m; ++i) x[i] *= factor;
}

// Column k of the row-major (m, count) block z: the eigenvector for values[k] (module comment).
void inverse_iteration(const double* a, const double* b, int64_t m, const double* values, int64_t count, int64_t k,
                       double norm, Factors& factors, std::vector<double>& x, double* z) {
  factors.factor(a, b, m, values[k], norm);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < m; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = 2.0 * static_cast<double>(state >> 11) * 0x1.0p-53 - 1.0;
  }
  for (int solve = 0; solve < kSolves; ++solve) {
    normalize(x.data(), m, false);
    factors.solve(x.data(), m);
    for (int64_t j = 0; j < k; ++j) {
      if (values[k] - values[j] > kCluster * norm) continue;
      double overlap = 0.0;
      for (int64_t i = 0; i < m; ++i) overlap += z[i * count + j] * x[i];
      for (int64_t i = 0; i < m; ++i) x[i] -= overlap * z[i * count + j];
    }
  }
  normalize(x.data(), m, true);
  for (int64_t i = 0; i < m; ++i) z[i * count + k] = x[i];
}

ffi::Error lowest(ffi::Buffer<ffi::F64> alpha, ffi::Buffer<ffi::F64> beta, ffi::ResultBuffer<ffi::F64> values,
                  ffi::ResultBuffer<ffi::F64> vectors, int64_t count) {
  const int64_t m = alpha.dimensions().back();
  if (m < 1 || count < 1 || count > m)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "tridiagonal_lowest: count must lie in [1, m]");
  const int64_t batch = alpha.element_count() / m;
  std::vector<double> a(m * kLanes), e2(m * kLanes), lane_values(kLanes * count), x(m);
  Factors factors(m);
  Bracket brackets[kLanes];
  for (int64_t first = 0; first < batch; first += kLanes) {
    const int lanes = static_cast<int>(std::min<int64_t>(kLanes, batch - first));
    for (int l = 0; l < kLanes; ++l) {  // idle lanes repeat the last sample
      const int64_t b = first + std::min(l, lanes - 1);
      const double* ab = alpha.typed_data() + b * m;
      const double* bb = beta.typed_data() + b * (m - 1);
      brackets[l] = bracket(ab, bb, m);
      for (int64_t i = 0; i < m; ++i) {
        const bool use = brackets[l].finite;
        a[i * kLanes + l] = use ? ab[i] : 0.0;
        e2[i * kLanes + l] = use && i + 1 < m ? bb[i] * bb[i] : 0.0;
      }
    }
    bisect(a.data(), e2.data(), m, brackets, count, lane_values.data());
    for (int l = 0; l < lanes; ++l) {
      const int64_t b = first + l;
      double* out_values = values->typed_data() + b * count;
      double* z = vectors->typed_data() + b * m * count;
      if (!brackets[l].finite) {
        std::fill(out_values, out_values + count, kNaN);
        std::fill(z, z + m * count, kNaN);
        continue;
      }
      std::copy(lane_values.begin() + l * count, lane_values.begin() + (l + 1) * count, out_values);
      for (int64_t k = 0; k < count; ++k)
        inverse_iteration(alpha.typed_data() + b * m, beta.typed_data() + b * (m - 1), m, out_values, count, k,
                          brackets[l].norm, factors, x, z);
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropTridiagonalLowest, lowest,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Attr<int64_t>("count"));
