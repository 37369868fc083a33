"""A Hamiltonian in, a learner out (qeqprop.hamiltonians.learner), Pauli-sum and projector
outputs, and readable repr/str of systems, Hamiltonians and Pauli operators (issue 17)."""

import doctest
import warnings

import numpy as np
import pennylane as qml
import pytest

import qeqprop as qp
from qeqprop.errors import DegenerateGroundStateWarning
from qeqprop.hamiltonians import (
    ParametrizedHamiltonian,
    PauliTable,
    builder,
    learner,
    learner_hamiltonian,
    observables,
    pauli_sum,
    projector,
    to_pennylane,
    to_sparse,
)


def tfim_pennylane():
    """A 3-qubit TFIM with a Y Y term, as a PennyLane Hamiltonian."""
    return qml.Hamiltonian([-1.0, -1.0, -0.8, -0.8, -0.8, 0.3, 0.2],
                           [qml.Z(0) @ qml.Z(1), qml.Z(1) @ qml.Z(2), qml.X(0), qml.X(1), qml.X(2), qml.Z(0),
                            qml.Y(0) @ qml.Y(2)])


@pytest.fixture(scope="module")
def built():
    """Trainable couplings (by word), fields (by predicate), trainable input weights on Z0, Z1 and
    two outputs: a projector and a weighted Pauli sum."""
    net = learner(tfim_pennylane(), trainable={"J": ["Z0 Z1", "Z1 Z2"], "h": lambda word, c: word.startswith("X")},
                  inputs={0: [5], 1: ["Z1"]}, input_weights="W",
                  outputs=[projector("01", wires=(1, 2)), {"Z2": 0.5, "X1": 0.5}])
    params = net.init_params(1)
    return net, params, np.array([0.4, -0.7]), np.array([0.3, 0.1])


def test_structure(built):
    net, params, _, _ = built
    assert {k: v.shape for k, v in params.items()} == {"J": (2,), "h": (3,), "W": (2,)}
    assert net.n_inputs == 2 and net.n_outputs == 2 and net.n_qubits == 3
    # init around the imported coefficients (init_std = 0.1): W starts near Z0's 0.3 and 1.0 (Z1 was not in H)
    means = {"J": [-1.0, -1.0], "h": [-0.8, -0.8, -0.8], "W": [0.3, 1.0]}
    for name, mean in means.items():
        assert np.abs(params[name] - mean).max() < 0.4
    assert str(net.hamiltonian) == ("J[0] * (Z0 Z1) + J[1] * (Z1 Z2) + h[0] * (X0) + h[1] * (X1) + h[2] * (X2) + "
                                    "0.2 * Y0 Y2 + W[0] * x[0] * (Z0) + W[1] * x[1] * (Z1)")


def test_ep_gradient_matches_reference_and_finite_differences(built):
    net, params, x, y = built
    exact = qp.reference_gradient(net, params, x, y)
    fd = qp.ep.finite_difference_gradient(net, params, x, y, step=1e-5)
    assert qp.relative_error(exact, fd) < 1e-7
    errors = [qp.relative_error(qp.ep_gradient(net, params, x, y, beta=b).grad, exact) for b in (2e-3, 1e-3)]
    assert errors[1] < 1e-4
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.02)  # centered: bias O(beta^2)
    batch = qp.ep_gradient(net, params, np.stack([x, -x]), np.stack([y, y]), beta=1e-3)
    assert qp.relative_error({k: v[0] for k, v in batch.grad.items()}, exact) < 1e-4


def test_projector_outputs_match_dense(built):
    """<psi|P|psi> for P = |01><01| on qubits (1, 2) from the basis bits of the dense ground state."""
    net, params, x, _ = built
    matrix = net.hamiltonian.operator(params, x).to_dense()
    psi = np.linalg.eigh(matrix)[1][:, 0]
    index = np.arange(8)
    bit = lambda q: (index >> (2 - q)) & 1
    probability = np.sum(np.abs(psi[(bit(1) == 0) & (bit(2) == 1)]) ** 2)
    z2, x1 = [np.vdot(psi, to_sparse(PauliTable(3, [w]).operator(np.ones(1))) @ psi).real for w in ("Z2", "X1")]
    outputs = net.predict(net.equilibrate(params, x))
    np.testing.assert_allclose(outputs, [probability, 0.5 * z2 + 0.5 * x1], atol=1e-12)


@pytest.mark.parametrize("bits, wires", [("0", (2,)), ("10", (0, 2)), ("011", (2, 0, 1))])
def test_projector_is_the_basis_projector(bits, wires):
    table = PauliTable(3, list(projector(bits, wires)))
    matrix = table.operator(np.array(list(projector(bits, wires).values()))).to_dense()
    index = np.arange(8)
    keep = np.all([((index >> (2 - w)) & 1) == int(b) for b, w in zip(bits, wires)], axis=0)
    np.testing.assert_allclose(matrix, np.diag(keep.astype(float)), atol=1e-15)


def test_pennylane_round_trip():
    """With every parameter at its imported coefficient the learner's H is the PennyLane one, and
    it exports back to an equal PennyLane Hamiltonian."""
    H = tfim_pennylane()
    ham = learner_hamiltonian(H, trainable={"J": ["Z0 Z1", "Z1 Z2"], "h": [2, 3, 4]}, outputs=["Z2"])
    means = {name: np.asarray(spec.mean, dtype=float) for name, spec in ham.param_specs.items()}
    operator = ham.operator(means, None)
    expected = H.sparse_matrix(wire_order=range(3)).toarray()
    np.testing.assert_allclose(operator.to_dense(), expected, atol=1e-14)
    back = to_pennylane(operator)
    np.testing.assert_allclose(back.sparse_matrix(wire_order=range(3)).toarray(), expected, atol=1e-14)
    assert str(operator) == "-1.0 * Z0 Z1 + -1.0 * Z1 Z2 + -0.8 * X0 + -0.8 * X1 + -0.8 * X2 + 0.3 * Z0 + 0.2 * Y0 Y2"


def test_pennylane_output_observable():
    H = tfim_pennylane()
    net = learner(H, trainable={"h": ["X0", "X1", "X2"]}, outputs=[0.5 * qml.Z(2) - 0.25 * qml.X(0) @ qml.X(1)])
    assert repr(net) == "SpinSystem(n_qubits=3, n_inputs=0, outputs=['0.5 * Z2 + -0.25 * X0 X1'], solver='auto', cost='mse')"
    params = net.init_params(0)
    y = np.array([0.1])
    ep = qp.ep_gradient(net, params, None, y, beta=1e-3)
    assert qp.relative_error(ep.grad, qp.reference_gradient(net, params, None, y)) < 1e-4


def test_qeqprop_forms_give_the_same_learner():
    pairs = [(-1.0, "Z0 Z1"), (-0.7, "X0"), (-0.7, "X1"), (0.2, "Z1")]
    forms = [pairs, {w: c for c, w in pairs}, [qp.Term(w, c) for c, w in pairs],
             PauliTable(2, [w for _, w in pairs]).operator(np.array([c for c, _ in pairs]))]
    texts = {str(learner_hamiltonian(f, trainable={"J": "Z0 Z1"}, inputs={0: "Z1"}, outputs=["Z1"])) for f in forms}
    assert texts == {"J[0] * (Z0 Z1) + -0.7 * X0 + -0.7 * X1 + 0.2 * x[0] * (Z1)"}


def test_trainable_and_input_word_gets_a_bias():
    ham = learner_hamiltonian({"Z0": 0.5, "X0": -1.0}, trainable={"b": ["Z0"]}, inputs={0: ["Z0"]}, outputs=["Z0"])
    assert str(ham) == "b[0] * (Z0) + -1.0 * X0 + 0.5 * x[0] * (Z0)"
    assert ham.param_specs["b"].mean == (0.0,)  # the constant moved onto x_0


def test_degenerate_init_warns_at_the_callers_line():
    """Only ZZ trainable, no fields: the Z2 symmetry (all spins flipped) keeps the ground state
    degenerate; a transverse field lifts it."""
    with pytest.warns(DegenerateGroundStateWarning, match="init_params\\(0\\) is degenerate") as caught:
        learner({"Z0 Z1": -1.0, "Z1 Z2": -1.0}, trainable={"J": [0, 1]}, outputs=["Z2"])
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateGroundStateWarning)
        learner({"Z0 Z1": -1.0, "Z1 Z2": -1.0, "X0": -1, "X1": -1, "X2": -1}, trainable={"J": [0, 1]}, outputs=["Z2"])


@pytest.mark.parametrize("kwargs, match", [
    ({"trainable": {"J": [9]}}, r"trainable\['J'\]: term index 9 out of range"),
    ({"trainable": {"J": ["Z0 Z1"], "K": ["Z0 Z1"]}}, "is in groups 'J' and 'K'"),
    ({"trainable": {"J": ["Z0 Z1", "Z1 Z0"]}}, r"selects \['Z0 Z1'\] more than once"),
    ({"trainable": {"J": lambda w, c: False}}, "selects no term"),
    ({"inputs": {2: ["Z0"]}, "n_inputs": 2}, r"inputs: key 2 must be an input index in 0..1"),
    ({"trainable": {"W": [0]}, "inputs": {0: ["X0"]}, "input_weights": "W"}, "also a trainable group name"),
    ({"outputs": [{"Z0": "a"}]}, r"outputs\[0\]: .* is not a \(coefficient, Pauli word\) pair"),
    ({"outputs": [[(np.nan, "Z0")]]}, r"outputs\[0\]: coefficient nan"),
    ({"init_std": 0.0}, "init_std must be a finite number > 0"),
])
def test_bad_arguments(kwargs, match):
    kwargs = {"outputs": ["Z1"], **kwargs}
    with pytest.raises(ValueError, match=match):
        learner_hamiltonian({"Z0 Z1": -1.0, "X0": -1.0, "X1": -1.0}, **kwargs)


def test_fixed_terms_only():
    with pytest.raises(ValueError, match="already has a parameter or input"):
        learner_hamiltonian([qp.Term("Z0", param="b", index=(0,))], outputs=["Z0"])


@pytest.mark.parametrize("bits, wires, match", [("2", (0,), "bits must be"), ("01", (0,), "bits must be"),
                                                ("00", (1, 1), "wires must be distinct")])
def test_bad_projector(bits, wires, match):
    with pytest.raises(ValueError, match=match):
        projector(bits, wires)


def test_pauli_sum_forms():
    assert [(str(p), a) for p, a in pauli_sum({0: "Z", 2: "X"})] == [("Z0 X2", 1.0)]
    assert [(str(p), a) for p, a in pauli_sum([(1.0, "Z0"), (2.0, "Z0"), (1.0, "I")])] == [("Z0", 3.0), ("I", 1.0)]
    with pytest.raises(ValueError, match="observable must be a Pauli word"):
        pauli_sum(3.0)


def test_reprs():
    net = qp.TFIMNetwork(4, "chain", n_inputs=2, output_qubits=[3])
    assert repr(net) == ("TFIMNetwork(n_qubits=4, graph=[(0, 1), (1, 2), (2, 3)], n_inputs=2, outputs=['Z3'], "
                         "solver='auto', cost='mse', input_mode='weights')")
    assert str(net).startswith(repr(net) + "\n  H(theta, x) = -1.0 * J[0] * (Z0 Z1) + ")
    assert repr(qp.XXZNetwork(9, "complete", temperature=0.5)) == (
        "XXZNetwork(n_qubits=9, graph='<36 edges>', n_inputs=0, outputs=['Z8'], solver='auto', cost='mse', "
        "temperature=0.5, input_mode='weights')")
    system = qp.pauli_system(2, [qp.Term("Y0 Y1", param="J", index=(0,)), qp.Term("X0", -1.0)], {"J": (1,)},
                             outputs=["Z1"])
    assert repr(system.hamiltonian) == ("ParametrizedHamiltonian(n_qubits=2, n_inputs=0, params={'J': (1,)}, "
                                        "outputs=['Z1']): H = J[0] * (Y0 Y1) + -1.0 * X0")
    operator = PauliTable(3, ["Z0 Z1", "X2", "Y0 Y1"]).operator(np.array([-1.0, 0.5, 0.0]))
    assert repr(operator) == "PauliOperator(n_qubits=3: -1.0 * Z0 Z1 + 0.5 * X2)"
    many = ParametrizedHamiltonian(30, [qp.Term(f"Z{q}", 1.0) for q in range(30)], {}, observables=["Z0"])
    assert str(many).endswith("+ 1.0 * Z23 + ... (6 more terms)")  # long sums are cut


@pytest.mark.parametrize("module", [builder, observables])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_param_spec_means():
    spec = qp.ParamSpec((2, 2), mean=(1.0, -1.0), std=0.0)
    np.testing.assert_array_equal(spec.draw(np.random.default_rng(0)), [[1.0, -1.0], [1.0, -1.0]])
    with pytest.raises(ValueError, match=r"ParamSpec mean \(1.0, 2.0, 3.0\) does not broadcast to shape \(2,\)"):
        qp.ParamSpec((2,), mean=(1.0, 2.0, 3.0))
