"""Variational (PennyLane circuit) ground states: circuits, VQE accuracy, EP bias, shots, training."""

import time

import numpy as np
import pennylane as qml
import pytest
from scipy.linalg import expm

from conftest import kron_pauli
from qeqprop import TFIMNetwork, ep_gradient, fit, load_dataset, random_tfim_instance, relative_error
from qeqprop.ep import finite_difference_gradient
from qeqprop.datasets import Dataset
from qeqprop.ep import flatten_grad
from qeqprop.hamiltonians.parametrized import ParametrizedHamiltonian, Term
from qeqprop.measurement import gradient_from_counts, measured_ep_gradient, measurement_plan
from qeqprop.solvers.variational import VariationalSolver, VariationalState, circuit_counts
from qeqprop.systems.variational import VariationalSpinSystem, VariationalTFIM, variational_tfim


def cosine(a, b) -> float:
    a, b = flatten_grad(a), flatten_grad(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def dense_sum(strings, weights, n) -> np.ndarray:
    return sum(w * kron_pauli(str(s), n) for s, w in zip(strings, weights))


@pytest.fixture(scope="module")
def tfim4():
    return random_tfim_instance(4, seed=0)


@pytest.fixture(scope="module")
def hva4(tfim4):
    """Per-term HVA, depth 3: represents the 4-qubit ground state to rounding."""
    return VariationalSpinSystem(tfim4[0].hamiltonian, "hva", depth=3, per_term=True)


# -- circuits against Kronecker-product references ---------------------------------------


@pytest.mark.parametrize("per_term", [False, True])
def test_hva_state_is_the_product_of_hamiltonian_exponentials(per_term, rng):
    system = TFIMNetwork(3, "complete", n_inputs=1, gamma=[0.7, 1.1, 0.9])
    table = system.hamiltonian.table
    solver = VariationalSolver(table, "hva", depth=2, per_term=per_term)
    phi = rng.normal(size=solver.shape)
    z_strings = [s for s in table.strings if s.is_diagonal and s.ops]
    x_strings = [s for s in table.strings if not s.is_diagonal]
    assert solver.shape == (2, 9 if per_term else 3)  # 3 ZZ + 3 Z + 3 X strings; groups ZZ, Z, X
    psi = np.full(8, 1 / np.sqrt(8), dtype=complex)  # |+>^3
    for layer in range(2):
        if per_term:
            z_weights, x_weights = phi[layer, :6], phi[layer, 6:]
        else:  # exp(-i a_l sum ZZ) exp(-i a'_l sum Z), then exp(-i b_l sum X)
            z_weights = [phi[layer, 0] if len(s.ops) == 2 else phi[layer, 1] for s in z_strings]
            x_weights = [phi[layer, 2]] * 3
        psi = expm(-1j * dense_sum(z_strings, z_weights, 3)) @ psi
        psi = expm(-1j * dense_sum(x_strings, x_weights, 3)) @ psi
    np.testing.assert_allclose(solver.statevector(phi), psi, atol=1e-12)
    # The same gate list on PennyLane's device pipeline (the path circuit_counts uses).
    tape = qml.tape.QuantumScript(solver.ops(phi), [qml.state()])
    np.testing.assert_allclose(qml.execute([tape], qml.device("default.qubit", wires=3))[0], psi, atol=1e-12)


@pytest.mark.parametrize("entangler", ["cnot", "cz"])
def test_hardware_efficient_state_matches_gate_products(entangler, rng):
    system = TFIMNetwork(3, [(0, 1), (1, 2)], n_inputs=0)
    solver = VariationalSolver(system.hamiltonian.table, "hardware_efficient", depth=2, entangler=entangler)
    assert solver.ansatz.edges == [(0, 1), (1, 2)] and solver.shape == (3, 6)
    phi = rng.normal(size=solver.shape)
    eye = np.eye(8)
    gate = {
        "cnot": lambda c, t: 0.5 * (eye + kron_pauli(f"Z{c}", 3) + kron_pauli(f"X{t}", 3) - kron_pauli(f"Z{c} X{t}", 3)),
        "cz": lambda c, t: 0.5 * (eye + kron_pauli(f"Z{c}", 3) + kron_pauli(f"Z{t}", 3) - kron_pauli(f"Z{c} Z{t}", 3)),
    }[entangler]

    def rotations(angles, psi):
        for q in range(3):
            psi = expm(-0.5j * angles[3 + q] * kron_pauli(f"Z{q}", 3)) @ expm(-0.5j * angles[q] * kron_pauli(f"Y{q}", 3)) @ psi
        return psi

    psi = eye[0].astype(complex)
    for layer in range(2):
        psi = rotations(phi[layer], psi)
        for c, t in [(0, 1), (1, 2)]:
            psi = gate(c, t) @ psi
    psi = rotations(phi[2], psi)
    np.testing.assert_allclose(solver.statevector(phi), psi, atol=1e-12)


# -- VQE accuracy and EP bias --------------------------------------------------------------


def check_vqe_and_ep(system, exact, params, x, y, beta=1e-2):
    """Energy vs dense eigh, centered EP vs the exact reference, and warm-start step counts."""
    start = time.perf_counter()
    result = ep_gradient(system, params, x, y, beta=beta, estimator="centered")
    seconds = time.perf_counter() - start
    free = result.free
    assert isinstance(free, VariationalState) and free.converged
    e0 = np.linalg.eigvalsh(exact.hamiltonian.operator(params, x).to_dense())[0]
    assert free.energy >= e0 - 1e-10  # variational principle
    relative = (free.energy - e0) / abs(e0)
    assert relative <= 1e-4
    assert free.relative_energy_error == pytest.approx(relative, abs=1e-12)
    assert free.fidelity >= 1 - 1e-3
    reference = exact.reference_grad(params, x, y)
    for key, value in system.reference_grad(params, x, y, free=free).items():  # inherited, on the exact state
        np.testing.assert_allclose(value, reference[key], atol=1e-10)
    cos = cosine(result.grad, reference)
    assert cos >= 0.99
    nudged = [s.steps for s in result.nudged.values()]
    assert all(3 * steps <= free.steps for steps in nudged), (free.steps, nudged)
    print(f"n={system.n_qubits} {free.solver} depth={system.variational.ansatz.depth}: rel. energy error {relative:.2e}, "
          f"1-F {1 - free.fidelity:.1e}, cos {cos:.6f}, rel. grad error {relative_error(result.grad, reference):.2e}, "
          f"free steps {free.steps}, nudged steps {nudged}, EP {seconds:.2f} s")


def test_vqe_4_qubits_reaches_ground_energy_and_ep_gradient(tfim4, hva4):
    exact, params, x, y = tfim4
    check_vqe_and_ep(hva4, exact, params, x, y)


def test_hardware_efficient_4_qubits_reaches_ground_energy_and_ep_gradient(tfim4):
    exact, params, x, y = tfim4
    system = VariationalSpinSystem(exact.hamiltonian, "hardware_efficient", depth=3)
    check_vqe_and_ep(system, exact, params, x, y)


def test_vqe_6_qubits_reaches_ground_energy_and_ep_gradient():
    exact, params, x, y = random_tfim_instance(6, seed=0)
    system = VariationalSpinSystem(exact.hamiltonian, "hva", depth=2, per_term=True)
    check_vqe_and_ep(system, exact, params, x, y)


def test_shallow_ansatz_ep_is_the_gradient_of_the_variational_loss(tfim4):
    """Depth-1 shared-angle HVA misses the ground state: its EP gradient is biased against the
    exact reference but equals finite differences of its own (variational) loss."""
    exact, params, x, y = tfim4
    system = VariationalSpinSystem(exact.hamiltonian, "hva", depth=1)
    ep = ep_gradient(system, params, x, y, beta=1e-3).grad
    assert relative_error(ep, exact.reference_grad(params, x, y)) > 0.3
    fd = finite_difference_gradient(system, params, x, y, step=1e-4)
    assert relative_error(ep, fd) < 1e-6


def test_optax_lbfgs_finds_the_newton_state(tfim4, hva4):
    exact, params, x, _ = tfim4
    operator = exact.hamiltonian.operator(params, x)
    newton = hva4.variational.minimize(operator)
    lbfgs = VariationalSolver(operator.table, "hva", 3, per_term=True, optimizer="lbfgs", maxiter=3000, gtol=1e-6)
    state = lbfgs.minimize(operator)
    assert state.converged and state.stop_reason == "gradient"
    assert state.energy == pytest.approx(newton.energy, abs=1e-8)
    assert state.fidelity == pytest.approx(1.0, abs=1e-7)


# -- measurements ----------------------------------------------------------------------------


def test_pennylane_shots_give_the_variational_ep_gradient_within_errors(tfim4, hva4):
    exact, params, x, y = tfim4
    beta, shots = 0.1, 20000
    result = ep_gradient(hva4, params, x, y, beta=beta)
    states = {"free": result.free, "plus": result.nudged[beta], "minus": result.nudged[-beta]}
    plan = measurement_plan(hva4, x, shots)
    counts = {phase: circuit_counts(hva4.variational, state, plan.bases, plan.shots, seed=k)
              for k, (phase, state) in enumerate(states.items())}
    measured = gradient_from_counts(hva4, params, x, y, counts, plan, beta)
    z = (flatten_grad(measured.grad) - flatten_grad(result.grad)) / flatten_grad(measured.stderr)
    assert np.all(np.abs(z) < 5)
    np.testing.assert_allclose(measured.output, hva4.predict(result.free), atol=5 / np.sqrt(plan.shots.min()))
    # Shots sampled from the circuit's state vector (measurement.sample_records), nudge measured too.
    sampled = measured_ep_gradient(hva4, params, x, y, beta, shots, rng=7)
    z = (flatten_grad(sampled.grad) - flatten_grad(result.grad)) / flatten_grad(sampled.stderr)
    assert np.all(np.abs(z) < 5)


# -- training ----------------------------------------------------------------------------------


def test_fit_with_variational_states_follows_the_exact_path():
    """An ansatz that represents the 3-qubit ground states gives the exact path's training."""
    full = load_dataset("xor", seed=0)
    data = Dataset("xor", full.x_train[:24], full.y_train[:24], full.x_test[:12], full.y_test[:12], 2)
    options = dict(epochs=1, batch_size=8, learning_rate=0.05, seed=0, progress=False)
    exact = fit(TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2]), data, **options)
    system = variational_tfim(3, "complete", n_inputs=2, output_qubits=[2], ansatz="hva", depth=2, per_term=True)
    assert isinstance(system, VariationalTFIM) and system.edges == [(0, 1), (0, 2), (1, 2)]
    variational = fit(system, data, **options)
    for key in exact.params:
        np.testing.assert_allclose(variational.params[key], exact.params[key], atol=1e-5)
    assert variational.final["test_loss"] == pytest.approx(exact.final["test_loss"], abs=1e-5)


def test_batches_go_through_the_circuit_whatever_the_reference_solver(tfim4):
    """solver="jax" only picks the reference gradient's exact solver: a batch EP call still
    optimises one circuit per sample and phase, and equals the per-sample calls."""
    system, params, x, y = tfim4
    hva = VariationalSpinSystem(system.hamiltonian, "hva", depth=3, per_term=True, solver="jax")
    assert not hva.batch_view(3).joint_phases
    xs, ys = np.stack([x, 0.5 * x]), np.stack([y, -y])
    batch = ep_gradient(hva, params, xs, ys, 0.05)
    assert all(isinstance(s, VariationalState) for s in batch.free.members)
    for b in range(2):
        single = ep_gradient(hva, params, xs[b], ys[b], 0.05)
        for key in single.grad:
            np.testing.assert_allclose(batch.grad[key][b], single.grad[key], rtol=0, atol=1e-10)


@pytest.mark.slow
def test_xor_accuracy_matches_the_exact_solver_path():
    data = load_dataset("xor", seed=0)
    options = dict(epochs=8, batch_size=16, learning_rate=0.05, seed=0, progress=False)
    start = time.perf_counter()
    exact = fit(TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2]), data, **options)
    exact_seconds = time.perf_counter() - start
    system = variational_tfim(3, "complete", n_inputs=2, output_qubits=[2], ansatz="hva", depth=2, per_term=True)
    start = time.perf_counter()
    variational = fit(system, data, **options)
    seconds = time.perf_counter() - start
    print(f"xor: exact {exact.final['test_accuracy']:.3f} in {exact_seconds:.1f} s, variational "
          f"{variational.final['test_accuracy']:.3f} in {seconds:.1f} s")
    assert exact.final["test_accuracy"] >= 0.9
    assert abs(variational.final["test_accuracy"] - exact.final["test_accuracy"]) <= 0.05


# -- errors ---------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors(tfim4):
    table = tfim4[0].hamiltonian.table
    cases = [
        (dict(ansatz="qaoa"), "ansatz must be one of"),
        (dict(depth=0), "depth must be an integer >= 1"),
        (dict(depth=2.5), "depth must be an integer >= 1"),
        (dict(depth=True), "depth must be an integer >= 1"),
        (dict(ansatz="hardware_efficient", per_term=True), "per_term applies to ansatz='hva' only"),
        (dict(entangler="cz"), "entangler applies to ansatz='hardware_efficient' only"),
        (dict(ansatz="hardware_efficient", entangler="swap"), "entangler must be one of"),
        (dict(optimizer="sgd"), "optimizer must be one of"),
        (dict(maxiter=0), "maxiter must be an integer >= 1"),
        (dict(gtol=-1.0), "gtol must be a finite number >= 0"),
        (dict(optimizer="adam", learning_rate=0.0), "learning_rate must be a finite number > 0"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            VariationalSolver(table, **options)
    xy = ParametrizedHamiltonian(2, [Term("X0 X1"), Term("Y0 Y1"), Term("Z0")], {}, observables=["Z1"])
    with pytest.raises(ValueError, match="Z-type or X-type"):
        VariationalSolver(xy.table, "hva")
    ising = ParametrizedHamiltonian(2, [Term("Z0 Z1"), Term("Z0")], {}, observables=["Z1"])
    with pytest.raises(ValueError, match="needs X-type terms"):
        VariationalSolver(ising.table, "hva")
    solver = VariationalSolver(table, "hva", 2)
    with pytest.raises(ValueError, match="another Pauli table"):
        solver.minimize(xy.operator({}, None))
    with pytest.raises(ValueError, match=r"circuit params must have shape \(2, 3\)"):
        solver.minimize(tfim4[0].hamiltonian.operator(tfim4[1], tfim4[2]), init=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="must have 4 letters"):
        circuit_counts(solver, VariationalState(np.zeros(16), 0.0, None, 0, 0.0, "x", circuit_params=np.zeros((2, 3))), ["ZZ"], 10)
