// The lowest eigenpairs of a batch of real symmetric tridiagonal matrices as an XLA FFI handler
// (CPU), for the batched Lanczos solver's Ritz pairs (solvers/batched_lanczos._lowest_pairs):
//
//     T_b = tridiag(beta_b, alpha_b, beta_b),   T_b z = theta z,   the `count` lowest (theta, z),
//
// by LAPACK: dstebz (bisection, RANGE='I', ORDER='E', abstol 0 = eps |T|) for the eigenvalues,
// dstein (inverse iteration, reorthogonalised within clusters) for the vectors: the calls
// scipy.linalg.eigh_tridiagonal(select="i") makes, without Python per sample (that wrapper's
// Python costs ~60 us per 64x64 matrix; this loop ~5 us) and inside the XLA program, so the
// block program holds no host callback and JAX's persistent compilation cache can keep it.
// LAPACK is scipy's: build.py hands the addresses of scipy.linalg.cython_lapack's dstebz and
// dstein to qeqprop_set_lapack once, after loading this library; until then the handler fails.
//
// Inputs alpha (B, m), beta (B, m - 1) float64; outputs values (B, count), vectors (B, m, count).
// A sample with a non-finite entry, or one LAPACK refuses (info != 0), gets NaN values and
// vectors: the solver's residual test then fails it, as for the host path.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// scipy.linalg.cython_lapack's C signatures (Fortran argument order, no hidden string lengths)
typedef void (*Stebz)(char* range, char* order, int* n, double* vl, double* vu, int* il, int* iu, double* abstol,
                      double* d, double* e, int* m, int* nsplit, double* w, int* iblock, int* isplit, double* work,
                      int* iwork, int* info);
typedef void (*Stein)(int* n, double* d, double* e, int* m, double* w, int* iblock, int* isplit, double* z, int* ldz,
                      double* work, int* iwork, int* ifail, int* info);

Stebz stebz = nullptr;
Stein stein = nullptr;

bool finite(const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

ffi::Error lowest(ffi::Buffer<ffi::F64> alpha, ffi::Buffer<ffi::F64> beta, ffi::ResultBuffer<ffi::F64> values,
                  ffi::ResultBuffer<ffi::F64> vectors, int64_t count) {
  if (stebz == nullptr || stein == nullptr)
    return ffi::Error(ffi::ErrorCode::kFailedPrecondition, "qeqprop_set_lapack was not called");
  const auto dims = alpha.dimensions();
  const int64_t m = dims.back();
  const int64_t batch = alpha.element_count() / (m > 0 ? m : 1);
  if (count < 1 || count > m)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "count must lie in [1, m]");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int n = static_cast<int>(m), il = 1, iu = static_cast<int>(count), ldz = n;
  double vl = 0.0, vu = 0.0, abstol = 0.0;
  char range = 'I', order = 'B';  // order by split block, as dstein requires
  std::vector<double> d(m), e(m), w(m), work(5 * m), z(m * count);
  std::vector<int> iblock(m), isplit(m), iwork(3 * m), ifail(count);
  for (int64_t b = 0; b < batch; ++b) {
    const double* a = alpha.typed_data() + b * m;
    const double* o = beta.typed_data() + b * (m - 1);
    double* out_values = values->typed_data() + b * count;
    double* out_vectors = vectors->typed_data() + b * m * count;
    int found = 0, nsplit = 0, info = 0;
    bool ok = finite(a, m) && finite(o, m - 1);
    if (ok) {
      for (int64_t i = 0; i < m; ++i) d[i] = a[i];
      for (int64_t i = 0; i + 1 < m; ++i) e[i] = o[i];
      stebz(&range, &order, &n, &vl, &vu, &il, &iu, &abstol, d.data(), e.data(), &found, &nsplit, w.data(),
            iblock.data(), isplit.data(), work.data(), iwork.data(), &info);
      ok = info == 0 && found == count;
    }
    if (ok) {
      stein(&n, d.data(), e.data(), &found, w.data(), iblock.data(), isplit.data(), z.data(), &ldz, work.data(),
            iwork.data(), ifail.data(), &info);
      ok = info == 0;
    }
    if (!ok) {
      for (int64_t k = 0; k < count; ++k) out_values[k] = nan;
      for (int64_t i = 0; i < m * count; ++i) out_vectors[i] = nan;
      continue;
    }
    // ORDER='B' lists eigenvalues block by block: sort the `count` pairs ascending (count is 1-4)
    std::vector<int64_t> rank(count);
    for (int64_t k = 0; k < count; ++k) rank[k] = k;
    for (int64_t k = 1; k < count; ++k)
      for (int64_t j = k; j > 0 && w[rank[j]] < w[rank[j - 1]]; --j) std::swap(rank[j], rank[j - 1]);
    for (int64_t k = 0; k < count; ++k) {
      out_values[k] = w[rank[k]];
      for (int64_t i = 0; i < m; ++i) out_vectors[i * count + k] = z[rank[k] * m + i];  // column-major z
    }
  }
  return ffi::Error::Success();
}

}  // namespace

extern "C" void qeqprop_set_lapack(void* dstebz, void* dstein) {
  stebz = reinterpret_cast<Stebz>(dstebz);
  stein = reinterpret_cast<Stein>(dstein);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(QeqpropTridiagonalLowest, lowest,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Attr<int64_t>("count"));
