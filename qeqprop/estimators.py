"""EP estimators as objects: which equilibria to compute and how to weigh their local gradients.

With g(s) = dE/dtheta at state s and s_b the equilibrium nudged by b * C(y), every EP estimator
is a linear combination over a few signed nudges b_k (b = 0 is the free phase):

    grad ~= sum_k a_k g(s_{b_k}),       positive   {+beta: 1/beta,     0: -1/beta}       bias O(beta)
                                         negative   {0: 1/beta,   -beta: -1/beta}       bias O(beta)
                                         centered   {+beta: 1/(2beta), -beta: -1/(2beta)} bias O(beta^2)

A ``LinearEstimator`` holds exactly that map {b_k: a_k}, so a new estimator (a five-point
stencil, an asymmetric pair) needs no library edit:

    LinearEstimator({2 * b: -1 / (12 * b), b: 8 / (12 * b), -b: -8 / (12 * b), -2 * b: 1 / (12 * b)}, order=4)

Consistency (the weights must estimate d/dbeta g at beta = 0): sum_k a_k = 0 and sum_k a_k b_k = 1;
both are checked. ``order`` is the power of beta in the bias (what gradcheck's slopes should show).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .validation import check_beta

ESTIMATORS = ("positive", "negative", "centered")

# Phase names of hardware records and of today's string API: the sign of the nudge.
PHASE_NAMES = {0: "free", 1: "plus", -1: "minus"}


@dataclass(frozen=True)
class LinearEstimator:
    """grad = sum_b weights[b] * g(s_b) over signed nudges b (0 = the free phase).

    Args:
        weights: {signed beta: weight}; must satisfy sum a = 0 and sum a b = 1.
        name: what reports and checkpoints call it.
        order: bias order in beta (1 one-sided, 2 centered); informational.

    Example:
        >>> from qeqprop.estimators import centered
        >>> est = centered(0.1)
        >>> est.nudged_betas, est.weights[0.1]
        ((0.1, -0.1), 5.0)
        >>> est.beta
        0.1
    """

    weights: Mapping[float, float]
    name: str = "linear"
    order: int = 1

    def __post_init__(self):
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise ValueError("weights must be a non-empty dict {signed beta: weight}")
        weights = {float(b): float(a) for b, a in self.weights.items()}
        if not all(np.isfinite(b) and np.isfinite(a) for b, a in weights.items()):
            raise ValueError(f"weights must be finite, got {weights}")
        scale = max(abs(a) for a in weights.values())
        if abs(sum(weights.values())) > 1e-9 * scale:
            raise ValueError(f"weights must sum to 0 (a constant gradient cancels), got sum {sum(weights.values()):.3g}")
        if abs(sum(a * b for b, a in weights.items()) - 1.0) > 1e-9:
            raise ValueError("weights must satisfy sum_b a_b * b = 1 (they estimate d/dbeta at beta = 0); "
                             f"got {sum(a * b for b, a in weights.items()):.6g}")
        object.__setattr__(self, "weights", weights)

    @property
    def nudged_betas(self) -> tuple[float, ...]:
        """The nonzero nudges, positive ones first (a -beta phase can then start from the reflection
        of its +beta partner)."""
        nudged = [b for b in self.weights if b != 0.0]
        return tuple(sorted((b for b in nudged if b > 0), key=abs) + sorted((b for b in nudged if b < 0), key=abs))

    @property
    def uses_free(self) -> bool:
        """Whether g at the free state enters the combination (it is always computed: the nudge needs it)."""
        return 0.0 in self.weights

    @property
    def beta(self) -> float:
        """The smallest nudge magnitude (what reports call beta)."""
        return min(abs(b) for b in self.nudged_betas)

    def combine(self, local: Mapping[float, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """sum_b a_b local[b] for local gradients (dicts of arrays, any leading batch axes)."""
        missing = [b for b in self.weights if b not in local]
        if missing:
            raise ValueError(f"estimator {self.name!r} needs the phases {sorted(missing)}; got {sorted(local)}")
        keys = local[next(iter(self.weights))].keys()
        return {k: sum(a * np.asarray(local[b][k]) for b, a in self.weights.items()) for k in keys}

    def phase_name(self, signed_beta: float) -> str:
        """"free", "plus" or "minus" for the phases of the built-in estimators (hardware records)."""
        return PHASE_NAMES[int(np.sign(signed_beta))]


def positive(beta: float) -> LinearEstimator:
    """(g(s_beta) - g(s_0)) / beta, bias O(beta)."""
    beta = check_beta(beta)
    return LinearEstimator({beta: 1.0 / beta, 0.0: -1.0 / beta}, "positive", 1)


def negative(beta: float) -> LinearEstimator:
    """``(g(s_0) - g(s_-beta)) / beta``, bias O(beta)."""
    beta = check_beta(beta)
    return LinearEstimator({0.0: 1.0 / beta, -beta: -1.0 / beta}, "negative", 1)


def centered(beta: float) -> LinearEstimator:
    """``(g(s_beta) - g(s_-beta)) / (2 beta)``, bias O(beta^2)."""
    beta = check_beta(beta)
    return LinearEstimator({beta: 0.5 / beta, -beta: -0.5 / beta}, "centered", 2)


BUILDERS = {"positive": positive, "negative": negative, "centered": centered}


def check_estimator(estimator) -> str | LinearEstimator:
    """A valid estimator name or object (ValueError naming the choices otherwise)."""
    if isinstance(estimator, LinearEstimator):
        return estimator
    if estimator not in BUILDERS:
        raise ValueError(f"estimator must be one of {ESTIMATORS} or a LinearEstimator, got {estimator!r}")
    return estimator


def as_estimator(estimator: "str | LinearEstimator", beta: float | None = None) -> LinearEstimator:
    """The estimator object for a name and ``beta`` (string sugar), or the object itself (its own
    nudges; ``beta`` is then not used)."""
    estimator = check_estimator(estimator)
    if isinstance(estimator, LinearEstimator):
        return estimator
    if beta is None:
        raise ValueError(f"estimator {estimator!r} given by name needs beta")
    return BUILDERS[estimator](beta)
