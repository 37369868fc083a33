"""Agnostic EP (classical.agnostic): the parameters' relaxed displacement is the preconditioned
gradient step -beta (k I + Hess Phi)^-1 grad L up to O(beta^2), and its implied gradient
-(k / beta) delta theta tends to the EP gradient grad L in the paper's limit (beta -> 0, stiff
parameters k -> infinity) at rates O(beta) and O(1/k); the exact reference is implicit
differentiation (JAX), on a phase-oscillator network at a stiff minimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from classical.agnostic import AgnosticEP
from classical.phase_oscillators import PhaseOscillatorNetwork, oscillator_energy
from qeqprop.ep import flatten_grad, reference_gradient
from qeqprop.errors import NotConvergedError
from qeqprop.gradcheck import log_slope
from qeqprop.train import minibatch_gradient


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    net = PhaseOscillatorNetwork(3, 3, 2)
    params = {"W": 0.5 * rng.standard_normal(len(net.edges)), "h": rng.uniform(1, 2, 5), "psi": rng.uniform(-1, 1, 5)}
    X, Y = rng.normal(size=(3, 3)), rng.uniform(-0.8, 0.8, (3, 2))
    grad = flatten_grad({k: v.mean(axis=0) for k, v in reference_gradient(net, params, X, Y).items()})
    return net, params, X, Y, grad, phi_hessian(net, params, X)


def phi_hessian(net, params, X):
    """Hess Phi = 1/B sum_b [E_tt - E_ts E_ss^-1 E_st] at each free minimum (JAX, flat params
    in sorted-name order, the order of flatten_grad)."""
    names, shapes = sorted(params), {k: np.shape(v) for k, v in params.items()}
    sizes = [int(np.prod(shapes[k])) for k in names]

    def energy(theta, free, inputs):
        parts = jnp.split(theta, np.cumsum(sizes)[:-1])
        p = {k: part.reshape(shapes[k]) for k, part in zip(names, parts)}
        return oscillator_energy(p, jnp.concatenate([inputs, free]), net.edges, net.free, jnp)

    @jax.jit
    def schur(theta, free, inputs):
        tt, ss = jax.hessian(energy, 0)(theta, free, inputs), jax.hessian(energy, 1)(theta, free, inputs)
        ts = jax.jacfwd(jax.grad(energy, 0), 1)(theta, free, inputs)
        return tt - ts @ jnp.linalg.solve(ss, ts.T)

    theta, states = jnp.asarray(flatten_grad(params)), net.batch_view(len(X)).equilibrate(params, X)
    return np.mean([np.asarray(schur(theta, jnp.asarray(phases[net.free]), jnp.asarray(phases[: net.n_inputs])))
                    for phases in states.state], axis=0)


def displacement(net, params, X, Y, beta, stiffness):
    step = AgnosticEP(beta, stiffness, tol=1e-10, max_iter=200).relax(net, params, X, Y)
    return flatten_grad(step.displacement)


def test_displacement_is_the_preconditioned_gradient_step_up_to_beta_squared(case):
    net, params, X, Y, grad, hessian = case
    k, betas = 10.0, (1e-2, 1e-3, 1e-4)
    errors = []
    for beta in betas:
        predicted = -beta * np.linalg.solve(k * np.eye(len(grad)) + hessian, grad)
        errors.append(np.linalg.norm(displacement(net, params, X, Y, beta, k) - predicted) / np.linalg.norm(predicted))
    assert abs(log_slope(betas, errors) - 1.0) < 0.15, errors
    assert errors[-1] < 1e-3


def test_implied_gradient_tends_to_the_ep_gradient_as_the_parameters_stiffen(case):
    net, params, X, Y, grad, _ = case
    beta, stiffnesses = 1e-5, (1e2, 1e3, 1e4)
    errors = [np.linalg.norm(-k / beta * displacement(net, params, X, Y, beta, k) - grad) / np.linalg.norm(grad)
              for k in stiffnesses]
    assert abs(log_slope(stiffnesses, errors) + 1.0) < 0.15, errors
    assert errors[-1] < 1e-3
    cosine = -displacement(net, params, X, Y, beta, 1e4) @ grad
    assert cosine / (np.linalg.norm(displacement(net, params, X, Y, beta, 1e4)) * np.linalg.norm(grad)) > 1 - 1e-6


def test_as_a_rule_sgd_at_beta_over_k_is_the_physical_update(case):
    net, params, X, Y, _, _ = case
    rule = AgnosticEP(beta=0.05, stiffness=100.0, tol=1e-10, max_iter=200)
    grad, _ = minibatch_gradient(net, params, X, Y, gradient=rule, task="regression")
    step = rule.relax(net, params, X, Y)
    for k in params:
        np.testing.assert_allclose(params[k] - rule.beta / rule.stiffness * grad[k], step.nudged_params[k], atol=1e-14)


def test_errors_name_the_problem(case):
    net, params, X, Y, _, _ = case
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        AgnosticEP(beta=-0.1)
    with pytest.raises(NotConvergedError, match="raise stiffness"):
        AgnosticEP(beta=0.5, stiffness=1e-3, max_iter=3).relax(net, params, X, Y)
