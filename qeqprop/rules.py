"""Gradient rules: what the trainer descends, one interface for EP, the exact gradient and the
classical learning rules.

A rule maps a minibatch to per-sample gradient estimates (every leaf with a leading axis B):

    EP(estimator)     sum_k a_k g(s_{b_k})                  qeqprop.ep (any readout)
    Reference()       exact dL/dtheta                        linear response / implicit differentiation
    Contrastive()     g(s_clamp(y)) - g(s_0)                 classical.learning_rules
    Coupled(eta)      (g(s_clamp((1-eta) o + eta y)) - g(s_0)) / eta

``make_rule`` turns the names ``fit`` and the CLI accept ("ep", "reference", "contrastive",
"coupled") into rule objects; any object with ``name`` and ``gradients`` is a rule too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from .ep import as_batch, ep_gradient, reference_gradient
from .estimators import LinearEstimator, as_estimator
from .systems.protocol import stack_trees


@runtime_checkable
class GradientRule(Protocol):
    """Per-sample gradient estimates for a minibatch: X (B, n_inputs), Y (B, n_outputs) ->
    ``{name: (B, *shape)}``. ``readout``/``rng`` matter to rules that measure phases (EP)."""

    name: str

    def gradients(self, system, params, X, Y, readout=None, rng=None) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class EP:
    """Equilibrium propagation with ``estimator`` (qeqprop.estimators)."""

    estimator: LinearEstimator
    name: str = "ep"

    def gradients(self, system, params, X, Y, readout=None, rng=None):
        return ep_gradient(system, params, X, Y, estimator=self.estimator, readout=readout, rng=rng).grad


class Exactly:
    """Base of rules that read exact states only (refuse a shot readout)."""

    name = "exact"

    def _check_readout(self, readout) -> None:
        from .readout import Exact

        if readout is not None and not isinstance(readout, Exact):
            raise ValueError(f"the {self.name!r} gradient rule reads exact states; shots need gradient='ep'")


class Reference(Exactly):
    """The exact gradient dL/dtheta (the baseline EP converges to)."""

    name = "reference"

    def gradients(self, system, params, X, Y, readout=None, rng=None):
        self._check_readout(readout)
        return reference_gradient(system, params, X, Y)


class PerSample(Exactly):
    """Any function ``fn(system, params, x, y) -> grad`` of one sample, applied to each sample."""

    def __init__(self, fn: Callable, name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def gradients(self, system, params, X, Y, readout=None, rng=None):
        self._check_readout(readout)
        X, Y, _ = as_batch(system, X, Y)
        return stack_trees([self.fn(system, params, x, y) for x, y in zip(X, Y)])


def _contrastive(**options):
    from classical.learning_rules import Contrastive

    return Contrastive()


def _coupled(eta: float = 0.5, **options):
    from classical.learning_rules import Coupled

    return Coupled(eta)


def _agnostic(beta: float = 0.1, stiffness: float = 1e3, **options):
    from classical.agnostic import AgnosticEP

    return AgnosticEP(beta, stiffness)


def _frequency_propagation(beta: float = 0.1, **options):
    from classical.frequency_propagation import FrequencyPropagation

    return FrequencyPropagation(beta)


RULES: dict[str, Callable[..., Any]] = {
    "ep": lambda estimator="centered", beta=1e-2, **options: EP(as_estimator(estimator, beta)),
    "reference": lambda **options: Reference(),
    "contrastive": _contrastive,
    "coupled": _coupled,
    "agnostic": _agnostic,  # classical.agnostic: parameters relaxed under homeostatic control
    "frequency_propagation": _frequency_propagation,  # classical.frequency_propagation: --beta is the error amplitude
}


def make_rule(gradient: "str | GradientRule | Callable" = "ep", **options) -> GradientRule:
    """A gradient rule from a name in RULES (with ``estimator``/``beta`` for "ep", ``eta`` for
    "coupled"), a rule object, or a per-sample function ``fn(system, params, x, y) -> grad``.

    Example:
        >>> from qeqprop.rules import make_rule
        >>> rule = make_rule("ep", estimator="centered", beta=0.05)
        >>> rule.name, rule.estimator.nudged_betas
        ('ep', (0.05, -0.05))
        >>> make_rule("reference").name
        'reference'
    """
    if isinstance(gradient, str):
        if gradient not in RULES:
            raise ValueError(f"gradient must be one of {tuple(RULES)}, a GradientRule or a callable "
                             f"(system, params, x, y) -> grad, got {gradient!r}")
        return RULES[gradient](**options)
    if isinstance(gradient, GradientRule):
        return gradient
    if callable(gradient):
        return PerSample(gradient)
    raise ValueError(f"gradient must be one of {tuple(RULES)}, a GradientRule or a callable, got {gradient!r}")
