"""EP on quantum devices (qeqprop.device): circuits, clients and bit order, the loop's gradient
against analytic expectations of the same circuits, standard errors, ZNE, budget, fit(device=)."""

from __future__ import annotations

import warnings

import numpy as np
import pennylane as qml
import pytest

import qeqprop as qp
from qeqprop.datasets import Dataset
from qeqprop.device import (
    BitOrderError,
    CountsClient,
    DeviceLoop,
    PennyLaneClient,
    QiskitClient,
    ZeroNoiseExtrapolation,
    basis_circuit,
    readout_rotations,
)
from qeqprop.ep import flatten_grad
from qeqprop.readout.sampling import basis_probabilities

X, Y = np.array([0.5, -0.5]), np.array([1.0])


@pytest.fixture(scope="module")
def learner():
    """4-qubit TFIM learner, per-term HVA of depth 3 (fidelity 1 - 1e-14 here), trainable transverse
    fields (two bases: Z and X)."""
    net = qp.variational_tfim(4, n_inputs=2, ansatz="hva", depth=3, per_term=True, train_gamma=True, compare_exact=False)
    return net, net.init_params(0)


@pytest.fixture(scope="module")
def analytic(learner):
    net, params = learner
    return DeviceLoop(qml.device("default.qubit", wires=4)).gradient(net, params, X, Y, beta=0.2)


def noisy(p: float):
    """default.mixed with depolarizing noise of strength p after every gate."""
    model = qml.NoiseModel({qml.noise.wires_in(range(4)): qml.noise.partial_wires(qml.DepolarizingChannel, p)})
    return qml.add_noise(qml.device("default.mixed", wires=4), model)


# -- circuits -------------------------------------------------------------------------------------


def test_readout_rotations_turn_each_letter_into_z():
    """U P U^dagger = Z per letter: the rotated |+>, |+i>, |0> read 0 with certainty."""
    prep = [qml.Hadamard(0), qml.Hadamard(1), qml.S(1)]  # |+> |+i> |0>
    probs = qml.execute([basis_circuit(prep, "XYZ", None, "probs")], qml.device("default.qubit"))[0]
    assert probs[0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="basis"):
        readout_rotations("XQ")
    with pytest.raises(ValueError, match="shots"):
        basis_circuit(prep, "XYZ", None, "counts")


def test_clients_read_wire_zero_first():
    """A circuit preparing |0 1 1> (wire 0 = 0) reads '011' from default.qubit, lightning.qubit and
    from Aer through the adapter (which reverses Qiskit's qubit-0-last bitstrings)."""
    from qiskit_aer import AerSimulator

    prep = [qml.PauliX(1), qml.PauliX(2)]
    circuit = basis_circuit(prep, "ZZZ", 50, "counts")
    assert PennyLaneClient(qml.device("default.qubit", seed=0), shots=50).run([circuit]) == [{"011": 50}]
    assert PennyLaneClient(qml.device("lightning.qubit", wires=3), shots=50).run([circuit]) == [{"011": 50}]
    assert QiskitClient(AerSimulator(), shots=50).run([circuit], rng=0) == [{"011": 50}]


# -- the loop's gradient --------------------------------------------------------------------------


def test_analytic_loop_is_the_ep_gradient_of_the_same_circuits(learner, analytic):
    """Analytic expectations of the device circuits = the learner's own variational EP gradient
    (exact expectations of the same states): same nudge, same phases, to the VQE tolerance."""
    net, params = learner
    direct = qp.ep_gradient(net, params, X, Y, beta=0.2, free=analytic.free)
    assert qp.relative_error(analytic.grad, direct.grad) < 1e-6
    assert analytic.budget.shots == 0 and analytic.budget.circuits == 3 * 2
    assert all(np.all(v == 0) for v in analytic.stderr.values())


def test_shot_gradient_agrees_with_analytic_within_its_standard_errors(learner, analytic):
    """Six seeds: each component within 4.5 reported standard errors of the analytic gradient
    (the 200-seed statistics are test_device_statistics.py)."""
    net, params = learner
    loop = DeviceLoop(qml.device("default.qubit", wires=4, seed=3), shots=2000)
    z = []
    for seed in range(6):
        r = loop.gradient(net, params, X, Y, beta=0.2, rng=seed)
        z.append((flatten_grad(r.grad) - flatten_grad(analytic.grad)) / flatten_grad(r.stderr))
        assert r.budget.shots == 6 * 2000 and r.budget.circuits == 6 and r.budget.gradients == 1
    z = np.array(z)
    assert np.all(np.abs(z) < 4.5)
    assert 0.5 < np.std(z) < 1.5  # the reported errors are the right size (132 z values)
    assert loop.total.gradients == 6 and loop.total.shots == 6 * 6 * 2000


def test_qiskit_order_counts_give_the_pennylane_gradient(learner):
    """The same states measured once: PennyLane-order counts, the same counts written Qiskit's way
    through CountsClient(bit_order='qubit0_last'), give the same gradient bit for bit; read as
    qubit0_first they are refused (BitOrderError), not silently wrong."""
    net, params = learner

    def recorded(seed):
        def run(circuits, shots):
            d = qml.device("default.qubit", wires=4, seed=seed)
            return [{k: int(v) for k, v in r.items()} for r in qml.execute([c.copy(shots=shots) for c in circuits], d)]
        return run

    def reversed_run(seed):
        inner = recorded(seed)
        return lambda circuits, shots: [{k[::-1]: v for k, v in r.items()} for r in inner(circuits, shots)]

    pl = DeviceLoop(CountsClient(recorded(7), 4000)).gradient(net, params, X, Y, beta=0.2)
    qk = DeviceLoop(CountsClient(reversed_run(7), 4000, bit_order="qubit0_last")).gradient(net, params, X, Y, beta=0.2)
    for key in pl.grad:
        np.testing.assert_array_equal(pl.grad[key], qk.grad[key])
    with pytest.raises(BitOrderError, match="REVERSED"):
        DeviceLoop(CountsClient(reversed_run(7), 4000)).gradient(net, params, X, Y, beta=0.2)


@pytest.mark.slow
def test_aer_gradient_agrees_with_analytic(learner, analytic):
    from qiskit_aer import AerSimulator

    net, params = learner
    r = DeviceLoop(AerSimulator(), shots=4000).gradient(net, params, X, Y, beta=0.2, rng=1)
    z = (flatten_grad(r.grad) - flatten_grad(analytic.grad)) / flatten_grad(r.stderr)
    assert np.all(np.abs(z) < 4.5)


# -- noise and mitigation -------------------------------------------------------------------------


@pytest.mark.slow
def test_zne_reduces_the_depolarizing_bias_of_the_expectations(learner, analytic):
    """Analytic default.mixed at p = 0.003 per gate: Richardson ZNE over (1, 3, 5) brings the gradient
    five times closer to the noiseless one than the raw noisy gradient (same circuits, exact
    probabilities; at p = 0.01 the folded circuits leave the regime where it works this well:
    benchmarks/device_noise.py)."""
    net, params = learner
    raw = DeviceLoop(noisy(0.003)).gradient(net, params, X, Y, beta=0.2)
    zne = DeviceLoop(noisy(0.003), mitigation=ZeroNoiseExtrapolation((1, 3, 5))).gradient(net, params, X, Y, beta=0.2)
    raw_error, zne_error = qp.relative_error(raw.grad, analytic.grad), qp.relative_error(zne.grad, analytic.grad)
    print(f"p = 0.003: raw {raw_error:.4f}, ZNE {zne_error:.4f}")
    assert raw_error > 0.03 and zne_error < raw_error / 5
    assert zne.budget.circuits == 3 * raw.budget.circuits
    np.testing.assert_allclose(ZeroNoiseExtrapolation((1, 3, 5)).weights, [1.875, -1.25, 0.375])
    with pytest.raises(ValueError, match="odd"):
        ZeroNoiseExtrapolation((1, 2))


def test_bit_order_check_is_silent_on_correct_counts_and_blind_on_mirror_symmetric_states():
    from qeqprop.device import check_bit_order

    rng = np.random.default_rng(0)
    psi = np.zeros(8, complex)
    psi[0b011] = 1.0  # |011>: asymmetric
    freq = rng.multinomial(1000, basis_probabilities(psi, "ZZZ")) / 1000
    check_bit_order([freq], [psi], ["ZZZ"], [1000])
    with pytest.raises(BitOrderError):
        check_bit_order([freq.reshape(2, 2, 2).transpose(2, 1, 0).ravel()], [psi], ["ZZZ"], [1000])
    sym = np.zeros(8, complex)
    sym[0b101] = 1.0  # mirror symmetric: the reversal cannot be seen
    freq = rng.multinomial(1000, basis_probabilities(sym, "ZZZ")) / 1000
    check_bit_order([freq.reshape(2, 2, 2).transpose(2, 1, 0).ravel()], [sym], ["ZZZ"], [1000])


# -- errors ---------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="variational"):
        DeviceLoop(qml.device("default.qubit", wires=3)).gradient(qp.TFIMNetwork(3, n_inputs=1), None, [0.1], [1.0])
    with pytest.raises(ValueError, match="device must be"):
        DeviceLoop(object())
    with pytest.raises(ValueError, match="mitigation"):
        DeviceLoop(qml.device("default.qubit", wires=4), mitigation="zne")
    with pytest.raises(ValueError, match="bit_order"):
        CountsClient(lambda c, s: [], 10, bit_order="msb")


# -- training -------------------------------------------------------------------------------------


def test_fit_through_a_device_records_the_budget(learner):
    """fit(device=...) descends the device gradient and its history sums shots, circuits and
    variational steps per record."""
    net, _ = learner
    full = qp.load_dataset("xor", seed=0)
    data = Dataset("xor", full.x_train[:4], full.y_train[:4], full.x_test[:2], full.y_test[:2], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dev = qml.device("default.qubit", wires=4, shots=500, seed=0)
    result = qp.fit(net, data, device=dev, epochs=1, batch_size=2, beta=0.2, progress=False)
    record = result.final
    assert record["gradients"] == 4 and record["circuits"] == 4 * 3 * 2 and record["shots"] == 4 * 3 * 2 * 500
    assert record["variational_steps"] > 0 and 0.0 <= record["test_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="device needs"):
        qp.fit(net, data, device=dev, shots=100, epochs=1, progress=False)


# -- docstring examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["circuits", "budget", "mitigation",
                                  pytest.param("loop", marks=pytest.mark.slow), pytest.param("beta", marks=pytest.mark.slow)])
def test_docstring_examples(name):
    """The examples run as printed (loop and beta compile a circuit each: slow)."""
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"qeqprop.device.{name}"), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
