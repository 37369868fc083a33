// Expectation values <psi|P_s|psi> of a Pauli table's strings for a batch of states
// (hamiltonians.pauli.PauliTable.expectations), a plain C function called through ctypes (no XLA:
// the expectations are read on host arrays after a solve). With the strings grouped by flip mask x
// (P_s = phase_s X^x Z^{z_s} up to the table's phase convention) and c the basis index:
//
//     E_s = Re phase_s sum_c conj(psi_c) psi_{c xor x} (-1)^{|c & z_s|}.
//
// Per sample and group: for x != 0 the terms at c and c xor x are conjugate, so only the half of the
// basis with x's highest bit h clear is read, S_s = sum_{c: c_h = 0} ..., and
// sum_c = S_s + (-1)^{|x & z_s|} conj(S_s) (the numpy path's `_support_sums` does the same). The
// products t_c = conj(psi_c) psi_{c xor x} go once into a scratch vector; the sign of string s
// depends only on c & K (K = the union of the group's z masks), so the scratch is folded over every
// bit outside K (pairs of halves added, highest bit first: at most two passes of adds, vectorised
// over interleaved (Re, Im) doubles) down to the 2^|K| corner sums, and each string is the signed
// sum of the corners. A group whose K has more than kMaxCornerBits bits (e.g. the diagonal group of
// a model with Z terms on every qubit) is folded once per string over the bits outside its own z_s.
// Why hand-written: the numpy path (one einsum per group over strided views, then a small product)
// takes ~50 us per state of the 10-qubit sensor model, most of it per-call overhead on (B, D) views;
// this takes a few us (benchmarks/NOTES.md).
//
// Qubit q is bit n-1-q of the basis index, as everywhere in qeqprop. Returns 0, or -1 for bad
// arguments (the Python caller checks shapes first).

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

constexpr int kMaxCornerBits = 6;  // fold once per group up to 64 corners, else once per string

struct Group {
  int64_t x;             // flip mask
  const int64_t* z;      // z masks of its strings
  const int64_t* index;  // their columns in the output
  const double* phase;   // their phases, interleaved (Re, Im)
  int64_t members;
};

// The bits of `value` at the set bits of `mask`, packed (lowest first: BMI2's pext, portably).
int64_t compress(int64_t value, int64_t mask) {
  int64_t out = 0;
  for (int64_t bit = 1, to = 1; mask; bit <<= 1) {
    if (mask & bit) {
      if (value & bit) out |= to;
      to <<= 1;
      mask &= ~bit;
    }
  }
  return out;
}

int parity(int64_t v) { return __builtin_popcountll(static_cast<unsigned long long>(v)) & 1; }

// Corner sums of `src` (2^bits entries of `width` doubles each, width 1 real / 2 complex) over the
// bits of the index outside `keep`, in the order of the packed kept bits, appended to `out` (from
// position `pos`, in entries). The first fold writes into `dst` (same size), so `src` is left as it is.
void fold(const double* src, double* dst, int bits, int64_t keep, int width, double* out, int64_t& pos) {
  const int64_t below = keep & ((int64_t(1) << bits) - 1);
  if (below == 0) {  // nothing kept from here down: one sum of the whole block
    const int64_t n = (int64_t(1) << bits) * width;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // lane k mod 8: even lanes Re, odd lanes Im when complex
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
      for (int u = 0; u < 8; ++u) acc[u] += src[k + u];
    for (; k < n; ++k) acc[k & 7] += src[k];
    double sums[2] = {0.0, 0.0};
    for (int u = 0; u < 8; ++u) sums[u % width] += acc[u];
    for (int w = 0; w < width; ++w) out[pos * width + w] = sums[w];
    ++pos;
    return;
  }
  const int top = bits - 1;
  const int64_t half = (int64_t(1) << top) * width;
  if (keep >> top & 1) {  // kept: low corner then high corner (packed order, highest kept bit first)
    fold(src, dst, top, keep, width, out, pos);
    fold(src + half, dst + half, top, keep, width, out, pos);
    return;
  }
  for (int64_t k = 0; k < half; ++k) dst[k] = src[k] + src[k + half];
  fold(dst, dst, top, keep, width, out, pos);
}

// Columns of one group for one state, into row `out` (real results).
template <bool Complex>
void group_expectations(const double* psi, int n_qubits, const Group& g, double* prod, double* work, double* corners,
                        double* out) {
  constexpr int W = Complex ? 2 : 1;
  const int64_t dim = int64_t(1) << n_qubits;
  // x's highest bit h (0 for x = 0); on the half c_h = 0 the index is packed without bit h
  const int64_t low = g.x ? int64_t(1) << (63 - __builtin_clzll(static_cast<unsigned long long>(g.x))) : 0;
  auto packed = [low](int64_t mask) {  // a mask on the packed index (bit h dropped: c_h is 0 there)
    if (!low) return mask;
    mask &= ~low;
    return (mask & (low - 1)) | ((mask >> 1) & ~(low - 1));
  };
  if (g.x == 0) {  // t_c = |psi_c|^2
    if constexpr (Complex) {
      for (int64_t c = 0; c < dim; ++c) prod[c] = psi[2 * c] * psi[2 * c] + psi[2 * c + 1] * psi[2 * c + 1];
    } else {
      for (int64_t c = 0; c < dim; ++c) prod[c] = psi[c] * psi[c];
    }
  } else {  // t_c for c with bit h clear, packed
    const int64_t run = g.x & -g.x;  // c xor x is contiguous over aligned runs of x's lowest bit
    int64_t out_at = 0;
    for (int64_t top = 0; top < dim; top += 2 * low) {
      for (int64_t start = top; start < top + low; start += run) {
        const double* a = psi + start * W;
        const double* b = psi + (start ^ g.x) * W;
        double* t = prod + out_at * W;
        if constexpr (Complex) {
          for (int64_t k = 0; k < run; ++k) {
            const double ar = a[2 * k], ai = a[2 * k + 1], br = b[2 * k], bi = b[2 * k + 1];
            t[2 * k] = ar * br + ai * bi;
            t[2 * k + 1] = ar * bi - ai * br;
          }
        } else {
          for (int64_t k = 0; k < run; ++k) t[k] = a[k] * b[k];
        }
        out_at += run;
      }
    }
  }
  const int bits = g.x ? n_qubits - 1 : n_qubits;
  const int width = (g.x == 0 || !Complex) ? 1 : 2;  // t is real for x = 0 and for real states
  // E_s from corner sums over the packed bits `kept` (count of them): S = sum_k (-1)^{|k & zc|} corner_k
  // (zc: z_s on the packed corner index), then sum = S + (-1)^{|x & z|} conj(S) for x != 0
  auto finish = [&](int64_t m, int64_t kept, int64_t count) {
    const int64_t zc = compress(packed(g.z[m]), kept);
    double sr = 0.0, si = 0.0;
    for (int64_t k = 0; k < count; ++k) {
      const double sign = parity(k & zc) ? -1.0 : 1.0;
      sr += sign * corners[k * width];
      if (width == 2) si += sign * corners[k * width + 1];
    }
    if (g.x != 0) {
      if (parity(g.x & g.z[m])) sr = 0.0;  // S - conj(S) = 2i Im S
      else si = 0.0;                      // S + conj(S) = 2 Re S
      sr *= 2.0, si *= 2.0;
    }
    out[g.index[m]] = g.phase[2 * m] * sr - g.phase[2 * m + 1] * si;
  };
  int64_t kmask = 0;
  for (int64_t m = 0; m < g.members; ++m) kmask |= g.z[m];
  kmask = packed(kmask);
  if (__builtin_popcountll(static_cast<unsigned long long>(kmask)) <= kMaxCornerBits) {
    int64_t count = 0;
    fold(prod, work, bits, kmask, width, corners, count);
    for (int64_t m = 0; m < g.members; ++m) finish(m, kmask, count);
    return;
  }
  for (int64_t m = 0; m < g.members; ++m) {  // a wide group: fold per string over the bits outside its z
    const int64_t z = packed(g.z[m]);
    int64_t count = 0;
    fold(prod, work, bits, z, width, corners, count);
    finish(m, z, count);
  }
}

template <bool Complex>
void sample_range(const double* psi, int n_qubits, const std::vector<Group>& groups, int64_t strings, double* out,
                  int64_t first, int64_t last) {
  constexpr int W = Complex ? 2 : 1;
  const int64_t dim = int64_t(1) << n_qubits;
  std::vector<double> prod(dim * W), work(dim * W), corners(dim * W);
  for (int64_t b = first; b < last; ++b)
    for (const Group& g : groups)
      group_expectations<Complex>(psi + b * dim * W, n_qubits, g, prod.data(), work.data(), corners.data(), out + b * strings);
}

}  // namespace

// psi (batch, 2^n) float64 or complex128 (interleaved doubles, `complex_` 1); groups given by their
// flip masks x (n_groups), member offsets (n_groups + 1) into z (z masks), index (output columns) and
// phase (interleaved (Re, Im)); out (batch, strings) gets the groups' columns (others untouched);
// `threads` > 1 splits the samples between threads.
extern "C" int qeqprop_pauli_expectations(const double* psi, int64_t batch, int64_t n_qubits, int64_t complex_,
                                          int64_t n_groups, const int64_t* x, const int64_t* offsets, const int64_t* z,
                                          const int64_t* index, const double* phase, int64_t strings, double* out,
                                          int64_t threads) {
  if (batch < 0 || n_qubits < 1 || n_qubits > 40 || n_groups < 0 || strings < 0 || threads < 1) return -1;
  const int64_t dim = int64_t(1) << n_qubits;
  std::vector<Group> groups;
  for (int64_t g = 0; g < n_groups; ++g) {
    if (x[g] < 0 || x[g] >= dim || offsets[g] > offsets[g + 1]) return -1;
    for (int64_t m = offsets[g]; m < offsets[g + 1]; ++m)
      if (z[m] < 0 || z[m] >= dim || index[m] < 0 || index[m] >= strings) return -1;
    groups.push_back({x[g], z + offsets[g], index + offsets[g], phase + 2 * offsets[g], offsets[g + 1] - offsets[g]});
  }
  auto run = complex_ ? sample_range<true> : sample_range<false>;
  const int64_t parts = std::max<int64_t>(1, std::min(threads, batch));
  const int64_t share = (batch + parts - 1) / parts;
  std::vector<std::thread> helpers;
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t first = p * share, last = std::min(batch, first + share);
    if (first < last) helpers.emplace_back(run, psi, int(n_qubits), std::cref(groups), strings, out, first, last);
  }
  run(psi, int(n_qubits), groups, strings, out, 0, std::min(batch, share));
  for (std::thread& helper : helpers) helper.join();
  return 0;
}
