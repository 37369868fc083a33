"""The quantum sensor of the quantum-data tasks: a data chain's ground state read by trained sensor qubits.

The chain of a task (``chains.SENSOR_CHAINS``: the TFIM chain of "phases", the ANNNI chain, the
XXZ chain in a field) sits on qubits 0..L-1 with the task's inputs x as coefficients of its fixed
Pauli terms; ``n_sensors`` sensor qubits s = L, L+1, ... couple to every chain site,

    H(theta, x) = H_chain(x) - sum_(s,i) (K_si Z_s Z_i + L_si X_s X_i) - sum_s (h_s Z_s + G_s X_s),

with trainable K, L, h, G, and the outputs are <X_s>: even under the chain's Z2 flip, so the phase,
not the sign of a magnetisation, sets them (<Z_s> follows the sign of h_s in every phase). The whole
H(theta, x) is one ParametrizedHamiltonian, so ground-state EP, the linear-response reference
gradient and the shot estimators apply unchanged.
"""

from __future__ import annotations

import numpy as np

from ..hamiltonians.parametrized import ParametrizedHamiltonian, ParamSpec, Term
from ..systems.spin import SpinSystem
from .chains import SENSOR_CHAINS, ChainModel

N_CHAIN = 8  # chain sites of the quantum-data tasks' sensor (comparison.quantum_data, the comparison harness)
SENSOR_COST = "cross_entropy"  # on the three-phase chains; one-seed probe on annni, 10 epochs: train accuracy 0.70 with "mse", 0.94 with this


def chain_sensor(model: ChainModel | str, n_chain: int = N_CHAIN, n_sensors: int = 3, init_std: float = 0.5,
                 reach: int | None = None, pin: float = 0.0, **options) -> SpinSystem:
    """The chain of ``model`` (a ChainModel or a name of ``SENSOR_CHAINS``) on qubits 0..n_chain-1
    plus ``n_sensors`` sensor qubits (module docstring). K, L ~ init_std N(0, 1); h, G start at 0.5
    (a sensor polarised along X learns in fewer epochs). h breaks the chain's Z2 symmetry, and the
    couplings K carry it into the chain: ``pin`` > 0 starts K at pin + init_std N(0, 1), a
    ferromagnetic coupling through which the sensor's field pins an ordered chain, so its ground
    state stays gapped (measured on a 12-site TFIM chain in the ferromagnet, one sensor, reach 2:
    gaps 0.001-0.01 at pin 0, where the random couplings nearly cancel, and 0.45-0.77 at pin 0.5;
    EP needs a gap well above beta ||nudge||). ``reach``: each sensor couples to the last ``reach``
    chain sites only (default: every site); a finite reach keeps every term short-ranged, so a long
    chain's ground state is an MPS of small bond dimension (solver "mps": preset sensor48-mps).
    ``options`` go to SpinSystem (solver, cost, gap_check: which free phases of MPS ground states
    without gaps get a gap solve, qeqprop.systems.gap_checks, ...)."""
    if isinstance(model, str):
        if model not in SENSOR_CHAINS:
            raise ValueError(f"chain must be one of {tuple(SENSOR_CHAINS)} (the task whose data chain the sensor reads), "
                             f"got {model!r}")
        model = SENSOR_CHAINS[model]
    if not isinstance(n_chain, (int, np.integer)) or n_chain < 2:
        raise ValueError(f"n_chain must be an integer >= 2, got {n_chain!r}")
    if not isinstance(n_sensors, (int, np.integer)) or n_sensors < 1:
        raise ValueError(f"n_sensors must be a positive integer, got {n_sensors!r}")
    reach = n_chain if reach is None else reach
    if isinstance(reach, bool) or not isinstance(reach, (int, np.integer)) or not 1 <= reach <= n_chain:
        raise ValueError(f"reach must be an integer in [1, n_chain = {n_chain}] (chain sites each sensor couples to), got {reach!r}")
    if not np.isfinite(pin):
        raise ValueError(f"pin must be a finite number (the couplings K start at pin + init_std N(0, 1)), got {pin!r}")
    n = n_chain + n_sensors
    terms = model.terms(n_chain, 0)
    read = range(n_chain - reach, n_chain)
    for a, s in enumerate(range(n_chain, n)):
        terms += [Term(f"Z{s} Z{i}", -1.0, "K", (a, k)) for k, i in enumerate(read)]
        terms += [Term(f"X{s} X{i}", -1.0, "L", (a, k)) for k, i in enumerate(read)]
        terms += [Term(f"Z{s}", -1.0, "h", (a,)), Term(f"X{s}", -1.0, "G", (a,))]
    coupling = ParamSpec((n_sensors, reach), std=init_std)
    field = ParamSpec((n_sensors,), mean=0.5, std=0.1 * init_std)
    pinning = ParamSpec((n_sensors, reach), mean=float(pin), std=init_std)
    hamiltonian = ParametrizedHamiltonian(n, terms, {"K": pinning, "L": coupling, "h": field, "G": field}, n_inputs=2,
                                          observables=[f"X{s}" for s in range(n_chain, n)])
    return SpinSystem(hamiltonian, **options)
