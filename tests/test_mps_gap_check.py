"""Gap checks of the MPS chain learner (SiteChain with solver "mps", ``gap_check``; issue 22): a
near-degenerate chain trained by MPS warns DegenerateGroundStateWarning and records its gap, a gapped
chain records the exact (dense eigh) gaps, the subset modes check what they say and never change
the training, and a bad option is refused by name. 8 qubits: the MPS (chi_max 16 = 2^4) is exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import qeqprop as qp
from qeqprop.errors import DegenerateGroundStateWarning
from qeqprop.solvers import MPS
from qeqprop.systems.long_chain import GAP_CHECKS, SiteChain
from qeqprop.systems.registry import build

# DMRG energies converge to 1e-12 relative per sweep: the gaps agree with dense eigh far below this
SAME_GAP = 1e-6


def data(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n samples of 8 spins with 0/1 labels, both classes present."""
    x = np.random.default_rng(seed).choice([-1.0, 1.0], (n, 8))
    return x, np.arange(n) % 2


def exact_gaps(params, X, **options) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateGroundStateWarning)
        return np.array([SiteChain(8, 8, solver="dense", **options).equilibrate(params, x).gap for x in X])


def test_near_degenerate_chain_trained_by_mps_warns_and_records_its_gap():
    """An ordered chain (J = 1) in a tiny transverse field (Gamma = 0.1) with no fields (b = w = 0):
    its two ordered states split by ~2 Gamma^8 (dense eigh: 1.98e-8 < gap_tol = 1e-6)."""
    options = {"gamma": 0.1, "j_init": 1.0, "j_std": 0.0, "w_std": 0.0, "b_std": 0.0}
    net = SiteChain(8, 8, solver="mps", **options)
    X, labels = data(2)
    exact = exact_gaps(net.init_params(0), X, **options)
    assert exact.max() < 1e-7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = qp.fit(net, (X, labels), epochs=1, batch_size=2, learning_rate=0.01, beta=0.01, progress=False).history
    degenerate = [w for w in caught if issubclass(w.category, DegenerateGroundStateWarning)]
    assert degenerate and "is below gap_tol=1.0e-06" in str(degenerate[0].message)
    assert degenerate[0].filename == __file__  # attributed to the fit call, like the exact solvers' warning
    assert history[-1]["batch_gap_checks"] == 2
    assert history[-1]["batch_min_gap"] == pytest.approx(exact.min(), abs=1e-12)


def test_gapped_chain_records_the_exact_gaps_in_training_and_evaluation():
    """gap_check="all": every EP free phase and every evaluated one, equal to dense eigh's."""
    mps, dense = SiteChain(8, 8, solver="mps", gap_check="all"), SiteChain(8, 8, solver="dense")
    X, labels = data(2)
    runs = {name: qp.fit(net, (X, labels), epochs=1, batch_size=1, learning_rate=0.1, beta=0.01, progress=False).final
            for name, net in (("mps", mps), ("dense", dense))}
    assert runs["mps"]["batch_gap_checks"] == runs["dense"]["batch_gap_checks"] == 2
    for key in ("batch_min_gap", "train_min_gap"):
        assert 0.5 < runs["mps"][key] == pytest.approx(runs["dense"][key], abs=SAME_GAP), key


def test_subset_modes_check_what_they_say_and_leave_the_gradient_alone():
    X, labels = data(2)
    Y = qp.train.cost_targets(SiteChain(8, 8), qp.datasets.labels_from_targets(labels))
    params = SiteChain(8, 8).init_params(np.random.default_rng(2))
    exact = exact_gaps(params, X)
    results = {mode: qp.ep_gradient(SiteChain(8, 8, solver="mps", gap_check=mode), params, X, Y, 0.01)
               for mode in ("ep", "first", "none")}
    gaps = {mode: np.asarray(r.free.gaps) for mode, r in results.items()}
    assert np.allclose(gaps["ep"], exact, rtol=0, atol=SAME_GAP) and exact.min() > 0.5
    assert gaps["first"][0] == pytest.approx(exact[0], abs=SAME_GAP) and np.isnan(gaps["first"][1:]).all()
    assert np.isnan(gaps["none"]).all()
    for mode in ("first", "none"):  # the gap solve never touches the free state: bitwise the same EP gradient
        assert all(np.array_equal(results[mode].grad[k], results["ep"].grad[k]) for k in params)
    # outside EP (evaluation, predict, a direct equilibrate) only "all" checks
    assert SiteChain(8, 8, solver="mps").equilibrate(params, X[0]).gap is None
    assert SiteChain(8, 8, solver="mps", gap_check="all").equilibrate(params, X[0]).gap == pytest.approx(exact[0], abs=SAME_GAP)


def test_an_integer_gap_check_checks_every_kth_ep_free_phase_across_calls():
    X, labels = data(2)
    Y = qp.train.cost_targets(SiteChain(8, 8), qp.datasets.labels_from_targets(labels))
    params = SiteChain(8, 8).init_params(np.random.default_rng(2))
    net = SiteChain(8, 8, solver="mps", gap_check=3)
    first, second = (np.asarray(qp.ep_gradient(net, params, X, Y, 0.01).free.gaps) for _ in range(2))
    # EP free phases 0, 1 | 2, 3: phases 0 and 3 are checked
    assert np.isfinite(first[0]) and np.isnan(first[1]) and np.isnan(second[0]) and np.isfinite(second[1])
    assert np.allclose([first[0], second[1]], exact_gaps(params, X), rtol=0, atol=SAME_GAP)
    assert net.ep_free_phases == 4 and SiteChain(8, 8, gap_check=np.int64(1)).gap_check == 1


def test_the_gap_check_is_validated_by_name():
    assert GAP_CHECKS[0] == "ep" and SiteChain(8, 8, solver="mps").gap_check == "ep"
    for bad in ("every", 0, -2, 2.5, True, None, "EP"):
        with pytest.raises(ValueError, match=r"gap_check must be one of \('ep', 'first', 'all', 'none'\) or an integer k >= 1.*"
                                             r"--option gap_check=ep"):
            SiteChain(8, 8, solver="mps", gap_check=bad)
    with pytest.raises(ValueError, match="gap_check must be one of"):  # the command line's path (--option gap_check=...)
        build("tfim_sites", 48, 1, 24, solver="mps", gap_check="sometimes")
    with pytest.raises(ValueError, match="state must be an MPSGroundState returned by MPS.solve"):
        MPS().gap_of(SiteChain(8, 8, solver="dense").equilibrate(SiteChain(8, 8).init_params(0), np.ones(8)))
