"""The comparison's ``digits64`` task: all 64 pixels, each system at the size of its issue-19 preset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qeqprop.cli_config import read_preset
from qeqprop.comparison import compare
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
    hidden_cap,
    max_hidden,
)
from qeqprop.comparison.tasks import TASKS, load_task
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
    TFIM's up to its time cap) and searched physics knobs lie in the space, and the architecture options
    that set it apart from the registry's defaults are the ones the task fixes. (The pixel scaling is
    the task's for every system: tasks module docstring.)"""
    preset = read_preset(PRESETS[name])
    space = {dim.name: dim for dim in search_space(name, "digits64", 64, 10)}
    options = {**{k: preset[k] for k in ("graph", "cost") if k in preset}, **preset.get("option", {})}
    wanted = {"learning_rate": preset["lr"], "beta": preset["beta"], "estimator": preset.get("estimator", "centered"),
              "init_scale": 1.0, "hidden": min(preset["hidden"], hidden_cap(name, "digits64")),
              **{k: v for k, v in options.items() if k in space}}
    assert set(wanted) <= set(space)
    for key, value in wanted.items():
        dim = space[key]
        assert value in dim.choices if dim.kind == "choice" else dim.low <= value <= dim.high, (key, value)
    assert hidden_cap(name, "digits64") == (TFIM_DIGITS64_HIDDEN if name == "tfim" else preset["hidden"])
    fixed = _options(name, "digits64", {})
    for key, value in PRESET_OPTIONS.get(name, {}).items():
        assert options[key] == value == fixed[key], key


def test_a_tiny_tuned_comparison_on_digits64():
    """Two trials of one epoch and one retraining epoch for the Hopfield network (up to 256 hidden) and the
    layered Ising machine (up to 64 hidden spins): the searched sizes stay in their caps, the report's rows
    state the parameter counts of the chosen sizes, and the README block says what digits64 is."""
    report = compare(["hopfield", "ising"], ["digits64"], seeds=1, epochs=1, batch_size=64, probe_size=2, tune=True,
                     trials=2, trial_epochs=1, progress=False, scheduler=None)
    assert not report.failed and not report.skipped
    rows = {row["system"]: row for row in report.summary()}
    assert set(rows) == {"hopfield", "ising"}
    for name, row in rows.items():
        search = report.tuning["digits64"][name]
        assert [d["high"] for d in search["space"] if d["name"] == "hidden"] == [hidden_cap(name, "digits64")]
        assert len(search["trials"]) == 2 and all(t["state"] == "COMPLETE" for t in search["trials"])
        assert row["n_params"] == build(name, "digits64", 64, 10, row["setting"]["hidden"])[1]
        assert 0.0 <= row["test_accuracy"] <= 1.0 and math.isfinite(row["cosine"])
    # one epoch at a setting drawn at random already learns: chance is 0.1 (this seeded run gives 0.48)
    assert rows["ising"]["test_accuracy"] > 0.3
    table = markdown_table(report)
    assert f"| digits64 | hopfield | {rows['hopfield']['n_params']} |" in table
    assert "`digits64` is the same images and split with all 64 pixels standardized" in readme_block(report, "qeqprop compare")
