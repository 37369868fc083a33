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
from ..hamiltonians.parametrized import ParamSpec, ParametrizedHamiltonian, Term
from ..solvers import ground_state
from ..systems.spin import SpinSystem

PARAMETER_RANGE = (0.2, 2.0)


def phase_labels(x: np.ndarray) -> np.ndarray:
    """Exact TFIM phase of each row x = (J, g): 1 (ferromagnet) if g < J, else 0."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if x.shape[1] != 2:
        raise ValueError(f"x must have two columns (J, g), got shape {x.shape}")
    return (x[:, 1] < x[:, 0]).astype(int)


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


def chain_terms(n_chain: int, offset: int = 0) -> list[Term]:
    """-J sum Z_i Z_(i+1) - g sum X_i on qubits offset..offset+n_chain-1, J = x_0, g = x_1."""
    sites = range(offset, offset + n_chain)
    terms = [Term(f"Z{i} Z{i + 1}", -1.0, input=0) for i in sites if i + 1 < offset + n_chain]
    return terms + [Term(f"X{i}", -1.0, input=1) for i in sites]


def order_parameter(J: float, g: float, n_chain: int = 12) -> float:
    """End-to-end correlation <Z_0 Z_(L-1)> in the ground state of an open L-site chain."""
    hamiltonian = ParametrizedHamiltonian(n_chain, chain_terms(n_chain), {}, n_inputs=2,
                                          observables=[f"Z0 Z{n_chain - 1}"])
    operator = hamiltonian.operator({}, np.array([J, g]))
    state = ground_state(operator, "lanczos", with_gap=False)
    return float(hamiltonian.table.expectations(state.vector)[hamiltonian.observable_index[0]].real)


def phase_sensor(n_chain: int = 4, n_sensors: int = 1, init_std: float = 0.5, **options) -> SpinSystem:
    """The sensor learner of the module docstring: chain qubits 0..n_chain-1, sensors after.

    K ~ init_std N(0, 1) (ZZ) and L ~ init_std N(0, 1) (XX) couple each sensor to every chain
    site; h starts at +0.5 (it breaks the Z2 symmetry, so the ferromagnetic ground state is
    gapped) and G at +0.5 (a sensor that starts polarized along X learns in fewer epochs).
    Outputs <X_s>: Z2-even, so the phase (not the
    sign of a magnetization) decides the sign of the output."""
    if not isinstance(n_chain, (int, np.integer)) or n_chain < 2:
        raise ValueError(f"n_chain must be an integer >= 2, got {n_chain!r}")
    if not isinstance(n_sensors, (int, np.integer)) or n_sensors < 1:
        raise ValueError(f"n_sensors must be a positive integer, got {n_sensors!r}")
    n = n_chain + n_sensors
    sensors = range(n_chain, n)
    terms = chain_terms(n_chain)
    for a, s in enumerate(sensors):
        terms += [Term(f"Z{s} Z{i}", -1.0, "K", (a, i)) for i in range(n_chain)]
        terms += [Term(f"X{s} X{i}", -1.0, "L", (a, i)) for i in range(n_chain)]
        terms += [Term(f"Z{s}", -1.0, "h", (a,)), Term(f"X{s}", -1.0, "G", (a,))]
    coupling = ParamSpec((n_sensors, n_chain), std=init_std)
    specs = {"K": coupling, "L": coupling, "h": ParamSpec((n_sensors,), mean=0.5, std=0.1 * init_std),
             "G": ParamSpec((n_sensors,), mean=0.5, std=0.1 * init_std)}
    hamiltonian = ParametrizedHamiltonian(n, terms, specs, n_inputs=2, observables=[f"X{s}" for s in sensors])
    return SpinSystem(hamiltonian, **options)
