"""System registry of the comparison harness: every EP learner sized for a task.

Each builder takes (n_inputs, n_outputs, hidden) and returns an EnergySystem; ``build`` picks
the ``hidden`` size whose trainable parameter count is closest to the task's target
(``TARGET_PARAMS``), so the systems compete at comparable parameter counts (the report
states the actual counts). Systems that cannot take a task raise ``Unsupported`` with the
reason, which the harness records instead of a result.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

SYSTEMS = ("tfim", "qho", "hopfield", "resistive", "phase_oscillators", "ising", "elastic", "sensor")
QUANTUM = ("tfim", "qho", "sensor")
TARGET_PARAMS = {"xor": 24, "parity": 32, "iris": 48, "digits": 240, "phases": 12}
MAX_QUBITS = 8  # dense ground states: every quantum learner here stays in the fast exact regime
MAX_SPINS = 12  # exact Boltzmann enumeration of the Ising machine
MAX_HIDDEN = 64


class Unsupported(Exception):
    """This system cannot take this task; the message says why."""


def n_outputs_for(n_classes: int) -> int:
    """One output (sign) for two classes, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes


def _nodes(kind: str, cap: int, n_outputs: int, hidden: int) -> int:
    if n_outputs + 1 > cap:
        raise Unsupported(f"needs {n_outputs} output {kind}s plus hidden ones, over the {cap}-{kind} limit of exact solvers")
    if hidden + n_outputs > cap:
        raise Unsupported(f"more than {cap} {kind}s")
    return hidden + n_outputs


def _tfim(n_inputs, n_outputs, hidden):
    from ..systems.tfim import TFIMNetwork

    n = _nodes("qubit", MAX_QUBITS, n_outputs, hidden)
    return TFIMNetwork(n, "complete", n_inputs=n_inputs, output_qubits=list(range(hidden, n)), solver="dense")


def _oscillators(hbar: float):
    def build(n_inputs, n_outputs, hidden):
        from ..systems.oscillators import OscillatorNetwork

        n = hidden + n_outputs
        return OscillatorNetwork(n, "complete", n_inputs=n_inputs, output_nodes=list(range(hidden, n)), hbar=hbar)

    return build


def _hopfield(n_inputs, n_outputs, hidden):
    from classical import HopfieldNetwork

    return HopfieldNetwork(n_inputs, (hidden,), n_outputs, tol=1e-10)


def _resistive(n_inputs, n_outputs, hidden):
    from classical import ResistiveNetwork

    return ResistiveNetwork(n_inputs, (hidden,), n_outputs, tol=1e-10)


def _phase_oscillators(n_inputs, n_outputs, hidden):
    from classical import PhaseOscillatorNetwork

    return PhaseOscillatorNetwork(n_inputs, hidden, n_outputs)


def _ising(n_inputs, n_outputs, hidden):
    from classical import IsingMachine

    n = _nodes("spin", MAX_SPINS, n_outputs, hidden)
    return IsingMachine(n, "complete", n_inputs=n_inputs, output_spins=list(range(hidden, n)), temperature=1.0)


BUILDERS: dict[str, Callable] = {
    "tfim": _tfim, "qho": _oscillators(1.0), "hopfield": _hopfield, "resistive": _resistive,
    "phase_oscillators": _phase_oscillators, "ising": _ising, "elastic": _oscillators(0.0),
}

DESCRIPTIONS = {
    "tfim": "TFIM network, complete graph, inputs as trained fields (quantum)",
    "qho": "quantum harmonic oscillator network, hbar = 1 (quantum; linear in x)",
    "hopfield": "layered Hopfield network, hard-sigmoid units",
    "resistive": "nonlinear resistive network (diode-bounded hidden voltages)",
    "phase_oscillators": "coupled phase oscillators (XY energy)",
    "ising": "classical Ising machine at T = 1 (TFIM at Gamma = 0)",
    "elastic": "elastic spring network (QHO at hbar = 0; linear in x)",
    "sensor": "quantum sensor: TFIM data chain (J, g as Hamiltonian coefficients) + 1 trained sensor qubit",
}


def count_params(system) -> int:
    """Number of trainable scalars."""
    return int(sum(np.size(v) for v in system.init_params(0).values()))


def build(name: str, task: str, n_inputs: int, n_classes: int):
    """(system, n_params) for system ``name`` on ``task``; Unsupported if it cannot take it."""
    if name == "sensor":
        if task != "phases":
            raise Unsupported("learns from quantum data only: its inputs are the TFIM chain's Hamiltonian parameters (task 'phases')")
        from .phases import phase_sensor

        system = phase_sensor(n_chain=4, n_sensors=1, solver="dense")
        return system, count_params(system)
    target = TARGET_PARAMS[task]
    n_outputs = n_outputs_for(n_classes)
    best, reason = None, None
    for hidden in range(1, MAX_HIDDEN + 1):
        try:
            system = BUILDERS[name](n_inputs, n_outputs, hidden)
        except Unsupported as exc:
            reason = str(exc)
            break
        count = count_params(system)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (system, count)
        if count >= target:
            break
    if best is None:
        raise Unsupported(reason or "no size fits")
    return best
