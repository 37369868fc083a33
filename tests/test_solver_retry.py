"""A batched solve that misses its tolerance is retried, not fatal (issue 18, target 4).

BatchedLanczos settles a sample that misses its tolerance after ``max_blocks`` blocks by a batched
retry with longer blocks, then the single-state fallback solver, then (within ``usable`` times the
residual asked) by accepting it; only past that NotConvergedError. ``fit`` records the retries per
record and exposes the limits (``solver_options``).
"""

import logging

import numpy as np
import pytest

from qeqprop import NotConvergedError, fit, random_tfim_instance
from qeqprop.solvers import lanczos_ground_state
from qeqprop.solvers.batched_lanczos import (
    SETTLED_FALLBACK,
    SETTLED_FIRST,
    SETTLED_RETRY,
    SETTLED_USABLE,
    BatchedLanczos,
)

N_QUBITS, BATCH = 10, 8


@pytest.fixture(scope="module")
def nudged_batch():
    """A 10-qubit TFIM learner solved by batched Lanczos, and BATCH nudged-phase-like problems: the
    coefficients of H(theta, x_b) moved by 5% and warm starts at the ground states of H(theta, x_b)."""
    system, params, *_ = random_tfim_instance(N_QUBITS, seed=3, solver="jax")
    table = system.hamiltonian.table
    rng = np.random.default_rng(0)
    coeffs = system.hamiltonian.coefficients_batch(params, rng.normal(size=(BATCH, system.n_inputs)))
    starts = np.array([lanczos_ground_state(table.operator(c), tol=1e-12, with_gap=False).vector for c in coeffs])
    shifted = coeffs * (1.0 + 0.05 * rng.normal(size=coeffs.shape))
    return table, shifted, starts


def short(table, **options):
    """One block of 8 steps for the nudged phase: too short for tight tolerances."""
    return BatchedLanczos(table, nudged_steps=8, max_blocks=1, **options)


def assert_matches_arpack(table, coeffs, result):
    """Each state within its asked residual of ARPACK's at tol 1e-14: |E - E_ref| <= asked, and
    ||psi - phase psi_ref|| ~ sin(angle) <= asked / gap (Davis-Kahan; twice that allowed)."""
    for c, psi, energy, asked in zip(coeffs, result.vectors, result.energies, result.asked):
        ref = lanczos_ground_state(table.operator(c), tol=1e-14, with_gap=True)
        assert abs(energy - ref.energy) <= asked
        overlap = np.vdot(ref.vector, psi)
        assert np.linalg.norm(psi - ref.vector * overlap / abs(overlap)) <= 2 * asked / ref.gap


def test_marginal_miss_is_retried_only_for_the_samples_that_missed(nudged_batch):
    table, coeffs, starts = nudged_batch
    probe = short(table, retry_blocks=0, fallback=None, usable=1e300).solve(coeffs, starts, 1e-12, with_gap=False)
    relative = probe.residuals / np.maximum(1.0, np.abs(probe.energies))
    worst = int(np.argmax(relative))
    tol = 0.9 * relative[worst]  # the worst sample misses by ~10%: a marginal miss like the issue's
    missed = relative > tol
    assert 1 <= missed.sum() < BATCH
    result = short(table, max_steps=32, retry_blocks=1).solve(coeffs, starts, tol, with_gap=False)
    assert np.all(result.converged) and np.all(result.residuals <= result.asked)
    np.testing.assert_array_equal(result.retries, np.where(missed, SETTLED_RETRY, SETTLED_FIRST))
    assert result.iterations[missed].min() > result.iterations[~missed].max()  # the retry's applications counted
    np.testing.assert_array_equal(result.vectors[~missed], probe.vectors[~missed])  # the others untouched
    assert_matches_arpack(table, coeffs, result)


def test_stragglers_fall_back_to_the_single_state_solver(nudged_batch):
    table, coeffs, starts = nudged_batch
    result = short(table, retry_blocks=0, fallback="lanczos").solve(coeffs, starts, 1e-12, with_gap=False)
    assert np.all(result.retries == SETTLED_FALLBACK) and np.all(result.converged)
    assert_matches_arpack(table, coeffs, result)


def test_usable_residual_is_accepted_and_unusable_raises(nudged_batch, caplog):
    table, coeffs, starts = nudged_batch
    probe = short(table, retry_blocks=0, fallback=None, usable=1e300).solve(coeffs, starts, 1e-12, with_gap=False)
    relative = probe.residuals / np.maximum(1.0, np.abs(probe.energies))
    tol = 0.5 * relative.max()  # every miss within 100x: accepted
    with caplog.at_level(logging.WARNING, logger="qeqprop.solvers.batched_lanczos"):
        result = short(table, retry_blocks=0, fallback=None).solve(coeffs, starts, tol, with_gap=False)
    np.testing.assert_array_equal(result.retries, np.where(relative > tol, SETTLED_USABLE, SETTLED_FIRST))
    assert "accepted above its tolerance" in caplog.text
    with pytest.raises(NotConvergedError, match=r"sample \d+ of 8 \(nudged phase, ground state\): residual .* "
                                                 r"usable up to 100x.*raise max_steps, max_blocks"):
        short(table, retry_blocks=0, fallback=None).solve(coeffs, starts, 1e-12, with_gap=False)


def test_fit_continues_through_missed_tolerances_and_records_them(caplog):
    system, params, *_ = random_tfim_instance(N_QUBITS, seed=3, solver="jax")
    reference, *_ = random_tfim_instance(N_QUBITS, seed=3, solver="lanczos")  # per-sample ARPACK
    system.nudge_tol = reference.nudge_tol = 1e-12  # tight nudged phases: one block of 8 steps misses
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(4, system.n_inputs)), rng.uniform(-1, 1, size=(4, 2))
    options = {"epochs": 2, "batch_size": 4, "optimizer": "sgd", "learning_rate": 0.05, "beta": 0.05,
               "task": "regression", "progress": False}
    with caplog.at_level(logging.WARNING, logger="qeqprop.train"):
        result = fit(system, (X, y), params,
                     solver_options={"nudged_steps": 8, "max_blocks": 1, "retry_blocks": 0, "fallback": "lanczos"},
                     **options)
    assert [r["epoch"] for r in result.history] == [1, 2]
    for record in result.history:  # every nudged phase (2 betas x 4 samples) missed and fell back
        assert record["solver_retries"] == record["solver_fallbacks"] == 8 and record["solver_usable"] == 0
    assert "8 sample phases missed the batched solver's tolerance" in caplog.text
    assert system.batched == {}  # the user's system is not changed
    exact = fit(reference, (X, y), params, **options)
    assert "solver_retries" not in exact.final  # per-sample solvers report none
    for name in params:
        np.testing.assert_allclose(result.params[name], exact.params[name], rtol=0, atol=1e-8)


def test_solver_options_are_validated():
    system, *_ = random_tfim_instance(4, seed=0, solver="jax")
    data = (np.zeros((2, system.n_inputs)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"unknown batched solver options \['max_block'\]"):
        fit(system, data, solver_options={"max_block": 3})
    with pytest.raises(ValueError, match="solver_options: max_blocks must be an integer >= 1"):
        fit(system, data, solver_options={"max_blocks": 0})
    with pytest.raises(ValueError, match="solver_options: fallback must be one of"):
        fit(system, data, solver_options={"fallback": "arpack"})
    with pytest.raises(ValueError, match="solver_options: usable must be a number >= 1"):
        fit(system, data, solver_options={"usable": 0.5})
    with pytest.raises(ValueError, match="solver_options must be a dict"):
        fit(system, data, solver_options=[("max_blocks", 3)])
    assert system.batched == {}
