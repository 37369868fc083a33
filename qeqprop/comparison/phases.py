"""Quantum-data task: classify the phase of a transverse-field Ising chain from its
Hamiltonian parameters, and the quantum *sensor* that learns it by EP.

Data chain (open, ``n_chain`` qubits), inputs x = (J, g):

    H_data(x) = - J sum_i Z_i Z_(i+1) - g sum_i X_i

Labels come from the exact solution of the TFIM chain (Pfeuty 1970, Jordan-Wigner
fermions): in the thermodynamic limit the ground state is ferromagnetic for g < J
(label 1) and paramagnetic for g > J (label 0); the critical line is g = J.
``order_parameter`` computes the independent finite-chain check: the end-to-end
correlation <Z_0 Z_(L-1)> of a longer chain's ground state (Lanczos), large in the
ferromagnet and small in the paramagnet away from g = J.

Sensor: ``n_sensors`` extra qubits s coupled to every chain site,

    H(theta, x) = H_data(x) - sum_(s,i) (K_si Z_s Z_i + L_si X_s X_i) - sum_s (h_s Z_s + G_s X_s),

with trainable K, L, h, G; the outputs are <X_s> (even under the chain's Z2 flip, so they
can tell the phases apart; <Z_s> follows the sign of h_s in both phases). The whole H(theta, x) is one
ParametrizedHamiltonian (the chain terms are fixed operators times inputs), so ground-state
EP, the linear-response reference gradient and the shot-based estimators apply unchanged.
"""

from __future__ import annotations

import numpy as np

from ..datasets import Dataset
from ..hamiltonians.parametrized import ParametrizedHamiltonian
from ..solvers import ground_state
from ..systems.spin import SpinSystem
from .chains import TFIM_CHAIN, tfim_labels, tfim_terms
from .sensor import chain_sensor

PARAMETER_RANGE = TFIM_CHAIN.window[0]  # (J, g) both drawn from it


def phase_labels(x: np.ndarray) -> np.ndarray:
    """Exact TFIM phase of each row x = (J, g): 1 (ferromagnet) if g < J, else 0."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if x.shape[1] != 2:
        raise ValueError(f"x must have two columns (J, g), got shape {x.shape}")
    return tfim_labels(x)


def load_phases(n_samples: int = 240, test_size: float = 0.3, seed: int = 0, low: float = PARAMETER_RANGE[0],
                high: float = PARAMETER_RANGE[1]) -> Dataset:
    """(J, g) drawn uniformly from [low, high]^2 with exact phase labels, split train/test.

    Features are the raw Hamiltonian parameters (the sensor uses them as coefficients; the
    classical learners get the same numbers as plain input features)."""
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 10:
        raise ValueError(f"n_samples must be an integer >= 10, got {n_samples!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    if not 0.0 < low < high:
        raise ValueError(f"need 0 < low < high for the parameter range, got low={low}, high={high}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(int(n_samples), 2))
    y = phase_labels(x)
    n_test = int(round(test_size * len(x)))
    return Dataset("phases", x[n_test:], y[n_test:], x[:n_test], y[:n_test], 2)


def order_parameter(J: float, g: float, n_chain: int = 12) -> float:
    """End-to-end correlation <Z_0 Z_(L-1)> in the ground state of an open L-site chain."""
    hamiltonian = ParametrizedHamiltonian(n_chain, tfim_terms(n_chain), {}, n_inputs=2,
                                          observables=[f"Z0 Z{n_chain - 1}"])
    operator = hamiltonian.operator({}, np.array([J, g]))
    state = ground_state(operator, "lanczos", with_gap=False)
    return float(hamiltonian.table.expectations(state.vector)[hamiltonian.observable_index[0]].real)


def phase_sensor(n_chain: int = 4, n_sensors: int = 1, init_std: float = 0.5, **options) -> SpinSystem:
    """The sensor learner of the module docstring (``sensor.chain_sensor`` on the TFIM chain):
    chain qubits 0..n_chain-1, sensors after, outputs <X_s>."""
    return chain_sensor(TFIM_CHAIN, n_chain, n_sensors, init_std, **options)
