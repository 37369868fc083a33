"""The comparison's equal tuning (Optuna on a validation split) and its confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from qeqprop.comparison import tuning
from qeqprop.comparison.stats import t_interval, welch_interval
from qeqprop.comparison.systems import TARGET_PARAMS, build, configure, max_hidden, scale_init
from qeqprop.comparison.tasks import load_task, validation_split


def test_t_interval_matches_scipy():
    values = np.array([0.91, 0.87, 0.95, 0.90, 0.93])
    ci = t_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert (ci.mean, ci.n) == (pytest.approx(values.mean(), abs=1e-15), 5)
    assert ci.low == pytest.approx(low, abs=1e-14) and ci.high == pytest.approx(high, abs=1e-14)
    assert t_interval(values, 0.99).half_width > ci.half_width
    one = t_interval([0.8])
    assert (one.mean, one.low, one.high, one.half_width) == (0.8, None, None, None)


def test_welch_interval_matches_scipy():
    a, b = np.array([0.95, 0.97, 0.96, 0.99, 0.94]), np.array([0.90, 0.80, 0.85, 0.88, 0.93, 0.86])
    ci = welch_interval(a, b)
    reference = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert ci.mean == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert ci.low == pytest.approx(reference.low, abs=1e-12) and ci.high == pytest.approx(reference.high, abs=1e-12)
    same = welch_interval([1.0, 1.0], [0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)
    with pytest.raises(ValueError, match="values must be one or more finite numbers"):
        t_interval([0.5, float("nan")])
    with pytest.raises(ValueError, match="confidence must be in"):
        welch_interval([1.0, 2.0], [1.0, 2.0], confidence=95)


def test_validation_split_is_stratified_seeded_and_leaves_test_alone():
    data = load_task("xor")  # noisy points: no duplicate rows
    (x_fit, y_fit), (x_val, y_val) = validation_split(data, 0.25, seed=3)
    assert len(x_fit) + len(x_val) == len(data.x_train) and len(x_val) == math.ceil(0.25 * len(data.x_train))
    rows = {tuple(r) for r in data.x_train}
    assert {tuple(r) for r in x_fit} | {tuple(r) for r in x_val} == rows
    assert not {tuple(r) for r in x_fit} & {tuple(r) for r in x_val}
    assert not rows & {tuple(r) for r in data.x_test}
    train_share = np.bincount(data.y_train) / len(data.y_train)
    assert np.max(np.abs(np.bincount(y_val, minlength=2) / len(y_val) - train_share)) < 0.05
    again = validation_split(data, 0.25, seed=3)
    np.testing.assert_array_equal(again[1][0], x_val)
    assert not np.array_equal(validation_split(data, 0.25, seed=4)[1][0], x_val)
    with pytest.raises(ValueError, match="fraction must be in"):
        validation_split(data, 1.5)


def test_sizes_stay_within_the_task_budget_and_init_scale_spares_raw_entries():
    for name in ("tfim", "hopfield", "resistive", "qho"):
        largest = max_hidden(name, "xor", 2, 2)
        assert build(name, "xor", 2, 2, largest)[1] <= TARGET_PARAMS["xor"] < build(name, "xor", 2, 2, largest + 1)[1]
    _, _, plain = configure("qho", "xor", 2, 2, {"hidden": 3}, seed=5)
    _, _, scaled = configure("qho", "xor", 2, 2, {"init_scale": 3.0, "hidden": 3}, seed=5)
    np.testing.assert_array_equal(scaled["k_raw"], plain["k_raw"])
    np.testing.assert_allclose(scaled["W"], 3.0 * plain["W"], rtol=1e-15)
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        scale_init(plain, -1.0)


def _untimed(result: dict) -> list[dict]:
    """A search's trial records without their timings."""
    return [{k: v for k, v in t.items() if k != "seconds"} for t in result["trials"]]


@pytest.fixture(scope="module")
def xor():
    return load_task("xor")


def test_tuning_is_seeded_stays_in_its_space_and_never_sees_test(xor, monkeypatch):
    """Two searches with one seed give the same history; every trial's params lie in the space; the
    data handed to fit (training and validation) holds no test row; the chosen trial follows the rule."""
    test_rows = {tuple(r) for r in xor.x_test}
    seen = []
    original = tuning.fit

    def spy(system, data, params, *, validation, **kwargs):
        seen.extend(tuple(r) for r in (*data[0], *validation[0]))
        return original(system, data, params, validation=validation, **kwargs)

    monkeypatch.setattr(tuning, "fit", spy)
    first = tuning.tune("hopfield", "xor", xor, trials=3, epochs=1, seed=7)
    assert seen and not set(seen) & test_rows
    second = tuning.tune("hopfield", "xor", xor, trials=3, epochs=1, seed=7)
    assert _untimed(first) == _untimed(second) and len(first["trials"]) == 3
    assert [t["params"] for t in tuning.tune("hopfield", "xor", xor, trials=2, epochs=1, seed=8)["trials"]] != \
        [t["params"] for t in first["trials"][:2]]
    space = {d["name"]: d for d in first["space"]}
    assert set(space) == {"learning_rate", "beta", "estimator", "init_scale", "hidden"}
    for trial in first["trials"]:
        assert trial["state"] == "COMPLETE" and 0.0 <= trial["val_accuracy"] <= 1.0 and trial["equilibrations"] > 0
        for name, value in trial["params"].items():
            dim = space[name]
            assert value in dim["choices"] if dim["kind"] == "choice" else dim["low"] <= value <= dim["high"]
        assert trial["n_params"] <= TARGET_PARAMS["xor"]
    best = max(first["trials"], key=lambda t: (t["val_accuracy"], -t["val_loss"], -t["number"]))
    assert first["best"] == best["number"] and first["setting"] == best["params"]
    assert first["equilibrations"] == sum(t["equilibrations"] for t in first["trials"])


def test_a_failing_trial_is_recorded_and_left_out(xor, monkeypatch):
    original = tuning.fit
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("equilibrium did not converge")
        return original(*args, **kwargs)

    monkeypatch.setattr(tuning, "fit", flaky)
    result = tuning.tune("tfim", "xor", xor, trials=3, epochs=1, seed=0)
    states = [t["state"] for t in result["trials"]]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert result["trials"][1]["error"] == "equilibrium did not converge" and result["best"] != 1
    assert {d["name"] for d in result["space"]} >= {"gamma", "hidden", "init_scale"}
    with pytest.raises(ValueError, match="trials must be an integer >= 1"):
        tuning.tune("tfim", "xor", xor, trials=0, epochs=1)


def test_an_interrupted_search_resumes_trial_by_trial_with_the_straight_history(tmp_path, monkeypatch):
    """A search job stopped during its fourth trial leaves three trials and the sampler in
    <key>.partial.json; rerunning the job computes only the last two trials, and the history equals
    an uninterrupted search's (startup trials and TPE trials alike); the finished job drops the file."""
    from qeqprop.comparison import jobs

    job = {"kind": "tune", "task": "xor", "system": "tfim", "data_seed": 0, "trials": 5, "epochs": 1, "batch_size": 32,
           "search_seed": 3, "validation_fraction": 0.25}
    straight = jobs.execute(job)[1]
    store, original, calls = jobs.JobStore(tmp_path), tuning.fit, []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(tuning, "fit", stopped)
    with pytest.raises(KeyboardInterrupt):
        jobs.execute(job, str(tmp_path))
    assert [t["number"] for t in store.load_partial(job)["trials"]] == [0, 1, 2]
    assert store.load_partial({**job, "trials": 6}) is None  # another job: not resumed from this state
    calls.clear()
    resumed = jobs.execute(job, str(tmp_path))[1]
    assert len(calls) == 2
    assert _untimed(resumed) == _untimed(straight) and len(straight["trials"]) == 5
    assert (resumed["best"], resumed["setting"]) == (straight["best"], straight["setting"])
    store.save(job, resumed)
    assert store.load(job)["setting"] == resumed["setting"] and not store.partial_path(job).exists()
    monkeypatch.setattr(tuning, "fit", original)
    states = []
    tuning.tune("tfim", "xor", load_task("xor"), trials=3, epochs=1, seed=3, checkpoint=states.append)
    assert [len(state["trials"]) for state in states] == [1, 2, 3]
    with pytest.raises(ValueError, match="resume holds 3 finished trials, more than trials=2"):
        tuning.tune("tfim", "xor", load_task("xor"), trials=2, epochs=1, seed=3, resume=states[-1])


def test_a_multi_fidelity_search_stops_trials_early_and_chooses_at_the_last_epoch(xor):
    """pruner="hyperband": the start setting is trial 0; every trial reports its validation accuracy
    after each epoch ("curve"); a pruned trial stopped before the last epoch and scores its last
    report; a completed one trained every epoch; the chosen trial is a completed one (the best at the
    last epoch); the equilibrations count the epochs trained; a rerun gives the same history."""
    start = {"learning_rate": 0.05, "beta": 0.1, "estimator": "centered", "init_scale": 1.0, "hidden": 2}
    first = tuning.tune("hopfield", "xor", xor, trials=8, epochs=4, seed=5, pruner="hyperband", start=start)
    trials = first["trials"]
    assert trials[0]["params"] == start
    states = [t["state"] for t in trials]
    assert "PRUNED" in states and "COMPLETE" in states and "FAIL" not in states
    n_fit = len(validation_split(xor, 0.25, 5)[0][0])
    for t in trials:
        assert len(t["curve"]) == t["epochs"] and t["val_accuracy"] == t["curve"][-1]
        assert (t["epochs"] < 4) if t["state"] == "PRUNED" else (t["epochs"] == 4)
        assert t["equilibrations"] == tuning.equilibrations(t["params"]["estimator"], t["params"]["beta"], t["epochs"],
                                                            n_fit, len(xor.x_train))
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: (t["val_accuracy"], -t["val_loss"], -t["number"]))
    assert first["best"] == best["number"]
    assert _untimed(first) == _untimed(tuning.tune("hopfield", "xor", xor, trials=8, epochs=4, seed=5, pruner="hyperband",
                                                   start=start))
    with pytest.raises(ValueError, match="pruner must be one of"):
        tuning.tune("hopfield", "xor", xor, trials=2, epochs=2, pruner="median")


def test_an_interrupted_multi_fidelity_search_resumes_with_the_straight_history(xor):
    """A resumed multi-fidelity search re-enters the finished trials with their per-epoch reports and
    the pruner's rung records, so the remaining trials are pruned as in an uninterrupted search."""
    states = []
    straight = tuning.tune("hopfield", "xor", xor, trials=8, epochs=4, seed=5, pruner="hyperband", checkpoint=states.append)
    pruned = [t["number"] for t in straight["trials"] if t["state"] == "PRUNED"]
    assert pruned and pruned[-1] >= 4  # trials pruned after the resume point: the rung records are needed there
    assert all(t["rungs"] for t in straight["trials"])
    resumed = tuning.tune("hopfield", "xor", xor, trials=8, epochs=4, seed=5, pruner="hyperband", resume=states[3])
    assert _untimed(resumed) == _untimed(straight)
