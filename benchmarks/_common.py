"""Shared benchmark plumbing: machine facts, medians, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np


def machine_info() -> dict:
    """What the numbers were measured on."""
    packages = {}
    for name in ("numpy", "scipy", "jax", "qutip", "pennylane", "qeqprop"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "packages": packages,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


# Untimed pause before every timed call: OpenBLAS worker threads spin for ~0.1 s after a call
# (and OpenMP ones may too), so a tool timed right after another's BLAS work (e.g. QuSpin's
# ARPACK before a JAX solve) would share the cores with those threads (16-qubit JAX ground state:
# 0.104 s right after QuSpin, 0.052 s on its own).
SETTLE_S = 0.25


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, each after a SETTLE_S pause."""
    times = []
    for _ in range(repeats):
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def add_size_arguments(parser, sizes, repeats: int) -> None:
    """The options every size-sweep benchmark takes: sizes, repeats, BLAS threads, seed."""
    parser.add_argument("--sizes", type=int, nargs="+", default=list(sizes))
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: the library's own)")
    parser.add_argument("--seed", type=int, default=0)


def sweep_sizes(args, measure, describe) -> tuple[list[dict], list[dict]]:
    """Run ``measure(n, args)`` for every size under the BLAS thread limit, printing
    ``describe(row)``; returns (BLAS info, rows)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=args.threads):
        blas = [{k: info.get(k) for k in ("internal_api", "num_threads", "version")} for info in threadpool_info()]
        rows = []
        for n in args.sizes:
            rows.append(measure(n, args))
            print(describe(rows[-1]), flush=True)
    return blas, rows


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path
