"""Costs on model outputs o = (<O_1>, ..., <O_m>) and their EP nudges.

A cost supplies its value c(o, y) and its gradient dc/do. EP nudges the Hamiltonian by
beta * sum_j dc/do_j O_j with the gradient taken at the free state, which is exact for
costs linear in o (observable costs C(y)) and first-order exact otherwise, so in both cases
d/dbeta <dH/dtheta>_beta at beta = 0 equals dL/dtheta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import _jax  # noqa: F401  (float64 before FunctionCost runs jax.grad)
from .validation import as_finite_array


class Cost(Protocol):
    def value(self, outputs: np.ndarray, y: np.ndarray) -> float: ...

    def grad(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray: ...


def _check(outputs, y):
    outputs = np.asarray(outputs, dtype=np.float64)
    y = as_finite_array("y", y)
    if y.shape != outputs.shape:
        raise ValueError(f"y must have one target per output, shape {outputs.shape}, got {y.shape}")
    return outputs, y


class SquaredError:
    """c(o, y) = 1/2 sum_j (o_j - y_j)^2 on expectation values; dc/do = o - y."""

    name = "mse"

    def value(self, outputs, y) -> float:
        outputs, y = _check(outputs, y)
        return 0.5 * float(np.sum((outputs - y) ** 2))

    def grad(self, outputs, y) -> np.ndarray:
        outputs, y = _check(outputs, y)
        return outputs - y


class SoftmaxCrossEntropy:
    """c(o, y) = -sum_j y_j log softmax(scale * o)_j for one-hot (or probability) y.

    dc/do = scale * (softmax(scale * o) - y) (sum_j y_j = 1; other targets are refused). Outputs are expectations in [-1, 1], so
    ``scale`` sets how confident the readout can be.
    """

    name = "cross_entropy"

    def __init__(self, scale: float = 3.0):
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale}")
        self.scale = float(scale)

    def _log_softmax(self, outputs):
        logits = self.scale * outputs
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    @staticmethod
    def _check_probabilities(outputs, y):
        """Targets must be a probability vector (y_j >= 0, sum_j y_j = 1): otherwise -sum_j y_j log p_j
        is not a cross-entropy and can go negative."""
        outputs, y = _check(outputs, y)
        if np.any(y < 0) or abs(float(y.sum()) - 1.0) > 1e-9:
            raise ValueError(f"cross_entropy targets y must be probabilities (non-negative, summing to 1), got {y}; "
                             "pass class labels (fit encodes them one-hot) or use cost='mse' for other targets")
        return outputs, y

    def value(self, outputs, y) -> float:
        outputs, y = self._check_probabilities(outputs, y)
        return -float(y @ self._log_softmax(outputs))

    def grad(self, outputs, y) -> np.ndarray:
        outputs, y = self._check_probabilities(outputs, y)
        return self.scale * (np.exp(self._log_softmax(outputs)) - y)


class PauliSquaredError:
    """The observable cost C(y) = 1/2 sum_j (O_j - y_j)^2 for Pauli-string outputs (O_j^2 = 1).

    <C(y)> = 1/2 sum_j (1 + y_j^2 - 2 y_j <O_j>) is linear in the outputs, so the nudge
    beta C(y) is exact: dc/do = -y. Unlike ``SquaredError`` it counts quantum fluctuations.
    """

    name = "pauli_mse"

    def value(self, outputs, y) -> float:
        outputs, y = _check(outputs, y)
        return 0.5 * float(np.sum(1.0 + y**2 - 2.0 * y * outputs))

    def grad(self, outputs, y) -> np.ndarray:
        outputs, y = _check(outputs, y)
        return -y


class FunctionCost:
    """Any differentiable c(o, y) written with jax.numpy; its gradient comes from jax.grad.

    value = c(o, y),   grad = dc/do (jax.grad of ``fn`` in float64), o = the outputs <O_j>.
    """

    name = "function"

    def __init__(self, fn: Callable):
        import jax

        self._fn = fn
        self._grad = jax.grad(fn)

    def value(self, outputs, y) -> float:
        outputs, y = _check(outputs, y)
        return float(self._fn(outputs, y))

    def grad(self, outputs, y) -> np.ndarray:
        outputs, y = _check(outputs, y)
        return np.asarray(self._grad(outputs, y), dtype=np.float64)


COSTS = {"mse": SquaredError, "cross_entropy": SoftmaxCrossEntropy, "pauli_mse": PauliSquaredError}


def make_cost(cost: str | Cost) -> Cost:
    if isinstance(cost, str):
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {sorted(COSTS)} or a Cost object, got {cost!r}")
        return COSTS[cost]()
    if not (hasattr(cost, "value") and hasattr(cost, "grad")):
        raise ValueError("cost must provide value(outputs, y) and grad(outputs, y)")
    return cost
