"""Ground-state solvers against each other, against QuTiP, and the exports against the matvec."""

import warnings

import networkx as nx
import numpy as np
import pennylane as qml
import pytest
import qutip

from conftest import kron_pauli, random_strings
from qeqprop import (
    DegenerateGroundStateWarning,
    PauliTable,
    TFIMNetwork,
    dense_ground_state,
    jax_ground_state,
    from_pennylane,
    lanczos_ground_state,
    to_pennylane,
    to_qutip,
    to_sparse,
)


def random_instance(seed: int):
    """Random N = 4..8 model: a random graph's ZZ couplings, fields, and (every other seed)
    Y, XX/YY and three-body strings."""
    rng = np.random.default_rng(seed)
    n = 4 + seed % 5
    graph = nx.gnp_random_graph(n, 0.5, seed=seed)
    strings = [f"Z{i} Z{j}" for i, j in graph.edges()] + [f"X{q}" for q in range(n)] + [f"Z{q}" for q in range(n)]
    if seed % 2:
        strings += [s for s in random_strings(rng, n, 8) if s not in strings]
    return n, PauliTable(n, strings).operator(rng.normal(size=len(strings)))


@pytest.mark.parametrize("seed", range(22))
def test_lanczos_dense_qutip_sparse_agree(seed):
    n, op = random_instance(seed)
    dense = dense_ground_state(op)
    lanczos = lanczos_ground_state(op, tol=1e-13)
    assert abs(lanczos.energy - dense.energy) < 1e-9
    fast = jax_ground_state(op)
    assert abs(fast.energy - dense.energy) < 1e-9
    assert abs(abs(np.vdot(fast.vector, dense.vector)) - 1.0) < 1e-9
    assert abs(fast.gap - dense.gap) < 1e-6 and fast.residual < 1e-8
    assert abs(abs(np.vdot(lanczos.vector, dense.vector)) - 1.0) < 1e-7
    assert lanczos.residual < 1e-6 and lanczos.iterations > 0
    assert abs(lanczos.gap - dense.gap) < 1e-7
    qobj = to_qutip(op)
    assert qobj.isherm and qobj.dims == [[2] * n, [2] * n]
    qutip_energy, _ = qobj.groundstate(sparse=False)
    assert abs(qutip_energy - dense.energy) < 1e-9
    vector = np.random.default_rng(seed).normal(size=2**n)
    np.testing.assert_allclose(to_sparse(op) @ vector, op.matvec(vector), atol=1e-12)


@pytest.mark.parametrize("n", [3, 9, 15])
def test_jax_kernel_matches_numpy_matvec(rng, n):
    from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator

    strings = random_strings(rng, n, 40) + [f"Z{i} Z{j}" for i in range(n) for j in range(i + 1, n)][:30]
    op = PauliTable(n, sorted(set(strings))).operator(rng.normal(size=len(set(strings))))
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    np.testing.assert_allclose(np.asarray(JaxPauliOperator(op).matvec(psi)), op.matvec(psi), atol=1e-11)
    single = np.asarray(JaxPauliOperator(op, precision="single").matvec(psi.astype(np.complex64)))
    assert np.abs(single - op.matvec(psi)).max() < 1e-4 * np.abs(op.matvec(psi)).max()


def test_jax_lanczos_handles_tiny_registers_and_warm_starts():
    """2^n below the Krylov size closes the space early; a warm start is accepted."""
    op = PauliTable(2, ["Z0 Z1", "X0", "X1"]).operator(np.array([-1.0, -0.7, -0.4]))
    exact = dense_ground_state(op)
    cold = jax_ground_state(op)
    warm = jax_ground_state(op, init=exact.vector + 1e-3)
    for state in (cold, warm):
        assert abs(state.energy - exact.energy) < 1e-12
    assert warm.iterations <= cold.iterations


def test_dense_gap_is_exact():
    op = PauliTable(2, ["Z0", "X1"]).operator(np.array([-1.0, -0.5]))
    state = dense_ground_state(op)
    assert state.energy == pytest.approx(-1.5)
    assert state.gap == pytest.approx(1.0)  # flip the X1 spin costs 2 * 0.5
    assert state.residual < 1e-12


def test_warm_start_needs_fewer_applications():
    system = TFIMNetwork(12, "complete", n_inputs=1, output_qubits=[11], solver="lanczos")
    params = system.init_params(0)
    free = system.equilibrate(params, [0.3])
    cold = system.equilibrate(params, [0.3], nudge=np.array([1.0]), beta=1e-3)
    warm = system.equilibrate(params, [0.3], nudge=np.array([1.0]), beta=1e-3, init=free)
    assert abs(cold.energy - warm.energy) < 1e-9
    assert warm.iterations < cold.iterations


def test_pennylane_export_and_import_keep_wire_order(rng):
    n = 4
    strings = ["Z0 Z1", "X3", "Y0 Z2", "Z1 Y2 X3", "Z3"]
    op = PauliTable(n, strings).operator(rng.normal(size=5))
    hamiltonian = to_pennylane(op)
    np.testing.assert_allclose(hamiltonian.sparse_matrix(wire_order=range(n)).toarray(), op.to_dense(), atol=1e-13)
    np.testing.assert_allclose(from_pennylane(hamiltonian).to_dense(), op.to_dense(), atol=1e-13)
    built = qml.Hamiltonian([0.7, -1.2], [qml.PauliZ(0) @ qml.PauliZ(2), qml.PauliY(1)])
    expected = 0.7 * kron_pauli("Z0 Z2", 3) - 1.2 * kron_pauli("Y1", 3)
    np.testing.assert_allclose(from_pennylane(built).to_dense(), expected, atol=1e-13)


def test_qutip_export_matches_tensor_products(rng):
    op = PauliTable(3, ["X0 Z1", "Y2"]).operator(np.array([0.4, -0.9]))
    expected = 0.4 * qutip.tensor(qutip.sigmax(), qutip.sigmaz(), qutip.qeye(2)) - 0.9 * qutip.tensor(
        qutip.qeye(2), qutip.qeye(2), qutip.sigmay()
    )
    np.testing.assert_allclose(to_qutip(op).full(), expected.full(), atol=1e-13)


def test_degenerate_ground_state_is_reported():
    system = TFIMNetwork(3, "chain", gamma=0.0, output_qubits=[2])
    params = {"J": np.array([1.0, 1.0]), "b": np.zeros(3)}
    with pytest.warns(DegenerateGroundStateWarning, match="gap 0.000e\\+00"):
        system.equilibrate(params, np.zeros(0))
    params["b"] = np.full(3, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateGroundStateWarning)
        assert system.equilibrate(params, np.zeros(0)).gap > 0.9
