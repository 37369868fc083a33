"""Task registry of the comparison harness: name -> Dataset (classification only).

    xor, parity     synthetic (qeqprop.datasets)
    iris            scikit-learn's bundled iris
    digits          scikit-learn's digits reduced to ``DIGITS_FEATURES`` PCA features
    phases          quantum data: TFIM chain phase from (J, g) (comparison.phases)
    annni           quantum data: ANNNI chain phase from (kappa, g) (comparison.chains; copies: quantum_data)
    xxz_field       quantum data: XXZ chain in a field, phase from (Delta, h) (comparison.chains)

Tuning never sees the test split: ``validation_split`` carves a stratified validation set out of
the training split, and hyperparameters are chosen on it (comparison.tuning).
"""

from __future__ import annotations

import numpy as np

from ..datasets import Dataset, load_dataset
from .phases import load_phases
from .quantum_data import load_chain_task

QUANTUM_DATA = ("phases", "annni", "xxz_field")  # tasks whose inputs are a chain's Hamiltonian parameters
TASKS = ("xor", "parity", "iris", "digits", *QUANTUM_DATA)
DIGITS_FEATURES = 8
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


def load_task(name: str, seed: int = 0) -> Dataset:
    """The dataset of task ``name`` split with ``seed``."""
    check_names("tasks", [name], TASKS)
    if name == "digits":
        return load_dataset("digits", seed=seed, n_features=DIGITS_FEATURES)
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
