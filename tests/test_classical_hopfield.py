"""Layered Hopfield networks: the block-coordinate equilibrium against JAX autodiff KKT
conditions and scipy's L-BFGS-B, the local gradient against autodiff, errors, and (slow)
digits training by centered EP."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from conftest import assert_layered_batch_equals_alone

from classical._common import split_layers
from classical.hopfield import HopfieldNetwork, hopfield_energy
from qeqprop import ep
from qeqprop.datasets import load_dataset
from qeqprop.gradcheck import log_slope
from qeqprop.systems.protocol import LoopBatch
from qeqprop.train import fit


def instance(seed=3, hidden=(6, 5), n_outputs=3, init_scale=0.8):
    rng = np.random.default_rng(seed)
    net = HopfieldNetwork(4, hidden, n_outputs, init_scale=init_scale)
    params = net.init_params(rng)
    for k in range(1, net.depth + 1):
        params[f"b{k}"] = rng.uniform(0.0, 0.8, net.sizes[k])
    return net, params, rng.normal(size=4), rng.uniform(-1, 1, n_outputs)


def nudged_energy(net, params, flat, y, beta):
    """E + beta/2 ||o - (1 + y)/2||^2 written directly in JAX."""
    layers = split_layers(flat, net.sizes)
    return hopfield_energy(params, layers, jnp) + 0.5 * beta * jnp.sum((layers[-1] - 0.5 * (1 + y)) ** 2)


@pytest.mark.parametrize("beta", [0.0, 0.3, -0.3])
def test_equilibrium_satisfies_kkt_conditions(beta):
    net, params, x, y = instance()
    state = net.equilibrate(params, x, nudge=y if beta else None, beta=beta)
    s = state.state
    grad = np.asarray(jax.grad(lambda f: nudged_energy(net, params, f, y, beta))(jnp.asarray(s)))[net.n_inputs:]
    units = s[net.n_inputs:]
    assert np.all((units >= 0) & (units <= 1))
    inside = (units > 0) & (units < 1)
    assert inside.sum() >= 3 and (~inside).sum() >= 3  # both kinds of units are exercised
    assert np.max(np.abs(grad[inside])) < 1e-8
    assert np.all(grad[units == 0] >= -1e-8) and np.all(grad[units == 1] <= 1e-8)
    assert state.residual < 1e-8
    np.testing.assert_allclose(state.energy, float(nudged_energy(net, params, jnp.asarray(s), y, beta)), atol=1e-12)


def test_equilibrium_equals_lbfgsb_minimum():
    """Small weights make E strictly convex on the box: one minimum, found by both solvers."""
    net, params, x, _ = instance(seed=5, init_scale=0.3)
    state = net.equilibrate(params, x)
    n = sum(net.sizes[1:])

    def energy(units):
        return float(hopfield_energy(params, split_layers(np.concatenate([x, units]), net.sizes)))

    def gradient(units):
        flat = jnp.asarray(np.concatenate([x, units]))
        return np.asarray(jax.grad(lambda f: hopfield_energy(params, split_layers(f, net.sizes), jnp))(flat))[net.n_inputs:]

    result = scipy.optimize.minimize(energy, np.full(n, 0.5), jac=gradient, method="L-BFGS-B", bounds=[(0, 1)] * n,
                                     options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    np.testing.assert_allclose(state.state[net.n_inputs:], result.x, atol=1e-6)
    assert state.energy <= result.fun + 1e-12


def test_energy_grad_equals_autodiff_at_fixed_state():
    net, params, x, _ = instance()
    state = net.equilibrate(params, x)
    layers = [jnp.asarray(v) for v in net.layers(state)]
    expected = jax.grad(lambda p: hopfield_energy(p, layers, jnp))({k: jnp.asarray(v) for k, v in params.items()})
    local = net.energy_grad(params, x, state)
    for key in params:
        np.testing.assert_allclose(local[key], np.asarray(expected[key]), atol=1e-14)


def test_warm_start_converges_to_the_same_state_in_fewer_sweeps():
    net, params, x, y = instance()
    free = net.equilibrate(params, x)
    cold = net.equilibrate(params, x, nudge=y, beta=1e-3)
    warm = net.equilibrate(params, x, nudge=y, beta=1e-3, init=free)
    np.testing.assert_allclose(warm.state, cold.state, atol=1e-11)
    assert warm.iterations < cold.iterations


def test_clamped_phase_holds_outputs_and_is_kkt_in_the_hidden_units():
    net, params, x, _ = instance()
    outputs = np.array([1.0, -1.0, 0.2])
    state = net.clamp(params, x, outputs)
    np.testing.assert_allclose(net.predict(state), outputs, atol=1e-15)
    assert state.residual < 1e-8


def test_predictions_and_cost_use_unit_targets():
    net, params, x, y = instance()
    state = net.equilibrate(params, x)
    o = net.layers(state)[-1]
    np.testing.assert_allclose(net.predict(state), 2 * o - 1)
    assert net.cost(state, y) == pytest.approx(0.5 * np.sum((o - (1 + y) / 2) ** 2), abs=1e-15)


def test_errors_name_the_problem():
    net, params, x, y = instance()
    with pytest.raises(ValueError, match=r"did not converge in 1 iterations: residual"):
        HopfieldNetwork(4, (6, 5), 3, max_iter=1).equilibrate(params, x)
    with pytest.raises(ValueError, match="beta must be > -1"):
        net.equilibrate(params, x, nudge=y, beta=-1.5)
    with pytest.raises(ValueError, match=r"x must have shape \(4,\)"):
        net.equilibrate(params, np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        net.equilibrate({**params, "W0": np.full((4, 6), np.nan)}, x)
    with pytest.raises(ValueError, match="missing"):
        net.equilibrate({k: v for k, v in params.items() if k != "b1"}, x)
    with pytest.raises(ValueError, match=r"outputs must lie in \[-1, 1\]"):
        net.clamp(params, x, np.array([2.0, 0.0, 0.0]))


def batch_instance(seed=7, hidden=(6, 5, 4), batch=9):
    """Three hidden layers, biases that leave units at 0, inside and at 1, a batch of samples."""
    rng = np.random.default_rng(seed)
    net = HopfieldNetwork(4, hidden, 3, init_scale=0.8)
    params = net.init_params(rng)
    for k in range(1, net.depth + 1):
        params[f"b{k}"] = rng.uniform(-0.2, 1.0, net.sizes[k])
    return net, params, rng.normal(size=(batch, 4)), rng.uniform(-1, 1, (batch, 3))


def test_batch_view_equals_per_sample_solves():
    net, params, X, Y = batch_instance()
    view = net.batch_view(len(X))
    free = view.equilibrate(params, X)
    units = free.state[:, net.n_inputs:]
    assert np.mean((units > 0) & (units < 1)) > 0.2 and np.mean(units == 0) > 0.05 and np.mean(units == 1) > 0.02
    assert_layered_batch_equals_alone(net, view, params, X, Y, free, 0.3)
    np.testing.assert_allclose(view.predict(free), [net.predict(view.take(free, i)) for i in range(len(X))], atol=1e-15)
    np.testing.assert_allclose(view.cost(free, Y), [net.cost(view.take(free, i), y) for i, y in enumerate(Y)], atol=1e-15)
    np.testing.assert_array_equal(view.stack([view.take(free, i) for i in range(len(X))]).state, free.state)


def test_batched_ep_gradient_equals_per_sample_and_converges_to_the_reference():
    """ep_gradient on a batch (the batch view) = per-sample calls (LoopBatch) to 1e-10; centered
    EP error against the implicit-differentiation reference falls as beta^2."""
    net, params, X, Y = batch_instance(seed=1, batch=5)
    params["b4"] = np.full(3, 0.5)  # outputs inside (0, 1): a nonzero gradient
    reference = ep.reference_gradient(net, params, X, Y)
    assert np.linalg.norm(ep.flatten_grad(reference)) > 1.0
    loop = HopfieldNetwork(4, (6, 5, 4), 3, init_scale=0.8)
    loop.batch_view = lambda size: LoopBatch(loop)
    errors = []
    betas = (1e-2, 1e-3, 1e-4)  # below the beta where a unit would hit a bound (the active set stays put)
    for beta in betas:
        batched = ep.ep_gradient(net, params, X, Y, beta=beta)
        looped = ep.ep_gradient(loop, params, X, Y, beta=beta)
        mean = ep.ep_gradient(net, params, X, Y, beta=beta, mean=True)  # energy_grad_mean: S_k^T S_(k+1) / B
        for key in params:
            np.testing.assert_allclose(batched.grad[key], looped.grad[key], rtol=0, atol=1e-10)
            np.testing.assert_allclose(mean.grad[key][0], looped.grad[key].mean(axis=0), rtol=0, atol=1e-10)
        errors.append(ep.relative_error(batched.grad, reference))
    assert abs(log_slope(betas, errors) - 2.0) < 0.15 and errors[-1] < 1e-7, errors


def test_batch_errors_name_the_problem():
    net, params, X, Y = batch_instance()
    view = HopfieldNetwork(4, (6, 5, 4), 3, max_iter=2).batch_view(len(X))
    with pytest.raises(ValueError, match=r"Hopfield block-coordinate descent \(batch\) did not converge in 2 iterations"):
        view.equilibrate(params, X)
    with pytest.raises(ValueError, match=r"x must have shape"):
        net.batch_view(2).equilibrate(params, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"nudge must have shape \(9, 3\)"):
        net.batch_view(9).equilibrate(params, X, nudge=Y[:2], beta=0.1)
    with pytest.raises(ValueError, match="beta must be > -1"):
        net.batch_view(9).equilibrate(params, X, nudge=Y, beta=(0.5, -1.5))


@pytest.mark.slow
def test_digits_centered_ep_one_hidden_layer_reaches_95_percent():
    data = load_dataset("digits", seed=0)
    net = HopfieldNetwork(64, (100,), 10)
    start = time.perf_counter()
    result = fit(net, data, epochs=8, batch_size=16, learning_rate=3e-3, beta=0.2, estimator="centered",
                 seed=0, progress=False)
    seconds = time.perf_counter() - start
    print(f"hopfield digits: test accuracy {result.final['test_accuracy']:.4f} in {seconds:.1f} s")
    assert result.final["test_accuracy"] >= 0.95


def test_layer_learning_rates_step_each_layer_at_its_own_rate():
    """SGD through layer_learning_rates: W_k and b_(k+1) move by -lr * scales[k] * grad."""
    import optax

    from classical.hopfield import layer_learning_rates

    net, params, _, _ = batch_instance()
    grads = {k: np.ones_like(v) for k, v in params.items()}
    optimizer = layer_learning_rates(net, "sgd", 0.1, [1.0, 0.5, 0.25, 0.125])
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for k, scale in enumerate([1.0, 0.5, 0.25, 0.125]):
        np.testing.assert_allclose(updates[f"W{k}"], -0.1 * scale, rtol=1e-15)
        np.testing.assert_allclose(updates[f"b{k + 1}"], -0.1 * scale, rtol=1e-15)
    assert isinstance(optimizer, optax.GradientTransformation)
    with pytest.raises(ValueError, match=r"one learning-rate factor per coupling layer \(4 for sizes \[4, 6, 5, 4, 3\]\)"):
        layer_learning_rates(net, "adam", 0.1, [1.0, 0.5])
    with pytest.raises(ValueError, match="optax optimizer name"):
        layer_learning_rates(net, "nope", 0.1, [1.0] * 4)
    with pytest.raises(ValueError, match=r"scales\[1\] must be a finite number > 0"):
        layer_learning_rates(net, "sgd", 0.1, [1.0, -1.0, 1.0, 1.0])
