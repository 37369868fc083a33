// Shot outcomes of a batch of states measured in one product basis (readout.sampling.basis_outcomes),
// a plain C function called through ctypes (no XLA: the readout runs on host arrays):
//
//     a = U psi_b,   U = (x)_q U_q,   U_X = H,   U_Y = H S^dagger,   U_Z = 1,
//     p_c = |a_c|^2 / sum |a|^2,   C_c = p_0 + ... + p_c,   outcome_m = min{c : C_c > u_m C_{D-1}},
//
// for the uniforms u_m (b, m) drawn by the caller's numpy Generator, so the draws and their order
// are the numpy path's (basis_probabilities then draw_outcomes: the same outcomes up to rounding
// within an ulp of a cumulative boundary). Per sample the state is copied into a scratch vector
// that stays in L1/L2 and rotated there qubit by qubit (one butterfly pass per X or Y letter),
// then summed once and searched per shot by bisection: no (B, D) temporaries, no matrix products.
// Why hand-written: the numpy path (blocked Kronecker GEMMs, abs^2, normalisation, cumsum,
// searchsorted over the batch) takes ~35 us per sample and basis on the 10-qubit sensor model,
// most of it passes over (B, D) arrays; this takes a few us (benchmarks/training_throughput.py).
//
// Qubit q is bit n-1-q of the basis index (qubit 0 the most significant), as everywhere in qeqprop.
// Returns 0, or -1 for bad arguments (the Python caller checks shapes first).

#include <algorithm>
#include <complex>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using cplx = std::complex<double>;

// U_q on qubit bit `bit` for every pair (c, c | bit) with c's bit clear: H, or H S^dagger (Y).
void rotate(cplx* a, int64_t dim, int64_t bit, bool y) {
  const double r = 0.7071067811865476;  // 1 / sqrt(2)
  for (int64_t block = 0; block < dim; block += 2 * bit) {
    cplx* lo = a + block;
    cplx* hi = lo + bit;
    for (int64_t k = 0; k < bit; ++k) {
      const cplx u = lo[k];
      const cplx v = y ? cplx(hi[k].imag(), -hi[k].real()) : hi[k];  // S^dagger: v -> -i v
      lo[k] = r * (u + v);
      hi[k] = r * (u - v);
    }
  }
}

// Samples [first, last): rotate, cumulate, search.
void sample_range(const cplx* psi, int64_t dim, int64_t n_qubits, const int8_t* letters, const double* uniforms,
                  int64_t shots, int64_t* outcomes, int64_t first, int64_t last) {
  std::vector<cplx> a(dim);
  std::vector<double> cumulative(dim);
  for (int64_t b = first; b < last; ++b) {
    std::copy(psi + b * dim, psi + (b + 1) * dim, a.begin());
    for (int64_t q = 0; q < n_qubits; ++q)
      if (letters[q] != 0) rotate(a.data(), dim, int64_t(1) << (n_qubits - 1 - q), letters[q] == 2);
    double total = 0.0;
    for (int64_t c = 0; c < dim; ++c) {
      total += std::norm(a[c]);
      cumulative[c] = total;
    }
    const double* u = uniforms + b * shots;
    int64_t* out = outcomes + b * shots;
    for (int64_t m = 0; m < shots; ++m) {
      const double target = u[m] * total;
      const int64_t found = std::upper_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin();
      out[m] = std::min(found, dim - 1);
    }
  }
}

}  // namespace

// psi (batch, 2^n) complex128 as interleaved doubles, letters (n) 0 Z / 1 X / 2 Y, uniforms (batch, shots)
// in [0, 1), outcomes (batch, shots) written; `threads` > 1 splits the samples between threads.
extern "C" int qeqprop_basis_outcomes(const double* psi, int64_t batch, int64_t n_qubits, const int8_t* letters,
                                      const double* uniforms, int64_t shots, int64_t* outcomes, int64_t threads) {
  if (batch < 0 || n_qubits < 0 || n_qubits > 40 || shots < 0 || threads < 1) return -1;
  for (int64_t q = 0; q < n_qubits; ++q)
    if (letters[q] < 0 || letters[q] > 2) return -1;
  const int64_t dim = int64_t(1) << n_qubits;
  const cplx* states = reinterpret_cast<const cplx*>(psi);
  const int64_t parts = std::max<int64_t>(1, std::min(threads, batch));
  if (parts == 1) {
    sample_range(states, dim, n_qubits, letters, uniforms, shots, outcomes, 0, batch);
    return 0;
  }
  std::vector<std::thread> helpers;
  const int64_t share = (batch + parts - 1) / parts;
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t first = p * share, last = std::min(batch, first + share);
    if (first < last)
      helpers.emplace_back(sample_range, states, dim, n_qubits, letters, uniforms, shots, outcomes, first, last);
  }
  sample_range(states, dim, n_qubits, letters, uniforms, shots, outcomes, 0, std::min(batch, share));
  for (std::thread& helper : helpers) helper.join();
  return 0;
}
