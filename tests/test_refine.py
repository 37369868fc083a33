"""Newton (Jacobi-Davidson) refinement of Krylov ground states (qeqprop.solvers.Refined): what
gradcheck runs so EP's bias, not the solver's tolerance, is what it measures."""

from __future__ import annotations

import numpy as np
import pytest

from qeqprop.gradcheck import precise, random_tfim_instance
from qeqprop.hamiltonians.pauli import PauliTable
from qeqprop.solvers import MPS, Refined, make_solver


def test_refined_reaches_float64_floor_and_dense_expectations():
    """From ARPACK at tol 1e-6 (8-qubit random-field chain): residual below 1e-13 |E|, the energy
    and every <P_s> equal dense eigh's to 1e-12."""
    n = 8
    rng = np.random.default_rng(0)
    table = PauliTable(n, [f"Z{i} Z{i + 1}" for i in range(n - 1)] + [f"Z{i}" for i in range(n)] + [f"X{i}" for i in range(n)])
    op = table.operator(np.concatenate([-rng.uniform(0.5, 1.5, n - 1), rng.normal(0, 0.3, n), -rng.uniform(0.5, 1.5, n)]))
    rough = make_solver("lanczos").solve(op, tol=1e-6, with_gap=False)
    state = Refined("lanczos").solve(op, tol=1e-6, with_gap=False)
    exact = make_solver("dense").solve(op, with_gap=False)
    assert state.residual < 1e-13 * abs(state.energy) < rough.residual
    assert state.solver == "lanczos+refined" and abs(state.energy - exact.energy) < 1e-12
    assert np.max(np.abs(table.expectations(state.vector) - table.expectations(exact.vector))) < 1e-12
    assert Refined("dense").solve(op).residual == exact.residual  # dense: returned as it is


def test_bad_arguments_and_precise_copies():
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        Refined("jax", max_steps=0)
    with pytest.raises(ValueError, match="base must be one of"):
        Refined("eigh")
    net = random_tfim_instance(5, solver="jax")[0]
    checked = precise(net)
    assert isinstance(checked.solver, Refined) and checked.nudge_tol == 0.0
    assert net.solver == "jax" and net.nudge_tol == 1e-5
    mps = precise(random_tfim_instance(5, solver="mps", graph="chain")[0])
    assert mps.solver == "mps" and mps.nudge_tol == 0.0 and isinstance(make_solver(mps.solver), MPS)


def test_a_newton_step_whose_cg_stagnates_keeps_the_state(monkeypatch):
    """A CG that cannot reach its tolerance within REFINE_CG_MAXITER iterations (here forced: one
    iteration, and a floor of 0 so that a step is always tried) gives an inexact Newton step, taken
    only where it halves the residual; the refinement ends with an honest residual instead of running
    20 dim iterations (the 16-qubit gradcheck once spent most of an hour in one such solve, its
    right-hand side at the rounding floor)."""
    from qeqprop.solvers import refine

    n = 8
    rng = np.random.default_rng(1)
    table = PauliTable(n, [f"Z{i} Z{i + 1}" for i in range(n - 1)] + [f"X{i}" for i in range(n)])
    op = table.operator(np.concatenate([-rng.uniform(0.5, 1.5, n - 1), -rng.uniform(0.5, 1.5, n)]))
    base = make_solver("lanczos").solve(op, tol=1e-6, with_gap=False)
    monkeypatch.setattr(refine, "REFINE_TOL", 0.0)
    monkeypatch.setattr(refine, "REFINE_CG_MAXITER", 1)
    state = Refined("lanczos").solve(op, tol=1e-6, with_gap=False)
    residual = np.linalg.norm(op.matvec(state.vector) - state.energy * state.vector)
    assert abs(state.residual - residual) < 1e-12 and state.residual <= base.residual
    assert state.iterations <= base.iterations + 1 + Refined("lanczos").max_steps
