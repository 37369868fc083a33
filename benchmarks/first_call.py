"""Time to the first EP gradient in a fresh process: compiled once per machine, not once per process.

Each measurement is a new Python process that imports qeqprop, builds a workload and computes one
centered EP gradient, then a second one (steady state). Three kinds of process, per workload:

    cold  empty caches (a fresh QEQPROP_CACHE_DIR): the native kernel's C++ build + XLA compiles
    off   native kernel cached, JAX's persistent cache off (QEQPROP_JAX_CACHE=0): every process
          before issue 18
    warm  both cached (the same QEQPROP_CACHE_DIR as cold): every process after the first

Workloads: the issue-18 sensor learner at batch 10 (benchmarks/sensor_workload.py, beta 0.4)
and a 10-qubit TFIM learner (complete graph, one sample, beta 0.01). One cold process per
workload, then ROUNDS alternating off/warm rounds; medians. Each child also reports where its
first call went, from JAX's monitoring time spans (union of intervals per kind): tracing to
jaxpr, lowering to MLIR, and backend compile (an XLA compile, or a cache lookup and load).

    nice -n 19 python benchmarks/first_call.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json

WORKLOADS = ("sensor", "tfim")
KINDS = ("cold", "off", "warm")
SPANS = {"/jax/core/compile/jaxpr_trace_duration": "trace_s",
         "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
         "/jax/core/compile/backend_compile_duration": "backend_s"}


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of [start, end] intervals (nested jit traces overlap)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def child(workload: str) -> dict:
    """Run in the child process: import, set up, first and second gradient; timings as a dict."""
    started = time.perf_counter()
    import jax
    from jax import monitoring

    spans: dict[str, list] = {key: [] for key in SPANS.values()}
    monitoring.register_event_time_span_listener(
        lambda event, start, end, **_: spans[SPANS[event]].append((start, end)) if event in SPANS else None)
    import qeqprop as qp

    if workload == "sensor":
        from sensor_workload import sensor_data, sensor_system

        system = sensor_system()
        params = system.init_params(np.random.default_rng(0))
        x, y = sensor_data(10)
        call = lambda: qp.ep_gradient(system, params, x, y, beta=0.4)
    else:
        system = qp.TFIMNetwork(10, "complete", n_inputs=2, output_qubits=[9])
        params = system.init_params(0)
        x, y = np.array([0.4, -0.7]), np.array([0.5])
        call = lambda: qp.ep_gradient(system, params, x, y, beta=0.01)
    ready = time.perf_counter()
    grad = jax.block_until_ready(call().grad)
    first = time.perf_counter()
    for values in spans.values():
        values[:] = [_union_seconds(values)]
    jax.block_until_ready(call().grad)
    second = time.perf_counter()
    from qeqprop.config import jax_cache_dir

    return {"setup_s": ready - started, "first_s": first - ready, "second_s": second - first,
            **{key: values[0] for key, values in spans.items()},
            "jax_cache": str(jax_cache_dir()) if jax.config.jax_compilation_cache_dir else None,
            "grad_norm": float(np.sqrt(sum(np.sum(np.abs(np.asarray(g)) ** 2) for g in grad.values())))}


def run_child(workload: str, kind: str, root: Path) -> dict:
    """One fresh process of ``kind`` (module docstring) with the caches under ``root``."""
    env = {**os.environ, "QEQPROP_CACHE_DIR": str(root)}
    env.pop("QEQPROP_JAX_CACHE", None)
    if kind == "off":
        env["QEQPROP_JAX_CACHE"] = "0"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", workload], env=env, capture_output=True, text=True,
                          check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update(workload=workload, kind=kind, process_s=time.perf_counter() - start, load=os.getloadavg()[0],
               stderr_notes=[line for line in done.stderr.splitlines() if line.startswith("qeqprop:")])
    row["native_built"] = any("native kernel built" in line for line in row["stderr_notes"])
    return row


def summarize(rows: list[dict]) -> dict:
    """Medians per workload and kind, over the processes that were what their kind says: an off or
    warm process that had to build the native kernel (its source changed during the run) is left
    out (and counted)."""
    table = {}
    for workload in WORKLOADS:
        for kind in KINDS:
            chosen = [r for r in rows if r["workload"] == workload and r["kind"] == kind
                      and (kind == "cold" or not r["native_built"])]
            if chosen:
                table[f"{workload}/{kind}"] = {key: float(np.median([r[key] for r in chosen]))
                                               for key in ("process_s", "setup_s", "first_s", "second_s", "trace_s",
                                                           "lower_s", "backend_s")} | {"n": len(chosen)}
                table[f"{workload}/{kind}"]["left_out"] = sum(r["workload"] == workload and r["kind"] == kind
                                                              for r in rows) - len(chosen)
    return table


def plot(table: dict, path: Path) -> None:
    """Per workload, the first call of each kind of process split into trace, lower, backend
    (XLA compile or cache load) and the rest (native build, the solve itself, Python)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [w for w in WORKLOADS if any(key.startswith(w + "/") for key in table)]
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        kinds = [k for k in KINDS if f"{workload}/{k}" in table]
        rows = [table[f"{workload}/{k}"] for k in kinds]
        bottom = np.zeros(len(kinds))
        parts = {"trace": [r["trace_s"] for r in rows], "lower": [r["lower_s"] for r in rows],
                 "XLA compile / cache load": [r["backend_s"] for r in rows],
                 "rest (native build, solve, Python)": [r["first_s"] - r["trace_s"] - r["lower_s"] - r["backend_s"]
                                                        for r in rows]}
        for label, values in parts.items():
            ax.bar(kinds, np.maximum(values, 0.0), bottom=bottom, label=label)
            bottom += np.maximum(values, 0.0)
        for i, r in enumerate(rows):
            ax.text(i, r["first_s"], f"{r['first_s']:.2f} s\n(+{r['setup_s']:.1f} s import)", ha="center", va="bottom",
                    fontsize=8)
        ax.axhline(2.0, color="k", ls=":", lw=1)
        ax.set_ylim(0, 1.2 * max(r["first_s"] for r in rows))
        ax.set_title({"sensor": "sensor learner, B=10", "tfim": "TFIM 10 qubits, 1 sample"}[workload])
        ax.set_ylabel("first EP gradient call (s)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("first EP gradient in a fresh process, median (dotted: 2 s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating off/warm rounds per workload")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    rows = []
    for workload in args.workloads:
        with tempfile.TemporaryDirectory(prefix="qeqprop-first-call-") as root:
            for kind in ("cold",) + ("off", "warm") * args.rounds:
                rows.append(run_child(workload, kind, Path(root)))
                r = rows[-1]
                print(f"{workload:6s} {kind:4s} process {r['process_s']:6.2f} s  first call {r['first_s']:6.2f} s "
                      f"(trace {r['trace_s']:.2f}, lower {r['lower_s']:.2f}, backend {r['backend_s']:.2f})  "
                      f"second {r['second_s']:.3f} s  load {r['load']:.2f}", flush=True)
            cache = Path(rows[-1]["jax_cache"])
            entries = list(cache.iterdir())
            rows[-1]["cache_entries"], rows[-1]["cache_bytes"] = len(entries), sum(e.stat().st_size for e in entries)
    table = summarize(rows)
    out = Path(args.out)
    write_json(out / "first_call.json", {"machine": machine_info(), "rounds": args.rounds, "summary": table,
                                         "rows": rows})
    plot(table, out / "first_call.png")
    for key, value in table.items():
        print(f"{key:12s} median first call {value['first_s']:.2f} s, process {value['process_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
