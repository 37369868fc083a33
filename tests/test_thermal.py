"""Finite-temperature EP on exact Gibbs states."""

import warnings

import numpy as np
import pytest
import qutip

from qeqprop import DegenerateGroundStateWarning, TFIMNetwork, ep_gradient, fit, load_dataset, random_tfim_instance, relative_error
from qeqprop.ep import finite_difference_gradient
from qeqprop.hamiltonians import to_qutip
from qeqprop.gradcheck import gradcheck


@pytest.mark.parametrize("n,temperature", [(4, 0.5), (6, 1.0), (8, 2.0)])
def test_thermal_expectations_equal_qutip(n, temperature):
    system, params, x, _ = random_tfim_instance(n, seed=n)
    system.temperature = temperature
    state = system.equilibrate(params, x)
    h = to_qutip(system.hamiltonian.operator(params, x))
    rho = (-h / temperature).expm()
    rho = rho / rho.tr()
    for s in system.hamiltonian.observable_index:
        op = system.hamiltonian.table.operator(np.eye(len(system.hamiltonian.table))[s])
        expected = qutip.expect(to_qutip(op), rho)
        assert abs(state.expectations[s] - expected) < 1e-10
    assert abs(state.free_energy + temperature * np.log((-h / temperature).expm().tr())) < 1e-9


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_thermal_reference_and_ep_slopes(temperature):
    system, params, x, y = random_tfim_instance(5, seed=1)
    system.temperature = temperature
    report = gradcheck(system, params, x, y)
    assert report["reference_vs_finite_difference"] < 1e-6
    assert abs(report["slopes"]["centered"] - 2.0) < 0.15
    assert abs(report["slopes"]["positive"] - 1.0) < 0.15


def test_low_temperature_limit_is_ground_state_gradient():
    system, params, x, y = random_tfim_instance(5, seed=1)
    zero = system.reference_grad(params, x, y)
    errors = []
    for temperature in (0.3, 0.1, 0.05):
        system.temperature = temperature
        errors.append(relative_error(ep_gradient(system, params, x, y, beta=1e-3).grad, zero))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-4  # gap ~1: corrections ~exp(-gap/T)


@pytest.mark.slow
def test_degenerate_instance_trains_at_small_temperature():
    """Gamma = 0: classical Ising, degenerate ground states at zero fields. T > 0 is smooth."""
    zero = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], gamma=0.0)
    params = {k: np.zeros_like(v) for k, v in zero.init_params(0).items()}
    with pytest.warns(DegenerateGroundStateWarning):
        zero.equilibrate(params, np.zeros(2))
    warm = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], gamma=0.0, temperature=0.3)
    grad = ep_gradient(warm, params, np.zeros(2), np.array([1.0]), beta=1e-3).grad
    assert all(np.all(np.isfinite(v)) for v in grad.values())
    fd = finite_difference_gradient(warm, params, np.zeros(2), np.array([1.0]))
    assert relative_error(grad, fd) < 1e-4
    iris = load_dataset("iris", seed=0)
    learner = TFIMNetwork(6, "complete", n_inputs=4, output_qubits=[3, 4, 5], gamma=0.0, temperature=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit(learner, iris, epochs=10, learning_rate=0.05, seed=0, progress=False)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
    assert result.final["train_loss"] < result.history[0]["train_loss"] / 3
    assert result.final["test_accuracy"] >= 0.9


def test_temperature_validation():
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        TFIMNetwork(3, temperature=-1.0)
