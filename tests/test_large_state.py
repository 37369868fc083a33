"""The single-state (large-state) JAX Lanczos path: the certified gap's early stop
(``deflation``: the deflated solve stops at residual <= gap_accuracy (theta_1 - E_0))."""

import numpy as np
import pytest
from conftest import random_strings

from qeqprop.hamiltonians import PauliTable
from qeqprop.solvers import LanczosOptions, jax_ground_state, jax_lanczos
from qeqprop.solvers.deflation import GAP_ACCURACY


def random_model(seed: int, n: int):
    """All-to-all ZZ couplings, fields, transverse fields and Y/XX/three-body strings."""
    rng = np.random.default_rng(seed)
    strings = [f"Z{i} Z{j}" for i in range(n) for j in range(i + 1, n)] + [f"X{q}" for q in range(n)]
    strings += [f"Z{q}" for q in range(n)] + random_strings(rng, n, 6)
    return PauliTable(n, list(dict.fromkeys(strings))).operator(rng.normal(size=len(set(strings))))


@pytest.mark.slow
def test_gap_early_stop_saves_applications_and_keeps_the_gap(monkeypatch):
    """With the early stop (default gap_accuracy) the free phase costs fewer H applications than
    with the deflated solve run to GAP_TOL (gap_accuracy=None), the ground state is unchanged, and
    the gap agrees with the GAP_TOL one to GAP_ACCURACY relative (the bound; the error is r^2 / delta,
    measured < 1e-4 here). On the recurrence-only path of large registers, with the early stop
    (which applies above GAP_STOP_MIN_DIM amplitudes) brought down to this 10-qubit size."""
    monkeypatch.setattr(jax_lanczos, "FULL_REORTH_MAX_DIM", 0)
    small = jax_ground_state(random_model(0, 10))  # at or below GAP_STOP_MIN_DIM: the gap solve to GAP_TOL
    exact = jax_ground_state(random_model(0, 10), options=LanczosOptions(gap_accuracy=None))
    assert (small.gap, small.iterations) == (exact.gap, exact.iterations)
    monkeypatch.setattr(jax_lanczos, "GAP_STOP_MIN_DIM", 0)
    saved = []
    for seed in range(3):
        op = random_model(seed, 10)
        early = jax_ground_state(op)
        full = jax_ground_state(op, options=LanczosOptions(gap_accuracy=None))
        assert early.energy == full.energy and np.array_equal(early.vector, full.vector)
        assert full.gap > 1e-2  # gapped models: the early stop applies
        assert abs(early.gap - full.gap) <= GAP_ACCURACY * full.gap
        assert early.gap >= full.gap - 1e-9  # Ritz values bound E_1 from above
        saved.append(full.iterations - early.iterations)
    assert min(saved) > 0


def test_gap_accuracy_is_checked():
    """A gap accuracy outside (0, 1) is refused, naming the option."""
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="gap_accuracy"):
            LanczosOptions(gap_accuracy=bad)


def test_diagonal_is_used_in_place():
    """PauliTable.compile's diagonals start on pauli.ALIGNMENT bytes, and the JAX kernel of a real
    operator uses that buffer instead of a copy (a state vector per solve at 24-26 qubits); its
    H psi is unchanged."""
    import jax.numpy as jnp

    from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator
    from qeqprop.hamiltonians.pauli import ALIGNMENT, aligned_empty

    for shape, dtype in (((5,), np.float64), ((3, 7), np.complex128)):
        assert aligned_empty(shape, dtype).ctypes.data % ALIGNMENT == 0 and aligned_empty(shape, dtype).shape == shape
    strings = [f"Z{i} Z{j}" for i in range(9) for j in range(i + 1, 9)] + [f"X{q}" for q in range(9)] + ["Z3", "X0 X4 Z5"]
    op = PauliTable(9, strings).operator(np.random.default_rng(1).normal(size=len(strings)))  # real H
    assert op.dtype == np.float64 and op.diagonal.ctypes.data % ALIGNMENT == 0
    kernel = JaxPauliOperator(op)
    assert kernel.diagonal.unsafe_buffer_pointer() == op.diagonal.ctypes.data
    psi = np.random.default_rng(0).normal(size=op.dim)
    assert np.allclose(np.asarray(kernel.apply(jnp.asarray(psi))), op.matvec(psi), atol=1e-12)


def test_large_solves_release_their_transfer_sources(monkeypatch):
    """From COLLECT_MIN_DIM amplitudes a solve lets go of what it copied to the device (a warm
    start here): the start's reference count is what it was before the call (JAX's transfers keep
    their numpy source until the cyclic collector runs)."""
    import sys

    monkeypatch.setattr(jax_lanczos, "COLLECT_MIN_DIM", 0)
    op = random_model(2, 9)
    start = np.random.default_rng(1).normal(size=op.dim).astype(op.dtype)
    before = sys.getrefcount(start)
    state = jax_ground_state(op, init=start, with_gap=False)
    assert sys.getrefcount(start) == before
    assert np.linalg.norm(op.matvec(state.vector) - state.energy * state.vector) < 1e-9


def test_one_sample_states_are_views_and_the_reflection_is_exact():
    """A one-sample SpinStates holds its state's vector, not a copy; the -beta phase's start is
    2 psi_0 - psi_b (psi_b phase-aligned to psi_0), normalised."""
    import qeqprop as qp
    from qeqprop.systems.spin_batch import SpinStates

    net, params, x, y = qp.random_tfim_instance(6)
    result = qp.ep_gradient(net, params, x, y, beta=0.05)
    free, plus = result.free, result.nudged[0.05]
    packed = SpinStates.pack([free])
    assert np.shares_memory(packed.vectors, free.vector) and packed.vectors.shape == (1, free.vector.size)
    for phase in (1.0, -1.0, 1j):
        rotated = type(plus)(plus.vector * phase, plus.energy, plus.gap, plus.iterations, plus.residual, plus.solver)
        start = net.reflect(free, rotated).vector
        aligned = plus.vector * np.sign(np.vdot(free.vector, plus.vector).real)
        expected = (2 * free.vector - aligned) / np.linalg.norm(2 * free.vector - aligned)
        assert np.allclose(start, expected, atol=1e-13)
