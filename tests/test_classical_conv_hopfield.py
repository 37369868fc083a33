"""Convolutional Hopfield network (classical.conv_hopfield): pooled features against a loop
implementation, equilibria against the KKT conditions of an autodiff energy, the local gradient
against autodiff, the implicit-differentiation reference against central finite differences, EP
slopes 1 / 1 / 2, batch = per sample to 1e-10, the backprop twin, errors, and (slow) mnist >= 95%."""

import doctest
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_layered_batch_equals_alone

import classical.conv_hopfield
from classical._common import split_layers
from classical.conv_hopfield import ConvBackprop, ConvHopfieldNetwork, conv_hopfield
from qeqprop import ep
from qeqprop.backprop import bp_reference
from qeqprop.datasets import load_dataset
from qeqprop.gradcheck import log_slope
from qeqprop.systems.protocol import LoopBatch
from qeqprop.systems.registry import build
from qeqprop.train import fit

SLOPE_TOL = 0.15


def make_net(**options):
    """7x7 images, 3x3 filters, 3 channels: 5x5 maps pooled 2x2 to 2x2 (the floor drops a row and a column)."""
    return ConvHopfieldNetwork(49, channels=3, n_outputs=3, kernel=3, pool=2, **options)


def instance(seed=0, batch=6):
    """Parameters that leave hidden units at 0, inside (0, 1) and at 1, outputs inside."""
    rng = np.random.default_rng(seed)
    net = make_net()
    params = net.init_params(rng, init_scale=1.0)
    params["b1"] = rng.uniform(-0.1, 0.3, 3)
    params["W1"] *= 0.5
    params["b2"] = np.full(3, 0.5)
    return net, params, rng.uniform(0.0, 1.0, (batch, 49)), rng.uniform(-1, 1, (batch, 3))


def loop_features(net, params, x):
    """P(K * x + c) with explicit loops over windows, positions and channels (independent of the JAX code)."""
    (k_h, k_w), (p_h, p_w), image = net.kernel, net.pool, x.reshape(net.image_shape)
    P, Q, C = net.hidden_shape
    out = np.empty((P, Q, C))
    for i in range(P):
        for j in range(Q):
            for c in range(C):
                out[i, j, c] = max(np.sum(params["W0"][:, :, c] * image[u:u + k_h, v:v + k_w]) + params["b1"][c]
                                   for u in range(i * p_h, i * p_h + p_h) for v in range(j * p_w, j * p_w + p_w))
    return out.ravel()


def nudged_energy(net, params, x, flat, y, beta):
    """E + beta/2 ||o - (1 + y)/2||^2 in JAX, the features from the loop implementation."""
    s1, o = split_layers(flat, net.state_sizes)
    h = loop_features(net, params, x)
    energy = 0.5 * jnp.sum(s1**2) + 0.5 * jnp.sum(o**2) - s1 @ h - s1 @ params["W1"] @ o - params["b2"] @ o
    return energy + 0.5 * beta * jnp.sum((o - 0.5 * (1 + y)) ** 2)


def test_features_equal_a_loop_convolution_with_max_pooling():
    net, params, X, _ = instance()
    assert net.hidden_shape == (2, 2, 3)
    expected = np.stack([loop_features(net, params, x) for x in X])
    np.testing.assert_allclose(net.features(params, X), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("beta", [0.0, 0.4, -0.4])
def test_equilibrium_satisfies_kkt_conditions(beta):
    net, params, X, Y = instance()
    x, y = X[0], Y[0]
    state = net.equilibrate(params, x, nudge=y if beta else None, beta=beta)
    s = state.state
    grad = np.asarray(jax.grad(lambda f: nudged_energy(net, params, x, f, y, beta))(jnp.asarray(s)))
    inside = (s > 0) & (s < 1)
    assert inside.sum() >= 3 and (~inside).sum() >= 2  # both kinds of units are exercised
    assert np.max(np.abs(grad[inside])) < 1e-10
    assert np.all(grad[s == 0] >= -1e-10) and np.all(grad[s == 1] <= 1e-10)
    assert state.residual < 1e-10
    np.testing.assert_allclose(state.energy, float(nudged_energy(net, params, x, jnp.asarray(s), y, beta)), atol=1e-12)
    np.testing.assert_allclose(net.energy(params, x, state) + 0.5 * beta * np.sum((s[-3:] - (1 + y) / 2) ** 2),
                               state.energy, atol=1e-12)


def test_energy_grad_equals_autodiff_at_fixed_states():
    """Per sample, per sample of a batch, and the batch mean (one vjp) all equal jax.grad of E."""
    net, params, X, _ = instance()
    view = net.batch_view(len(X))
    states = view.equilibrate(params, X)
    batched, mean = net.energy_grad(params, X, states), net.energy_grad_mean(params, X, states)
    autodiff = jax.jit(jax.grad(lambda p, x, s: net._energy({**p, "x": x}, s)))
    expected = []
    for i, x in enumerate(X):
        e = autodiff(params, x, states.state[i])
        expected.append(e)
        single = net.energy_grad(params, x, view.take(states, i))
        for key in params:
            np.testing.assert_allclose(single[key], np.asarray(e[key]), rtol=0, atol=1e-13)
            np.testing.assert_allclose(batched[key][i], np.asarray(e[key]), rtol=0, atol=1e-13)
    for key in params:
        np.testing.assert_allclose(mean[key], np.mean([np.asarray(e[key]) for e in expected], axis=0), rtol=0, atol=1e-13)


def test_reference_gradient_equals_central_finite_differences():
    net, params, X, Y = instance()
    for x, y in zip(X[:2], Y[:2]):
        reference = net.reference_grad(params, x, y)
        assert np.linalg.norm(reference["W0"]) > 1e-3  # the conv filters get a gradient
        fd = ep.finite_difference_gradient(net, params, x, y, step=1e-5)
        assert ep.relative_error(reference, fd) < 1e-7


def test_ep_estimators_converge_to_the_reference_at_slopes_1_1_2():
    net, params, X, Y = instance()
    x, y = X[0], Y[0]
    reference = net.reference_grad(params, x, y)
    betas = (1e-2, 1e-3, 1e-4)  # below the beta where a unit would cross a bound (the active set stays put)
    for estimator, slope in (("positive", 1.0), ("negative", 1.0), ("centered", 2.0)):
        errors = [ep.relative_error(ep.ep_gradient(net, params, x, y, beta=b, estimator=estimator).grad, reference)
                  for b in betas]
        assert abs(log_slope(betas, errors) - slope) < SLOPE_TOL, (estimator, errors)
    assert errors[-1] < 1e-7


def test_batch_view_equals_per_sample_solves():
    net, params, X, Y = instance()
    view = net.batch_view(len(X))
    free = view.equilibrate(params, X)
    assert_layered_batch_equals_alone(net, view, params, X, Y, free, 0.4)
    np.testing.assert_allclose(view.predict(free), [net.predict(view.take(free, i)) for i in range(len(X))], atol=1e-15)
    np.testing.assert_allclose(view.cost(free, Y), [net.cost(view.take(free, i), y) for i, y in enumerate(Y)], atol=1e-15)


def test_batched_ep_gradient_equals_per_sample_calls():
    """ep_gradient on a batch (joint phases) = per-sample calls (LoopBatch) = the batch mean, to 1e-10."""
    net, params, X, Y = instance()
    loop = make_net()
    loop.batch_view = lambda size: LoopBatch(loop)
    batched = ep.ep_gradient(net, params, X, Y, beta=0.3)
    looped = ep.ep_gradient(loop, params, X, Y, beta=0.3)
    mean = ep.ep_gradient(net, params, X, Y, beta=0.3, mean=True)
    assert np.linalg.norm(ep.flatten_grad(looped.grad)) > 1e-2
    for key in params:
        np.testing.assert_allclose(batched.grad[key], looped.grad[key], rtol=0, atol=1e-10)
        np.testing.assert_allclose(mean.grad[key][0], looped.grad[key].mean(axis=0), rtol=0, atol=1e-10)


def test_backprop_twin_is_the_same_architecture():
    net, params, X, _ = instance()
    twin = net.backprop_reference()
    assert isinstance(twin, ConvBackprop) and twin.sizes == [49, 12, 3]
    logits = np.asarray(twin._logits(params, X))
    np.testing.assert_allclose(logits, np.clip(net.features(params, X), 0, 1) @ params["W1"] + params["b2"], atol=1e-13)
    data = load_dataset("digits", seed=0, scaling="unit")
    system = build("conv_hopfield", 64, 10, 4)
    result = bp_reference(system, data, 4, epochs=1, batch_size=32, learning_rate=0.01, seed=0)
    assert result["bp_model"].startswith("conv net (5x5 conv, 4 channels, 2x2 max-pool, dense) 64-16-10")
    assert result["bp_test_accuracy"] > 0.5


def test_builder_fits_filters_to_the_inputs():
    assert build("conv_hopfield", 784, 10, 32).hidden_shape == (12, 12, 32)
    small = conv_hopfield(2, 1, 2)
    assert (small.image_shape, small.kernel, small.pool, small.n_hidden) == ((1, 2), (1, 2), (1, 1), 2)


def test_errors_name_the_problem():
    net, params, X, Y = instance()
    with pytest.raises(ValueError, match="not a square image; pass image_shape"):
        ConvHopfieldNetwork(50, 2, 3)
    with pytest.raises(ValueError, match="leave no pooled unit"):
        ConvHopfieldNetwork(49, 2, 3, kernel=7, pool=2)
    with pytest.raises(ValueError, match="must hold n_inputs=49 pixels"):
        ConvHopfieldNetwork(49, 2, 3, image_shape=(5, 9))
    with pytest.raises(ValueError, match="beta must be > -1"):
        net.batch_view(len(X)).equilibrate(params, X, nudge=Y, beta=(0.5, -1.5))
    with pytest.raises(ValueError, match=r"x must have shape \(49,\)"):
        net.equilibrate(params, np.zeros(48))
    with pytest.raises(ValueError, match=r"conv Hopfield block-coordinate descent \(batch\) did not converge in 1 iterations"):
        make_net(max_iter=1).batch_view(len(X)).equilibrate(params, X)
    with pytest.raises(ValueError, match="missing"):
        net.equilibrate({k: v for k, v in params.items() if k != "b1"}, X[0])


def test_docstring_example_runs():
    assert doctest.testmod(classical.conv_hopfield).failed == 0


@pytest.mark.slow
def test_mnist_centered_ep_reaches_95_percent():
    """The hopfield-conv-mnist preset's run (qeqprop/presets/hopfield-conv-mnist.toml)."""
    data = load_dataset("mnist", seed=0)
    net = build("conv_hopfield", 784, 10, 32)
    start = time.perf_counter()
    result = fit(net, data, epochs=12, batch_size=20, learning_rate=5e-4, beta=0.5, estimator="centered", seed=0,
                 progress=False)
    print(f"conv hopfield mnist: test accuracy {result.final['test_accuracy']:.4f} in {time.perf_counter() - start:.0f} s")
    assert result.final["test_accuracy"] >= 0.95
