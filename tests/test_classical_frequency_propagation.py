"""Frequency propagation (classical.frequency_propagation): in a linear resistive network the
gradient demodulated from the local power equals the exact gradient (implicit differentiation)
for every error amplitude and harmonic pair, and the EP gradient to 1e-6; with diodes it is exact
while no diode switches and biased when the error current switches them; it trains iris."""

import numpy as np
import pytest

from classical.frequency_propagation import (
    FrequencyPropagation,
    aliases,
    minimal_samples,
)
from classical.resistive import ResistiveNetwork
from qeqprop.datasets import load_dataset
from qeqprop.ep import ep_gradient, finite_difference_gradient, relative_error
from qeqprop.train import fit

HARMONICS = [(0, 1), (1, 2), (2, 3)]


@pytest.fixture(scope="module", params=[True, False], ids=["dc-sources", "no-sources"])
def linear(request):
    """No diodes; with sources False no bias or current sources (oscillating activations need that).
    Returns (net, params, x, y, exact reference gradient)."""
    rng = np.random.default_rng(5)
    options = {"current_sources": True} if request.param else {"bias_voltages": (), "current_sources": False}
    net = ResistiveNetwork(3, (4, 3), 2, input_gain=2.0, target_voltage=0.5, hidden_bounds=(None, None), **options)
    params = net.init_params(rng)
    if request.param:
        params = {k: rng.normal(0, 0.3, v.shape) if k.startswith("i") else v for k, v in params.items()}
    x, y = rng.normal(size=3), rng.uniform(-1, 1, 2)
    return net, params, x, y, net.reference_grad(params, x, y)


def one(rule, net, params, x, y):
    return {k: v[0] for k, v in rule.gradients(net, params, x[None], y[None]).items()}


def test_reference_equals_finite_differences(linear):
    net, params, x, y, reference = linear
    assert relative_error(reference, finite_difference_gradient(net, params, x, y, step=1e-5)) < 1e-6


@pytest.mark.parametrize("harmonics", HARMONICS)
@pytest.mark.parametrize("epsilon", [1e-3, 1.0])
def test_linear_regime_equals_exact_and_ep_gradient(linear, harmonics, epsilon):
    net, params, x, y, reference = linear
    if harmonics[0] and net.current_sources:
        pytest.skip("an oscillating activation needs a network without sources (test_sampling_and_bad_settings)")
    grad = one(FrequencyPropagation(epsilon, *harmonics), net, params, x, y)
    assert relative_error(grad, reference) < 1e-10 / epsilon  # the solver stops at 1e-12 per sweep; / the error amplitude
    ep = ep_gradient(net, params, x, y, beta=1e-4, estimator="centered").grad
    assert relative_error(grad, ep) < 1e-6


def test_with_diodes_exact_until_the_error_current_switches_a_diode():
    rng = np.random.default_rng(0)
    net = ResistiveNetwork(3, (4, 3), 2, input_gain=2.0, hidden_bounds=(-0.3, 0.3), target_voltage=0.5)
    params, x, y = net.init_params(rng), rng.normal(size=3), rng.uniform(-1, 1, 2)
    free = net.equilibrate(params, x)
    lower, upper = (np.concatenate(b) for b in net.bounds)
    assert np.any(free.state <= lower) or np.any(free.state >= upper)  # some diodes conduct
    reference = net.reference_grad(params, x, y)
    assert relative_error(one(FrequencyPropagation(1e-3), net, params, x, y), reference) < 1e-8
    assert relative_error(one(FrequencyPropagation(1.0), net, params, x, y), reference) > 1e-2


def test_batch_rows_are_independent_samples(linear):
    net, params, *_ = linear
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(4, 3)), rng.uniform(-1, 1, (4, 2))
    rule = FrequencyPropagation(0.1)
    batch = rule.gradients(net, params, X, Y)
    for b in range(4):
        single = one(rule, net, params, X[b], Y[b])
        for key in single:
            np.testing.assert_allclose(batch[key][b], single[key], atol=1e-12)


def test_sampling_and_bad_settings():
    assert minimal_samples(0, 1) == 4 and not aliases(1, 2, minimal_samples(1, 2))
    assert aliases(1, 2, 6)  # 2 k2 = 4 = -f (mod 6): the error's own square would leak into f = 3
    with pytest.raises(ValueError, match=r"samples=6 time points alias .* use samples >= "):
        FrequencyPropagation(0.1, 1, 2, samples=6)
    with pytest.raises(ValueError, match="error_harmonic must differ from activation_harmonic"):
        FrequencyPropagation(0.1, 2, 2)
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        FrequencyPropagation(0.0)
    net = ResistiveNetwork(3, (4,), 2, current_sources=True)
    params, x, y = net.init_params(0), np.ones(3), np.ones(2)
    with pytest.raises(ValueError, match="activation_harmonic > 0.*needs a network without current sources"):
        FrequencyPropagation(0.1, 1, 2).gradients(net, params, x[None], y[None])


@pytest.mark.slow
def test_trains_iris():
    """The Scellier 2024 architecture (signed diodes, current sources), DC activation."""
    data = load_dataset("iris", seed=0)
    net = ResistiveNetwork(4, (32,), 3, input_gain=4.0, hidden_bounds="signed", current_sources=True,
                           bias_voltages=(), tol=1e-10)
    result = fit(net, data, epochs=20, learning_rate=0.03, gradient=FrequencyPropagation(0.5), seed=0, progress=False)
    assert result.final["test_accuracy"] >= 0.93
