"""Bad input gets a ValueError that names the argument."""

import numpy as np
import pytest

from qeqprop import TFIMNetwork, ep_gradient, load_dataset, pauli_system, Term
from qeqprop.hamiltonians import PauliTable
from qeqprop.train import fit


@pytest.fixture
def system():
    return TFIMNetwork(4, "complete", n_inputs=2, output_qubits=[3])


@pytest.fixture
def params(system):
    return system.init_params(0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_params(system, params, bad):
    params["J"][1] = bad
    with pytest.raises(ValueError, match=r"params\['J'\] contains 1 NaN or inf"):
        system.equilibrate(params, [0.0, 1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs(system, params, bad):
    with pytest.raises(ValueError, match="x contains 1 NaN or inf"):
        system.equilibrate(params, [bad, 1.0])


def test_wrong_shapes(system, params):
    with pytest.raises(ValueError, match=r"x must have shape \(2,\)"):
        system.equilibrate(params, [1.0, 2.0, 3.0])
    params["W"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"params\['W'\] must have shape \(2, 4\)"):
        system.equilibrate(params, [1.0, 2.0])
    with pytest.raises(ValueError, match="params keys must be"):
        system.equilibrate({"J": params["J"]}, [1.0, 2.0])


def test_target_shape(system, params):
    with pytest.raises(ValueError, match="y must have one target per output"):
        ep_gradient(system, params, [0.1, 0.2], [1.0, 0.0])


def test_asymmetric_coupling_matrix(system, params):
    matrix = np.ones((4, 4)) - np.eye(4)
    matrix[0, 1] = 2.0
    with pytest.raises(ValueError, match="symmetric"):
        TFIMNetwork(4, matrix)
    with pytest.raises(ValueError, match="matrix must be symmetric"):
        system.with_couplings(params, matrix)
    symmetric = (matrix + matrix.T) / 2
    assert np.allclose(system.coupling_matrix(system.with_couplings(params, symmetric)), symmetric)


def test_qubit_index_out_of_range():
    with pytest.raises(ValueError, match="qubit index 7 out of range 0..3"):
        TFIMNetwork(4, [(0, 7)])
    with pytest.raises(ValueError, match="output_qubits: qubit index 4 out of range"):
        TFIMNetwork(4, output_qubits=[4])
    with pytest.raises(ValueError, match="acts on qubit 9"):
        PauliTable(3, ["Z0 X9"])
    with pytest.raises(ValueError, match="self-loop"):
        TFIMNetwork(4, [(1, 1)])


@pytest.mark.parametrize("beta", [0.0, -0.1, np.nan, np.inf])
def test_beta_must_be_positive(system, params, beta):
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        ep_gradient(system, params, [0.1, 0.2], [1.0], beta=beta)


def test_unknown_estimator_and_solver(system, params):
    with pytest.raises(ValueError, match="estimator must be one of"):
        ep_gradient(system, params, [0.1, 0.2], [1.0], estimator="symmetric")
    with pytest.raises(ValueError, match="solver must be one of"):
        TFIMNetwork(4, solver="magic")


def test_memory_estimate_over_budget():
    with pytest.raises(ValueError, match=r"n_qubits=40: this system's solver needs about \d+\.\d+ GiB"):
        TFIMNetwork(40, "chain", output_qubits=[39])


def test_complex_coefficients_rejected():
    with pytest.raises(ValueError, match="must be real"):
        PauliTable(2, ["Z0"]).operator(np.array([1.0 + 1.0j]))


def test_term_errors():
    with pytest.raises(ValueError, match="unknown parameter 'K'"):
        pauli_system(2, [Term("Z0", param="K", index=(0,))], {"J": (1,)}, outputs=["Z1"])
    with pytest.raises(ValueError, match="uses input 3 but n_inputs=1"):
        pauli_system(2, [Term("Z0", input=3)], {}, outputs=["Z1"], n_inputs=1)


def test_fit_arguments(system):
    data = load_dataset("xor")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        fit(system, data, batch_size=0)
    wide = TFIMNetwork(4, n_inputs=3, output_qubits=[3])
    with pytest.raises(ValueError, match="data has 2 features but the system takes n_inputs=3"):
        fit(wide, data, epochs=1)
