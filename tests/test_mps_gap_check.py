"""Gap checks on MPS ground states (``gap_check``, qeqprop.systems.gap_checks; issue 22), on SiteChain,
TFIMChain and the sensor with solver "mps": a near-degenerate chain trained by MPS warns
DegenerateGroundStateWarning and records its gap, a gapped one records the exact (dense eigh) gaps,
the subset modes check what they say and never change the training, a resumed run checks the samples
a straight one does, and a bad option is refused by name. SiteChain: 8 qubits, where the MPS (chi_max
16 = 2^4) is exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import qeqprop as qp
from qeqprop.errors import DegenerateGroundStateWarning
from qeqprop.solvers import MPS
from qeqprop.checkpoint import load_checkpoint
from qeqprop.comparison.chains import SENSOR_CHAINS
from qeqprop.comparison.sensor import chain_sensor
from qeqprop.systems.long_chain import GAP_CHECKS, SiteChain, TFIMChain
from qeqprop.systems.registry import REGISTRY, build

# DMRG energies converge to 1e-12 relative per sweep: the gaps agree with dense eigh far below this
SAME_GAP = 1e-6


def data(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n samples of 8 spins with 0/1 labels, both classes present."""
    x = np.random.default_rng(seed).choice([-1.0, 1.0], (n, 8))
    return x, np.arange(n) % 2


def dense_gaps(system, params, X) -> np.ndarray:
    """The free-phase gaps E_1 - E_0 of ``system`` (built with solver="dense") for the rows of X."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateGroundStateWarning)
        return np.array([system.equilibrate(params, x).gap for x in X])


def exact_gaps(params, X, **options) -> np.ndarray:
    return dense_gaps(SiteChain(8, 8, solver="dense", **options), params, X)


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


# -- TFIMChain and the sensor (every SpinSystem on MPS ground states without gaps) --------------------
def tfim_chain(solver: str, **options) -> TFIMChain:
    """A 10-site TFIMChain; the MPS at bond dimension 8 (2^5 is exact; its gaps agree to ~1e-9 here)."""
    return TFIMChain(10, solver=solver, **({"chi_max": 8} if solver == "mps" else {}), **options)


def sensor(solver: str, **options):
    """The sensor of the phases task: 8 TFIM chain sites + 1 sensor qubit coupled to the last 2 (pinned)."""
    return build("sensor", 2, 1, 8, chain="phases", reach=2, pin=0.5, solver=solver, **options)


SYSTEMS = {"tfim_chain": (tfim_chain, np.array([[1.0], [-1.0], [0.5], [-0.5]])),
           "sensor": (sensor, SENSOR_CHAINS["phases"].sample(4, 0))}


@pytest.mark.parametrize("name", SYSTEMS)
def test_tfim_chain_and_sensor_on_mps_record_the_exact_gaps_of_their_ep_free_phases(name):
    make, X = SYSTEMS[name]
    mps, dense = make("mps"), make("dense")
    assert mps.checks_gaps and not dense.checks_gaps and not make("mps", temperature=0.5).checks_gaps
    params = dense.init_params(1)
    Y = qp.train.cost_targets(dense, qp.datasets.labels_from_targets(np.arange(len(X)) % 2))
    exact = dense_gaps(dense, params, X)
    result = qp.ep_gradient(mps, params, X, Y, 0.01, estimator="positive")
    assert exact.min() > 0.3 and np.allclose(result.free.gaps, exact, rtol=0, atol=SAME_GAP)
    assert mps.ep_free_phases == len(X)


@pytest.mark.slow  # ~25 s each; the modes' counts are also checked on ep_gradient calls in the default run
@pytest.mark.parametrize("name", SYSTEMS)
def test_fit_on_mps_counts_the_gap_checks_each_mode_names(name):
    """One epoch of 4 samples in minibatches of 2: "ep" checks 4, "first" 2, k = 3 the EP free phases 0
    and 3, "none" none (no gap known: no batch_gap_checks, no batch_min_gap); every checked gap is one of
    the exact ones (the smallest of all 4 for "ep"; SGD at rate 1e-12 keeps the params, so the exact gaps
    of the start are those of both minibatches)."""
    make, X = SYSTEMS[name]
    dense = make("dense")
    params = dense.init_params(1)
    labels = np.arange(len(X)) % 2
    exact = dense_gaps(dense, params, X)
    for mode, count in (("ep", 4), ("first", 2), (3, 2), ("none", None)):
        final = qp.fit(make("mps", gap_check=mode), (X, labels), params=params, epochs=1, batch_size=2, optimizer="sgd",
                       learning_rate=1e-12, beta=0.01, estimator="positive", progress=False).final
        assert final.get("batch_gap_checks") == count, mode
        if count is None:
            assert "batch_min_gap" not in final
        elif mode == "ep":
            assert final["batch_min_gap"] == pytest.approx(exact.min(), abs=SAME_GAP)
        else:
            assert np.min(np.abs(exact - final["batch_min_gap"])) < SAME_GAP, mode


def test_near_degenerate_tfim_chain_on_mps_warns():
    """An ordered chain (J = 1) in a tiny transverse field (Gamma = 0.1), no fields (b = 0, inputs 0):
    its two ordered states split by ~2 Gamma^10 (dense eigh: < 1e-8, below gap_tol = 1e-6)."""
    options = {"gamma": 0.1, "j_init": 1.0, "j_std": 0.0, "init_std": 0.0}
    net, X = tfim_chain("mps", **options), np.zeros((2, 1))
    params = net.init_params(0)
    exact = dense_gaps(tfim_chain("dense", **options), params, X)
    assert exact.max() < 1e-8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = qp.fit(net, (X, np.array([0, 1])), params=params, epochs=1, batch_size=2, learning_rate=0.01, beta=0.01,
                         estimator="positive", progress=False).history
    degenerate = [w for w in caught if issubclass(w.category, DegenerateGroundStateWarning)]
    assert degenerate and "is below gap_tol=1.0e-06" in str(degenerate[0].message)
    assert history[-1]["batch_gap_checks"] == 2 and history[-1]["batch_min_gap"] < 1e-6


@pytest.mark.slow
def test_a_run_resumed_from_a_checkpoint_checks_the_samples_a_straight_run_does(tmp_path):
    """gap_check = 2 over 3 samples an epoch (batch 1): the straight run checks EP free phases 0, 2 | 4,
    i.e. 2 in epoch 1 and 1 in epoch 2; the count of EP free phases travels in the checkpoint, so the
    resumed run's epoch 2 is the same (counting afresh, it would check phases 0 and 2 of epoch 2)."""
    X, labels = np.array([[1.0], [-1.0], [0.5]]), np.array([0, 1, 0])
    net = TFIMChain(8, solver="mps", gap_check=2)
    options = {"epochs": 2, "batch_size": 1, "learning_rate": 0.05, "beta": 0.01, "estimator": "positive", "seed": 3,
               "progress": False}
    straight = qp.fit(net, (X, labels), **options)
    assert [h["batch_gap_checks"] for h in straight.history] == [2, 1]
    path = tmp_path / "checkpoint.npz"
    qp.fit(net, (X, labels), checkpoint=path, **{**options, "epochs": 1})
    assert load_checkpoint(path)["system_state"] == {"ep_free_phases": 3}
    resumed = qp.fit(net, (X, labels), checkpoint=path, resume=True, **options)
    assert net.ep_free_phases == 0  # fit trains a copy
    without_seconds = [[{k: v for k, v in h.items() if k != "seconds"} for h in run.history] for run in (straight, resumed)]
    assert without_seconds[0] == without_seconds[1]
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])


@pytest.mark.parametrize("name", [name for name, spec in REGISTRY.items()])
def test_every_registered_system_refuses_a_bad_gap_check_by_name(name):
    """Those that take the option (tfim_chain, tfim_sites, sensor) name its choices; the others refuse it."""
    takes = "gap_check" in REGISTRY[name].options
    with pytest.raises(ValueError, match=r"gap_check must be one of" if takes else r"does not use option\(s\) \['gap_check'\]"):
        build(name, 2, 1, 3, gap_check="sometimes")


@pytest.mark.parametrize("bad", ["every", 0, 2.5, True])
def test_spin_systems_built_directly_refuse_a_bad_gap_check_by_name(bad):
    match = r"gap_check must be one of \('ep', 'first', 'all', 'none'\) or an integer k >= 1"
    builders = [lambda: TFIMChain(10, solver="mps", gap_check=bad), lambda: SiteChain(4, 4, gap_check=bad),
                lambda: chain_sensor("annni", n_chain=4, n_sensors=1, gap_check=bad),
                lambda: qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], gap_check=bad),
                lambda: qp.pauli_system(2, [qp.Term("Z0 Z1", param="J", index=(0,)), qp.Term("X0")], {"J": (1,)}, ["Z1"],
                                        gap_check=bad)]
    for make in builders:
        with pytest.raises(ValueError, match=match):
            make()
