"""Classical Ising machine: equal to the TFIM network at Gamma = 0 and the same temperature
(qeqprop's dense Gibbs state), Boltzmann stationarity of the free energy, clamping by
conditioning and tilting against brute force, errors, and (slow) iris like the TFIM learner."""

import itertools
import json
import time

import numpy as np
import pytest

from classical.ising import IsingMachine, configurations
from qeqprop.cli import main
from qeqprop.datasets import load_dataset
from qeqprop.ep import ep_gradient, relative_error
from qeqprop.systems.tfim import TFIMNetwork
from qeqprop.train import fit


def instance(temperature=0.7):
    rng = np.random.default_rng(2)
    machine = IsingMachine(5, "complete", n_inputs=2, output_spins=[3, 4], temperature=temperature)
    return machine, machine.init_params(rng), rng.normal(size=2), rng.uniform(-1, 1, 2)


def brute_force_energy(machine, params, x, spins):
    """E(s) by explicit loops over edges and spins."""
    fields = params["b"] + x @ params["W"]
    pair = sum(params["J"][k] * spins[i] * spins[j] for k, (i, j) in enumerate(machine.edges))
    return -pair - sum(fields[j] * spins[j] for j in range(machine.n_spins))


def test_configurations_enumerate_every_spin_pattern_once():
    spins = configurations(4)
    assert spins.shape == (16, 4)
    assert {tuple(row) for row in spins} == set(itertools.product((1.0, -1.0), repeat=4))


def test_equals_tfim_at_zero_transverse_field():
    machine, params, x, y = instance()
    tfim = TFIMNetwork(5, "complete", n_inputs=2, output_qubits=[3, 4], gamma=0.0, temperature=0.7)
    classical, quantum = machine.equilibrate(params, x), tfim.equilibrate(params, x)
    np.testing.assert_allclose(machine.predict(classical), tfim.predict(quantum), atol=1e-12)
    assert relative_error(machine.energy_grad(params, x, classical), tfim.energy_grad(params, x, quantum)) < 1e-12
    assert relative_error(machine.reference_grad(params, x, y), tfim.reference_grad(params, x, y)) < 1e-10
    nudge = machine.nudge(classical, y)
    np.testing.assert_allclose(nudge, tfim.nudge(quantum, y), atol=1e-12)
    a, b = machine.equilibrate(params, x, nudge, 0.05), tfim.equilibrate(params, x, nudge, 0.05)
    np.testing.assert_allclose(machine.predict(a), tfim.predict(b), atol=1e-12)


def test_boltzmann_state_is_stationary_for_the_free_energy():
    """p minimizes <E> + T sum p log p on the simplex iff E(s) + T log p(s) is constant, and
    the minimum is F = -T log Z."""
    machine, params, x, _ = instance()
    state = machine.equilibrate(params, x)
    energies = np.array([brute_force_energy(machine, params, x, s) for s in machine.spins])
    potential = energies + machine.temperature * np.log(state.probabilities)
    assert np.ptp(potential) < 1e-10
    assert state.free_energy == pytest.approx(-machine.temperature * np.log(np.sum(np.exp(-energies / machine.temperature))), abs=1e-12)
    functional = state.probabilities @ energies + machine.temperature * state.probabilities @ np.log(state.probabilities)
    assert functional == pytest.approx(state.free_energy, abs=1e-12)


def test_clamping_conditions_on_hard_outputs_and_tilts_soft_ones():
    machine, params, x, _ = instance()
    clamped = machine.clamp(params, x, np.array([1.0, -1.0]))
    energies = np.array([brute_force_energy(machine, params, x, s) for s in machine.spins])
    keep = (machine.spins[:, 3] == 1) & (machine.spins[:, 4] == -1)
    conditional = np.where(keep, np.exp(-energies / machine.temperature), 0.0)
    np.testing.assert_allclose(clamped.probabilities, conditional / conditional.sum(), atol=1e-14)
    tilted = machine.clamp(params, x, np.array([0.3, -1.0]))
    np.testing.assert_allclose(machine.predict(tilted), [0.3, -1.0], atol=1e-12)
    assert np.all(tilted.probabilities[machine.spins[:, 4] == 1] == 0)


def test_zero_temperature_limit_approaches_the_ground_state():
    machine, params, x, _ = instance(temperature=1e-3)
    state = machine.equilibrate(params, x)
    energies = np.array([brute_force_energy(machine, params, x, s) for s in machine.spins])
    ground = machine.spins[np.argmin(energies)]
    np.testing.assert_allclose(state.mean, ground, atol=1e-6)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="limited to n <= 22"):
        IsingMachine(23)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        IsingMachine(3, temperature=0.0)
    with pytest.raises(ValueError, match="spin index 5 out of range"):
        IsingMachine(3, output_spins=[5])
    machine, params, x, _ = instance()
    with pytest.raises(ValueError, match=r"outputs must lie in \[-1, 1\]"):
        machine.clamp(params, x, np.array([1.2, 0.0]))
    with pytest.raises(ValueError, match=r"params\['J'\] must have shape \(10,\)"):
        machine.equilibrate({**params, "J": np.zeros(3)}, x)


@pytest.mark.slow
def test_iris_centered_ep_reaches_90_percent_like_the_tfim_learner():
    """The TFIM iris learner of tests/test_training.py (6 spins, complete graph) at T = 1."""
    data = load_dataset("iris", seed=0)
    machine = IsingMachine(6, "complete", n_inputs=4, output_spins=[3, 4, 5], temperature=1.0)
    start = time.perf_counter()
    result = fit(machine, data, epochs=20, learning_rate=0.03, beta=1e-2, estimator="centered", seed=0, progress=False)
    seconds = time.perf_counter() - start
    print(f"ising iris: test accuracy {result.final['test_accuracy']:.4f} in {seconds:.1f} s")
    assert result.final["test_accuracy"] >= 0.90


def layered_instance(temperature=0.7):
    rng = np.random.default_rng(4)
    machine = IsingMachine(6, "layered", n_inputs=3, output_spins=[3, 4, 5], temperature=temperature)
    params = {k: 3.0 * v for k, v in machine.init_params(rng).items()}
    return machine, params, rng.normal(size=(5, 3)), rng.uniform(-1, 1, (5, 3))


def test_layered_machine_equals_the_full_enumeration_of_its_graph():
    """Summing the hidden spins out in closed form gives the Boltzmann moments and free energy
    of the enumerated machine on the same bipartite graph (inputs on the hidden spins only)."""
    machine, params, X, _ = layered_instance()
    full = IsingMachine(6, machine.edges, n_inputs=3, output_spins=[3, 4, 5], temperature=0.7)
    W = np.zeros((3, 6))
    W[:, machine.hidden] = params["W"]
    for x in X:
        layered, enumerated = machine.equilibrate(params, x), full.equilibrate({**params, "W": W}, x)
        np.testing.assert_allclose(layered.mean, enumerated.mean, atol=1e-13)
        np.testing.assert_allclose(layered.correlations, enumerated.correlations, atol=1e-13)
        assert layered.free_energy == pytest.approx(enumerated.free_energy, abs=1e-12)
    with pytest.raises(ValueError, match="graph 'layered' sums the hidden spins out"):
        machine.clamp(params, X[0], np.array([1.0, -1.0, 0.0]))


@pytest.mark.parametrize("graph", ["complete", "layered"])
def test_batched_states_and_ep_equal_per_sample_ones(graph):
    machine, params, X, Y = layered_instance() if graph == "layered" else (*instance()[:2], *_batch(instance()[0]))
    view = machine.batch_view(len(X))
    free = view.equilibrate(params, X)
    nudge = view.nudge(free, Y)
    plus, minus = view.equilibrate(params, X, nudge=nudge, beta=(0.1, -0.1), init=free)
    for b in range(len(X)):
        one = machine.equilibrate(params, X[b])
        np.testing.assert_allclose(free.mean[b], one.mean, atol=1e-12)
        for states, beta in ((plus, 0.1), (minus, -0.1)):
            nudged = machine.equilibrate(params, X[b], nudge=machine.nudge(one, Y[b]), beta=beta)
            np.testing.assert_allclose(states.mean[b], nudged.mean, atol=1e-12)
            np.testing.assert_allclose(states.correlations[b], nudged.correlations, atol=1e-12)
    batched = ep_gradient(machine, params, X, Y, beta=1e-3)
    for b in range(len(X)):
        single = ep_gradient(machine, params, X[b], Y[b], beta=1e-3)
        for k, v in single.grad.items():
            np.testing.assert_allclose(batched.grad[k][b], v, atol=1e-10)
        assert relative_error(single.grad, machine.reference_grad(params, X[b], Y[b])) < 1e-5


def _batch(machine):
    rng = np.random.default_rng(8)
    return rng.normal(size=(4, machine.n_inputs)), rng.uniform(-1, 1, (4, machine.n_outputs))


def test_layered_nudged_phases_reuse_hidden_sums_only_for_their_own_params_and_inputs():
    machine, params, X, Y = layered_instance()
    free = machine.solve_batch(params, X)
    other = {**params, "J": params["J"] + 0.1}
    stale = machine.solve_batch(other, X, Y, 0.2, free.hidden_sums)
    fresh = machine.solve_batch(other, X, Y, 0.2)
    np.testing.assert_array_equal(stale.mean, fresh.mean)
    reused = machine.solve_batch(params, X, Y, 0.2, free.hidden_sums)
    assert reused.hidden_sums is free.hidden_sums
    np.testing.assert_allclose(reused.mean, machine.solve_batch(params, X, Y, 0.2).mean, atol=1e-14)


@pytest.mark.slow
def test_digits_preset_reaches_90_percent(capsys):
    """The ising-digits preset (issue 19: the Ising machine of Laydevant et al. >= 90 % on digits)."""
    assert main(["train", "--preset", "ising-digits", "--json"]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(f"ising-digits: test accuracy {final['test_accuracy']:.4f}, BP {final['bp_test_accuracy']:.4f}")
    assert final["test_accuracy"] >= 0.90
