"""Gradients from measured expectation values: plans, records, statistics, PennyLane counts."""

import numpy as np
import pennylane as qml
import pytest

from conftest import kron_pauli, random_general_system, random_strings
from qeqprop import TFIMNetwork, ep_gradient, fit, load_dataset, random_tfim_instance
from qeqprop.hamiltonians import PauliTable
from qeqprop.ep import flatten_grad
from qeqprop.measurement import (
    basis_probabilities,
    build_plan,
    estimate_terms,
    exact_term_moments,
    gradient_from_counts,
    measured_ep_gradient,
    measurement_plan,
    optimal_beta,
    parse_counts,
    rotate_to_basis,
    sample_records,
)


def random_state(rng, n):
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return psi / np.linalg.norm(psi)


def test_plan_groups_qubitwise_commuting_strings(rng):
    n = 5
    strings = PauliTable(n, random_strings(rng, n, 30)).strings
    plan = build_plan(strings, np.arange(30), n, shots=3000)
    served = np.concatenate(plan.members)
    assert sorted(served.tolist()) == list(range(30))  # every string exactly once
    for basis, members in zip(plan.bases, plan.members):
        for s in members:
            assert all(basis[q] == letter for q, letter in strings[s].ops)
    assert plan.shots.sum() == 3000
    assert len(plan.bases) < 30


@pytest.mark.parametrize("letters", ["XYZ", "YYX", "ZXY"])
def test_basis_rotation_reads_every_letter(rng, letters):
    """Parity of the rotated readout equals <P> for X, Y and Z letters on a complex state."""
    n = 3
    psi = random_state(rng, n)
    text = " ".join(f"{letter}{q}" for q, letter in enumerate(letters))
    p = basis_probabilities(psi, letters)
    parity = np.array([(-1) ** bin(c).count("1") for c in range(2**n)])
    assert p @ parity == pytest.approx(np.vdot(psi, kron_pauli(text, n) @ psi).real, abs=1e-12)


def test_term_estimates_unbiased_with_honest_standard_errors(rng):
    n = 4
    strings = PauliTable(n, random_strings(rng, n, 12)).strings
    psi = random_state(rng, n)
    plan = build_plan(strings, np.arange(12), n, shots=400 * 12)
    exact = exact_term_moments(psi, strings, plan)
    runs = [estimate_terms(strings, plan, sample_records(psi, plan, np.random.default_rng(seed))) for seed in range(2000)]
    means = np.array([r.means for r in runs])
    reported = np.array([r.stderr for r in runs]).mean(axis=0)
    empirical = means.std(axis=0, ddof=1)
    z = (means.mean(axis=0) - exact.means) / (empirical / np.sqrt(len(runs)))
    assert np.all(np.abs(z) < 4.0)
    np.testing.assert_allclose(reported, empirical, rtol=0.10)
    np.testing.assert_allclose(reported, np.sqrt(np.diag(exact.covariance)), rtol=0.02)
    # covariance between strings sharing samples is reported too
    i, j = 0, 1
    empirical_cov = np.cov(means[:, i], means[:, j])[0, 1]
    reported_cov = np.mean([r.covariance[i, j] for r in runs])
    assert abs(empirical_cov - reported_cov) < 0.15 * np.sqrt(empirical[i] ** 2 * empirical[j] ** 2) + 1e-12


@pytest.mark.parametrize("estimator", ["positive", "centered"])
def test_measured_gradient_mean_and_stderr(estimator):
    system, params, x, y = random_tfim_instance(5, seed=1)
    beta, shots, reps = 0.1, 20000, 300
    exact = flatten_grad(ep_gradient(system, params, x, y, beta, estimator).grad)
    runs = [measured_ep_gradient(system, params, x, y, beta, shots, estimator, rng=k) for k in range(reps)]
    grads = np.array([flatten_grad(r.grad) for r in runs])
    reported = np.array([flatten_grad(r.stderr) for r in runs]).mean(axis=0)
    empirical = grads.std(axis=0, ddof=1)
    assert np.all(np.abs(grads.mean(axis=0) - exact) < 4.5 * empirical / np.sqrt(reps))
    np.testing.assert_allclose(reported, empirical, rtol=0.15)


def pennylane_counts(psi, basis, shots, seed):
    """Counts from PennyLane default.qubit: prepare psi, rotate into the basis, sample."""
    n = len(basis)
    dev = qml.device("default.qubit", wires=n, seed=seed)

    @qml.set_shots(shots)
    @qml.qnode(dev)
    def circuit():
        qml.StatePrep(psi, wires=range(n))
        for q, letter in enumerate(basis):
            if letter == "Y":
                qml.adjoint(qml.S(q))
            if letter in "XY":
                qml.Hadamard(q)
        return qml.counts(wires=range(n))

    return {str(k): int(v) for k, v in circuit().items()}


def test_gradient_from_pennylane_counts_matches_simulation():
    rng = np.random.default_rng(5)
    system, params, x, y = random_general_system(rng, 4)  # complex: Y, XX, YY, ZXZ strings
    beta, shots, estimator = 0.1, 40000, "centered"
    free = system.equilibrate(params, x)
    plan = measurement_plan(system, x, shots)
    assert any("Y" in b for b in plan.bases) and any("X" in b for b in plan.bases)
    nudge = system.nudge(free, y)
    states = {"free": free}
    for phase, sign in (("plus", 1.0), ("minus", -1.0)):
        states[phase] = system.equilibrate(params, x, nudge=nudge, beta=sign * beta, init=free)
    counts = {
        phase: {b: pennylane_counts(state.vector, b, int(m), seed=11 * k + i) for i, (b, m) in enumerate(zip(plan.bases, plan.shots))}
        for k, (phase, state) in enumerate(states.items())
    }
    measured = gradient_from_counts(system, params, x, y, counts, plan, beta, estimator)
    exact = flatten_grad(ep_gradient(system, params, x, y, beta, estimator, free=free).grad)
    stderr = flatten_grad(measured.stderr)
    assert np.all(np.abs(flatten_grad(measured.grad) - exact) < 4.5 * stderr)
    simulated = measured_ep_gradient(system, params, x, y, beta, shots, estimator, rng=0)
    np.testing.assert_allclose(stderr, flatten_grad(simulated.stderr), rtol=0.1)
    # Qiskit order: the same records reversed give the same gradient
    reversed_counts = {ph: {b: {k[::-1]: v for k, v in c.items()} for b, c in per.items()} for ph, per in counts.items()}
    again = gradient_from_counts(system, params, x, y, reversed_counts, plan, beta, estimator, bit_order="qubit0_last")
    np.testing.assert_allclose(flatten_grad(again.grad), flatten_grad(measured.grad), atol=1e-12)


def test_optimal_beta_minimises_measured_error():
    system, params, x, y = random_tfim_instance(5, seed=1)
    reference = flatten_grad(system.reference_grad(params, x, y))
    choice = optimal_beta(system, params, x, y, shots=10000, estimator="centered")

    def rmse(beta):
        errors = [np.sum((flatten_grad(measured_ep_gradient(system, params, x, y, beta, 10000, rng=k).grad) - reference) ** 2) for k in range(60)]
        return np.sqrt(np.mean(errors))

    at_optimum = rmse(choice.beta)
    assert at_optimum < rmse(choice.beta / 4) and at_optimum < rmse(choice.beta * 4)
    assert at_optimum == pytest.approx(choice.predicted_rmse, rel=0.25)


def test_allocations_sum_to_budget_and_variance_allocation_helps():
    system, params, x, y = random_tfim_instance(6, seed=2)
    free = system.equilibrate(params, x)
    traces = {}
    for allocation in ("uniform", "weights", "variance"):
        plan = measurement_plan(system, x, 5000, allocation, state=free)
        assert plan.shots.sum() == 5000 and np.all(plan.shots >= 1)
        _, cov = exact_term_moments(free.vector, system.hamiltonian.table.strings, plan).full(len(system.hamiltonian.table))
        jac = system.hamiltonian.jacobian(x)
        traces[allocation] = np.trace(jac.T @ cov @ jac)
    assert traces["variance"] <= traces["uniform"] * (1 + 1e-9)


def test_gaussian_approximation_leaves_the_physical_range():
    system = TFIMNetwork(2, "chain", output_qubits=[1], gamma=0.05)
    params = {"J": np.array([1.0]), "b": np.array([2.0, 2.0])}
    free = system.equilibrate(params, np.zeros(0))
    values = {s: [] for s in ("multinomial", "gaussian")}
    for sampler in values:
        for k in range(200):
            g = measured_ep_gradient(system, params, np.zeros(0), np.array([1.0]), 0.1, 20, rng=k, sampler=sampler)
            values[sampler].append(g.output[0])
    assert free.expectations[system.hamiltonian.observable_index][0] > 0.99
    assert max(values["multinomial"]) <= 1.0
    assert max(values["gaussian"]) > 1.0  # the approximation is wrong at small M


@pytest.mark.slow
def test_training_with_shots_on_iris():
    data = load_dataset("iris", seed=0)
    system = TFIMNetwork(6, "complete", n_inputs=4, output_qubits=[3, 4, 5])
    result = fit(system, data, epochs=20, learning_rate=0.03, beta=0.25, shots=200, seed=0, progress=False)
    assert result.final["test_accuracy"] >= 0.90


def test_bad_records():
    system, params, x, y = random_tfim_instance(3, seed=0)
    plan = measurement_plan(system, x, 100)
    good = {b: {"000": 60, "111": 40} for b in plan.bases}
    with pytest.raises(ValueError, match="must have 3 characters"):
        parse_counts({"0000": 5}, 3)
    with pytest.raises(ValueError, match="is empty"):
        gradient_from_counts(system, params, x, y, {"free": {plan.bases[0]: {}}}, plan, 0.1)
    with pytest.raises(ValueError, match="negative count"):
        parse_counts({"010": -3, "000": 4}, 3)
    with pytest.raises(ValueError, match="no record for basis"):
        gradient_from_counts(system, params, x, y, {"free": {plan.bases[0]: good[plan.bases[0]]}, "plus": good, "minus": good}, plan, 0.1)
    with pytest.raises(ValueError, match=r"needs records for the phases \['minus'\]"):
        gradient_from_counts(system, params, x, y, {"free": good, "plus": good}, plan, 0.1)
    with pytest.raises(ValueError, match="phase 'nudged' must be one of"):
        gradient_from_counts(system, params, x, y, {"nudged": good}, plan, 0.1)
    with pytest.raises(ValueError, match="shots must be an integer >= the number of bases"):
        measurement_plan(system, x, 1)


def test_fit_takes_a_shots_readout_with_its_options(tmp_path):
    """fit(shots=Shots(...)) trains with that readout (here the batched Gaussian model, nudged from
    the exact outputs), records its options in the checkpoint, and a resume with other options is
    refused naming them."""
    from qeqprop.checkpoint import CheckpointMismatchError
    from qeqprop.readout import Shots

    data = load_dataset("xor", seed=0)
    system = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], solver="jax")
    readout = Shots(60, sampler="gaussian", nudge_from="exact")
    path = tmp_path / "run.npz"
    options = {"epochs": 1, "batch_size": 4, "learning_rate": 0.05, "beta": 0.2, "seed": 0, "progress": False,
               "checkpoint": path}
    gaussian = fit(system, data, shots=readout, **options)
    again = fit(system, data, shots=readout, **{**options, "checkpoint": tmp_path / "again.npz"})
    counted = fit(system, data, shots=60, **{**options, "checkpoint": tmp_path / "counted.npz"})
    for name in gaussian.params:  # reproducible from fit's seed, and not the multinomial run
        np.testing.assert_array_equal(gaussian.params[name], again.params[name])
    assert any(not np.allclose(gaussian.params[k], counted.params[k]) for k in gaussian.params)
    with pytest.raises(CheckpointMismatchError, match="shots"):
        fit(system, data, shots=Shots(60), resume=True, **{**options, "epochs": 2})


@pytest.mark.parametrize("n", [1, 3, 4, 5, 9])
def test_rotate_to_basis_equals_the_kronecker_product_of_the_rotations(rng, n):
    """The blocked rotation (ROTATION_BLOCK qubits per product) against the explicit 2^n x 2^n
    Kronecker product, qubit 0 the most significant, batched rows, every letter mix; and the
    rotated probabilities read <P> as the parity of the rotated bits."""
    from functools import reduce

    from qeqprop.readout.sampling import ROTATIONS

    psi = rng.normal(size=(3, 2**n)) + 1j * rng.normal(size=(3, 2**n))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    for basis in ["X" * n, "Y" * n, "Z" * n, "".join(rng.choice(list("XYZ"), size=n))]:
        unitary = reduce(np.kron, [ROTATIONS[letter] for letter in basis])
        np.testing.assert_allclose(rotate_to_basis(psi, basis), psi @ unitary.T, atol=1e-12)
        string = " ".join(f"{letter}{q}" for q, letter in enumerate(basis))
        parity = np.array([(-1) ** c.bit_count() for c in range(2**n)])
        expected = [np.vdot(v, kron_pauli(string, n) @ v).real for v in psi]
        np.testing.assert_allclose(basis_probabilities(psi, basis) @ parity, expected, atol=1e-12)


@pytest.mark.parametrize("n, batch", [(1, 5), (3, 7), (10, 80)])
def test_basis_outcomes_equal_the_numpy_draws_and_follow_the_rotated_distribution(rng, n, batch, monkeypatch):
    """``basis_outcomes`` (the native C sampler where it is built; 10 qubits x 80 states runs it on
    every core) gives exactly the outcomes of the numpy path (``draw_outcomes`` of
    ``basis_probabilities``, same Generator draws) for every letter mix, and without the native
    kernels it is that numpy path; 200,000 shots of one 4-qubit state follow |U psi|^2 (Pearson
    chi-square, 15 degrees of freedom, below its 1e-4 quantile 44.3); a state of the wrong length is
    refused by name."""
    from scipy.stats import chi2

    import qeqprop.native
    from qeqprop.readout.sampling import basis_outcomes, draw_outcomes

    psi = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    bases = ["Z" * n, "X" * n, "Y" * n, "".join(rng.choice(list("XYZ"), size=n))]
    native = [basis_outcomes(psi, basis, 25, np.random.default_rng(4)) for basis in bases]
    for basis, outcomes in zip(bases, native):
        expected = draw_outcomes(basis_probabilities(psi, basis), 25, np.random.default_rng(4))
        assert outcomes.shape == (batch, 25) and outcomes.dtype == np.int64
        np.testing.assert_array_equal(outcomes, expected)
    monkeypatch.setattr(qeqprop.native, "native_library", lambda: None)
    for basis, outcomes in zip(bases, native):
        np.testing.assert_array_equal(basis_outcomes(psi, basis, 25, np.random.default_rng(4)), outcomes)
    monkeypatch.undo()

    state = random_state(rng, 4)[None]
    counts = np.bincount(basis_outcomes(state, "XYZY", 200_000, np.random.default_rng(5))[0], minlength=16)
    expected = 200_000 * basis_probabilities(state, "XYZY")[0]
    assert np.sum((counts - expected) ** 2 / expected) < chi2.ppf(1 - 1e-4, 15)
    with pytest.raises(ValueError, match="psi must be"):
        basis_outcomes(state, "XYZ", 10, np.random.default_rng(0))
