"""The comparison harness: every system on every task with one learning rule and budget.

For each (task, system, seed): build the system from the registry (qeqprop.systems.registry)
at a comparable parameter count (comparison.systems), train it with ``qeqprop.train.fit``
(same estimator, beta, optimizer, learning rate, batch size and epochs for all), and after
every epoch (and at initialisation) measure on a fixed probe batch B of training samples

    gradient fidelity   cos(g_EP, g_ref) = g_EP . g_ref / (|g_EP| |g_ref|),
                        rel_err = |g_EP - g_ref| / |g_ref|,
    with g = 1/|B| sum_(x,y in B) dL/dtheta (EP estimate vs exact reference gradient),
    equilibration cost  solver iterations (where the state exposes them) and wall seconds
                        per free-phase equilibrium.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
import optax
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..ep import check_estimator, flatten_grad, relative_error
from ..train import fit, minibatch_gradient, targets_for
from ..validation import check_beta, check_int
from .systems import AVAILABLE, DESCRIPTIONS, SYSTEMS, Unsupported, build
from .tasks import TASKS, check_names, load_task


@dataclass
class ComparisonReport:
    """Settings, one record per (task, system, seed) run, the skipped pairs with reasons, and the
    runs that stopped with an error (e.g. a solver that did not converge) with its message."""

    settings: dict
    runs: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def summary(self) -> list[dict]:
        """Per (task, system): parameter count and mean / std over seeds of the final metrics."""
        rows = []
        for task in self.settings["tasks"]:
            for system in self.settings["systems"]:
                runs = [r for r in self.runs if r["task"] == task and r["system"] == system]
                if not runs:
                    continue
                row = {"task": task, "system": system, "n_params": runs[0]["n_params"], "seeds": len(runs)}

                def defined(key: str) -> list[list[float]]:  # per run, the epochs where ``key`` is defined
                    return [v for r in runs if (v := [f[key] for f in r["fidelity"] if f[key] is not None])]

                finals = {
                    "train_accuracy": [r["history"][-1]["train_accuracy"] for r in runs],
                    "test_accuracy": [r["history"][-1]["test_accuracy"] for r in runs],
                    "cosine": [np.mean(v) for v in defined("cosine")],
                    "relative_error": [np.median(v) for v in defined("relative_error")],
                    "seconds_per_equilibrium": [np.mean([f["seconds_per_equilibrium"] for f in r["fidelity"]]) for r in runs],
                    "train_seconds": [r["history"][-1]["seconds"] for r in runs],
                }
                iterations = [f["iterations"] for r in runs for f in r["fidelity"] if f["iterations"] is not None]
                finals["iterations"] = [float(np.mean(iterations))] if iterations else []
                for key, values in finals.items():
                    row[key] = float(np.mean(values)) if values else None
                    row[f"{key}_std"] = float(np.std(values)) if values else None
                rows.append(row)
        return rows

    def to_dict(self) -> dict:
        runs = [{k: v for k, v in run.items() if k != "params"} for run in self.runs]
        return {"settings": self.settings, "machine": self.machine, "summary": self.summary(),
                "skipped": self.skipped, "failed": self.failed, "runs": runs}


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


def machine_info() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


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
    keep_params: bool = True,
    progress: bool = True,
    threads: int | None = 1,
) -> ComparisonReport:
    """Train every system in ``systems`` on every task in ``tasks`` for each seed (an int K
    means seeds 0..K-1) with centered (or ``estimator``) EP at ``beta``, Adam at
    ``learning_rate``, ``epochs`` epochs; returns a ComparisonReport. ``systems`` defaults to
    comparison.systems.SYSTEMS; any registered system (AVAILABLE) may be named. ``keep_params``
    stores the trained parameters (for phase-diagram plots; not written to JSON). ``threads`` caps BLAS threads during the runs (None: no cap).

    One ``epochs`` x ``batch_size`` budget, optimizer, ``beta`` and ``estimator`` serve every
    system; per-system hyperparameter tuning would break the comparison."""
    systems = check_names("systems", systems, AVAILABLE)
    tasks = check_names("tasks", tasks, TASKS)
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
        seeds = list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    epochs, probe_size = check_int("epochs", epochs), check_int("probe_size", probe_size)
    check_estimator(estimator)
    beta = check_beta(beta)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    settings = {"systems": systems, "tasks": tasks, "seeds": seeds, "epochs": int(epochs), "beta": beta,
                "estimator": estimator, "optimizer": "adam", "learning_rate": float(learning_rate),
                "batch_size": int(batch_size), "probe_size": int(probe_size),
                "descriptions": {s: DESCRIPTIONS[s] for s in systems}}
    report = ComparisonReport(settings, machine=machine_info())
    with threadpool_limits(threads):  # tiny matrices: BLAS threads only contend
        run_jobs(report, systems, tasks, seeds, progress, epochs=epochs, beta=beta, estimator=estimator,
                 learning_rate=learning_rate, batch_size=batch_size, probe_size=probe_size, keep_params=keep_params)
    return report


def run_jobs(report: ComparisonReport, systems, tasks, seeds, progress: bool, **budget) -> None:
    """Every (task, system, seed) run, appended to ``report`` (skips recorded with reasons)."""
    jobs = [(t, s, seed) for t in tasks for s in systems for seed in seeds]
    data_cache: dict = {}
    bar = tqdm(jobs, disable=not progress, desc="compare")
    for task, name, seed in bar:
        bar.set_postfix_str(f"{name} on {task}, seed {seed}")
        data = data_cache.setdefault((task, seed), load_task(task, seed=seed))
        try:
            system, n_params = build(name, task, data.n_features, data.n_classes)
        except Unsupported as exc:
            if seed == seeds[0]:
                report.skipped.append({"task": task, "system": name, "reason": str(exc)})
            continue
        try:
            report.runs.append(run_one(system, name, task, seed, n_params, data, **budget))
        except ValueError as exc:  # e.g. an equilibrium that did not converge: recorded, the other runs go on
            report.failed.append({"task": task, "system": name, "seed": seed, "error": str(exc)})


def run_one(system, name: str, task: str, seed: int, n_params: int, data, *, epochs: int, beta: float, estimator: str,
            learning_rate: float, batch_size: int, probe_size: int, keep_params: bool) -> dict:
    """Train one system on one task with one seed; fidelity recorded through fit's callback."""
    probe_x = data.x_train[:probe_size]
    probe_y = targets_for(system, data, data.y_train[:probe_size])
    params = system.init_params(np.random.default_rng(seed))
    fidelity = [{"epoch": 0, **probe_metrics(system, params, probe_x, probe_y, beta, estimator)}]

    def record(epoch, _, current):
        fidelity.append({"epoch": epoch, **probe_metrics(system, current, probe_x, probe_y, beta, estimator)})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(system, data, params, epochs=epochs, batch_size=batch_size, optimizer=optax.adam(learning_rate),
                     beta=beta, estimator=estimator, seed=seed, progress=False, callback=record)
    run = {"task": task, "system": name, "seed": seed, "n_params": n_params, "history": result.history,
           "fidelity": fidelity, "warnings": sorted({str(w.message)[:200] for w in caught})}
    if keep_params:
        run["params"] = result.params
    return run
