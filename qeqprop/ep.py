"""Equilibrium-propagation gradient estimators on any EnergySystem.

With g(s) = dE/dtheta evaluated at state s and s_b the equilibrium nudged by b * C:

    positive   (1/beta)     [ g(s_beta) - g(s_0)     ]    bias O(beta)
    negative   (1/beta)     [ g(s_0)    - g(s_-beta) ]    bias O(beta)
    centered   (1/(2 beta)) [ g(s_beta) - g(s_-beta) ]    bias O(beta^2)

all estimate dL/dtheta = d/dbeta g(s_beta) at beta = 0. Nudged phases are warm-started
from the free state; the -beta phase of the centered estimator from the reflection
2 s_0 - s_beta (error O(beta^2)) when the system offers ``reflect``. This module knows nothing of physics beyond the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .systems.protocol import EnergySystem
from .validation import check_beta

ESTIMATORS = ("positive", "negative", "centered")

PHASE_SIGNS = {"free": 0.0, "plus": 1.0, "minus": -1.0}


def check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def phase_weights(estimator: str, beta: float) -> dict[str, float]:
    """The estimator as a linear combination sum_phase a_phase g(s_phase), phases
    "free", "plus" (+beta) and "minus" (-beta)."""
    check_estimator(estimator)
    beta = check_beta(beta)
    if estimator == "positive":
        return {"plus": 1.0 / beta, "free": -1.0 / beta}
    if estimator == "negative":
        return {"free": 1.0 / beta, "minus": -1.0 / beta}
    return {"plus": 0.5 / beta, "minus": -0.5 / beta}


def combine(estimator: str, beta: float, g: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """sum_phase a_phase g[phase] for local gradients g[phase] (dicts of arrays).

    Shared by exact-state and measured-record paths: only the g's differ.
    """
    weights = phase_weights(estimator, beta)
    keys = next(iter(g.values())).keys()
    return {k: sum(a * np.asarray(g[phase][k]) for phase, a in weights.items()) for k in keys}


@dataclass
class EPResult:
    """An EP gradient with the equilibria it came from.

    ``grad`` = sum_phase a_phase g(s_phase) (see ``phase_weights``), ``loss`` = C(s_0, y),
    ``output`` = the model output at s_0, ``free`` = s_0, ``nudged`` = {signed beta: s_beta}.
    """

    grad: dict[str, np.ndarray]
    loss: float
    output: np.ndarray
    free: Any
    nudged: dict[float, Any] = field(default_factory=dict)
    estimator: str = "centered"
    beta: float = 0.0


def ep_gradient(
    system: EnergySystem,
    params: Mapping[str, np.ndarray],
    x,
    y,
    beta: float = 1e-2,
    estimator: str = "centered",
    free: Any = None,
) -> EPResult:
    """One EP gradient estimate of dL/dtheta at (x, y); ``free`` reuses a free-phase state.

    With g(s) = dE/dtheta at s and s_b the equilibrium of E + b C(y):

        positive  (g(s_beta) - g(s_0)) / beta,   negative  (g(s_0) - g(s_-beta)) / beta,
        centered  (g(s_beta) - g(s_-beta)) / (2 beta)          (bias O(beta), O(beta), O(beta^2)).

    Nudged phases start from s_0; the -beta phase from ``system.reflect(s_0, s_beta)`` when offered.
    """
    check_estimator(estimator)
    beta = check_beta(beta)
    s0 = free if free is not None else system.equilibrate(params, x)
    nudge = system.nudge(s0, y)
    nudged, g = {}, {}
    for phase in phase_weights(estimator, beta):
        if phase == "free":
            g[phase] = system.energy_grad(params, x, s0)
            continue
        signed = PHASE_SIGNS[phase] * beta
        init = s0
        if phase == "minus" and beta in nudged and hasattr(system, "reflect"):
            init = system.reflect(s0, nudged[beta])  # s_-beta = 2 s_0 - s_beta + O(beta^2)
        nudged[signed] = system.equilibrate(params, x, nudge=nudge, beta=signed, init=init)
        g[phase] = system.energy_grad(params, x, nudged[signed])
    grad = combine(estimator, beta, g)
    return EPResult(grad, system.cost(s0, y), system.predict(s0), s0, nudged, estimator, beta)


def reference_gradient(system: EnergySystem, params, x, y) -> dict[str, np.ndarray]:
    """The exact dL/dtheta = d/dbeta g(s_beta) at beta = 0 that the EP estimators converge to.

    Quantum ground states: dL/dtheta = 2 Re <lam| dH/dtheta |psi_0> with the linear-response
    adjoint (H - E_0) lam = -Q O psi_0, O = sum_j dc/d<O_j> O_j, Q = 1 - |psi_0><psi_0|; classical systems: implicit
    differentiation / autodiff of the equilibrium (each system's ``reference_grad``).
    """
    return system.reference_grad(params, x, y)


def finite_difference_gradient(system: EnergySystem, params, x, y, step: float = 1e-4) -> dict[str, np.ndarray]:
    """Central differences of the loss, (L(theta + h e_k) - L(theta - h e_k)) / 2h, per entry."""
    grad = {}
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        out = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            losses = []
            for sign in (1.0, -1.0):
                shifted = {k: np.array(v, dtype=float) for k, v in params.items()}
                shifted[name][index] += sign * step
                losses.append(system.loss(shifted, x, y))
            out[index] = (losses[0] - losses[1]) / (2.0 * step)
        grad[name] = out
    return grad


def flatten_grad(grad: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate a gradient pytree (sorted by name) into one vector."""
    return np.concatenate([np.ravel(grad[k]) for k in sorted(grad)]) if grad else np.zeros(0)


def relative_error(estimate: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> float:
    """||estimate - reference|| / ||reference|| over all parameters."""
    a, b = flatten_grad(estimate), flatten_grad(reference)
    norm = np.linalg.norm(b)
    if norm == 0.0:
        return float(np.linalg.norm(a - b))
    return float(np.linalg.norm(a - b) / norm)
