"""Ground states of the quantum-data chains, their measurement snapshots, and the copy ledger.

Ground states: exact diagonalisation (the library's dense solver) of each chain Hamiltonian
H(x) (comparison.chains), computed once per (model, n_chain, sampled points) and cached as .npz
under ``qeqprop.config.cache_dir()/quantum_data`` (nothing is downloaded).

Snapshots: a copy of |psi> measured in the Z basis (or, after a Hadamard on every qubit, the X
basis) gives one bitstring b, spins s_i = (-1)^(b_i) (qubit 0 is the most significant bit of the
basis index, as in qeqprop.readout.sampling). The per-shot feature map of one basis is

    phi(s) = ( (1/L) sum_i s_i,  C_1(s), ..., C_(L-1)(s) ),   C_r(s) = 1/(L - r) sum_i s_i s_(i+r),

so its mean over M shots estimates the translation-averaged magnetisation and correlators
m = <(1/L) sum_i P_i>, C_r = <1/(L-r) sum_i P_i P_(i+r)> (P = Z or X) without bias, with standard
error sqrt(Var phi / M) (the 1/sqrt(M) rate). ``snapshot_features`` spends M copies per state:
ceil(M/2) in the Z basis, floor(M/2) in the X basis, 2L features in all; ``exact_features``
is the M -> infinity limit sum_b p(b) phi(b) over the exact basis distributions.

Copies: ``CopyLedger`` counts the copies each state has given up; an access model that asks for
more than its budget M of some state gets a ValueError, so every learner of the copies
comparison is held to the same M (comparison.quantum_data).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..config import cache_dir
from ..hamiltonians.parametrized import ParametrizedHamiltonian
from ..readout.sampling import basis_outcomes, basis_probabilities
from ..solvers import ground_state
from .chains import ChainModel

BASES = ("Z", "X")


class CopyLedger:
    """Copies of each of ``n_states`` states already measured, at most ``budget`` per state."""

    def __init__(self, n_states: int, budget: int):
        if not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ValueError(f"budget must be a positive integer number of copies, got {budget!r}")
        self.budget = int(budget)
        self.used = np.zeros(int(n_states), dtype=np.int64)

    def take(self, copies: int, states=None) -> None:
        """Record ``copies`` more copies of each state in ``states`` (default: all); ValueError
        (nothing recorded) if that would exceed the budget of any of them."""
        index = slice(None) if states is None else np.asarray(states)
        if np.any(self.used[index] + int(copies) > self.budget):
            raise ValueError(f"copies: {copies} more copies would exceed the budget of {self.budget} per state "
                             f"(already used up to {int(np.max(self.used[index]))}); every access model gets the same budget")
        self.used[index] += int(copies)

    def spent_exactly(self) -> bool:
        """Whether every state gave exactly ``budget`` copies."""
        return bool(np.all(self.used == self.budget))


def chain_hamiltonian(model: ChainModel, n_chain: int) -> ParametrizedHamiltonian:
    """The chain alone as a ParametrizedHamiltonian with inputs x = (x_0, x_1) and no parameters."""
    if not isinstance(n_chain, (int, np.integer)) or not 4 <= n_chain <= 14:
        raise ValueError(f"n_chain must be an integer in [4, 14] (dense exact diagonalisation), got {n_chain!r}")
    return ParametrizedHamiltonian(int(n_chain), model.terms(int(n_chain), 0), {}, n_inputs=2)


def _cache_path(model: ChainModel, n_chain: int, x: np.ndarray) -> Path:
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()[:16]
    return cache_dir() / "quantum_data" / f"{model.name}-L{n_chain}-{digest}.npz"


def ground_states(model: ChainModel, x: np.ndarray, n_chain: int = 8, cache: bool = True) -> np.ndarray:
    """Exact ground states (rows, shape (len(x), 2^n_chain)) of the chain at each row of ``x``;
    read from / written to the on-disk cache (module docstring) unless ``cache`` is False."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    model.labels(x)  # validates x
    path = _cache_path(model, n_chain, x)
    if cache and path.exists():
        with np.load(path) as stored:
            return stored["states"]
    hamiltonian = chain_hamiltonian(model, n_chain)
    states = np.stack([ground_state(hamiltonian.operator({}, row), "dense", with_gap=False).vector for row in x])
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(handle)
        np.savez(temporary, states=states, x=x)
        os.replace(temporary, path)
    return states


def spins(indices: np.ndarray, n_qubits: int) -> np.ndarray:
    """+-1 spins (..., n_qubits) of basis indices: s_q = 1 - 2 b_q, qubit 0 the most significant bit."""
    shifts = n_qubits - 1 - np.arange(n_qubits)
    return 1 - 2 * ((np.asarray(indices)[..., None] >> shifts) & 1)


def shot_features(s: np.ndarray) -> np.ndarray:
    """phi(s) of the module docstring for spins s (..., L): (..., L) = (m, C_1, ..., C_(L-1))."""
    s = np.asarray(s, dtype=float)
    length = s.shape[-1]
    correlators = [np.mean(s[..., :-r] * s[..., r:], axis=-1) for r in range(1, length)]
    return np.stack([np.mean(s, axis=-1)] + correlators, axis=-1)


def feature_names(n_chain: int) -> list[str]:
    """Names of the 2 n_chain snapshot features: m_Z, C^Z_1.., m_X, C^X_1.."""
    return [f"{name}{basis}" + (f"_{r}" if r else "") for basis in BASES for r, name in
            [(0, "m")] + [(r, "C") for r in range(1, n_chain)]]


def exact_features(states: np.ndarray) -> np.ndarray:
    """The M -> infinity features: sum_b p_P(b) phi(b) per basis P in (Z, X); shape (B, 2L)."""
    states = np.atleast_2d(states)
    n = int(np.log2(states.shape[-1]))
    table = shot_features(spins(np.arange(2**n), n))
    return np.concatenate([basis_probabilities(states, basis * n) @ table for basis in BASES], axis=-1)


def basis_copies(copies: int) -> tuple[int, int]:
    """(Z shots, X shots) of ``copies``: ceil and floor of copies / 2."""
    return (copies + 1) // 2, copies // 2


def snapshot_features(states: np.ndarray, copies: int, rng: np.random.Generator, ledger: CopyLedger | None = None) -> np.ndarray:
    """Features (B, 2L) estimated from ``copies`` measured copies of each state (module docstring);
    ``ledger`` (one entry per state) records them and refuses an over-budget request."""
    states = np.atleast_2d(states)
    if not isinstance(copies, (int, np.integer)) or copies < 2:
        raise ValueError(f"copies must be an integer >= 2 (one Z and one X snapshot at least), got {copies!r}")
    if ledger is not None:
        ledger.take(copies)
    n = int(np.log2(states.shape[-1]))
    blocks = []
    for basis, shots in zip(BASES, basis_copies(int(copies))):
        outcomes = basis_outcomes(states, basis * n, shots, rng)
        blocks.append(shot_features(spins(outcomes, n)).mean(axis=1))
    return np.concatenate(blocks, axis=-1)
