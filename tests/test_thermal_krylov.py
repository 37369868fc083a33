"""Lowest-k (Krylov) Gibbs states against the exact dense Gibbs state: expectations and free
energy within the stated bound, the bound itself honest (never below the true error or the
true neglected weight), levels skipped by a symmetric start vector caught, warm starts, and
bad input."""

import numpy as np
import pytest

from qeqprop import TFIMNetwork, random_tfim_instance
from qeqprop.solvers.thermal import gibbs_state, thermal_expectations, thermal_response
from qeqprop.solvers.thermal_krylov import krylov_gibbs_state

TOL = 1e-4
ROUNDING = 1e-12  # the exact and truncated expectations also differ by floating-point rounding


def assert_within_bound(state, exact, table):
    """Every Pauli expectation (norm 1), the free energy and the neglected weight vs the exact state."""
    k = len(state.energies)
    np.testing.assert_allclose(state.energies, exact.energies[:k], rtol=0, atol=1e-10)
    assert state.lowest_neglected <= exact.energies[k] + 1e-10  # a true lower bound on the neglected levels
    assert 1.0 - exact.probabilities[:k].sum() <= state.neglected_weight
    error = np.abs(thermal_expectations(table, state) - thermal_expectations(table, exact)).max()
    assert error <= state.error_bound + ROUNDING
    assert -ROUNDING <= state.free_energy - exact.free_energy <= state.free_energy_error + ROUNDING
    assert state.residual < 1e-10
    return error


@pytest.mark.parametrize("n,temperature,k", [(6, 0.3, 12), (8, 0.25, 16), (10, 0.2, 24)])
def test_krylov_gibbs_state_within_honest_bound(n, temperature, k):
    system, params, x, _ = random_tfim_instance(n, seed=n)
    operator = system.hamiltonian.operator(params, x)
    exact = gibbs_state(operator, temperature)
    state = krylov_gibbs_state(operator, temperature, k, tol=TOL)
    assert state.error_bound <= TOL
    error = assert_within_bound(state, exact, system.hamiltonian.table)
    assert error > 1e-10  # the truncation error is resolved, not hidden in rounding
    larger = krylov_gibbs_state(operator, temperature, 2 * k, tol=TOL)
    assert larger.error_bound < state.error_bound
    assert assert_within_bound(larger, exact, system.hamiltonian.table) < error


def test_skipped_levels_from_a_symmetric_start_are_caught():
    """Uniform couplings on the complete graph, zero fields: from a start vector in the
    permutation-symmetric sector eigsh alone returns 0, 6.24, 6.97 (x7), 9.84, ... and skips nine
    of the lowest 18 levels (the 0.0026 partner of the ferromagnetic doublet, 6.61, 6.90 (x7)).
    The deflated check finds each and swaps it in for the highest kept level."""
    system = TFIMNetwork(8, "complete", output_qubits=[7], gamma=1.0)
    params = {name: np.zeros_like(value) for name, value in system.init_params(0).items()}
    params["J"][:] = 0.5
    operator = system.hamiltonian.operator(params, np.zeros(0))
    exact = gibbs_state(operator, 0.5)
    symmetric = np.full(operator.dim, 2.0 ** -4)
    state = krylov_gibbs_state(operator, 0.5, 18, tol=TOL, init=symmetric)
    assert abs(state.energies[1] - state.energies[0] - (exact.energies[1] - exact.energies[0])) < 1e-10
    assert_within_bound(state, exact, system.hamiltonian.table)


def test_single_level_is_the_ground_state():
    """k = 1 at low T: the ground state, gap from the deflated solve. Its lowest eigenvalue is
    min(E_1, sigma), sigma = E_0 + 2 T log(2 (D - 1) / tol) = E_0 + 0.93 at T = 0.03, above
    E_1 = E_0 + 0.86, so E_low = E_1 whatever the rounding (at T = 0.02 sigma lies below E_1
    and either is a valid lower bound)."""
    system, params, x, _ = random_tfim_instance(8, seed=8)
    operator = system.hamiltonian.operator(params, x)
    temperature = 0.03
    exact = gibbs_state(operator, temperature)
    assert 2 * temperature * np.log(2 * (operator.dim - 1) / TOL) > exact.energies[1] - exact.energies[0]
    state = krylov_gibbs_state(operator, temperature, 1, tol=TOL)
    assert abs(state.gap - (exact.energies[1] - exact.energies[0])) < 1e-10
    assert_within_bound(state, exact, system.hamiltonian.table)


def test_warm_start_from_free_phase_vectors():
    system, params, x, _ = random_tfim_instance(8, seed=8)
    free = krylov_gibbs_state(system.hamiltonian.operator(params, x), 0.25, 16, tol=TOL)
    nudged = system.hamiltonian.operator(params, x, nudge=np.array([1e-2, -1e-2]))
    warm = krylov_gibbs_state(nudged, 0.25, 16, tol=TOL, init=free.vectors)
    assert_within_bound(warm, gibbs_state(nudged, 0.25), system.hamiltonian.table)


def test_krylov_bad_input_and_no_response():
    system, params, x, _ = random_tfim_instance(6, seed=6)
    operator = system.hamiltonian.operator(params, x)
    with pytest.raises(ValueError, match=r"k=4 levels at temperature=0.3: error bound .* > tol=1.0e-04.*raise k \(e.g. k=8\)"):
        krylov_gibbs_state(operator, 0.3, 4, tol=TOL)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
            krylov_gibbs_state(operator, bad, 4)
    for bad in (0, 63, 2.5):
        with pytest.raises(ValueError, match=r"k must be an integer in 1..62"):
            krylov_gibbs_state(operator, 0.3, bad)
    with pytest.raises(ValueError, match=r"tol must be a positive number"):
        krylov_gibbs_state(operator, 0.3, 4, tol=0.0)
    with pytest.raises(ValueError, match=r"init must be a state vector \(64,\) or a block \(64, j\)"):
        krylov_gibbs_state(operator, 0.3, 4, init=np.ones(32))
    state = krylov_gibbs_state(operator, 0.3, 16, tol=TOL)
    with pytest.raises(ValueError, match=r"no Kubo-Mori response.*gibbs_state"):
        thermal_response(state, operator.to_dense(), [operator.to_dense()])
