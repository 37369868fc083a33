"""The comparison on Dask: a real LocalCluster of 2 workers gives the serial run's results, and
an interrupted or partly deleted run resumes from its stored jobs without redoing them."""

from __future__ import annotations

import json

import pytest

from qeqprop.comparison import compare, jobs
from qeqprop.comparison.harness import TIMINGS
from qeqprop.comparison.report import markdown_table, write_report
from qeqprop.comparison.stats import t_interval, welch_interval

distributed = pytest.importorskip("distributed")

SMALL = {"systems": ["tfim", "hopfield"], "tasks": ["xor"], "seeds": 2, "epochs": 1, "tune": True, "trials": 2,
         "trial_epochs": 1, "batch_size": 32, "probe_size": 4, "progress": False}


def untimed(value):
    """compare.json without its timings and machine section."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMINGS and k != "machine"}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def report_json(report, folder) -> dict:
    return untimed(json.loads(write_report(report, folder)["json"].read_text()))


def stamps(folder) -> dict[str, int]:
    """Modification times of the finished jobs' files (not of a search's partial state)."""
    return {p.name: p.stat().st_mtime_ns for p in (folder / "jobs").glob("*.json") if not p.name.endswith(".partial.json")}


@pytest.fixture(scope="module")
def address():
    """A real LocalCluster: 2 worker processes, one thread each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    report = compare(**SMALL, scheduler=None, out=out)
    return report_json(report, out), report


def test_dask_run_gives_the_serial_json_and_resumes_what_was_deleted(serial, address, tmp_path):
    reference, _ = serial
    assert len(reference["tuning"]["xor"]) == 2 and len(reference["runs"]) == 4 and not reference["failed"]
    assert all(len(search["trials"]) == 2 for search in reference["tuning"]["xor"].values())
    out = tmp_path / "dask"
    first = compare(**SMALL, scheduler=address, out=out)
    assert first.machine["jobs"] == {"computed": 6, "stored": 0}
    assert report_json(first, tmp_path / "r1") == reference
    before = stamps(out)
    assert sorted(before) == sorted(p.name for p in (tmp_path / "dask" / "jobs").glob("*.json")) and len(before) == 6
    deleted = ["tune-xor-hopfield.json", "train-xor-tfim-seed1.json"]
    for name in deleted:
        (out / "jobs" / name).unlink()
    again = compare(**SMALL, scheduler=address, out=out)
    # the search is redone and gives the same setting, so its training runs stay stored
    assert again.machine["jobs"] == {"computed": 2, "stored": 4}
    after = stamps(out)
    assert {k for k in after if after[k] != before[k]} == set(deleted)
    assert report_json(again, tmp_path / "r2") == reference


def test_an_interrupted_dask_run_resumes_from_its_stored_jobs(serial, address, tmp_path, monkeypatch):
    reference, _ = serial
    out = tmp_path / "run"
    original, saved = jobs.JobStore.save, []

    def interrupted(self, job, result):  # Ctrl-C in the driver after two jobs were stored
        if len(saved) == 2:
            raise KeyboardInterrupt
        original(self, job, result)
        saved.append(jobs.job_key(job))

    monkeypatch.setattr(jobs.JobStore, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare(**SMALL, scheduler=address, out=out)
    monkeypatch.setattr(jobs.JobStore, "save", original)
    kept = stamps(out)
    assert sorted(kept) == sorted(f"{k}.json" for k in saved) and not list((out / "jobs").glob(".*.tmp"))
    resumed = compare(**SMALL, scheduler=address, out=out)
    assert resumed.machine["jobs"] == {"computed": 4, "stored": 2}
    assert all(stamps(out)[name] == stamp for name, stamp in kept.items())
    assert report_json(resumed, tmp_path / "r") == reference
    assert not list((out / "jobs").glob("*.partial.json"))  # every finished search dropped its partial state


def test_a_changed_setting_is_recomputed_not_reused(tmp_path):
    """A stored job is reused only for the very same job: other epochs mean new training runs."""
    out, small = tmp_path / "run", {**SMALL, "systems": ["hopfield"], "seeds": 1}
    compare(**small, scheduler=None, out=out)
    changed = compare(**{**small, "epochs": 2}, scheduler=None, out=out)
    assert changed.machine["jobs"] == {"computed": 1, "stored": 1}
    assert [len(run["history"]) for run in changed.runs] == [2]
    with pytest.raises(ValueError, match="scheduler must be one of"):
        compare(**small, scheduler="cluster-please", out=None)


def test_tuned_report_shows_intervals_gaps_and_the_search_history(serial):
    reference, report = serial
    table = markdown_table(report)
    assert "| test acc [95% CI] |" in table and "| val acc |" in table and "2 Optuna TPE trials of 1 epochs" in table
    for row in report.summary():
        accuracies = [r["history"][-1]["test_accuracy"] for r in report.runs_of("xor", row["system"])]
        ci = t_interval(accuracies)
        assert (row["test_accuracy_low"], row["test_accuracy_high"]) == (ci.low, ci.high)
        assert f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]" in table
        search = reference["tuning"]["xor"][row["system"]]
        assert row["setting"] == search["setting"] == search["trials"][search["best"]]["params"]
        assert all({"params", "val_accuracy", "val_loss", "equilibrations"} <= set(t) for t in search["trials"])
        assert row["equilibrations"] > 0 and row["n_params"] > 0
    (gap,) = report.gaps()
    tfim = [r["history"][-1]["test_accuracy"] for r in report.runs_of("xor", "tfim")]
    hopfield = [r["history"][-1]["test_accuracy"] for r in report.runs_of("xor", "hopfield")]
    assert (gap["quantum"], gap["classical"]) == ("tfim", "hopfield")
    assert (gap["low"], gap["high"]) == (welch_interval(tfim, hopfield).low, welch_interval(tfim, hopfield).high)
    assert "Gap on xor: best quantum (tfim) minus best classical (hopfield)" in table
