"""The comparison's ``digits64`` task: all 64 pixels, each system at the size of its issue-19 preset."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from qeqprop.cli_config import read_preset
from qeqprop.comparison import compare, harness, jobs, tuning
from qeqprop.comparison.report import markdown_table, readme_block
from qeqprop.comparison.systems import (
    MAX_HIDDEN,
    MAX_QUBITS,
    MAX_SPINS,
    SYSTEMS,
    TARGET_PARAMS,
    TFIM_DIGITS64_HIDDEN,
    Unsupported,
    _options,
    build,
    configure,
    hidden_cap,
    max_hidden,
)
from qeqprop.comparison.tasks import SCALINGS, TASKS, load_task
from qeqprop.comparison.tuning import search_space

# system -> its issue-19 preset on digits (README, classical-simulators table; digits-tfim for the TFIM)
PRESETS = {"hopfield": "hopfield-digits", "resistive": "freqprop-digits", "phase_oscillators": "oscillators-digits",
           "ising": "ising-digits", "tfim": "digits-tfim"}
INPUT_UNITS = {"hopfield": 64, "phase_oscillators": 64, "resistive": 128}  # units that describe() counts for the inputs


def test_digits64_holds_all_64_standardized_pixels_on_the_digits_split():
    wide, narrow = load_task("digits64"), load_task("digits")
    assert "digits64" in TASKS and (wide.n_features, wide.n_classes) == (64, 10) and narrow.n_features == 8
    assert (len(wide.x_train), len(wide.x_test)) == (1257, 540)
    np.testing.assert_array_equal(wide.y_train, narrow.y_train)  # same images, same split
    np.testing.assert_array_equal(wide.y_test, narrow.y_test)
    varying = wide.x_train.std(axis=0) > 0
    assert varying.sum() >= 60  # the border pixels that are always 0 stay 0
    np.testing.assert_allclose(wide.x_train[:, varying].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(wide.x_train[:, varying].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(wide.x_train[:, ~varying], 0.0)


def test_digits64_budget_picks_each_presets_size():
    """Untuned (hidden None), every system gets the largest size its cap allows: the issue-19 preset's
    hidden size for the classical ones, MAX_HIDDEN for the spring networks without a preset, and the
    TFIM's time cap; the Ising machine runs 64 hidden spins exactly on its layered graph, while on
    ``digits`` its complete graph still stops at MAX_SPINS."""
    expected = {"hopfield": 256, "resistive": 128, "phase_oscillators": 64, "ising": 64, "elastic": MAX_HIDDEN,
                "qho": MAX_HIDDEN, "tfim": TFIM_DIGITS64_HIDDEN}
    assert set(expected) == set(SYSTEMS) - {"sensor"}
    for name, hidden in expected.items():
        system, n_params = build(name, "digits64", 64, 10)
        assert max_hidden(name, "digits64", 64, 10) == hidden_cap(name, "digits64") == hidden, name
        assert n_params == build(name, "digits64", 64, 10, hidden)[1] <= TARGET_PARAMS["digits64"], name
        assert system.describe()["units"] == INPUT_UNITS.get(name, 0) + hidden + 10, name
        if name in PRESETS and name != "tfim":
            assert hidden == read_preset(PRESETS[name])["hidden"], name
    assert build("hopfield", "digits64", 64, 10)[1] == TARGET_PARAMS["digits64"] == 64 * 256 + 256 * 10 + 256 + 10
    assert TFIM_DIGITS64_HIDDEN + 10 <= MAX_QUBITS and TFIM_DIGITS64_HIDDEN < read_preset("digits-tfim")["hidden"]
    ising = build("ising", "digits64", 64, 10)[0]
    assert ising.layered and ising.n_spins == 74 > MAX_SPINS
    assert not build("ising", "digits", 8, 10)[0].layered
    assert max_hidden("ising", "digits", 8, 10) + 10 <= MAX_SPINS
    with pytest.raises(Unsupported, match="more than 12 spins"):
        build("ising", "digits", 8, 10, hidden=3)
    with pytest.raises(Unsupported, match="quantum data only"):
        build("sensor", "digits64", 64, 10)


# the architecture options of the presets that differ from the registry's defaults: the task fixes them
PRESET_OPTIONS = {"ising": {"graph": "layered"}, "phase_oscillators": {"target_amplitude": 0.7},
                  "resistive": {"input_gain": 8.0}, "tfim": {"cost": "cross_entropy"}}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_digits64_search_space_reaches_the_issue19_setting(name):
    """The preset's learning rate, beta, estimator (centered where it names none: freqprop-digits trains
    with frequency propagation, which the comparison replaces by EP), init scale 1, hidden size (the
    TFIM's up to its time cap), searched physics knobs, batch size, learning-rate schedule and pixel
    scaling lie in the space, and the architecture options that set it apart from the registry's
    defaults are the ones the task fixes."""
    preset = read_preset(PRESETS[name])
    space = {dim.name: dim for dim in search_space(name, "digits64", 64, 10)}
    options = {**{k: preset[k] for k in ("graph", "cost") if k in preset}, **preset.get("option", {})}
    wanted = {"learning_rate": preset["lr"], "beta": preset["beta"], "estimator": preset.get("estimator", "centered"),
              "init_scale": 1.0, "hidden": min(preset["hidden"], hidden_cap(name, "digits64")),
              "batch_size": preset["batch-size"], "lr_schedule": preset.get("lr-schedule", "constant"),
              "scaling": preset.get("scaling", "standard"), **{k: v for k, v in options.items() if k in space}}
    assert set(wanted) <= set(space)
    for key, value in wanted.items():
        dim = space[key]
        assert value in dim.choices if dim.kind == "choice" else dim.low <= value <= dim.high, (key, value)
    # the multi-fidelity search's first trial is this setting, the options the preset leaves unset at their defaults
    defaults = tuning.OPTION_DEFAULTS.get(name, {})
    assert tuning.start_setting(name, "digits64", list(space.values())) == {key: {**defaults, **wanted}[key] for key in space}
    system = configure(name, "digits64", 64, 10, {"hidden": 1}, 0)[0]
    for option, value in defaults.items():  # OPTION_DEFAULTS are the systems' own
        assert inspect.signature(type(system).__init__).parameters[option].default == value, option
    assert hidden_cap(name, "digits64") == (TFIM_DIGITS64_HIDDEN if name == "tfim" else preset["hidden"])
    fixed = _options(name, "digits64", {})
    for key, value in PRESET_OPTIONS.get(name, {}).items():
        assert options[key] == value == fixed[key], key


@pytest.mark.slow  # ~15 s: a Hopfield network of 256 hidden nodes and a 64-hidden Ising machine (their presets' first trials)
def test_a_tiny_tuned_comparison_on_digits64():
    """Two trials of one epoch and one retraining epoch for the Hopfield network (up to 256 hidden) and the
    layered Ising machine (up to 64 hidden spins): the searched sizes stay in their caps, the report's rows
    state the parameter counts of the chosen sizes, and the README block says what digits64 is."""
    report = compare(["hopfield", "ising"], ["digits64"], seeds=1, epochs=1, batch_size=64, probe_size=2, tune=True,
                     trials=2, trial_epochs=1, search_seed=3, progress=False, scheduler=None)
    assert not report.failed and not report.skipped
    rows = {row["system"]: row for row in report.summary()}
    assert set(rows) == {"hopfield", "ising"}
    for name, row in rows.items():
        search = report.tuning["digits64"][name]
        assert [d["high"] for d in search["space"] if d["name"] == "hidden"] == [hidden_cap(name, "digits64")]
        assert len(search["trials"]) == 2 and all(t["state"] == "COMPLETE" for t in search["trials"])
        assert row["n_params"] == build(name, "digits64", 64, 10, row["setting"]["hidden"])[1]
        assert 0.0 <= row["test_accuracy"] <= 1.0 and math.isfinite(row["cosine"])
    # one epoch at a setting drawn at random already learns: chance is 0.1 (this seeded run gives 0.87; the
    # default search seed 1000 draws T = 0.27 and a rate of 0.07 for it, which gives 0.09)
    assert rows["ising"]["test_accuracy"] > 0.3
    table = markdown_table(report)
    assert f"| digits64 | hopfield | {rows['hopfield']['n_params']} |" in table
    assert "batch 64 (searched as well on digits64: batch size, learning-rate schedule, pixel scaling)" in table
    assert ("On digits64 the trials run up to the retraining's 1 epoch instead, stopped early by Hyperband (first rung "
            "after 1 epoch, 1 in 3 kept per rung) and chosen at their last epoch") in table
    assert "`digits64` is the same images and split with all 64 pixels standardized" in readme_block(report, "qeqprop compare")


def test_digits64_loads_either_pixel_scaling_on_one_split():
    """scaling "unit" divides the pixels by 16; the split (rows and order) is the default's, whose
    pixels are the same images standardized by the training statistics; other tasks refuse a scaling."""
    standard, unit = load_task("digits64"), load_task("digits64", scaling="unit")
    assert SCALINGS["digits64"][0] == "standard"
    np.testing.assert_array_equal(unit.y_train, standard.y_train)
    np.testing.assert_array_equal(unit.y_test, standard.y_test)
    raw = 16.0 * unit.x_train
    assert unit.x_train.min() == 0.0 and unit.x_train.max() == 1.0 and np.array_equal(raw, np.round(raw))
    spread = raw.std(axis=0)
    np.testing.assert_allclose((raw - raw.mean(axis=0)) / np.where(spread > 0, spread, 1.0), standard.x_train, atol=1e-12)
    for task in ("digits", "xor"):
        with pytest.raises(ValueError, match=f"scaling 'unit' does not apply to task '{task}'"):
            load_task(task, scaling="unit")


def _spy(monkeypatch, module) -> list[dict]:
    """Record every call of ``module.fit`` (its training inputs and keyword arguments), then run it."""
    calls, original = [], module.fit

    def spy(system, data, params, **kwargs):
        x, y = (data.x_train, data.y_train) if hasattr(data, "x_train") else data
        calls.append({"x": np.asarray(x), "y": np.asarray(y), **kwargs})
        return original(system, data, params, **kwargs)

    monkeypatch.setattr(module, "fit", spy)
    return calls


def test_the_searched_batch_size_schedule_and_scaling_reach_every_trial(monkeypatch):
    """On digits64 each trial trains at its own batch size, schedule and pixel scaling: fit gets the
    trial's batch_size and lr_schedule and the fitting samples at the trial's scaling, the same samples
    (and validation samples) at either scaling; without ``scaled`` the search refuses to start."""
    data = load_task("digits64")
    calls = _spy(monkeypatch, tuning)
    result = tuning.tune("elastic", "digits64", data, trials=4, epochs=1, seed=2,
                         scaled=lambda scaling: load_task("digits64", scaling=scaling))
    space = {d["name"]: d for d in result["space"]}
    assert {"batch_size", "lr_schedule", "scaling"} <= set(space) and space["batch_size"]["choices"] == (16, 20, 32)
    assert len(calls) == 4 and all(t["state"] == "COMPLETE" for t in result["trials"])
    for call, trial in zip(calls, result["trials"]):
        params = trial["params"]
        assert (call["batch_size"], call["lr_schedule"]) == (params["batch_size"], params["lr_schedule"])
        assert (call["x"].min() >= 0.0) == (params["scaling"] == "unit")  # standardized pixels go negative
        np.testing.assert_array_equal(call["y"], calls[0]["y"])
        np.testing.assert_array_equal(call["validation"][1], calls[0]["validation"][1])
    assert {t["params"]["scaling"] for t in result["trials"]} == {"standard", "unit"}  # this seed draws both
    with pytest.raises(ValueError, match="scaled must give digits64's data"):
        tuning.tune("elastic", "digits64", data, trials=1, epochs=1)


def test_a_chosen_batch_size_schedule_and_scaling_change_the_training_run(monkeypatch):
    """A training job whose setting has batch_size, lr_schedule and scaling trains with them (fit's
    arguments, the unit pixels, half the minibatches of batch 16 at 32) and ends elsewhere than the
    same job at the defaults (the job's batch size, a constant rate, standardized pixels)."""
    calls = _spy(monkeypatch, harness)
    base = {"learning_rate": 0.01, "beta": 0.1, "estimator": "centered", "hidden": 4}
    job = {"kind": "train", "task": "digits64", "system": "hopfield", "seed": 0, "data_seed": 0, "epochs": 1,
           "batch_size": 16, "probe_size": 2}
    plain = jobs.execute({**job, "setting": base})[1]
    chosen = jobs.execute({**job, "setting": {**base, "batch_size": 32, "lr_schedule": "cosine", "scaling": "unit"}})[1]
    assert [(c["batch_size"], c["lr_schedule"], c["x"].min() >= 0.0) for c in calls] == [(16, "constant", False),
                                                                                           (32, "cosine", True)]
    assert (plain["history"][-1]["step"], chosen["history"][-1]["step"]) == (math.ceil(1257 / 16), math.ceil(1257 / 32))
    assert not np.allclose(plain["params"]["W1"], chosen["params"]["W1"])


def test_digits64_searches_are_multi_fidelity_from_the_presets_and_other_tasks_keep_their_jobs():
    """A digits64 search job trains trials of up to the retraining's epochs under Hyperband, from the
    system's preset (none for the qho); another task's job is the fixed-epoch one the stored runs
    recorded (no new keys: the job store still finds them); the settings line says so."""
    common = {"data_seed": 0, "trials": 20, "trial_epochs": 5, "epochs": 15, "batch_size": 16, "search_seed": 1000,
              "validation_fraction": 0.25}
    job = harness.search_job("digits64", "ising", **common)
    assert (job["epochs"], job["pruner"]) == (15, "hyperband")
    assert job["start"]["hidden"] == 64 and job["start"]["batch_size"] == 32 and job["start"]["temperature"] == 1.0
    assert harness.search_job("digits64", "qho", **common)["start"] is None
    assert harness.search_job("digits64", "tfim", **common)["start"]["hidden"] == TFIM_DIGITS64_HIDDEN
    assert harness.search_job("iris", "ising", **common) == {
        "kind": "tune", "task": "iris", "system": "ising", "data_seed": 0, "trials": 20, "epochs": 5, "batch_size": 16,
        "search_seed": 1000, "validation_fraction": 0.25}
    with pytest.raises(ValueError, match="outside tfim's search space on digits64"):
        tuning.start_setting("tfim", "digits64", [tuning.Dimension("learning_rate", "log", 0.1, 0.3)])
