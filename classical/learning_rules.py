"""Learning rules for the classical systems, as gradient estimates (descend them).

With g(s) = dE/dtheta at state s, s_0 the free equilibrium, o = predict(s_0), s_beta the
equilibrium nudged by beta C(s, y), and s_clamp(t) the equilibrium with the outputs held at
t (``system.clamp``):

    ep_positive   (1/beta)     [ g(s_beta)  - g(s_0)     ]        qeqprop.ep, bias O(beta)
    ep_negative   (1/beta)     [ g(s_0)     - g(s_-beta) ]        qeqprop.ep, bias O(beta)
    ep_centered   (1/(2 beta)) [ g(s_beta)  - g(s_-beta) ]        qeqprop.ep, bias O(beta^2)
    contrastive   g(s_clamp(y)) - g(s_0)                          contrastive Hebbian learning
                                                                  (free vs fully clamped output)
    coupled       (1/eta) [ g(s_clamp((1 - eta) o + eta y)) - g(s_0) ]     coupled learning
                                                                  (Stern et al. 2021)

The EP rules converge to dL/dtheta as beta -> 0. Contrastive and coupled learning do not:
as eta -> 0 the coupled rule tends to (y - o)^T d^2 Phi / (do dtheta) with Phi(o) the energy
minimized at clamped outputs o, which is dL/dtheta only up to the preconditioner
(d^2 Phi / do^2)^-1 (for one output: a positive factor). Targets y and clamped outputs are in
the units of ``predict``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from qeqprop.ep import ep_gradient
from qeqprop.rules import PerSample
from qeqprop.validation import check_beta

RULES = ("ep_positive", "ep_negative", "ep_centered", "contrastive", "coupled")


def _difference(system, params, x, clamped, free, scale: float) -> dict[str, np.ndarray]:
    g_clamped = system.energy_grad(params, x, clamped)
    g_free = system.energy_grad(params, x, free)
    return {k: (g_clamped[k] - g_free[k]) / scale for k in g_free}


def contrastive_gradient(system, params: Mapping[str, np.ndarray], x, y, free: Any = None) -> dict[str, np.ndarray]:
    """g(s_clamp(y)) - g(s_0): free phase vs the phase with the outputs clamped to y."""
    free = free if free is not None else system.equilibrate(params, x)
    clamped = system.clamp(params, x, y, init=free)
    return _difference(system, params, x, clamped, free, 1.0)


def check_eta(eta: float) -> float:
    eta = float(eta)
    if not 0.0 < eta <= 1.0:
        raise ValueError(f"eta must be in (0, 1] (the fraction of the way from the output to the target), got {eta}")
    return eta


def coupled_gradient(system, params: Mapping[str, np.ndarray], x, y, eta: float = 0.5, free: Any = None) -> dict[str, np.ndarray]:
    """(1/eta) [g(s_clamp((1 - eta) o + eta y)) - g(s_0)] with o the free outputs, 0 < eta <= 1."""
    eta = check_eta(eta)
    free = free if free is not None else system.equilibrate(params, x)
    target = (1.0 - eta) * system.predict(free) + eta * np.asarray(y, dtype=float)
    clamped = system.clamp(params, x, target, init=free)
    return _difference(system, params, x, clamped, free, eta)


def learning_rule_gradient(
    system,
    params: Mapping[str, np.ndarray],
    x,
    y,
    rule: str = "ep_centered",
    beta: float = 0.1,
    eta: float = 0.5,
    free: Any = None,
) -> dict[str, np.ndarray]:
    """The gradient estimate of ``rule`` (one of RULES) at (x, y); ``beta`` for the EP rules,
    ``eta`` for coupled learning, ``free`` reuses a free equilibrium."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule.startswith("ep_"):
        return ep_gradient(system, params, x, y, beta=check_beta(beta), estimator=rule[3:], free=free).grad
    if rule == "contrastive":
        return contrastive_gradient(system, params, x, y, free)
    return coupled_gradient(system, params, x, y, eta, free)


class Contrastive(PerSample):
    """Contrastive Hebbian learning as a gradient rule (qeqprop.rules): ``contrastive_gradient`` per sample."""

    def __init__(self):
        super().__init__(contrastive_gradient, "contrastive")


class Coupled(PerSample):
    """Coupled learning (Stern et al. 2021) as a gradient rule: ``coupled_gradient`` per sample."""

    def __init__(self, eta: float = 0.5):
        self.eta = check_eta(eta)
        super().__init__(lambda system, params, x, y: coupled_gradient(system, params, x, y, self.eta), "coupled")
