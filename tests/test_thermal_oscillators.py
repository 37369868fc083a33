"""Thermal (Gibbs) states of QHO networks: the closed-form Gaussian state against a QuTiP
Fock-space thermal state, its limits (T -> 0 ground state, hbar -> 0 classical T K^-1), the
free energy against <dH/dtheta>_T, the reference gradient against finite differences and a
Fock-space Kubo-Mori response, EP convergence rates at T > 0, and bad input."""

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from conftest import assert_ep_rates
from qeqprop.ep import ep_gradient, finite_difference_gradient, reference_gradient, relative_error
from qeqprop.solvers.fock import default_basis, fock_hamiltonian
from qeqprop.solvers.gaussian import gaussian_ground_state, gaussian_thermal_state
from qeqprop.solvers.thermal import GibbsState, thermal_response
from qeqprop.systems.oscillators import OscillatorNetwork

FOCK_CUTOFFS = (28, 32)


def random_spring_matrices(rng, n):
    """Masses, a positive-definite stiffness (springs on the complete graph plus anchors), forces."""
    springs = np.triu(rng.uniform(0.2, 1.2, (n, n)), 1)
    springs = springs + springs.T
    stiffness = np.diag(springs.sum(axis=1) + rng.uniform(0.3, 1.0, n)) - springs
    return rng.uniform(0.5, 2.0, n), stiffness, rng.normal(scale=0.7, size=n)


def fock_gibbs(masses, stiffness, force, hbar, temperature, cutoff):
    """exp(-H/T)/Z of the QuTiP Fock-space Hamiltonian (solvers.fock) by dense eigh, and the
    position operators as dense matrices."""
    basis = default_basis(masses, stiffness, force, hbar, cutoff=cutoff)
    hamiltonian = fock_hamiltonian(basis, stiffness, force, np.zeros(len(masses)))
    energies, vectors = np.linalg.eigh(hamiltonian.full())
    log_weights = -(energies - energies[0]) / temperature
    log_z = logsumexp(log_weights)
    state = GibbsState(energies, vectors, np.exp(log_weights - log_z), temperature, energies[0] - temperature * log_z)
    return state, [x.full() for x in basis.positions()]


def fock_moments(state, positions):
    """<x_i>, <x_i x_j> in a Fock-space Gibbs state."""
    rotated = [state.vectors.conj().T @ x @ state.vectors for x in positions]
    mean = np.array([np.real(state.probabilities @ np.diag(x)) for x in rotated])
    second = np.array([[np.real(state.probabilities @ np.einsum("mk,km->m", a, b)) for b in rotated] for a in rotated])
    return mean, second


# --- the thermal Gaussian state against independent references -------------------------------


# the second instance runs with the slow tests (75-90 s each on 2 busy cores)
@pytest.mark.parametrize("seed,hbar,temperature", [(0, 1.0, 0.5), pytest.param(1, 0.9, 0.45, marks=pytest.mark.slow)])
def test_thermal_gaussian_equals_fock_space_gibbs_state(seed, hbar, temperature):
    rng = np.random.default_rng(seed)
    masses, stiffness, force = random_spring_matrices(rng, 2)
    gaussian = gaussian_thermal_state(masses, stiffness, force, temperature, hbar)
    results = []
    for cutoff in FOCK_CUTOFFS:
        state, positions = fock_gibbs(masses, stiffness, force, hbar, temperature, cutoff)
        results.append((*fock_moments(state, positions), state.free_energy, state.energy))
    (_, coarse, _, _), (mean, second, free_energy, energy) = results
    assert np.abs(second - coarse).max() < 1e-9  # the Fock reference is converged in the cutoff
    np.testing.assert_allclose(gaussian.second_moment, second, rtol=0, atol=1e-8)
    np.testing.assert_allclose(gaussian.mean, mean, rtol=0, atol=1e-12)
    assert abs(gaussian.free_energy - free_energy) < 1e-9
    assert abs(gaussian.energy - energy) < 1e-8
    assert np.all(np.linalg.eigvalsh(gaussian.covariance) > np.linalg.eigvalsh(gaussian_ground_state(masses, stiffness, force, hbar).covariance))


def test_thermal_limits_ground_state_and_classical():
    """T -> 0: the ground state (corrections ~ exp(-hbar w_min / T)); hbar = 0: C = T K^-1 and
    <H> = n T + min V (equipartition); hbar -> 0 at fixed T, from coth z = 1/z + z/3 + O(z^3) and
    log(2 sinh z) = log(2 z) + z^2/6 - z^4/180 + O(z^6) with z = hbar w / 2T (sum_a w_a^2k = tr A^k,
    A = M^-1 K):
        C = T K^-1 + hbar^2/(12 T) M^-1 + O(hbar^4),
        F = F_classical + n T log hbar + hbar^2 tr A/(24 T) - hbar^4 tr A^2/(2880 T^3) + O(hbar^6)."""
    rng = np.random.default_rng(7)
    masses, stiffness, force = random_spring_matrices(rng, 5)
    ground = gaussian_ground_state(masses, stiffness, force, hbar=1.0)
    cold = gaussian_thermal_state(masses, stiffness, force, 0.01, hbar=1.0)
    assert ground.omega_min / 0.01 > 30
    np.testing.assert_allclose(cold.covariance, ground.covariance, rtol=0, atol=1e-13)
    assert abs(cold.energy - ground.energy) < 1e-12 and abs(cold.free_energy - ground.energy) < 1e-12
    assert ground.free_energy == ground.energy and ground.temperature == 0.0

    temperature = 0.3
    classical = gaussian_thermal_state(masses, stiffness, force, temperature, hbar=0.0)
    np.testing.assert_allclose(classical.covariance, temperature * np.linalg.inv(stiffness), rtol=1e-12, atol=0)
    np.testing.assert_allclose(classical.mean, np.linalg.solve(stiffness, force), rtol=1e-12)
    potential_min = -0.5 * force @ np.linalg.solve(stiffness, force)
    assert abs(classical.energy - (5 * temperature + potential_min)) < 1e-12
    for hbar in (1e-2, 1e-3):
        quantum = gaussian_thermal_state(masses, stiffness, force, temperature, hbar)
        expected = temperature * np.linalg.inv(stiffness) + hbar**2 / (12 * temperature) * np.diag(1 / masses)
        assert np.abs(quantum.covariance - expected).max() < 1e-3 * hbar**2
        shift = quantum.free_energy - 5 * temperature * np.log(hbar) - classical.free_energy
        a = stiffness / masses[:, None]
        expected = hbar**2 * np.trace(a) / (24 * temperature) - hbar**4 * np.trace(a @ a) / (2880 * temperature**3)
        assert abs(shift - expected) < 1e-11


# --- networks at T > 0 ----------------------------------------------------------------------


def weights_network():
    return OscillatorNetwork(5, "complete", n_inputs=2, output_nodes=[3, 4], masses=[1.0, 0.6, 1.7, 1.2, 0.9],
                             anchors=[0.8, 0.5, 1.0, 0.7, 0.6], train_anchors=True, hbar=0.8, temperature=0.6), 10


def clamped_network():
    return OscillatorNetwork(6, "chain", n_inputs=2, input_mode="clamped", input_nodes=[0, 1], output_nodes=[5],
                             anchors=0.0, clamp_stiffness=4.0, masses=1.3, hbar=1.3, temperature=2.0), 11


def classical_thermal_network():
    return OscillatorNetwork(6, "complete", n_inputs=3, output_nodes=[4, 5], anchors=0.4, hbar=0.0, temperature=0.3), 12


def degenerate_network():
    """Equal springs, masses and anchors on the complete graph: frequencies sqrt(kappa) once and
    sqrt(kappa + 4k) three times (exact degeneracy in the divided differences)."""
    return OscillatorNetwork(4, "complete", n_inputs=1, output_nodes=[2, 3], anchors=0.7, init_std=0.0, hbar=1.0,
                             temperature=0.4), 13


NETWORKS = [weights_network, clamped_network, classical_thermal_network, degenerate_network]


def instance(make):
    system, seed = make()
    rng = np.random.default_rng(seed)
    params = system.init_params(rng)
    params["b"] = rng.normal(scale=0.5, size=system.n_nodes)
    return system, params, rng.normal(size=system.n_inputs), rng.normal(size=system.n_outputs)


def test_degenerate_network_is_degenerate():
    system, params, x, _ = instance(degenerate_network)
    w = system.equilibrate(params, x).frequencies
    assert np.ptp(w[1:]) < 1e-12 * w[1] and w[1] - w[0] > 0.5


@pytest.mark.parametrize("make", NETWORKS)
def test_thermal_reference_equals_finite_differences(make):
    system, params, x, y = instance(make)
    fd = finite_difference_gradient(system, params, x, y, step=1e-4)
    assert relative_error(reference_gradient(system, params, x, y), fd) < 1e-6


@pytest.mark.parametrize("make", [weights_network, classical_thermal_network])
def test_free_energy_gradient_is_thermal_energy_gradient(make):
    """dF/dtheta = <dH/dtheta>_T (what EP's local gradient measures), F by central differences."""
    system, params, x, _ = instance(make)

    def free_energy(p):
        return system.equilibrate(p, x).free_energy

    step, fd = 1e-4, {}
    for name, value in params.items():
        fd[name] = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = [{k: np.array(v) for k, v in params.items()} for _ in range(2)]
            shifted[0][name][index] += step
            shifted[1][name][index] -= step
            fd[name][index] = (free_energy(shifted[0]) - free_energy(shifted[1])) / (2 * step)
    assert relative_error(system.energy_grad(params, x, system.equilibrate(params, x)), fd) < 1e-7


def test_thermal_reference_equals_fock_space_kubo_mori_response():
    """Two modes: the Gaussian reference gradient against solvers.thermal.thermal_response (the
    spectral Kubo-Mori kernel) on the QuTiP Fock-space Gibbs state, with dH/dtheta as operators:
    dH/dk_raw = 1/2 (x_0 - x_1)^2 sigmoid(k_raw), dH/db_j = -x_j, dH/dW_0j = -x_in x_j."""
    hbar, temperature = 1.0, 0.5
    system = OscillatorNetwork(2, "chain", n_inputs=1, output_nodes=[1], masses=[1.0, 0.8], anchors=0.9,
                               hbar=hbar, temperature=temperature)
    rng = np.random.default_rng(3)
    params, x, y = system.init_params(rng), rng.normal(size=1), rng.normal(size=1)
    stiffness, force = system.potential(params, x)
    state, (x0, x1) = fock_gibbs(system.masses, stiffness, force, hbar, temperature, FOCK_CUTOFFS[-1])
    stretch = x0 - x1
    perturbations = [0.5 * stretch @ stretch * expit(params["k_raw"][0]), -x0, -x1, -x[0] * x0, -x[0] * x1]
    shifted = x1 - y[0] * np.eye(len(x1))
    cost = 0.5 * shifted @ shifted
    response = thermal_response(state, cost, perturbations)
    reference = system.reference_grad(params, x, y)
    flat = np.concatenate([reference["k_raw"], reference["b"], reference["W"][0]])
    np.testing.assert_allclose(flat, response, rtol=1e-10, atol=0)
    assert abs(system.loss(params, x, y) - np.real(np.trace(state.density_matrix() @ cost))) < 1e-10


@pytest.mark.parametrize("make", [weights_network, clamped_network, degenerate_network])
def test_thermal_ep_convergence_slopes(make):
    system, params, x, y = instance(make)
    errors = assert_ep_rates(system, params, x, y)["centered"]
    assert errors[-1] < 1e-4


def test_low_temperature_gradient_converges_to_ground_state_gradient():
    """Thermal corrections to the gradient fall like exp(-hbar w_min / T)."""
    _, params, x, y = instance(weights_network)
    kwargs = dict(n_inputs=2, output_nodes=[3, 4], masses=[1.0, 0.6, 1.7, 1.2, 0.9],
                  anchors=[0.8, 0.5, 1.0, 0.7, 0.6], train_anchors=True, hbar=0.8)
    ground = OscillatorNetwork(5, "complete", **kwargs).reference_grad(params, x, y)
    errors = {}
    for temperature in (0.3, 0.1, 0.03, 0.01):
        system = OscillatorNetwork(5, "complete", temperature=temperature, **kwargs)
        errors[temperature] = relative_error(system.reference_grad(params, x, y), ground)
    assert errors[0.3] > errors[0.1] > errors[0.03] > errors[0.01]
    assert errors[0.01] < 1e-12
    cold = OscillatorNetwork(5, "complete", temperature=0.01, **kwargs)
    assert relative_error(ep_gradient(cold, params, x, y, beta=1e-3).grad, ground) < 1e-5


def test_thermal_bad_input_raises_clear_errors():
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0"):
            OscillatorNetwork(3, temperature=bad)
        with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0"):
            gaussian_thermal_state([1.0], [[1.0]], [0.0], bad)
    with pytest.raises(ValueError, match=r"temperature must be a number"):
        OscillatorNetwork(3, temperature="warm")
    with pytest.raises(ValueError, match=r"temperature=0.5 needs the Gaussian thermal state.*solver='gaussian'"):
        OscillatorNetwork(3, quartic=0.1, temperature=0.5)
    with pytest.raises(ValueError, match=r"temperature=0.5 needs the Gaussian thermal state"):
        OscillatorNetwork(3, solver="fock", temperature=0.5)
