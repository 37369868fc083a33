"""Task registry of the comparison harness: name -> Dataset (classification only).

    xor, parity     synthetic (qeqprop.datasets)
    iris            scikit-learn's bundled iris
    digits          scikit-learn's digits reduced to ``DIGITS_FEATURES`` PCA features
    phases          quantum data: TFIM chain phase from (J, g) (comparison.phases)
"""

from __future__ import annotations

from ..datasets import Dataset, load_dataset
from .phases import load_phases

TASKS = ("xor", "parity", "iris", "digits", "phases")
DIGITS_FEATURES = 8


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
    return load_dataset(name, seed=seed)
