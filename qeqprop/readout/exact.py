"""The readout interface and the exact readout (the identity)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Measurement(Protocol):
    """A readout bound to one EP call. ``nudge_from`` ("measured" or "exact") names the free
    states qeqprop.ep computes the nudge from: the measured ones (as on hardware) or the exact ones."""

    nudge_from: str

    def measure(self, states: Any) -> Any:
        """The measured version of a batch of states (same type)."""
        ...

    def gradient_covariance(self, weighted: Mapping[float, Any]) -> np.ndarray | None:
        """Cov of sum_k a_k g(measured_k) per sample, (B, P, P) over the flat parameters, for
        {a_k: measured states}; None for exact readouts."""
        ...


@runtime_checkable
class Readout(Protocol):
    """What ``ep_gradient(..., readout=)`` accepts."""

    def start(self, system: Any, X: np.ndarray, free: Any, rng: np.random.Generator | int | None) -> Measurement: ...


class ExactMeasurement:
    """Exact expectations: ``measure`` returns the states as they are."""

    nudge_from = "exact"

    def measure(self, states):
        return states

    def gradient_covariance(self, weighted):
        return None


class Exact:
    """The exact readout: EP from exact expectation values (the default).

    Example:
        >>> from qeqprop.readout import Exact
        >>> Exact().start(None, None, None, None).measure("state")
        'state'
    """

    def start(self, system, X, free, rng) -> ExactMeasurement:
        return ExactMeasurement()

    def __repr__(self) -> str:
        return "Exact()"
