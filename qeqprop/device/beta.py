"""The MSE-optimal beta for EP on a (noisy) device with variationally prepared phases.

As in qeqprop.measurement.statistics (Scellier & Bengio 2017's estimators; bias O(beta^k), k = 1
one-sided, k = 2 centered), the squared error of a measured gradient is

    MSE(beta) = c^2 beta^(2k) + V / beta^2,        beta* = (V / (k c^2))^(1 / (2k + 2)),

but both coefficients are taken where the device setting changes them:

* c from the variational phases themselves: g(beta) - g(beta / 2) = c beta^k (1 - 2^-k) on the
  simulated expectations of the prepared circuits. A difference of two betas cancels every
  beta-independent error (the ansatz's bias against the exact ground state, and a noise bias
  that does not depend on beta), which the exact-state fit of ``optimal_beta`` would count as
  beta-bias on a variational learner;
* V = beta^2 sum_p stderr_p^2 from one gradient measured ON THE DEVICE at the probe beta: its
  reported errors include the device's noise (depolarizing noise flattens <P> and raises the
  per-shot variance 1 - <P>^2), the nudge's share and any mitigation's variance cost (ZNE).

The beta-independent error that remains (``BetaChoice`` does not include it) is measured by
benchmarks/device_noise.py.
"""

from __future__ import annotations

import numpy as np

from ..ep import ep_gradient, flatten_grad
from ..estimators import as_estimator
from ..measurement.statistics import BetaChoice
from .loop import DeviceLoop, as_loop


def device_optimal_beta(learner, params, x, y, device, estimator: str = "centered", probe_beta: float = 0.2,
                        rng: np.random.Generator | int | None = None) -> BetaChoice:
    """beta* minimising the MSE of the device gradient of one sample (module docstring).

    ``device``: a DeviceLoop (its shots, mitigation) or anything DeviceLoop takes; its shots
    must be finite (an analytic device has no variance to balance).

    Example:
        >>> import numpy as np, pennylane as qml, qeqprop as qp
        >>> from qeqprop.device import DeviceLoop, device_optimal_beta
        >>> net = qp.variational_tfim(3, n_inputs=1, per_term=True, depth=3, compare_exact=False)
        >>> loop = DeviceLoop(qml.device("default.qubit", wires=3, seed=0), shots=1000)
        >>> choice = device_optimal_beta(net, net.init_params(0), np.array([0.5]), np.array([1.0]), loop)
        >>> bool(choice.beta > 0 and choice.predicted_rmse > 0)
        True
    """
    loop: DeviceLoop = as_loop(device)
    if loop.client.shots is None:
        raise ValueError("device has no shots (analytic expectations): there is no variance to balance; use any small beta")
    if not isinstance(estimator, str):
        raise ValueError(f"estimator must be a name ('positive', 'negative', 'centered'), got {estimator!r}")  # noqa: TRY004
    order = as_estimator(estimator, probe_beta).order
    free = learner.equilibrate(params, x)
    full = flatten_grad(ep_gradient(learner, params, x, y, probe_beta, estimator, free=free).grad)
    half = flatten_grad(ep_gradient(learner, params, x, y, probe_beta / 2, estimator, free=free).grad)
    bias_coefficient = float(np.linalg.norm(full - half) / (probe_beta**order * (1.0 - 2.0**-order)))
    measured = loop.gradient(learner, params, x, y, probe_beta, estimator, rng=rng)
    variance_coefficient = float(probe_beta**2 * np.sum(flatten_grad(measured.stderr) ** 2))
    if bias_coefficient == 0.0:
        raise ValueError("the EP bias vanishes on this instance; any beta large enough to be well conditioned is optimal")
    beta = (variance_coefficient / (order * bias_coefficient**2)) ** (1.0 / (2 * order + 2))
    choice = BetaChoice(float(beta), 0.0, bias_coefficient, variance_coefficient, estimator)
    choice.predicted_rmse = float(choice.rmse(beta))
    return choice
