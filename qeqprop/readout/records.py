"""Term estimates from measurement records: counts per basis -> means and covariances.

In basis b every served string P_s reads as the parity of its support: a shot with bits c
gives p_s(c) = (-1)^{|c & m_s|}. With M_b shots the estimate and its covariance are

    <P_s>^ = (1/M_b) sum_c n_c p_s(c),
    Cov(<P_s>^, <P_t>^) = S_st / M_b,  S_st = M_b/(M_b - 1) [ (1/M_b) sum_c n_c p_s p_t - <P_s>^ <P_t>^ ],

(the unbiased sample covariance of the shot values over M_b). Strings in different bases
come from independent samples, so the covariance is block diagonal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.linalg import block_diag

from ..hamiltonians.pauli import PauliString
from .plan import MeasurementPlan

BIT_ORDERS = ("qubit0_first", "qubit0_last")


@dataclass
class TermEstimates:
    """Estimated <P_s> for the table strings in ``index`` and the covariance of the estimates."""

    index: np.ndarray
    means: np.ndarray
    covariance: np.ndarray

    @property
    def stderr(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))

    def full(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Means and covariance scattered onto a table of ``size`` strings (zeros elsewhere)."""
        means = np.zeros(size)
        cov = np.zeros((size, size))
        means[self.index] = self.means
        cov[np.ix_(self.index, self.index)] = self.covariance
        return means, cov


def parse_counts(counts: Mapping[str, int], n_qubits: int, bit_order: str = "qubit0_first", where: str = "counts") -> tuple[np.ndarray, np.ndarray]:
    """A ``{bitstring: count}`` record as (basis indices, counts).

    ``bit_order="qubit0_first"`` is PennyLane's order (wire 0 leftmost); Qiskit writes
    qubit 0 rightmost (``"qubit0_last"``).
    """
    if bit_order not in BIT_ORDERS:
        raise ValueError(f"bit_order must be one of {BIT_ORDERS}, got {bit_order!r}")
    if not isinstance(counts, Mapping) or len(counts) == 0:
        raise ValueError(f"{where} is empty; pass a dict bitstring -> count with at least one shot")
    indices, values = [], []
    for bits, count in counts.items():
        bits = str(bits).replace(" ", "")
        if len(bits) != n_qubits or set(bits) - {"0", "1"}:
            raise ValueError(f"{where}: bitstring {bits!r} must have {n_qubits} characters 0/1 (one per qubit)")
        if bit_order == "qubit0_last":
            bits = bits[::-1]
        count = int(count)
        if count < 0:
            raise ValueError(f"{where}: bitstring {bits!r} has negative count {count}")
        indices.append(int(bits, 2))
        values.append(count)
    values = np.array(values, dtype=np.int64)
    if values.sum() < 2:
        raise ValueError(f"{where} holds {values.sum()} shot(s); at least 2 are needed for a standard error")
    return np.array(indices, dtype=np.int64), values


def support_masks(strings: list[PauliString], members: np.ndarray, n_qubits: int) -> np.ndarray:
    """Bit mask of each string's support (after basis rotation every letter reads as Z)."""
    return np.array([sum(1 << (n_qubits - 1 - q) for q in strings[s].qubits) for s in members], dtype=np.int64)


def parity_values(outcomes: np.ndarray, strings: list[PauliString], members: np.ndarray, n_qubits: int) -> np.ndarray:
    """p_s(c) = (-1)^{|c & m_s|}: the value of each rotated string s on each outcome c, shape
    outcomes.shape + (S,) (e.g. (K, S) for K outcomes)."""
    masks = support_masks(strings, members, n_qubits)
    return 1.0 - 2.0 * (np.bitwise_count(np.asarray(outcomes)[..., None] & masks) & 1)


def count_moments(counts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates from outcome counts n_c (leading axes are batch axes) and values p_s(c):

        <P_s>^ = (1/M) sum_c n_c p_s(c),   Cov_st = [(1/M) sum_c n_c p_s(c) p_t(c) - <P_s>^ <P_t>^] / (M - 1),

    with M = sum_c n_c: the means and the covariance the means have."""
    shots = counts.sum(axis=-1)[..., None]
    mean = counts @ values / shots
    k = values.shape[-1]
    # one matrix product against the (c, k*l) products: numpy does not hand the three-operand
    # einsum to BLAS (benchmarks/NOTES.md)
    pairs = (values[:, :, None] * values[:, None, :]).reshape(values.shape[0], k * k)
    second = (counts @ pairs).reshape(counts.shape[:-1] + (k, k)) / shots[..., None]
    return mean, (second - mean[..., :, None] * mean[..., None, :]) / (shots[..., None] - 1)


def shot_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """count_moments from the shots themselves: ``values`` (..., M, S) = p_s(c_m) of M shots,

        <P_s>^ = (1/M) sum_m p_s(c_m),   Cov_st = [(1/M) sum_m p_s(c_m) p_t(c_m) - <P_s>^ <P_t>^] / (M - 1)

    (the same numbers as count_moments of the outcome counts; cheaper when M < 2^n)."""
    shots = values.shape[-2]
    mean = values.mean(axis=-2)
    second = np.swapaxes(values, -1, -2) @ values / shots
    return mean, (second - mean[..., :, None] * mean[..., None, :]) / (shots - 1)


def estimate_terms(
    strings: list[PauliString],
    plan: MeasurementPlan,
    records: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> TermEstimates:
    """Means and block-diagonal covariance of every planned string from per-basis records."""
    index, means, blocks = [], [], []
    for basis, members in zip(plan.bases, plan.members):
        if basis not in records:
            served = ", ".join(str(strings[s]) for s in members)
            raise ValueError(f"no record for basis {basis!r}, which is needed for the terms {served}")
        observed, counts = records[basis]
        mean, block = count_moments(counts, parity_values(observed, strings, members, plan.n_qubits))
        blocks.append(block)
        index.append(members)
        means.append(mean)
    return TermEstimates(np.concatenate(index), np.concatenate(means), block_diag(*blocks))
