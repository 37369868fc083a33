"""Confidence intervals of the comparison: over retraining seeds, and of the gap between two learners.

Mean of n seeds' results v_1..v_n with a Student-t interval (the seeds are independent draws of
init and shuffling; the data split is fixed):

    mean +- t_(1 - alpha/2, n - 1) * s / sqrt(n),       s^2 = 1/(n-1) sum (v_i - mean)^2

Difference of two learners' means (Welch 1947, unequal variances):

    (m_a - m_b) +- t_(1 - alpha/2, nu) * sqrt(s_a^2/n_a + s_b^2/n_b),
    nu = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a - 1) + (s_b^2/n_b)^2/(n_b - 1))

(Welch-Satterthwaite degrees of freedom). With zero spread the interval is the point itself;
with a single seed the half width is undefined (None), never a made-up number.

Example:
    >>> from qeqprop.comparison.stats import t_interval
    >>> ci = t_interval([0.90, 0.92, 0.94])
    >>> round(ci.mean, 3), round(ci.low, 4), round(ci.high, 4)
    (0.92, 0.8703, 0.9697)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval [low, high] (None where undefined: one seed) over n values."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return asdict(self)


def _values(argument: str, values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    if not len(values) or not np.all(np.isfinite(values)):
        raise ValueError(f"{argument} must be one or more finite numbers, got {values!r}")
    return values


def _confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    return float(confidence)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval of the mean of ``values`` (module docstring)."""
    values, confidence = _values("values", values), _confidence(confidence)
    mean, n = float(np.mean(values)), len(values)
    if n < 2:
        return Interval(mean, None, None, n, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, confidence)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Welch interval of mean(a) - mean(b) (module docstring); n is the smaller sample's size."""
    a, b, confidence = _values("a", a), _values("b", b), _confidence(confidence)
    diff, n = float(np.mean(a) - np.mean(b)), min(len(a), len(b))
    if n < 2:
        return Interval(diff, None, None, n, confidence)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0.0:
        return Interval(diff, diff, diff, n, confidence)
    nu = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, nu) * np.sqrt(va + vb))
    return Interval(diff, diff - half, diff + half, n, confidence)
