"""Learning rules on every classical system: the EP rules are qeqprop.ep's estimators; coupled
learning clamped where the nudged phase put the output reproduces the positive EP estimate
exactly; as eta -> 0 it points along dL/dtheta (one output); contrastive learning on the Ising
machine is the Boltzmann-machine rule computed by brute force."""

import numpy as np
import pytest

from classical.hopfield import HopfieldNetwork
from classical.ising import IsingMachine
from classical.learning_rules import RULES, contrastive_gradient, coupled_gradient, learning_rule_gradient
from classical.phase_oscillators import PhaseOscillatorNetwork
from classical.resistive import ResistiveNetwork
from qeqprop.ep import ep_gradient, flatten_grad, relative_error


def one_output_case(name):
    rng = np.random.default_rng(7)
    if name == "hopfield":
        system = HopfieldNetwork(3, (4,), 1, init_scale=0.8)
        params = system.init_params(rng)
        params["b1"], params["b2"] = rng.uniform(0.3, 0.7, 4), np.array([0.5])
    elif name == "resistive":
        system = ResistiveNetwork(3, (4,), 1, input_gain=2.0, hidden_bounds=(-0.3, 0.3))
        params = system.init_params(rng)
    elif name == "phase":
        system = PhaseOscillatorNetwork(3, 3, 1)
        params = {"W": rng.standard_normal(len(system.edges)), "h": rng.normal(0, 0.5, 4), "psi": rng.uniform(-1, 1, 4)}
    else:
        system = IsingMachine(4, "complete", n_inputs=3, output_spins=[3], temperature=0.8)
        params = system.init_params(rng)
    return system, params, rng.normal(size=3), np.array([0.8])


SYSTEMS = ("hopfield", "resistive", "phase", "ising")


@pytest.mark.parametrize("name", SYSTEMS)
def test_coupled_rule_clamped_at_the_nudged_output_equals_positive_ep(name):
    """The nudged equilibrium minimizes E at its own output value, so clamping the output there
    reproduces it: eta * coupled(eta) = beta * positive EP with eta = (o_beta - o) / (y - o)."""
    system, params, x, y = one_output_case(name)
    beta = 0.05
    free = system.equilibrate(params, x)
    output = system.predict(free)
    nudged = system.equilibrate(params, x, nudge=system.nudge(free, y), beta=beta, init=free)
    eta = float((system.predict(nudged) - output)[0] / (y - output)[0])
    assert 0 < eta < 1
    coupled = coupled_gradient(system, params, x, y, eta, free)
    positive = ep_gradient(system, params, x, y, beta, "positive", free=free).grad
    assert relative_error({k: eta * v for k, v in coupled.items()}, {k: beta * v for k, v in positive.items()}) < 1e-7


@pytest.mark.parametrize("name", SYSTEMS)
def test_coupled_rule_at_small_eta_points_along_the_gradient(name):
    system, params, x, y = one_output_case(name)
    reference = flatten_grad(system.reference_grad(params, x, y))
    coupled = flatten_grad(learning_rule_gradient(system, params, x, y, "coupled", eta=1e-4))
    cosine = coupled @ reference / np.linalg.norm(coupled) / np.linalg.norm(reference)
    assert cosine > 1 - 1e-6


def test_contrastive_rule_on_ising_is_the_boltzmann_machine_rule():
    rng = np.random.default_rng(3)
    machine = IsingMachine(5, "complete", n_inputs=2, output_spins=[3, 4], temperature=0.9)
    params, x, y = machine.init_params(rng), rng.normal(size=2), np.array([1.0, -1.0])
    fields = params["b"] + x @ params["W"]
    weights, correlations, means = [], [], []
    for spins in machine.spins:  # brute force over the 32 configurations
        energy = -sum(params["J"][k] * spins[i] * spins[j] for k, (i, j) in enumerate(machine.edges)) - fields @ spins
        weights.append(np.exp(-energy / 0.9))
        correlations.append([spins[i] * spins[j] for i, j in machine.edges])
        means.append(spins)
    weights, correlations, means = np.array(weights), np.array(correlations), np.array(means)
    keep = (means[:, 3] == 1) & (means[:, 4] == -1)
    p_free, p_clamped = weights / weights.sum(), np.where(keep, weights, 0) / weights[keep].sum()
    rule = contrastive_gradient(machine, params, x, y)
    np.testing.assert_allclose(rule["J"], -(p_clamped - p_free) @ correlations, atol=1e-13)
    np.testing.assert_allclose(rule["b"], -(p_clamped - p_free) @ means, atol=1e-13)
    np.testing.assert_allclose(rule["W"], -np.outer(x, (p_clamped - p_free) @ means), atol=1e-13)


@pytest.mark.parametrize("rule", [r for r in RULES if r.startswith("ep_")])
def test_ep_rules_are_the_qeqprop_estimators(rule):
    system, params, x, y = one_output_case("resistive")
    expected = ep_gradient(system, params, x, y, 0.02, rule[3:]).grad
    got = learning_rule_gradient(system, params, x, y, rule, beta=0.02)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_bad_rule_arguments_raise():
    system, params, x, y = one_output_case("hopfield")
    with pytest.raises(ValueError, match="rule must be one of"):
        learning_rule_gradient(system, params, x, y, "hebbian")
    with pytest.raises(ValueError, match=r"eta must be in \(0, 1\]"):
        coupled_gradient(system, params, x, y, eta=0.0)
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        learning_rule_gradient(system, params, x, y, "ep_centered", beta=-0.1)
