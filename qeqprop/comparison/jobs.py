"""The comparison's jobs, their on-disk store, and where they run (serially or on Dask).

A job is a JSON-able dict, complete in itself (``execute`` needs nothing else)::

    {"kind": "tune",  "task", "system", <search budget>}             one Optuna study (comparison.tuning)
    {"kind": "train", "task", "system", "seed", "setting", <budget>}  one training run (harness.run_one) on
                                                                      the task's data at the setting's "scaling"

Each finished job is written to ``<out>/jobs/<key>.json`` as {"job": job, "result": result} the
moment it finishes (a temporary file moved into place with os.replace, so a killed run never
leaves half a file). A later run over the same folder reuses every stored job whose recorded job
equals the planned one and recomputes the rest: an interrupted run resumes where it stopped.
A search (hours for a large quantum learner) also resumes within itself: after every trial its
state is written to ``<out>/jobs/<key>.partial.json`` ({"job": job, "partial": state}, atomically;
comparison.tuning), a rerun of the job continues from it, and the finished job removes it. The state
holds the pickled Optuna sampler: resume only runs you wrote, with the same Optuna version.

Where the jobs run (``scheduler``):

    None                  serially in this process
    "local"               a ``distributed.LocalCluster`` started here: ``workers`` processes,
                          one thread each (jobs limit BLAS to one thread with threadpoolctl)
    "tcp://HOST:8786"     an existing Dask scheduler (its workers need qeqprop installed)
    a distributed.Client  that client

A tuning study is one job (its trials run one after another, so the TPE history is the same
wherever it runs); each (task, system, seed) training run is one job, submitted as soon as the
setting it trains is known. Results depend only on the job, never on where or in which order it
ran, so serial and Dask runs give the same results (timings aside).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from threadpoolctl import threadpool_limits

from ..datasets import Dataset
from .tasks import load_task

SCHEDULERS = ("None (serial)", "'local' (a LocalCluster)", "a scheduler address 'tcp://HOST:PORT'", "a distributed.Client")


def job_key(job: dict) -> str:
    """File stem of a job: tune-<task>-<system> or train-<task>-<system>-seed<k>."""
    key = f"{job['kind']}-{job['task']}-{job['system']}"
    return key + (f"-seed{job['seed']}" if job["kind"] == "train" else "")


class JobStore:
    """Finished jobs as JSON files in ``folder`` (module docstring); ``folder`` None keeps nothing."""

    def __init__(self, folder: str | Path | None):
        self.folder = None if folder is None else Path(folder)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, job: dict, suffix: str = ".json") -> Path | None:
        """The job's file (``suffix`` ".partial.json": its search's partial state); None without a folder."""
        return None if self.folder is None else self.folder / f"{job_key(job)}{suffix}"

    def partial_path(self, job: dict) -> Path | None:
        return self.path(job, ".partial.json")

    def _read(self, path: Path | None, job: dict, field: str):
        """``field`` of the file at ``path`` if it records this very ``job``, else None."""
        if path is None or not path.exists():
            return None
        stored = json.loads(path.read_text())
        return stored[field] if stored.get("job") == job else None

    def load(self, job: dict) -> dict | None:
        """The stored result of ``job``, or None (nothing stored, or stored for a different job)."""
        return self._read(self.path(job), job, "result")

    def load_partial(self, job: dict) -> dict | None:
        """The state an interrupted run of ``job`` left (module docstring), or None."""
        return self._read(self.partial_path(job), job, "partial")

    def save(self, job: dict, result: dict) -> None:
        """Write {"job", "result"} atomically and drop the job's partial state."""
        if self.folder is not None:
            _write_atomic(self.path(job), {"job": job, "result": result})
            self.partial_path(job).unlink(missing_ok=True)

    def save_partial(self, job: dict, state: dict) -> None:
        if self.folder is not None:
            _write_atomic(self.partial_path(job), {"job": job, "partial": state})


def _write_atomic(path: Path, content: dict) -> None:
    """``content`` as JSON at ``path``: a temporary file in its folder, then os.replace."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(content, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@lru_cache(maxsize=8)
def task_data(task: str, data_seed: int, scaling: str | None = None) -> Dataset:
    """The task's data split (at ``scaling``: tasks.load_task), loaded once per process."""
    return load_task(task, seed=data_seed, scaling=scaling)


def execute(job: dict, folder: str | None = None) -> tuple[dict, dict]:
    """(job, result) of one job, BLAS limited to one thread; a ValueError (a failed equilibrium, a
    setting the system refuses) becomes the result {"error": message}. ``folder``: the run's job
    store, where a search keeps its partial state after every trial and resumes from it."""
    from .harness import run_one
    from .tuning import tune

    task, data_seed = job["task"], job["data_seed"]
    with threadpool_limits(1):  # small matrices: BLAS threads only contend with the other workers
        try:
            if job["kind"] == "tune":
                store = JobStore(folder)
                result = tune(job["system"], task, task_data(task, data_seed), trials=job["trials"], epochs=job["epochs"],
                              batch_size=job["batch_size"], seed=job["search_seed"], fraction=job["validation_fraction"],
                              pruner=job.get("pruner"), start=job.get("start"),
                              scaled=lambda scaling: task_data(task, data_seed, scaling), resume=store.load_partial(job),
                              checkpoint=None if folder is None else lambda state: store.save_partial(job, state))
            else:
                data = task_data(task, data_seed, job["setting"].get("scaling"))
                result = run_one(job["system"], task, job["seed"], data, job["setting"], epochs=job["epochs"],
                                 batch_size=job["batch_size"], probe_size=job["probe_size"])
        except ValueError as exc:
            result = {"error": str(exc)}
    return job, result


def check_scheduler(scheduler):
    """``scheduler`` if it is one of SCHEDULERS (module docstring), else ValueError."""
    from distributed import Client

    if scheduler is None or scheduler == "local" or isinstance(scheduler, Client) or (
            isinstance(scheduler, str) and "://" in scheduler):
        return scheduler
    raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")


def _client(scheduler, workers: int | None):
    """(client, the cluster it started or None) for a checked, non-serial ``scheduler``."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        return scheduler, None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    return Client(scheduler), None


def run_jobs(jobs: Iterable[dict], follow: Callable[[dict, dict], list[dict]], store: JobStore, *,
             scheduler=None, workers: int | None = None, progress: Callable[[dict, bool], None] | None = None
             ) -> dict[str, dict]:
    """Run ``jobs`` and the jobs ``follow(job, result)`` adds once a job is done; returns
    {job_key: result}. Stored results are reused (``store``); fresh ones are stored as they finish.
    ``progress(job, fresh)`` is called for every finished job."""
    check_scheduler(scheduler)
    folder = None if store.folder is None else str(store.folder.resolve())  # workers write a search's partial state there
    results: dict[str, dict] = {}
    ready: deque = deque()  # (job, result, fresh) done but not yet handled
    dask: dict = {}  # client, cluster (None unless started here), pending: started at the first job to compute

    def start(job: dict) -> None:
        stored = store.load(job)
        if stored is not None:
            ready.append((job, stored, False))
        elif scheduler is None:
            result = execute(job, folder)[1]
            store.save(job, result)
            ready.append((job, result, True))
        else:
            if not dask:
                from distributed import as_completed

                dask["client"], dask["cluster"] = _client(scheduler, workers)
                dask["pending"] = as_completed()
            dask["pending"].add(dask["client"].submit(execute, job, folder, pure=False))

    try:
        for job in jobs:
            start(job)
        while ready or (dask and not dask["pending"].is_empty()):
            if ready:
                job, result, fresh = ready.popleft()
            else:
                job, result = next(dask["pending"]).result()
                store.save(job, result)
                fresh = True
            results[job_key(job)] = result
            if progress is not None:
                progress(job, fresh)
            for new in follow(job, result):
                start(new)
    finally:
        if dask and dask["client"] is not scheduler:  # a client (and cluster) started here
            dask["client"].close()
            if dask["cluster"] is not None:
                dask["cluster"].close()
    return results
