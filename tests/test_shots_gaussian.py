"""The batched Gaussian-per-term shot model and the nudge from exact or measured outputs."""

import numpy as np
import pytest

from qeqprop import TFIMNetwork, ep_gradient, random_tfim_instance
from qeqprop.ep import flatten_grad
from qeqprop.readout import Shots
from qeqprop.readout.plan import MeasurementPlan
from qeqprop.readout.sampling import gaussian_estimates


def flat_batch(grad):
    return np.concatenate([np.reshape(grad[k], (len(grad[k]), -1)) for k in sorted(grad)], axis=1)


def test_gaussian_estimates_mean_variance_and_covariance():
    """N draws per (sample, string): sample means within 4 standard errors of <P_s>, sample
    variances within 4 sd of (1 - <P_s>^2)/M_b (chi-square: sd = sigma^2 sqrt(2/(N-1))); the
    reported covariance is exactly diagonal with those variances, zero for unplanned strings."""
    rng = np.random.default_rng(0)
    exact = rng.uniform(-0.95, 0.95, size=(3, 7))
    plan = MeasurementPlan(4, ["ZZZZ", "XXZZ"], [np.array([0, 2, 5]), np.array([1, 4])], np.array([10, 40]))
    shots = np.array([10, 40, 10, 0, 40, 10, 0])
    reps = 4000
    means, covariance = gaussian_estimates(np.tile(exact, (reps, 1)), plan, np.random.default_rng(1))
    means = means.reshape(reps, 3, 7)
    planned = shots > 0
    variance = (1 - exact[:, planned] ** 2) / shots[planned]
    z_mean = (means[:, :, planned].mean(axis=0) - exact[:, planned]) / np.sqrt(variance / reps)
    z_var = (means[:, :, planned].var(axis=0, ddof=1) / variance - 1) / np.sqrt(2 / (reps - 1))
    assert np.abs(z_mean).max() < 4 and np.abs(z_var).max() < 4
    assert np.all(means[:, :, ~planned] == 0)
    expected = np.zeros((3, 7, 7))
    expected[:, np.flatnonzero(planned), np.flatnonzero(planned)] = variance
    np.testing.assert_array_equal(covariance.reshape(reps, 3, 7, 7)[:5], np.broadcast_to(expected, (5, 3, 7, 7)))


def test_batched_gaussian_gradient_stderr_matches_spread():
    """One ep_gradient call on a batch of 2 samples x 150 copies (independent draws per copy):
    with the nudge from exact outputs the gradient is exactly Gaussian, so per parameter the
    copies' mean is within 4 standard errors of exact EP and their variance within 4 chi-square
    sd of the reported stderr^2."""
    system, params, *_ = random_tfim_instance(4, seed=2)
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=(2, system.n_inputs)), rng.uniform(-1, 1, (2, system.n_outputs))
    beta, shots, reps = 0.2, 400, 150
    exact = flat_batch(ep_gradient(system, params, xs, ys, beta).grad)
    result = ep_gradient(system, params, np.tile(xs, (reps, 1)), np.tile(ys, (reps, 1)), beta,
                         readout=Shots(shots, sampler="gaussian", nudge_from="exact"), rng=4)
    grads = flat_batch(result.grad).reshape(reps, 2, -1)
    stderr = flat_batch(result.stderr).reshape(reps, 2, -1)
    np.testing.assert_allclose(stderr, np.broadcast_to(stderr[0], stderr.shape), rtol=1e-12)  # exact variances
    sigma = stderr[0]
    varying = sigma > 0
    z_mean = (grads.mean(axis=0) - exact)[varying] / (sigma[varying] / np.sqrt(reps))
    z_var = (grads.var(axis=0, ddof=1)[varying] / sigma[varying] ** 2 - 1) / np.sqrt(2 / (reps - 1))
    assert varying.sum() >= 10
    assert np.abs(z_mean).max() < 4 and np.abs(z_var).max() < 4


def test_nudge_from_exact_or_measured_outputs():
    """nudge_from="exact": the nudged phases are exact EP's (the same states as readout=Exact()),
    for both samplers; "measured" (default) nudges from the noisy free outputs."""
    system, params, x, y = random_tfim_instance(4, seed=1)
    exact = ep_gradient(system, params, x, y, 0.1)
    for sampler in ("multinomial", "gaussian"):
        runs = {source: ep_gradient(system, params, x, y, 0.1, readout=Shots(200, sampler=sampler, nudge_from=source), rng=5)
                for source in ("exact", "measured")}
        for b, state in exact.nudged.items():
            assert abs(np.vdot(runs["exact"].nudged[b].vector, state.vector)) == pytest.approx(1.0, abs=1e-10)
            assert abs(np.vdot(runs["measured"].nudged[b].vector, state.vector)) < 1 - 1e-8
        # the read-out of the free phase (loss, outputs) is the measured one either way
        assert runs["exact"].output == pytest.approx(runs["measured"].output, abs=1e-12)
        assert not np.allclose(flatten_grad(runs["exact"].grad), flatten_grad(runs["measured"].grad))


def test_gaussian_reads_gibbs_states_multinomial_refuses():
    system = TFIMNetwork(3, "chain", output_qubits=[2], temperature=0.7)
    params = system.init_params(np.random.default_rng(0))
    x, y = np.zeros(system.n_inputs), np.array([0.5])
    result = ep_gradient(system, params, x, y, 0.1, readout=Shots(3000, sampler="gaussian"), rng=0)
    exact = ep_gradient(system, params, x, y, 0.1)
    assert np.all(np.abs(flatten_grad(result.grad) - flatten_grad(exact.grad)) < 5 * flatten_grad(result.stderr) + 1e-12)
    with pytest.raises(ValueError, match="sampler='gaussian'"):
        ep_gradient(system, params, x, y, 0.1, readout=Shots(3000), rng=0)


@pytest.mark.parametrize("shots", [6, 40])  # 6 <= 2^3: the drawn outcomes; 40 > 2^3: multinomial counts
def test_batched_shot_estimates_match_exact_moments(shots):
    """multinomial_estimates on 3 states x 3000 copies: per string, the copies' mean within 4
    standard errors of <P_s>, their variance within 4 standard errors (from the copies' fourth
    moment: the mean of +-1 shots is not Gaussian) of the exact (1 - <P_s>^2)/M_b, and the
    reported covariances, averaged, within 4 standard errors of the exact
    (<P_s P_t> - <P_s><P_t>)/M_b."""
    from conftest import random_strings

    from qeqprop.hamiltonians import PauliTable
    from qeqprop.readout.plan import build_plan
    from qeqprop.readout.sampling import exact_term_moments
    from qeqprop.readout.shots import multinomial_estimates

    rng = np.random.default_rng(8)
    n, reps = 3, 3000
    strings = PauliTable(n, random_strings(rng, n, 9)).strings
    plan = build_plan(strings, np.arange(9), n, shots=shots * 4)
    plan.shots[:] = shots
    states = rng.normal(size=(3, 2**n)) + 1j * rng.normal(size=(3, 2**n))
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    means, covariance = multinomial_estimates(strings, plan, np.tile(states, (reps, 1)), np.random.default_rng(9))
    means, covariance = means.reshape(reps, 3, 9), covariance.reshape(reps, 3, 9, 9)
    for b, psi in enumerate(states):
        exact_means, exact_cov = exact_term_moments(psi, strings, plan).full(9)
        sd = np.sqrt(np.diag(exact_cov))
        assert np.abs((means[:, b].mean(axis=0) - exact_means) / (sd / np.sqrt(reps))).max() < 4
        centred = means[:, b] - means[:, b].mean(axis=0)
        variance = (centred**2).mean(axis=0)
        z_var = (variance - sd**2) / np.sqrt(((centred**4).mean(axis=0) - variance**2) / reps)
        assert np.abs(z_var).max() < 4
        reported = covariance[:, b]
        spread = reported.std(axis=0, ddof=1) / np.sqrt(reps)
        assert np.all(np.abs(reported.mean(axis=0) - exact_cov) <= 4 * spread + 1e-15)
