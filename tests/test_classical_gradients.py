"""EP on the classical baselines: on every system the positive, negative and centered
estimators converge to the exact reference gradient (JAX implicit differentiation, or autodiff
of the Boltzmann enumeration) at rates 1, 1 and 2 in beta, and the reference equals central
finite differences of the loss."""

import numpy as np
import pytest

from classical.hopfield import HopfieldNetwork
from classical.ising import IsingMachine
from classical.phase_oscillators import PhaseOscillatorNetwork
from classical.resistive import ResistiveNetwork
from qeqprop.ep import ESTIMATORS, ep_gradient, finite_difference_gradient, relative_error
from qeqprop.gradcheck import log_slope
from qeqprop.systems.protocol import EnergySystem

BETAS = (1e-1, 1e-2, 1e-3)
EXPECTED_SLOPE = {"positive": 1.0, "negative": 1.0, "centered": 2.0}


def hopfield_case():
    """Two hidden layers (odd/even alternation over three free layers), some units at 0 or 1."""
    rng = np.random.default_rng(13)
    system = HopfieldNetwork(3, (5, 4), 2, init_scale=0.6)
    params = system.init_params(rng)
    for name in ("b1", "b2", "b3"):
        params[name] = rng.uniform(0.3, 0.7, params[name].shape)
    return system, params, rng.normal(size=3), rng.uniform(-1, 1, 2)


def resistive_case():
    """Two hidden layers whose diodes clip some voltages at +-0.3."""
    rng = np.random.default_rng(0)
    system = ResistiveNetwork(3, (4, 3), 2, input_gain=2.0, hidden_bounds=(-0.3, 0.3), target_voltage=0.5)
    return system, system.init_params(rng), rng.normal(size=3), rng.uniform(-1, 1, 2)


def phase_case():
    rng = np.random.default_rng(0)
    system = PhaseOscillatorNetwork(3, 4, 2, restarts=2)
    params = {"W": 1.0 * rng.standard_normal(len(system.edges)), "h": rng.normal(0, 0.5, 6), "psi": rng.uniform(-3, 3, 6)}
    return system, params, rng.normal(size=3), rng.uniform(-1, 1, 2)


def ising_case():
    rng = np.random.default_rng(0)
    system = IsingMachine(5, "complete", n_inputs=2, output_spins=[3, 4], temperature=0.7)
    return system, system.init_params(rng), rng.normal(size=2), rng.uniform(-1, 1, 2)


CASES = {"hopfield": hopfield_case, "resistive": resistive_case, "phase": phase_case, "ising": ising_case}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    system, params, x, y = CASES[request.param]()
    free = system.equilibrate(params, x)
    return request.param, system, params, x, y, free, system.reference_grad(params, x, y)


def test_implements_the_protocol(case):
    _, system, *_ = case
    assert isinstance(system, EnergySystem)


def test_reference_gradient_equals_finite_differences(case):
    name, system, params, x, y, _, reference = case
    assert np.linalg.norm(np.concatenate([np.ravel(v) for v in reference.values()])) > 1e-3  # not a trivial zero
    assert relative_error(reference, finite_difference_gradient(system, params, x, y, step=1e-5)) < 1e-6, name


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_ep_converges_to_reference_at_expected_rate(case, estimator):
    name, system, params, x, y, free, reference = case
    errors = [relative_error(ep_gradient(system, params, x, y, b, estimator, free=free).grad, reference) for b in BETAS]
    slope = log_slope(BETAS, errors)
    assert abs(slope - EXPECTED_SLOPE[estimator]) < 0.15, (name, estimator, errors, slope)
    assert errors[-1] < (1e-5 if estimator == "centered" else 1e-2), (name, estimator, errors)
