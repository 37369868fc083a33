"""Detect counts read in the wrong bit order, where the prepared states allow it.

A record read with the qubits reversed turns the outcome index of wire q into that of wire
n-1-q. For each circuit the loop knows the state it prepared, so it predicts every single-qubit
marginal m_q = <Z_q> after the readout rotations, and compares the measured ones, as given and
as reversed:

    D_given = sum_q (m^_q - m_q)^2 / v_q,      D_reversed = sum_q (m^_{n-1-q} - m_q)^2 / v_q,

v_q = (1 - m_q^2) / M (M shots; floored at 1/M). With the right order D_given is a chi-square
with n degrees of freedom per circuit (plus any bias noise puts on the marginals). The records are
refused when D_given is beyond its 1 - 1e-9 quantile AND the reversed order explains them at
least REVERSED_FACTOR times better: then the counts were written the other way round (Qiskit's
qubit-0-last order read as PennyLane's, or the reverse).

WHERE IT CANNOT DETECT A MISMATCH (the gradient is then silently wrong; the bit order is yours to
get right): states whose marginals are symmetric under qubit reversal (m_q = m_{n-1-q} on every
measured qubit, e.g. a mirror-symmetric chain with mirror-symmetric fields, or every marginal 0);
counts so few or so noisy that neither order stands out; and records the loop did not prepare
itself (``measurement.gradient_from_counts`` on counts from elsewhere has no prediction to
compare with and never checks).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from ..readout.sampling import basis_probabilities

# The reversed order must explain the marginals this many times better (in chi-square) to refuse.
REVERSED_FACTOR = 4.0
# False-alarm probability of one check with the right order and no noise.
FALSE_ALARM = 1e-9


class BitOrderError(ValueError):
    """Counts that fit the reversed qubit order far better than the declared one."""


def marginals(probabilities: np.ndarray) -> np.ndarray:
    """<Z_q> of every qubit from probabilities over basis indices (wire 0 = most significant bit)."""
    n = int(np.log2(probabilities.shape[-1]))
    bits = (np.arange(2**n)[:, None] >> (n - 1 - np.arange(n))) & 1
    return probabilities @ (1.0 - 2.0 * bits)


def mismatch_scores(counts_probabilities: np.ndarray, predicted: np.ndarray, shots: int) -> tuple[float, float]:
    """(D_given, D_reversed) of the module docstring for one circuit: measured frequencies and
    predicted probabilities over basis indices, ``shots`` shots."""
    measured, model = marginals(counts_probabilities), marginals(predicted)
    variance = np.maximum(1.0 - model**2, 1.0 / shots) / shots
    return float(np.sum((measured - model) ** 2 / variance)), float(np.sum((measured[::-1] - model) ** 2 / variance))


def check_bit_order(frequencies: list[np.ndarray], vectors: list[np.ndarray], bases: list[str], shots: list[int]) -> None:
    """Raise BitOrderError when the records (``frequencies[k]``: counts / shots over basis indices,
    wire 0 first as declared) of circuits that prepared ``vectors[k]`` and measured ``bases[k]``
    fit the reversed qubit order (module docstring); silent where the states cannot tell."""
    given = reversed_ = 0.0
    for freq, psi, basis, count in zip(frequencies, vectors, bases, shots):
        d, r = mismatch_scores(freq, basis_probabilities(psi, basis), count)
        given, reversed_ = given + d, reversed_ + r
    n = int(np.log2(len(frequencies[0]))) if frequencies else 0
    threshold = chi2.isf(FALSE_ALARM, max(1, n * len(frequencies)))
    if given > threshold and given > REVERSED_FACTOR * reversed_:
        raise BitOrderError(
            f"the counts fit the REVERSED qubit order far better than the declared one (chi-square {given:.3g} vs "
            f"{reversed_:.3g} over {len(frequencies)} circuits): the bitstrings list qubit 0 last (Qiskit's order) but "
            "were read as qubit 0 first, or the reverse. Use QiskitClient for Qiskit backends, or declare "
            "bit_order='qubit0_last' on your CountsClient"
        )
