"""Bias-variance of measured EP gradients and the beta that minimises their error.

With M shots per phase the estimator's mean squared error (summed over parameters) is

    positive / negative:  MSE(beta) = a^2 beta^2 + V_1 / beta^2,   beta* = (V_1 / a^2)^(1/4)
    centered:             MSE(beta) = c^2 beta^4 + V_2 / beta^2,   beta* = (V_2 / (2 c^2))^(1/6)

where a, c are the bias coefficients ||g_EP(beta) - g_ref|| / beta (resp. / beta^2), fitted on
exact states, and V = sum_phase (beta a_phase)^2 tr(J^T C J) is the shot variance times
beta^2 with C the exact term covariance of the free state under the measurement plan (the
nudged states differ from it by O(beta)): V_1 = 2 tr(J^T C J), V_2 = tr(J^T C J) / 2.
Variance falls as 1/(beta^2 M): slope -2 in MSE (-1 in RMS error) at small beta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ep import ep_gradient, relative_error
from ..estimators import ESTIMATORS, as_estimator
from ..readout.sampling import exact_term_moments
from ..systems.spin import SpinSystem
from .gradient import measurement_plan


@dataclass
class BetaChoice:
    """The MSE-optimal beta for a shot budget and the model behind it."""

    beta: float
    predicted_rmse: float
    bias_coefficient: float
    variance_coefficient: float
    estimator: str

    def rmse(self, beta: float | np.ndarray) -> np.ndarray:
        """Predicted root-mean-squared gradient error at ``beta`` (absolute, summed over params)."""
        order = 2 if self.estimator == "centered" else 1
        beta = np.asarray(beta, dtype=float)
        return np.sqrt((self.bias_coefficient * beta**order) ** 2 + self.variance_coefficient / beta**2)


def optimal_beta(
    system: SpinSystem,
    params,
    x,
    y,
    shots: int,
    estimator: str = "centered",
    allocation: str = "uniform",
    probe_beta: float = 0.05,
) -> BetaChoice:
    """Estimate the beta minimising the measured EP gradient's MSE for ``shots`` per phase:

        MSE(beta) = a^2 beta^2 + V_1 / beta^2   (one-sided)    or   c^2 beta^4 + V_2 / beta^2   (centered),

    bias coefficients a, c from exact states at ``probe_beta``, shot variances V from the plan;
    beta* = (V_1 / a^2)^(1/4) or (V_2 / (2 c^2))^(1/6).
    """
    if not isinstance(estimator, str):
        raise ValueError(f"optimal_beta models the named estimators {ESTIMATORS}, got {estimator!r}")  # noqa: TRY004 (house rule: bad input -> ValueError)
    order = as_estimator(estimator, probe_beta).order
    free = system.equilibrate(params, x)
    reference = system.reference_grad(params, x, y, free=free)
    norm = np.sqrt(sum(float(np.sum(v**2)) for v in reference.values()))
    bias = relative_error(ep_gradient(system, params, x, y, probe_beta, estimator, free=free).grad, reference) * norm
    bias_coefficient = bias / probe_beta**order
    plan = measurement_plan(system, x, shots, allocation, state=free)
    moments = exact_term_moments(free.vector, system.hamiltonian.table.strings, plan)
    _, covariance = moments.full(len(system.hamiltonian.table))
    jacobian = system.hamiltonian.jacobian(x)
    trace = float(np.trace(jacobian.T @ covariance @ jacobian))
    variance_coefficient = 2.0 * trace if order == 1 else 0.5 * trace
    if bias_coefficient == 0.0:
        raise ValueError("the EP bias vanishes on this instance; any beta large enough to be well conditioned is optimal")
    if order == 1:
        beta = (variance_coefficient / bias_coefficient**2) ** 0.25
    else:
        beta = (variance_coefficient / (2.0 * bias_coefficient**2)) ** (1.0 / 6.0)
    choice = BetaChoice(float(beta), 0.0, float(bias_coefficient), float(variance_coefficient), estimator)
    choice.predicted_rmse = float(choice.rmse(beta))
    return choice
