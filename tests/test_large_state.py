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
