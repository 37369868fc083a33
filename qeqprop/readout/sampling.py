"""Simulated measurement records: rotate the state into each basis and sample shots.

Basis rotations (applied before a computational-basis readout): X -> H, Y -> H S^dagger,
so that U P U^dagger = Z on every qubit. Shots per basis are multinomial over the rotated
probabilities |U psi|^2 (seeded): as outcome counts (``rng.multinomial``), or as the M
outcomes themselves (``draw_outcomes``, inverse CDF; the same distribution, cheaper for M < 2^n). The Gaussian-per-term approximation draws each served <P_s>
independently,

    <P_s>^ ~ N(<P_s>, (1 - <P_s>^2) / M_b)      (M_b the shots of the basis serving s),

for a whole batch at once from the exact expectations alone (no basis rotation, no state
vectors); it ignores the covariances between strings of one basis and the +-1 discreteness, and
can leave [-1, 1] at small M (what a research script's "Gaussian noise per term" does).
"""

from __future__ import annotations

from functools import lru_cache, reduce

import numpy as np
from scipy.linalg import block_diag

from .._blas import one_blas_thread
from ..config import usable_cores
from ..hamiltonians.pauli import PauliString
from .plan import MeasurementPlan
from .records import TermEstimates, parity_values

_HADAMARD = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
ROTATIONS = {"X": _HADAMARD, "Y": _HADAMARD @ np.diag([1.0, -1.0j]), "Z": np.eye(2)}
SAMPLERS = ("multinomial", "gaussian")


ROTATION_BLOCK = 4  # qubits rotated together by one (16, 16) product


@lru_cache(maxsize=512)
def _block_rotation(letters: str) -> tuple[np.ndarray, np.ndarray]:
    """(U, U^T as a C-contiguous copy) for the Kronecker product of the rotations of ``letters``."""
    rotation = reduce(np.kron, [ROTATIONS[letter] for letter in letters]).astype(np.complex128)
    return rotation, np.ascontiguousarray(rotation.T)


def rotate_to_basis(psi: np.ndarray, basis: str) -> np.ndarray:
    """U psi with U the tensor product of the per-qubit readout rotations of ``basis``;
    leading axes of ``psi`` (..., 2^n) are batch axes. The qubits (qubit q the q-th most
    significant bit) are rotated in blocks of up to ROTATION_BLOCK consecutive qubits, a block
    q0..q1-1 as one (2^k, 2^k) Kronecker product applied to the state viewed as (rows, 2^k,
    2^(n-q1)) (the last block as rows (.., 2^k) @ U^T): few large products instead of one tiny
    (2, 2) product per qubit and row, 2-4x faster on 10-qubit batches (one BLAS thread: the
    threaded BLAS spins on these sizes; below 2^12 amplitudes it stays on one thread unasked).
    Blocks whose letters are all Z are skipped."""
    psi = np.asarray(psi, dtype=np.complex128)
    return (_rotate if psi.size < 1 << 12 else _rotate_one_thread)(psi, basis)


def _rotate(psi: np.ndarray, basis: str) -> np.ndarray:
    """``rotate_to_basis`` for a complex128 ``psi``."""
    n = len(basis)
    head = psi.shape[:-1]
    state = psi.reshape(-1, 2**n)
    for stop in range(n, 0, -ROTATION_BLOCK):
        start = max(0, stop - ROTATION_BLOCK)
        letters = basis[start:stop]
        if letters.count("Z") == len(letters):
            continue
        rotation, transposed = _block_rotation(letters)
        if stop == n:
            state = state.reshape(-1, 2 ** (stop - start)) @ transposed
        else:
            state = np.matmul(rotation, state.reshape(-1, 2 ** (stop - start), 2 ** (n - stop)))
    return state.reshape(head + (2**n,))


_rotate_one_thread = one_blas_thread(_rotate)


def basis_probabilities(psi: np.ndarray, basis: str) -> np.ndarray:
    """|U psi|^2, normalised along the last axis (leading axes are batch axes)."""
    probabilities = np.abs(rotate_to_basis(psi, basis)) ** 2
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def draw_outcomes(probabilities: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """``shots`` outcomes per row of ``probabilities`` (B, D), shape (B, shots): u ~ U[0, 1)
    (``rng.random((B, shots))``) through each row's cumulative distribution, min{c : C_c > u}, all
    rows in one search (row b offset by b). ``basis_outcomes``'s path without the native kernels."""
    batch, dim = probabilities.shape
    cdf = np.cumsum(probabilities, axis=1)
    cdf /= cdf[:, -1:]
    offsets = np.arange(batch)[:, None]
    found = np.searchsorted((cdf + offsets).ravel(), (rng.random((batch, shots)) + offsets).ravel(), side="right")
    return np.minimum(found.reshape(batch, shots), (offsets + 1) * dim - 1) - offsets * dim


LETTER_CODES = {"Z": 0, "X": 1, "Y": 2}  # basis letters as qeqprop_basis_outcomes reads them
NATIVE_PARALLEL_MIN = 1 << 16  # amplitudes in a batch from which the native sampler uses every core


def basis_outcomes(psi: np.ndarray, basis: str, shots: int, rng: np.random.Generator) -> np.ndarray:
    """``shots`` outcomes of each state of ``psi`` (B, 2^n) measured in ``basis``, shape (B, shots):
    ``draw_outcomes(basis_probabilities(psi, basis), shots, rng)``, the same draws from ``rng``. With
    the native kernels loaded, one C call (``qeqprop/native/basis_sampling.cc``) rotates each state in
    a scratch vector and searches its cumulative distribution, without the (B, D) temporaries and
    matrix products of the numpy path (7x faster on the 10-qubit sensor model's batches); the
    outcomes equal the numpy path's except for a uniform within an ulp of a cumulative boundary."""
    from ..native import native_library

    states = np.asarray(psi)
    if states.ndim != 2 or states.shape[-1] != 1 << len(basis):
        raise ValueError(f"psi must be (batch, 2^{len(basis)}) for the {len(basis)}-qubit basis {basis!r}, got shape {states.shape}")
    library = native_library()
    if library is None:
        return draw_outcomes(basis_probabilities(states, basis), int(shots), rng)
    uniforms = rng.random((states.shape[0], int(shots)))  # the draws draw_outcomes makes
    states = np.ascontiguousarray(states, dtype=np.complex128)
    letters = np.array([LETTER_CODES[letter] for letter in basis], dtype=np.int8)
    outcomes = np.empty(uniforms.shape, dtype=np.int64)
    status = library.qeqprop_basis_outcomes(states.view(np.float64), states.shape[0], len(basis), letters, uniforms,
                                            uniforms.shape[1], outcomes, usable_cores() if states.size >= NATIVE_PARALLEL_MIN else 1)
    if status != 0:
        raise RuntimeError(f"qeqprop_basis_outcomes refused basis {basis!r} (status {status})")
    return outcomes


def sample_records(psi: np.ndarray, plan: MeasurementPlan, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Multinomial shots in every basis of ``plan``: {basis: (observed indices, counts)}."""
    records = {}
    for basis, shots in zip(plan.bases, plan.shots):
        counts = rng.multinomial(int(shots), basis_probabilities(psi, basis))
        observed = np.flatnonzero(counts)
        records[basis] = (observed.astype(np.int64), counts[observed].astype(np.int64))
    return records


def exact_term_moments(psi: np.ndarray, strings: list[PauliString], plan: MeasurementPlan) -> TermEstimates:
    """Exact <P_s> and the covariance the shot estimates will have in ``plan``:
    (<P_s P_t> - <P_s><P_t>) / M_b within a basis (P_s P_t reads as the parity of the
    symmetric difference of the supports), zero across bases."""
    index, means, blocks = [], [], []
    for basis, members, shots in zip(plan.bases, plan.members, plan.shots):
        probabilities = basis_probabilities(psi, basis)
        values = parity_values(np.arange(len(probabilities)), strings, members, plan.n_qubits)
        mean = probabilities @ values
        second = (values * probabilities[:, None]).T @ values
        index.append(members)
        means.append(mean)
        blocks.append((second - np.outer(mean, mean)) / shots)
    return TermEstimates(np.concatenate(index), np.concatenate(means), block_diag(*blocks))


def term_shots(plan: MeasurementPlan, size: int) -> np.ndarray:
    """M_b of the basis serving each of ``size`` table strings (0 for unplanned strings)."""
    shots = np.zeros(size, dtype=np.int64)
    for members, count in zip(plan.members, plan.shots):
        shots[members] = count
    return shots


def gaussian_estimates(expectations: np.ndarray, plan: MeasurementPlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian-per-term approximation (module docstring) for a batch: from exact <P_s>
    (B, S) over the table, the estimates (B, S) and their covariance (B, S, S), diagonal with
    (1 - <P_s>^2) / M_b for planned strings (zeros elsewhere); one normal draw per planned
    string and sample."""
    expectations = np.asarray(expectations, dtype=float)
    batch, size = expectations.shape
    index = np.concatenate(plan.members) if plan.members else np.zeros(0, dtype=np.int64)
    exact = expectations[:, index]
    variances = np.clip(1.0 - exact**2, 0.0, None) / term_shots(plan, size)[index]
    means = np.zeros((batch, size))
    means[:, index] = exact + np.sqrt(variances) * rng.standard_normal(exact.shape)
    covariance = np.zeros((batch, size, size))
    covariance[:, index, index] = variances
    return means, covariance
