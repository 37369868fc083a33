"""The comparison's systems: every EP learner of the registry (qeqprop.systems.registry) sized for a task.

``build`` picks the ``hidden`` size whose trainable parameter count is closest to the task's
target (``TARGET_PARAMS``), so the systems compete at comparable parameter counts (the report
states the actual counts). Systems that cannot take a task raise ``Unsupported`` with the
reason, which the harness records instead of a result: a task the registry says the system
cannot learn, or more qubits (spins) than the exact solvers here allow (``CAPS``).

``SYSTEMS`` is the default line-up; every registered system (``AVAILABLE``) can be named.
"""

from __future__ import annotations

import numpy as np

from ..systems.registry import QUANTUM, REGISTRY, get_spec

SYSTEMS = ("tfim", "qho", "hopfield", "resistive", "phase_oscillators", "ising", "elastic", "sensor")
AVAILABLE = tuple(REGISTRY)
TARGET_PARAMS = {"xor": 24, "parity": 32, "iris": 48, "digits": 240, "phases": 12}
MAX_QUBITS = 8  # dense ground states: every quantum learner here stays in the fast exact regime
MAX_SPINS = 12  # exact Boltzmann enumeration of the Ising machine
MAX_HIDDEN = 64
CAPS = {"qubit": MAX_QUBITS, "spin": MAX_SPINS}  # by the registry's unit; such systems have hidden + n_outputs of them
SETTINGS = {  # options the comparison fixes (registry option names); the others keep their defaults
    "tfim": {"solver": "dense"},
    "sensor": {"solver": "dense"},
    "hopfield": {"tol": 1e-10},
    "resistive": {"tol": 1e-10},
    "ising": {"temperature": 1.0},
}
SIZES = {"sensor": 4}  # fixed hidden size: the sensor's data chain is part of its task, not capacity to match
DESCRIPTIONS = {name: f"{spec.description} ({spec.kind})" for name, spec in REGISTRY.items()}

__all__ = ["AVAILABLE", "DESCRIPTIONS", "QUANTUM", "SYSTEMS", "Unsupported", "build", "count_params", "n_outputs_for"]


class Unsupported(Exception):
    """This system cannot take this task; the message says why."""


def n_outputs_for(n_classes: int) -> int:
    """One output (sign) for two classes, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes


def count_params(system) -> int:
    """Number of trainable scalars."""
    return int(sum(np.size(v) for v in system.init_params(0).values()))


def _check_cap(name: str, n_outputs: int, hidden: int) -> None:
    """Unsupported where ``hidden`` + ``n_outputs`` units exceed the exact solvers' cap."""
    unit = get_spec(name).unit
    if unit not in CAPS:
        return
    cap = CAPS[unit]
    if n_outputs + 1 > cap:
        raise Unsupported(f"needs {n_outputs} output {unit}s plus hidden ones, over the {cap}-{unit} limit of exact solvers")
    if hidden + n_outputs > cap:
        raise Unsupported(f"more than {cap} {unit}s")


def build(name: str, task: str, n_inputs: int, n_classes: int):
    """(system, n_params) for system ``name`` on ``task``; Unsupported if it cannot take it."""
    spec = get_spec(name)
    if not spec.takes(task):
        raise Unsupported(spec.needs)
    n_outputs = n_outputs_for(n_classes)
    options = SETTINGS.get(name, {})
    if name in SIZES:
        system = spec.build(n_inputs, n_outputs, SIZES[name], **options)
        return system, count_params(system)
    target = TARGET_PARAMS[task]
    best, reason = None, None
    for hidden in range(1, MAX_HIDDEN + 1):
        try:
            _check_cap(name, n_outputs, hidden)
        except Unsupported as exc:
            reason = str(exc)
            break
        system = spec.build(n_inputs, n_outputs, hidden, **options)
        count = count_params(system)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (system, count)
        if count >= target:
            break
    if best is None:
        raise Unsupported(reason or "no size fits")
    return best
