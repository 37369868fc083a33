"""The comparison harness: every system on every task, with fixed or equally tuned settings.

For each (task, system): a setting, either the same fixed one for all (``tune=False``: ``beta``,
``estimator``, Adam at ``learning_rate``, the size closest to the task's parameter target), or
each system's best from an equal Optuna search on a validation split (``tune=True``,
comparison.tuning: ``trials`` trials of ``trial_epochs`` epochs each; on digits64 of up to
``epochs`` under Hyperband, from the system's preset: ``search_job``). Then for every seed the
setting is trained on the whole training split with ``qeqprop.train.fit`` (seeds vary the
initialisation and minibatch order; the data split is fixed by ``data_seed``) and after every
epoch (and at initialisation) the harness measures on a fixed probe batch B of training samples

    gradient fidelity   cos(g_EP, g_ref) = g_EP . g_ref / (|g_EP| |g_ref|),
                        rel_err = |g_EP - g_ref| / |g_ref|,
    with g = 1/|B| sum_(x,y in B) dL/dtheta (EP estimate vs exact reference gradient),
    equilibration cost  solver iterations (where the state exposes them) and wall seconds
                        per free-phase equilibrium.

Test accuracy is summarised over seeds by its mean and 95% Student-t interval (comparison.stats),
and per task the gap between the best quantum and the best classical system by a Welch interval.
The jobs (one per search, one per training run) run serially or on Dask and are stored as they
finish, so an interrupted comparison resumes (comparison.jobs).
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..datasets import Dataset
from ..ep import check_estimator, flatten_grad, relative_error
from ..train import fit, minibatch_gradient, targets_for
from ..validation import check_beta, check_int
from .jobs import JobStore, job_key, run_jobs, task_data
from .stats import CONFIDENCE, t_interval, welch_interval
from .systems import (
    AVAILABLE,
    DESCRIPTIONS,
    QUANTUM,
    SYSTEMS,
    Unsupported,
    build,
    configure,
    fit_options,
)
from .tasks import TASKS, VALIDATION_FRACTION, check_names
from .tuning import MULTI_FIDELITY, equilibrations, search_space, start_setting

SEARCH_SEED = 1000  # seeds the searches; distinct from the retraining seeds 0..S-1
TIMINGS = ("seconds", "seconds_per_equilibrium", "train_seconds", "tuning_seconds", "wall_seconds")


def _interval(values: list[float]) -> dict:
    """{"mean", "low", "high"} of the t-interval over seeds (low/high None for one seed)."""
    ci = t_interval(values, CONFIDENCE)
    return {"mean": ci.mean, "low": ci.low, "high": ci.high}


def _defined(runs: list[dict], key: str) -> list[list[float]]:
    """Per run, the fidelity records' ``key`` at the epochs where it is defined (runs with none left out)."""
    return [v for r in runs if (v := [f[key] for f in r["fidelity"] if f[key] is not None])]


@dataclass
class ComparisonReport:
    """Settings, one record per (task, system, seed) run, the searches (``tuning[task][system]``:
    comparison.tuning.tune's result), the skipped pairs with reasons, and the runs that stopped with
    an error (e.g. a solver that did not converge) with its message."""

    settings: dict
    runs: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)

    def runs_of(self, task: str, system: str) -> list[dict]:
        return [r for r in self.runs if r["task"] == task and r["system"] == system]

    def summary(self) -> list[dict]:
        """Per (task, system): parameter count, the setting, test and train accuracy as mean with the
        95% t-interval over seeds (``*_low``, ``*_high``), mean fidelity and cost over seeds, training
        seconds and equilibrations per run, and the search's seconds, equilibrations and chosen
        trial's validation accuracy (tuned comparisons)."""
        rows = []
        for task in self.settings["tasks"]:
            for system in self.settings["systems"]:
                runs = self.runs_of(task, system)
                if not runs:
                    continue
                row = {"task": task, "system": system, "n_params": runs[0]["n_params"], "seeds": len(runs),
                       "setting": runs[0].get("setting")}

                for key in ("test_accuracy", "train_accuracy"):
                    ci = _interval([r["history"][-1][key] for r in runs])
                    row.update({key: ci["mean"], f"{key}_low": ci["low"], f"{key}_high": ci["high"]})
                means = {
                    "cosine": [np.mean(v) for v in _defined(runs, "cosine")],
                    "relative_error": [np.median(v) for v in _defined(runs, "relative_error")],
                    "seconds_per_equilibrium": [np.mean([f["seconds_per_equilibrium"] for f in r["fidelity"]]) for r in runs],
                    "train_seconds": [r["history"][-1]["seconds"] for r in runs],
                    "equilibrations": [r["equilibrations"] for r in runs if "equilibrations" in r],
                }
                iterations = [f["iterations"] for r in runs for f in r["fidelity"] if f["iterations"] is not None]
                means["iterations"] = [float(np.mean(iterations))] if iterations else []
                for key, values in means.items():
                    row[key] = float(np.mean(values)) if values else None
                search = self.tuning.get(task, {}).get(system)
                if search is not None:
                    chosen = next((t for t in search["trials"] if t["number"] == search["best"]), None)
                    row.update({"tuning_seconds": search["seconds"], "tuning_equilibrations": search["equilibrations"],
                                "val_accuracy": None if chosen is None else chosen["val_accuracy"]})
                rows.append(row)
        return rows

    def gaps(self) -> list[dict]:
        """Per task: best quantum minus best classical system (highest mean test accuracy of each
        kind), with the 95% Welch interval of the difference over their seeds."""
        gaps = []
        for task in self.settings["tasks"]:
            best = {}
            for system in self.settings["systems"]:
                runs = self.runs_of(task, system)
                if runs:
                    kind = "quantum" if system in QUANTUM else "classical"
                    accuracies = [r["history"][-1]["test_accuracy"] for r in runs]
                    if kind not in best or np.mean(accuracies) > np.mean(best[kind][1]):
                        best[kind] = (system, accuracies)
            if len(best) == 2:
                ci = welch_interval(best["quantum"][1], best["classical"][1], CONFIDENCE)
                gaps.append({"task": task, "quantum": best["quantum"][0], "classical": best["classical"][0],
                             "difference": ci.mean, "low": ci.low, "high": ci.high})
        return gaps

    def to_dict(self) -> dict:
        runs = [{k: v for k, v in run.items() if k != "params"} for run in self.runs]
        return {"settings": self.settings, "machine": self.machine, "summary": self.summary(), "gaps": self.gaps(),
                "tuning": self.tuning, "skipped": self.skipped, "failed": self.failed, "runs": runs}


def probe_metrics(system, params, x, y, beta: float, estimator: str) -> dict:
    """Gradient fidelity and equilibration cost on the probe batch (x, y) (module docstring)."""
    # y: cost targets already (targets_for); task="regression" passes them on unchanged
    ep = flatten_grad(minibatch_gradient(system, params, x, y, estimator=estimator, beta=beta, task="regression")[0])
    exact = flatten_grad(minibatch_gradient(system, params, x, y, gradient="reference", task="regression")[0])
    norms = np.linalg.norm(ep) * np.linalg.norm(exact)
    start = time.perf_counter()
    iterations = [system.diagnostics(system.equilibrate(params, xi)).get("iterations") for xi in x]
    seconds = (time.perf_counter() - start) / len(x)
    iterations = [i for i in iterations if i is not None]
    return {
        "cosine": float(ep @ exact / norms) if norms > 0 else None,  # both undefined for a zero gradient
        "relative_error": relative_error({"g": ep}, {"g": exact}) if np.any(exact) else None,
        "iterations": float(np.mean(iterations)) if iterations else None,
        "seconds_per_equilibrium": seconds,
    }


def machine_info(scheduler=None, workers: int | None = None) -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "scheduler": "serial" if scheduler is None else str(scheduler), "workers": workers}


def compare(
    systems: Sequence[str] = SYSTEMS,
    tasks: Sequence[str] = ("xor", "phases"),
    seeds: int | Sequence[int] = 3,
    *,
    epochs: int = 10,
    beta: float = 0.05,
    estimator: str = "centered",
    learning_rate: float = 0.05,
    batch_size: int = 16,
    probe_size: int = 8,
    tune: bool = False,
    trials: int = 20,
    trial_epochs: int | None = None,
    search_seed: int = SEARCH_SEED,
    validation_fraction: float = VALIDATION_FRACTION,
    data_seed: int = 0,
    scheduler=None,
    workers: int | None = None,
    out: str | Path | None = None,
    keep_params: bool = True,
    progress: bool = True,
) -> ComparisonReport:
    """Train every system in ``systems`` on every task in ``tasks`` for each seed (an int K means
    seeds 0..K-1) for ``epochs`` epochs; returns a ComparisonReport (module docstring).

    Settings: ``tune=False``: centered (or ``estimator``) EP at ``beta``, Adam at ``learning_rate``,
    one for all systems. ``tune=True``: per (task, system) an Optuna search of ``trials`` trials of
    ``trial_epochs`` (default ``epochs``) epochs on ``validation_fraction`` of the training split
    (sampler, split and trial seeds: ``search_seed``), then its chosen setting for every seed.
    ``batch_size`` is every trial's and run's minibatch size, except on tasks whose search chooses it
    (comparison.tuning.TASK_CHOICES, with the learning-rate schedule and the feature scaling).

    ``systems`` defaults to comparison.systems.SYSTEMS; any registered system (AVAILABLE) may be
    named. ``scheduler``: None (serial), "local" (a LocalCluster of ``workers`` processes), a Dask
    scheduler address or a distributed.Client (comparison.jobs). ``out``: a folder where every
    finished job is stored (``out``/jobs) and reused by a later call (resume); None stores nothing.
    ``keep_params`` keeps the trained parameters in the runs (for phase-diagram plots; not written
    to compare.json)."""
    systems = check_names("systems", systems, AVAILABLE)
    tasks = check_names("tasks", tasks, TASKS)
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
        seeds = list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    epochs, probe_size, batch_size = check_int("epochs", epochs), check_int("probe_size", probe_size), check_int("batch_size", batch_size)
    check_estimator(estimator)
    beta = check_beta(beta)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    settings = {"systems": systems, "tasks": tasks, "seeds": seeds, "epochs": int(epochs), "batch_size": int(batch_size),
                "probe_size": int(probe_size), "optimizer": "adam", "data_seed": int(data_seed), "confidence": CONFIDENCE,
                "mode": "tuned" if tune else "fixed", "descriptions": {s: DESCRIPTIONS[s] for s in systems}}
    if tune:
        settings.update({"trials": check_int("trials", trials), "search_seed": int(search_seed),
                         "trial_epochs": check_int("trial_epochs", epochs if trial_epochs is None else trial_epochs),
                         "validation_fraction": float(validation_fraction)})
    else:
        settings.update({"beta": beta, "estimator": estimator, "learning_rate": float(learning_rate)})
    report = ComparisonReport(settings, machine=machine_info(scheduler, workers))
    pairs = []
    for task in tasks:
        data = task_data(task, int(data_seed))
        for name in systems:
            try:
                build(name, task, data.n_features, data.n_classes)
            except Unsupported as exc:
                report.skipped.append({"task": task, "system": name, "reason": str(exc)})
            else:
                pairs.append((task, name))

    def train_job(task: str, name: str, seed: int, setting: dict) -> dict:
        return {"kind": "train", "task": task, "system": name, "seed": seed, "data_seed": int(data_seed), "setting": setting,
                "epochs": int(epochs), "batch_size": int(batch_size), "probe_size": int(probe_size)}

    if tune:
        first = [search_job(task, name, data_seed=int(data_seed), trials=settings["trials"],
                            trial_epochs=settings["trial_epochs"], epochs=int(epochs), batch_size=int(batch_size),
                            search_seed=int(search_seed), validation_fraction=float(validation_fraction))
                 for task, name in pairs]
    else:
        fixed = {"learning_rate": float(learning_rate), "beta": beta, "estimator": estimator}
        first = [train_job(task, name, seed, fixed) for task, name in pairs for seed in seeds]

    def follow(job: dict, result: dict) -> list[dict]:  # a finished search starts its training runs
        if job["kind"] != "tune" or result.get("setting") is None:
            return []
        return [train_job(job["task"], job["system"], seed, result["setting"]) for seed in seeds]

    bar = tqdm(total=len(pairs) * (len(seeds) + bool(tune)), disable=not progress, desc="compare")

    counts = report.machine["jobs"] = {"computed": 0, "stored": 0}  # this call's, by where the result came from

    def advance(job: dict, fresh: bool) -> None:
        counts["computed" if fresh else "stored"] += 1
        bar.set_postfix_str(job_key(job) + ("" if fresh else " (stored)"))
        bar.update(1)

    try:
        done = run_jobs(first, follow, JobStore(None if out is None else Path(out) / "jobs"), scheduler=scheduler,
                        workers=workers, progress=advance)
    finally:
        bar.close()
    for task, name in pairs:
        if tune:
            search = done[job_key({"kind": "tune", "task": task, "system": name})]
            report.tuning.setdefault(task, {})[name] = search
            if search.get("setting") is None:
                report.failed.append({"task": task, "system": name, "seed": None,
                                      "error": search.get("error", "every trial of the search failed")})
                continue
        for seed in seeds:
            run = done[job_key({"kind": "train", "task": task, "system": name, "seed": seed})]
            if "error" in run:
                report.failed.append({"task": task, "system": name, "seed": seed, "error": run["error"]})
                continue
            run = dict(run)
            params = run.pop("params")
            if keep_params:
                run["params"] = {k: np.asarray(v, dtype=float) for k, v in params.items()}
            report.runs.append(run)
    return report


def search_job(task: str, name: str, *, data_seed: int, trials: int, trial_epochs: int, epochs: int, batch_size: int,
               search_seed: int, validation_fraction: float) -> dict:
    """The tune job of (task, system): ``trials`` trials of ``trial_epochs`` epochs; on the tasks
    searched multi-fidelity (comparison.tuning.MULTI_FIDELITY) trials of up to the retraining's
    ``epochs`` under Hyperband ("pruner"), starting from the system's preset where it has one ("start")."""
    job = {"kind": "tune", "task": task, "system": name, "data_seed": data_seed, "trials": trials, "epochs": trial_epochs,
           "batch_size": batch_size, "search_seed": search_seed, "validation_fraction": validation_fraction}
    if task in MULTI_FIDELITY:
        data = task_data(task, data_seed)
        job.update({"epochs": epochs, "pruner": "hyperband",
                    "start": start_setting(name, task, search_space(name, task, data.n_features, data.n_classes))})
    return job


def run_one(name: str, task: str, seed: int, data: Dataset, setting: dict, *, epochs: int, batch_size: int,
            probe_size: int) -> dict:
    """Train system ``name`` with ``setting`` (systems.configure and systems.fit_options: learning_rate,
    beta, estimator, and batch_size (default ``batch_size``) and lr_schedule where it has them) on
    ``data``'s training split with ``seed``; fidelity recorded through fit's callback. Returns a
    JSON-able run record (params as nested lists)."""
    system, n_params, params = configure(name, task, data.n_features, data.n_classes, setting, seed)
    options = fit_options(setting, batch_size)
    beta, estimator = options["beta"], options["estimator"]
    probe_x = data.x_train[:probe_size]
    probe_y = targets_for(system, data, data.y_train[:probe_size])
    fidelity = [{"epoch": 0, **probe_metrics(system, params, probe_x, probe_y, beta, estimator)}]

    def record(epoch, _, current):
        fidelity.append({"epoch": epoch, **probe_metrics(system, current, probe_x, probe_y, beta, estimator)})

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(system, data, params, epochs=epochs, seed=seed, progress=False, callback=record, **options)
    n_train, n_test = len(data.x_train), len(data.x_test)
    return {"task": task, "system": name, "seed": seed, "n_params": n_params, "setting": setting,
            "history": result.history, "fidelity": fidelity, "warnings": sorted({str(w.message)[:200] for w in caught}),
            "equilibrations": equilibrations(estimator, beta, epochs, n_train, n_train + n_test),
            "wall_seconds": time.perf_counter() - start,
            "params": {k: np.asarray(v, dtype=float).tolist() for k, v in result.params.items()}}
