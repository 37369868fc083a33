"""Task registry of the comparison harness: name -> Dataset (classification only).

    xor, parity     synthetic (qeqprop.datasets)
    iris            scikit-learn's bundled iris
    digits          scikit-learn's digits reduced to ``DIGITS_FEATURES`` PCA features
    digits64        scikit-learn's digits with all 64 pixels, standardized or divided by 16 (``SCALINGS``)
    phases          quantum data: TFIM chain phase from (J, g) (comparison.phases)
    annni           quantum data: ANNNI chain phase from (kappa, g) (comparison.chains; copies: quantum_data)
    xxz_field       quantum data: XXZ chain in a field, phase from (Delta, h) (comparison.chains)

``digits`` and ``digits64`` are the same images and the same split (``seed``); they differ in what
is compared. ``digits`` (8 PCA features, a 240-parameter target) holds every system to about the
same parameter count; ``digits64`` gives each system its natural size, the architecture of its
issue-19 preset (comparison.systems: TARGET_PARAMS, TASK_MAX_HIDDEN, TASK_SETTINGS), and the report
states every system's parameter count. The digits presets scale pixels in one of two ways: the Ising
machine, the phase oscillators, the frequency-propagation resistive network and the TFIM by the
training mean and standard deviation per pixel ("standard", the digits default), the Hopfield and
agnostic presets by dividing by 16 ("unit"); each preset loses accuracy at the other scaling (seed 0,
README compare section: Hopfield 0.980 -> 0.967 at "standard", Ising 0.972 -> 0.935 and phase
oscillators 0.974 -> 0.954 at "unit").
So on ``digits64`` the scaling is a searched choice (``SCALINGS``: comparison.tuning), the same
two choices for every system, and ``load_task(..., scaling=...)`` gives the task's split at either;
the default is the first.

Tuning never sees the test split: ``validation_split`` carves a stratified validation set out of
the training split, and hyperparameters are chosen on it (comparison.tuning).
"""

from __future__ import annotations

import numpy as np

from ..datasets import Dataset, load_dataset
from .phases import load_phases
from .quantum_data import load_chain_task

QUANTUM_DATA = ("phases", "annni", "xxz_field")  # tasks whose inputs are a chain's Hamiltonian parameters
TASKS = ("xor", "parity", "iris", "digits", "digits64", *QUANTUM_DATA)
DIGITS_FEATURES = 8
SCALINGS = {"digits64": ("standard", "unit")}  # feature scalings a task may be loaded at, its default first
VALIDATION_FRACTION = 0.25


def check_names(argument: str, names, allowed) -> list[str]:
    """``names`` as a list, each one of ``allowed``; ValueError naming ``argument`` otherwise."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError(f"{argument} must name at least one of {tuple(allowed)}")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"{argument}: unknown name(s) {unknown}; choose from {tuple(allowed)}")
    return names


def load_task(name: str, seed: int = 0, scaling: str | None = None) -> Dataset:
    """The dataset of task ``name`` split with ``seed``; ``scaling`` (tasks of ``SCALINGS`` only) one of
    SCALINGS[name], None its first. The split does not depend on the scaling."""
    check_names("tasks", [name], TASKS)
    if scaling is not None and scaling not in SCALINGS.get(name, ()):
        raise ValueError(f"scaling {scaling!r} does not apply to task {name!r}: "
                         + (f"choose from {SCALINGS[name]}" if name in SCALINGS else "its features have one scaling (None)"))
    if name == "digits":
        return load_dataset("digits", seed=seed, n_features=DIGITS_FEATURES)
    if name == "digits64":
        return load_dataset("digits", seed=seed, scaling=scaling or SCALINGS[name][0])
    if name == "phases":
        return load_phases(seed=seed)
    if name in ("annni", "xxz_field"):
        return load_chain_task(name, seed=seed)
    return load_dataset(name, seed=seed)


def validation_split(data: Dataset, fraction: float = VALIDATION_FRACTION, seed: int = 0
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_fit, y_fit), (x_val, y_val)): ``fraction`` of ``data``'s training split held out for
    validation, stratified by class and shuffled with ``seed`` (sklearn's train_test_split); the
    test split is not touched."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), e.g. {VALIDATION_FRACTION}; got {fraction!r}")
    x_fit, x_val, y_fit, y_val = train_test_split(data.x_train, data.y_train, test_size=fraction, random_state=seed,
                                                  stratify=data.y_train if data.n_classes else None)
    return (x_fit, y_fit), (x_val, y_val)
