"""The comparison's systems: every EP learner of the registry (qeqprop.systems.registry) sized for a task.

``build`` picks the ``hidden`` size whose trainable parameter count is closest to the task's
target (``TARGET_PARAMS``), so the systems compete at comparable parameter counts (the report
states the actual counts). Systems that cannot take a task raise ``Unsupported`` with the
reason, which the harness records instead of a result: a task the registry says the system
cannot learn, or more qubits (spins) than the exact solvers here allow (``CAPS``). Quantum
learners that ask for the dense solver (``SETTINGS``) get it up to ``AUTO_DENSE_MAX_QUBITS``
qubits and the batched Lanczos path (solver "jax": a minibatch's ground states and nudged phases
in one batched solve) above, up to MAX_QUBITS: on ``digits`` the TFIM's parameter target is met
at 15 qubits.

Two kinds of task budget. On every task but ``digits64`` the target is small and shared, so the
systems meet at equal parameter counts. ``digits64`` (all 64 pixels) is the other comparison: each
system at its own natural size. Its target, 19,210, is the Hopfield network 64-256-10 of the
classical presets (``hopfield-digits``), and ``TASK_MAX_HIDDEN`` caps each system's hidden size at
the architecture of its preset (Hopfield 256, resistive 128 as ``freqprop-digits``, phase
oscillators and the Ising machine 64 as ``oscillators-digits`` and ``ising-digits``; the linear
spring networks, qho and elastic, which have no preset, at the default MAX_HIDDEN = 64), with the
options that make those architectures (``TASK_SETTINGS``: the Ising machine's "layered" graph, whose
hidden spins are summed out in closed form so only the 10 output spins are enumerated, which is how
``ising-digits`` runs 64 hidden spins exactly). The TFIM's cap is set by time, not by its preset:
``digits-tfim`` has 4 hidden qubits (14 qubits), ``digits64`` allows 2 (12 qubits), because a search
of 20 trials x 5 epochs and 5 retrainings x 15 epochs at up to 14 qubits would take several hours on
one core (README, compare section, has the measured epoch times); the 12-qubit TFIM reached 0.948 on
64-pixel digits in the README's qubit-count study.

``SYSTEMS`` is the default line-up; every registered system (``AVAILABLE``) can be named.
"""

from __future__ import annotations

import numpy as np

from ..solvers.auto import AUTO_DENSE_MAX_QUBITS
from ..systems.registry import QUANTUM, REGISTRY, get_spec
from .chains import MODELS
from .sensor import N_CHAIN, SENSOR_COST

# a setting's keys that are not registry options: how it trains (fit_options), its init and size, its data
TRAINING_KEYS = ("learning_rate", "beta", "estimator", "batch_size", "lr_schedule", "init_scale", "hidden", "scaling")
SYSTEMS = ("tfim", "qho", "hopfield", "resistive", "phase_oscillators", "ising", "elastic", "sensor")
AVAILABLE = tuple(REGISTRY)
# digits64: the Hopfield network 64-256-10 (hopfield-digits), the largest classical preset on digits
TARGET_PARAMS = {"xor": 24, "parity": 32, "iris": 48, "digits": 240, "digits64": 19_210, "phases": 12, "annni": 24,
                 "xxz_field": 24}
MAX_QUBITS = 16  # exact ground states: dense up to AUTO_DENSE_MAX_QUBITS, batched Lanczos above
MAX_SPINS = 12  # exact Boltzmann enumeration of the Ising machine (its enumerated spins: _enumerated)
MAX_HIDDEN = 64
# per task, hidden caps other than MAX_HIDDEN (module docstring): on digits64 the classical presets' sizes, and
# the TFIM at most TFIM_DIGITS64_HIDDEN hidden qubits (TFIM_DIGITS64_HIDDEN + 10 qubits: a cap set by run time)
TFIM_DIGITS64_HIDDEN = 2
TASK_MAX_HIDDEN = {"digits64": {"hopfield": 256, "resistive": 128, "tfim": TFIM_DIGITS64_HIDDEN}}
CAPS = {"qubit": MAX_QUBITS, "spin": MAX_SPINS}  # by the registry's unit; such systems have hidden + n_outputs of them
SETTINGS = {  # options the comparison fixes (registry option names); the others keep their defaults
    "tfim": {"solver": "dense"},
    "sensor": {"solver": "dense"},
    "hopfield": {"tol": 1e-10},
    "resistive": {"tol": 1e-10},
    "ising": {"temperature": 1.0},
}
# options a task fixes per system (on top of SETTINGS): on digits64 the architecture options of the issue-19
# presets: ising-digits' layered graph, oscillators-digits' output targets +-0.7, freqprop-digits' input gain 8
# (the resistive network's input sources 8 (x, -x)) and digits-tfim's cross-entropy cost
TASK_SETTINGS = {"digits64": {"ising": {"graph": "layered"}, "phase_oscillators": {"target_amplitude": 0.7},
                              "resistive": {"input_gain": 8.0}, "tfim": {"cost": "cross_entropy"}}}
# fixed hidden sizes per task: the sensor's data chain is part of its task, not capacity to match (the
# quantum-data chains as long as in comparison.quantum_data's copies study)
SIZES = {"sensor": {"phases": 4, "annni": N_CHAIN, "xxz_field": N_CHAIN}}
# options a task fixes: the sensor reads the task's chain, with comparison.quantum_data's cost on the
# three-phase chains (SENSOR_COST: a one-seed probe on annni reached train accuracy 0.70 with "mse", 0.94 with it)
TASK_OPTIONS = {"sensor": lambda task: {"chain": task, **({"cost": SENSOR_COST} if task in MODELS else {})}}
DESCRIPTIONS = {name: f"{spec.description} ({spec.kind})" for name, spec in REGISTRY.items()}

__all__ = [
    "AVAILABLE",
    "DESCRIPTIONS",
    "QUANTUM",
    "SYSTEMS",
    "Unsupported",
    "build",
    "configure",
    "count_params",
    "fit_options",
    "hidden_cap",
    "max_hidden",
    "n_outputs_for",
    "scale_init",
]


class Unsupported(Exception):
    """This system cannot take this task; the message says why."""


def n_outputs_for(n_classes: int) -> int:
    """One output (sign) for two classes, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes


def count_params(system) -> int:
    """Number of trainable scalars."""
    return int(sum(np.size(v) for v in system.init_params(0).values()))


def hidden_cap(name: str, task: str) -> int:
    """The largest hidden size tried for system ``name`` on ``task``: TASK_MAX_HIDDEN, else MAX_HIDDEN."""
    return TASK_MAX_HIDDEN.get(task, {}).get(name, MAX_HIDDEN)


def _enumerated(name: str, n_outputs: int, hidden: int, options: dict) -> int:
    """The units the exact solver holds: hidden + n_outputs, except the Ising machine on the "layered"
    graph, which sums its hidden spins out in closed form and enumerates only the output spins."""
    if name == "ising" and options.get("graph") == "layered":
        return n_outputs
    return hidden + n_outputs


def _check_cap(name: str, n_outputs: int, hidden: int, options: dict) -> None:
    """Unsupported where the units the exact solver holds (``_enumerated``) exceed its cap."""
    unit = get_spec(name).unit
    if unit not in CAPS:
        return
    cap = CAPS[unit]
    if _enumerated(name, n_outputs, 1, options) > cap:
        raise Unsupported(f"needs {n_outputs} output {unit}s plus hidden ones, over the {cap}-{unit} limit of exact solvers")
    if _enumerated(name, n_outputs, hidden, options) > cap:
        raise Unsupported(f"more than {cap} {unit}s")


def _options(name: str, task: str, options: dict) -> dict:
    """The registry options of ``name`` on ``task``: SETTINGS, TASK_SETTINGS, TASK_OPTIONS, then ``options``."""
    fixed = TASK_OPTIONS[name](task) if name in TASK_OPTIONS else {}
    return {**SETTINGS.get(name, {}), **TASK_SETTINGS.get(task, {}).get(name, {}), **fixed, **options}


def _exact_solver(name: str, units: int, options: dict) -> dict:
    """``options`` with a dense-solver quantum learner of more than AUTO_DENSE_MAX_QUBITS qubits
    moved to the batched Lanczos path (solver "jax"); other options unchanged."""
    if options.get("solver") == "dense" and get_spec(name).unit == "qubit" and units > AUTO_DENSE_MAX_QUBITS:
        return {**options, "solver": "jax"}
    return options


def _sizes(name: str, task: str, n_inputs: int, n_classes: int, options: dict):
    """(hidden, system, n_params) for hidden = 1, 2, ... until the parameter target or ``hidden_cap``;
    Unsupported (from _check_cap) at the first size over the solvers' cap."""
    spec, n_outputs = get_spec(name), n_outputs_for(n_classes)
    for hidden in range(1, hidden_cap(name, task) + 1):
        _check_cap(name, n_outputs, hidden, options)
        system = spec.build(n_inputs, n_outputs, hidden, **_exact_solver(name, hidden + n_outputs, options))
        count = count_params(system)
        yield hidden, system, count
        if count >= TARGET_PARAMS[task]:
            return


def max_hidden(name: str, task: str, n_inputs: int, n_classes: int, **options) -> int | None:
    """The largest hidden size with at most TARGET_PARAMS[task] parameters within the solvers' cap and
    ``hidden_cap`` (at least 1: the smallest system); None for systems of a fixed size (SIZES).
    Unsupported as ``build``."""
    spec = get_spec(name)
    if not spec.takes(task):
        raise Unsupported(spec.needs)
    if name in SIZES:
        return None
    options = _options(name, task, options)
    sizes = _sizes(name, task, n_inputs, n_classes, options)
    largest = next(sizes)[0]  # the smallest size; Unsupported past the cap
    try:
        for hidden, _, count in sizes:
            if count <= TARGET_PARAMS[task]:
                largest = hidden
    except Unsupported:
        pass
    return largest


def build(name: str, task: str, n_inputs: int, n_classes: int, hidden: int | None = None, **options):
    """(system, n_params) for system ``name`` on ``task``; Unsupported if it cannot take it.

    ``hidden`` None: the size up to ``hidden_cap`` whose parameter count is closest to
    TARGET_PARAMS[task] (the fixed size of SIZES where set); else that size. ``options`` (registry options) go on top of SETTINGS."""
    spec = get_spec(name)
    if not spec.takes(task):
        raise Unsupported(spec.needs)
    n_outputs = n_outputs_for(n_classes)
    options = _options(name, task, options)
    if hidden is None and name in SIZES:
        hidden = SIZES[name][task]
    if hidden is not None:
        if name not in SIZES:
            _check_cap(name, n_outputs, hidden, options)
        system = spec.build(n_inputs, n_outputs, hidden, **_exact_solver(name, hidden + n_outputs, options))
        return system, count_params(system)
    target = TARGET_PARAMS[task]
    sizes = _sizes(name, task, n_inputs, n_classes, options)
    _, system, count = next(sizes)
    best = (system, count)
    try:
        for _, system, count in sizes:
            if abs(count - target) < abs(best[1] - target):
                best = (system, count)
    except Unsupported:
        pass
    return best


def scale_init(params: dict[str, np.ndarray], init_scale: float) -> dict[str, np.ndarray]:
    """``params`` with every entry multiplied by ``init_scale``, except softplus-raw entries
    (names ending in "_raw": conductances, springs), whose centre sets the physical scale and which
    keep the system's own initialisation."""
    if not (np.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    return {k: np.asarray(v) if k.endswith("_raw") else init_scale * np.asarray(v) for k, v in params.items()}


def configure(name: str, task: str, n_inputs: int, n_classes: int, setting: dict, seed: int):
    """(system, n_params, initial params) of a setting: {"hidden": size or None (``build``),
    "init_scale": factor (``scale_init``, default 1), registry options by name, and the other
    TRAINING_KEYS (``fit_options``; "scaling" picks the data: comparison.jobs), ignored here}; params
    drawn with ``seed``."""
    options = {k: v for k, v in setting.items() if k not in TRAINING_KEYS}
    system, n_params = build(name, task, n_inputs, n_classes, setting.get("hidden"), **options)
    params = scale_init(system.init_params(np.random.default_rng(seed)), setting.get("init_scale", 1.0))
    return system, n_params, params


def fit_options(setting: dict, batch_size: int) -> dict:
    """The keyword arguments of ``qeqprop.train.fit`` that a setting sets: learning_rate, beta and
    estimator, and batch_size and lr_schedule where the setting has them (searched on some tasks:
    comparison.tuning.TASK_CHOICES), else ``batch_size`` and a constant rate."""
    return {"learning_rate": setting["learning_rate"], "beta": setting["beta"], "estimator": setting["estimator"],
            "batch_size": int(setting.get("batch_size", batch_size)), "lr_schedule": setting.get("lr_schedule", "constant")}
