"""Ground-state solvers against each other, against QuTiP, and the exports against the matvec."""

import warnings

import networkx as nx
import numpy as np
import pennylane as qml
import pytest
import qutip

from conftest import kron_pauli, random_strings
from qeqprop import DegenerateGroundStateWarning, TFIMNetwork
from qeqprop.hamiltonians import PauliTable, from_pennylane, to_pennylane, to_qutip, to_sparse
from qeqprop.solvers import dense_ground_state, jax_ground_state, lanczos_ground_state


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


# -- solver objects and the registry ------------------------------------------------------------


def eigh_reference(strings, coeffs, n: int):
    """E_0, the gap E_1 - E_0 and the ground state of sum_s coeffs[s] P_s by eigh of the matrix built
    from Kronecker products (independent of PauliOperator and of every solver)."""
    values, vectors = np.linalg.eigh(sum(c * kron_pauli(s, n) for c, s in zip(coeffs, strings)))
    return values[0], values[1] - values[0], vectors[:, 0]


def registered_model(seed: int, n: int):
    """A random model of ZZ couplings, X and Z fields (and, for odd seeds, Y and three-body
    strings), with its eigh reference."""
    rng = np.random.default_rng(seed)
    strings = [f"Z{i} Z{j}" for i in range(n) for j in range(i + 1, n)] + [f"X{q}" for q in range(n)]
    strings += [f"Z{q}" for q in range(n)]
    if seed % 2:
        strings += [s for s in random_strings(rng, n, 6) if s not in strings]
    coeffs = rng.normal(size=len(strings))
    return PauliTable(n, strings).operator(coeffs), eigh_reference(strings, coeffs, n)


# (3, 10), complex with three-body strings, is the slowest case of the default run (70-170 s on 2 busy cores): slow
@pytest.mark.parametrize("seed,n", [(0, 6), (1, 7), (2, 10), pytest.param(3, 10, marks=pytest.mark.slow)])
def test_every_solver_object_equals_dense_eigh(seed, n):
    """Dense, Arpack, JaxLanczos and Auto (both sides of its crossover), made by name or directly,
    give the Kronecker-product matrix's ground energy, state and gap."""
    from qeqprop.solvers import Arpack, Auto, Dense, JaxLanczos, make_solver

    op, (energy, gap, vector) = registered_model(seed, n)
    solvers = [make_solver(name) for name in ("auto", "dense", "lanczos", "jax")]
    solvers += [Dense(), Arpack(), JaxLanczos(), Auto(dense_max_qubits=n - 1), Auto(dense_max_qubits=n, krylov=Arpack())]
    for solver in solvers:
        state = solver.solve(op, tol=1e-13 if solver.name == "lanczos" else 1e-12)
        assert abs(state.energy - energy) < 1e-9, solver
        assert abs(abs(np.vdot(state.vector, vector)) - 1.0) < 1e-7, solver
        assert abs(state.gap - gap) < 1e-6, solver
    assert make_solver("auto").solve(op).solver == ("dense" if n <= 8 else "jax")
    assert Auto(dense_max_qubits=n - 1, krylov=Arpack()).solve(op).solver == "lanczos"


def test_strings_are_sugar_for_the_registered_objects():
    """ground_state with a name, with the registered object, and the solver's function give
    bit-identical results, cold and warm-started; the objects compare equal by configuration."""
    from qeqprop.solvers import Arpack, JaxLanczos, LanczosOptions, REGISTRY, ground_state, make_solver

    op, (energy, _, vector) = registered_model(5, 10)
    init = vector + 1e-3
    for name, function in (("jax", lambda **kw: jax_ground_state(op, options=LanczosOptions(tol=1e-11), **kw)),
                           ("lanczos", lambda **kw: lanczos_ground_state(op, tol=1e-11, **kw))):
        assert make_solver(name) == REGISTRY[name]() == {"jax": JaxLanczos(), "lanczos": Arpack()}[name]
        for start in (None, init):
            by_name = ground_state(op, name, init=start, tol=1e-11, with_gap=start is None)
            by_object = ground_state(op, make_solver(name), init=start, tol=1e-11, with_gap=start is None)
            direct = function(init=start, with_gap=start is None)
            for state in (by_object, direct):
                np.testing.assert_array_equal(state.vector, by_name.vector)
                assert (state.energy, state.gap, state.iterations) == (by_name.energy, by_name.gap, by_name.iterations)
            assert abs(by_name.energy - energy) < 1e-9 and by_name.solver == name


def test_make_solver_checks_its_argument():
    from qeqprop.solvers import REGISTRY, SOLVERS, GroundStateSolver, JaxLanczos, make_solver

    assert SOLVERS == ("auto", "dense", "lanczos", "jax", "mps") == tuple(REGISTRY)
    for name in SOLVERS:
        solver = make_solver(name)
        assert isinstance(solver, GroundStateSolver) and solver.name == name
    custom = JaxLanczos(precision="single")
    assert make_solver(custom) is custom
    with pytest.raises(ValueError, match=r"solver must be one of \('auto', 'dense', 'lanczos', 'jax', 'mps'\) or a "
                                         r"GroundStateSolver, got 'eigh'"):
        make_solver("eigh")
    with pytest.raises(ValueError, match="kind must be one of .* got 3"):
        make_solver(3, argument="kind")
    with pytest.raises(ValueError, match="precision must be 'double' or 'single'"):
        JaxLanczos(precision="half")


def test_a_user_defined_solver_plugs_in():
    """Any GroundStateSolver works where a name does (here: power iteration on shift - H, a solver
    the library does not have), checked against eigh."""
    from qeqprop.solvers import GroundState, GroundStateSolver, ground_state, uses_dense, working_set_vectors

    class PowerIteration(GroundStateSolver):
        name = "power"

        def solve(self, operator, init=None, tol=1e-12, with_gap=True):
            shift = np.abs(operator.to_dense()).sum(axis=1).max()  # Gershgorin bound: -H + shift >= 0
            psi = np.ones(operator.dim, operator.dtype) if init is None else np.asarray(init, operator.dtype)
            for step in range(1, 20000):
                psi = shift * psi - operator.matvec(psi)
                psi /= np.linalg.norm(psi)
                hpsi = operator.matvec(psi)
                energy = float(np.real(np.vdot(psi, hpsi)))
                residual = float(np.linalg.norm(hpsi - energy * psi))
                if residual < tol:
                    break
            return GroundState(psi, energy, None, step, residual, self.name)

        def working_set(self, n_qubits, itemsize=8):
            return 3

    strings = ["Z0 Z1", "Z1 Z2", "Z2 Z3", "X0", "X1", "X2", "X3", "Z0"]
    coeffs = np.array([-1.0, -1.0, -1.0, -0.9, -0.9, -0.9, -0.9, -0.3])
    op = PauliTable(4, strings).operator(coeffs)
    energy, _, vector = eigh_reference(strings, coeffs, 4)
    state = ground_state(op, PowerIteration(), tol=1e-8)
    assert state.solver == "power" and abs(state.energy - energy) < 1e-9
    assert abs(abs(np.vdot(state.vector, vector)) - 1.0) < 1e-8
    assert working_set_vectors(PowerIteration(), 4) == 3 + 8 and not uses_dense(PowerIteration(), 4)


def test_working_set_estimates_by_name_and_object():
    """The up-front memory estimates: dense 3 x 2^n; ARPACK 24 + 8 EP vectors; JAX Lanczos its
    basis, kept Ritz vectors and 8 solve vectors, + 8 EP vectors (31 at 2^24, where the basis is
    capped at 12 rows by basis_bytes; at 2^26 the MIN_KRYLOV floor); auto follows its crossover."""
    from qeqprop.solvers import Arpack, Auto, Dense, JaxLanczos, LanczosOptions, uses_dense, working_set_vectors

    assert working_set_vectors("dense", 10) == 3 << 10 == Dense().working_set(10)
    assert working_set_vectors("lanczos", 16) == 32 and Arpack().working_set(16) == 24
    from qeqprop.solvers.jax_lanczos import MIN_KRYLOV, default_keep

    assert working_set_vectors("jax", 26) == MIN_KRYLOV + default_keep(MIN_KRYLOV) + 8 + 8
    assert working_set_vectors("jax", 24) == 31 and working_set_vectors("jax", 16) == 48 + 8 + 8 + 8
    assert JaxLanczos(LanczosOptions(krylov=16)).working_set(12) == 16 + 3 + 8
    assert working_set_vectors("auto", 8) == 3 << 8 and working_set_vectors("auto", 9) == working_set_vectors("jax", 9)
    assert [uses_dense("auto", n) for n in (8, 9)] == [True, False] and uses_dense("dense", 12)
    assert not uses_dense("jax", 4) and Auto(dense_max_qubits=10).uses_dense(10)
    assert working_set_vectors(Auto(dense_max_qubits=10, krylov=Arpack()), 11) == 32


def test_batched_lanczos_is_the_batch_member_of_the_family():
    """BatchedLanczos implements BatchGroundStateSolver: a batch of coefficient vectors of one table
    gives every sample the Kronecker-product matrix's ground energy, state and gap."""
    from qeqprop.solvers import BatchGroundStateSolver
    from qeqprop.solvers.batched_lanczos import BatchedLanczos

    n, rng = 7, np.random.default_rng(21)
    strings = [f"Z{i} Z{(i + 1) % n}" for i in range(n)] + [f"X{q}" for q in range(n)] + [f"Z{q}" for q in range(n)]
    strings += ["Y0 Y1", "X2 Z3 X4"]
    table = PauliTable(n, strings)
    coeffs = rng.normal(size=(3, len(strings)))
    solver = BatchedLanczos(table)
    assert isinstance(solver, BatchGroundStateSolver) and solver.name == "batched"
    assert solver.working_set(batch=3) > 3 * 10
    starts = np.broadcast_to(rng.standard_normal(table.dim), (3, table.dim))
    result = solver.solve(coeffs, starts, 1e-10, with_gap=True)
    for b in range(3):
        energy, gap, vector = eigh_reference(strings, coeffs[b], n)
        assert abs(result.energies[b] - energy) < 1e-9
        assert abs(abs(np.vdot(result.vectors[b], vector)) - 1.0) < 1e-8
        assert abs(result.gaps[b] - gap) < 1e-6 * max(1.0, abs(energy))


def test_solver_docstring_examples_run():
    """The doctested examples of the solver interface, the registry and the JAX operator."""
    import doctest

    from qeqprop.hamiltonians import jax_kernel
    from qeqprop.solvers import base, registry

    for module in (base, registry, jax_kernel):
        failed, attempted = doctest.testmod(module, raise_on_error=False)
        assert attempted > 0 and failed == 0, module.__name__
