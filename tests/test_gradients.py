"""Every gradient path against the exact reference and finite differences; EP convergence rates."""

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_general_system
from qeqprop import TFIMNetwork, ep_gradient, random_tfim_instance, reference_gradient, relative_error
from qeqprop.costs import FunctionCost
from qeqprop.ep import finite_difference_gradient
from qeqprop.estimators import ESTIMATORS
from qeqprop.gradcheck import gradcheck, log_slope

BETAS = (1e-1, 1e-2, 1e-3)
EXPECTED_SLOPE = {"positive": 1.0, "negative": 1.0, "centered": 2.0}


def tfim_case(seed, **options):
    return random_tfim_instance(4 + seed % 5, seed=seed, **options)


def general_case(seed, **options):
    rng = np.random.default_rng(seed)
    return random_general_system(rng, 4 + seed % 3, **options)


CASES = [("tfim", tfim_case, s) for s in range(4)] + [("general-complex", general_case, s) for s in range(3)]


@pytest.mark.parametrize("name,make,seed", CASES)
def test_reference_equals_finite_differences(name, make, seed):
    system, params, x, y = make(seed)
    reference = reference_gradient(system, params, x, y)
    fd = finite_difference_gradient(system, params, x, y, step=1e-4)
    assert relative_error(reference, fd) < 1e-6


@pytest.mark.parametrize("cost", ["mse", "cross_entropy", "pauli_mse", "function"])
def test_reference_equals_finite_differences_for_every_cost(cost):
    if cost == "function":
        cost = FunctionCost(lambda o, y: jnp.sum(jnp.log(jnp.cosh(o - y))) + 0.1 * jnp.sum(o**4))
    system = TFIMNetwork(5, "complete", n_inputs=2, output_qubits=[3, 4], cost=cost)
    rng = np.random.default_rng(7)
    params, x = system.init_params(rng), rng.normal(size=2)
    y = np.array([1.0, 0.0]) if cost == "cross_entropy" else rng.uniform(-1, 1, 2)
    fd = finite_difference_gradient(system, params, x, y, step=1e-4)
    assert relative_error(system.reference_grad(params, x, y), fd) < 1e-6
    assert relative_error(ep_gradient(system, params, x, y, beta=1e-3).grad, fd) < 1e-5


@pytest.mark.parametrize("solver", ["lanczos", "jax"])
def test_matrix_free_paths_reference_and_ep(solver):
    """scipy (ARPACK) and JAX Lanczos agree with the dense path; EP keeps its slope."""
    system, params, x, y = random_tfim_instance(11, seed=3, solver=solver)
    dense_system, *_ = random_tfim_instance(11, seed=3, solver="dense")
    reference = system.reference_grad(params, x, y)
    dense_reference = dense_system.reference_grad(params, x, y)
    assert relative_error(reference, dense_reference) < 1e-8
    errors = []
    for beta in BETAS:
        result = ep_gradient(system, params, x, y, beta=beta, estimator="centered")
        dense_result = ep_gradient(dense_system, params, x, y, beta=beta, estimator="centered")
        # one sample on 11 qubits with solver "jax" runs as a batch of one (SpinSystem.batch_view)
        assert result.free.solver == {"jax": "batched lanczos"}.get(solver, solver)
        # the matrix-free solver's error is a small share of EP's own bias at this beta
        assert relative_error(result.grad, dense_result.grad) < 0.02 * relative_error(dense_result.grad, dense_reference)
        errors.append(relative_error(result.grad, reference))
    assert abs(log_slope(BETAS, errors) - 2.0) < 0.15


@pytest.mark.parametrize("name,make,seed", CASES)
def test_ep_convergence_slopes(name, make, seed):
    system, params, x, y = make(seed)
    report = gradcheck(system, params, x, y, betas=BETAS)
    assert report["gap"] > 0.05
    for estimator in ESTIMATORS:
        assert abs(report["slopes"][estimator] - EXPECTED_SLOPE[estimator]) < 0.15, (estimator, report)
    assert report["reference_vs_finite_difference"] < 1e-6


def test_centered_error_small_on_gapped_instance():
    """The CLI's default gradcheck instance (6 qubits, gap ~1.08): centered error at beta=1e-2."""
    system, params, x, y = random_tfim_instance(6, seed=0)
    report = gradcheck(system, params, x, y, betas=BETAS)
    assert report["gap"] > 1.0
    assert report["errors"]["centered"][1] < 1e-3


def test_estimators_are_consistent_finite_differences():
    """centered = (positive + negative) / 2 exactly, from the same three equilibria."""
    system, params, x, y = tfim_case(1)
    free = system.equilibrate(params, x)
    grads = {e: ep_gradient(system, params, x, y, 0.05, e, free=free).grad for e in ESTIMATORS}
    for key in grads["centered"]:
        np.testing.assert_allclose(grads["centered"][key], (grads["positive"][key] + grads["negative"][key]) / 2, atol=1e-12)


def test_fixed_field_inputs_and_trainable_gamma():
    system = TFIMNetwork(5, "chain", n_inputs=2, input_mode="fields", input_qubits=[0, 1], input_scale=0.7,
                         output_qubits=[4], train_gamma=True, gamma=0.9)
    rng = np.random.default_rng(2)
    params, x, y = system.init_params(rng), rng.normal(size=2), np.array([0.5])
    assert set(params) == {"J", "b", "gamma"}
    fd = finite_difference_gradient(system, params, x, y)
    assert relative_error(system.reference_grad(params, x, y), fd) < 1e-6
    errors = [relative_error(ep_gradient(system, params, x, y, b).grad, fd) for b in BETAS]
    assert abs(log_slope(BETAS, errors) - 2.0) < 0.15


@pytest.mark.parametrize("make", [tfim_case, general_case])
def test_batched_gradients_equal_per_sample(make):
    """One batched solve per phase gives each sample's EP gradient (real and complex H)."""
    system, params, *_ = make(2, solver="jax")
    rng = np.random.default_rng(9)
    xs = rng.normal(size=(6, system.n_inputs))
    ys = rng.uniform(-1, 1, (6, system.n_outputs))
    result = ep_gradient(system, params, xs, ys, beta=1e-2)
    for b in range(len(xs)):
        single = ep_gradient(system, params, xs[b], ys[b], beta=1e-2)
        expected = system.hamiltonian.flatten(single.grad)
        got = system.hamiltonian.flatten({k: v[b] for k, v in result.grad.items()})
        assert np.abs(got - expected).max() < 1e-6 * np.abs(expected).max()
        assert result.loss[b] == pytest.approx(single.loss, abs=1e-10)
        assert result.free.gaps[b] == pytest.approx(single.free.gap, rel=1e-6)


def test_a_new_linear_estimator_needs_no_library_edit():
    """A five-point stencil written by the user, {2b: -1/12b, b: 8/12b, -b: -8/12b, -2b: 1/12b},
    runs through the same phase loop (four nudged phases) and converges as beta^4; weights that
    do not estimate d/dbeta are refused."""
    from qeqprop.estimators import LinearEstimator

    def five_point(b):
        return LinearEstimator({2 * b: -1 / (12 * b), b: 8 / (12 * b), -b: -8 / (12 * b), -2 * b: 1 / (12 * b)}, "five-point", 4)

    system, params, x, y = random_tfim_instance(4, seed=0)  # dense: no solver floor under the bias
    reference = reference_gradient(system, params, x, y)
    betas = (0.2, 0.1, 0.05)
    results = [ep_gradient(system, params, x, y, estimator=five_point(b)) for b in betas]
    assert sorted(results[0].nudged) == [-0.4, -0.2, 0.2, 0.4]
    errors = [relative_error(r.grad, reference) for r in results]
    assert abs(log_slope(betas, errors) - 4.0) < 0.15
    assert errors[-1] < 1e-2 * relative_error(ep_gradient(system, params, x, y, 0.05, "centered").grad, reference)
    with pytest.raises(ValueError, match="sum to 0"):
        LinearEstimator({0.1: 10.0})
    with pytest.raises(ValueError, match="sum_b a_b"):
        LinearEstimator({0.1: 1.0, -0.1: -1.0})
