"""The batched H application of the batched Lanczos block: native kernel against XLA's gather.

``jax_kernel.batched_apply`` computes, for B operators sharing one structure and states psi (B, D),

    (H_b psi_b)[c] = d_0[b, c] psi[b, c] + sum_x d_x[b, (c)] psi[b, c xor x],

by the native CPU kernel in one call for the batch; the fallback (and what the block used before)
is ``jax.vmap`` of the XLA gather form. Each timed call is one jitted program of ``--steps``
chained applications psi <- H psi (as in a Lanczos block), so per-call overhead is amortised the
way it is in a solve. Reported: microseconds per application and sample, medians of alternating
rounds (native, XLA, native, ...) measured side by side in this one process, as wall time and as
this process's CPU time (less sensitive to other processes on a shared machine), for

    sensor   the issue-18 sensor model (benchmarks/sensor_workload.py; 10 qubits, complex,
             14 flip groups of which 13 have vector factors),
    pairs    a sensor-like complex model at n qubits: all nine products a_i b_{i+n/2} on n/2
             qubit pairs, X fields, Y on the last qubit, a Z Z chain (vector factors),
    tfim     qp.TFIMNetwork(n, "complete", n_inputs=4): real, one scalar factor per qubit;

and one whole batched Lanczos block (``solve_block``, as a free phase) on the sensor model,
milliseconds per sample: its steps as native calls (``batched_passes``), the native product in
the XLA step scan, and the XLA gather in the scan.

    nice -n 19 python benchmarks/batched_apply.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json
from sensor_workload import sensor_system

import qeqprop as qp
from qeqprop.hamiltonians import PauliTable
from qeqprop.hamiltonians.jax_kernel import (
    JaxPauliOperator,
    batched_apply,
    structure_of,
)
from qeqprop.native import native_available
from qeqprop.solvers.batched_lanczos import solve_block


def pairs_table(n: int) -> PauliTable:
    """The sensor-like complex model of the module docstring on n (even) qubits."""
    half = n // 2
    strings = [f"{a}{i} {b}{i + half}" for i in range(half) for a in "XYZ" for b in "XYZ"]
    strings += [f"X{q}" for q in range(n)] + [f"Y{n - 1}"] + [f"Z{q} Z{q + 1}" for q in range(n - 1)]
    return PauliTable(n, strings)


def tables(sizes) -> dict[str, dict[int, PauliTable]]:
    """The models of the module docstring, by name and qubit count."""
    out = {"sensor": {10: sensor_system().hamiltonian.table}, "pairs": {}, "tfim": {}}
    for n in sizes:
        out["pairs"][n] = pairs_table(n)
        system = qp.TFIMNetwork(n, "complete", n_inputs=4, output_qubits=[n - 3, n - 2, n - 1], solver="jax")
        out["tfim"][n] = system.hamiltonian.table
    return out


def stacked(table: PauliTable, batch: int, rng) -> tuple[JaxPauliOperator, jax.Array]:
    """B operators of ``table`` with random coefficients (the batch's leaves stacked, as the batched
    solver builds them) and B random unit states."""
    dtype = jnp.float64 if table.is_real else jnp.complex128
    diagonal, flips = table.compile(rng.normal(size=(batch, len(table))) / np.sqrt(len(table)))
    operators = JaxPauliOperator.from_arrays(structure_of(table.n_qubits, [(x, f[0]) for x, f in flips]),
                                             jnp.asarray(diagonal, dtype), tuple(jnp.asarray(f, dtype) for _, f in flips))
    psi = rng.normal(size=(batch, table.dim)) + (0 if table.is_real else 1j * rng.normal(size=(batch, table.dim)))
    return operators, jnp.asarray(psi / np.linalg.norm(psi, axis=1, keepdims=True), dtype)


@partial(jax.jit, static_argnames=("steps", "native"))
def chained(operators: JaxPauliOperator, psi, steps: int, native: bool):
    """``steps`` applications psi <- H psi by ``batched_apply`` (``native`` False: the operators
    flagged without the native kernel, i.e. the vmapped XLA gather)."""
    operators = JaxPauliOperator.from_arrays(operators.structure, operators.diagonal, operators.factors, native=native)
    return jax.lax.fori_loop(0, steps, lambda _, v: batched_apply(operators, v), psi)


def measure(table: PauliTable, batch: int, steps: int, rounds: int, rng) -> dict:
    """Median microseconds per application and sample, native and XLA, alternating rounds."""
    operators, psi = stacked(table, batch, rng)
    runs = {kind: partial(chained, operators, psi, steps=steps, native=kind == "native") for kind in ("native", "xla")}
    outs = {kind: np.asarray(run()) for kind, run in runs.items()}  # compile, and check they agree
    scale = np.max(np.abs(outs["xla"]))
    wall, cpu = ({kind: [] for kind in runs} for _ in range(2))
    for _ in range(rounds):
        for kind, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run().block_until_ready()
            wall[kind].append(time.perf_counter() - start)
            cpu[kind].append(time.process_time() - start_cpu)
    per = {kind: 1e6 * float(np.median(t)) / (steps * batch) for kind, t in wall.items()}
    per_cpu = {kind: 1e6 * float(np.median(t)) / (steps * batch) for kind, t in cpu.items()}
    return {"n_qubits": table.n_qubits, "batch": batch, "native_us": per["native"], "xla_us": per["xla"],
            "speedup": per["xla"] / per["native"], "native_cpu_us": per_cpu["native"], "xla_cpu_us": per_cpu["xla"],
            "relative_difference": float(np.max(np.abs(outs["native"] - outs["xla"])) / scale), "load": list(os.getloadavg())}


BLOCK_VARIANTS = {"native": (True, True), "native_apply": (True, False), "xla": (False, False)}


def measure_block(table: PauliTable, batch: int, steps: int, rounds: int, rng) -> dict:
    """Median milliseconds per sample of one batched Lanczos block (``solve_block``: ``steps`` steps,
    selective orthogonalisation, as a free phase; one chunk of ``batch`` samples) in three variants
    (BLOCK_VARIANTS: native kernel for the H application, for the steps): "native" (the steps as
    one native call per stretch, ``batched_passes``), "native_apply" (native H application inside
    the XLA step scan: the block before the native steps) and "xla" (the vmapped XLA gather in
    the scan), alternating rounds; wall and CPU time."""
    operators, starts = stacked(table, batch, rng)
    options = {"steps": steps, "orthogonalize": "ground", "with_gap": False, "chunk": batch}
    runs = {}
    for kind, (native, native_steps) in BLOCK_VARIANTS.items():
        ops = JaxPauliOperator.from_arrays(operators.structure, operators.diagonal, operators.factors, native=native)
        runs[kind] = partial(solve_block, ops, starts, native_steps=native_steps, **options)
    energies = {kind: np.asarray(run()[1]) for kind, run in runs.items()}  # compile
    wall, cpu = ({kind: [] for kind in runs} for _ in range(2))
    for _ in range(rounds):
        for kind, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(run())
            wall[kind].append(time.perf_counter() - start)
            cpu[kind].append(time.process_time() - start_cpu)
    row = {"n_qubits": table.n_qubits, "batch": batch, "steps": steps, "load": list(os.getloadavg()),
           "energy_difference": float(max(np.max(np.abs(energies[kind] - energies["xla"])) for kind in runs))}
    for kind in runs:
        row[f"{kind}_ms"] = 1e3 * float(np.median(wall[kind])) / batch
        row[f"{kind}_cpu_ms"] = 1e3 * float(np.median(cpu[kind])) / batch
    return row


def plot(rows: list[dict], path: Path) -> None:
    models = list(dict.fromkeys(row["model"] for row in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        for n in sorted({row["n_qubits"] for row in rows if row["model"] == model}):
            mine = [row for row in rows if row["model"] == model and row["n_qubits"] == n]
            batches = [row["batch"] for row in mine]
            line, = ax.plot(batches, [row["native_us"] for row in mine], "o-", label=f"native, n={n}")
            ax.plot(batches, [row["xla_us"] for row in mine], "s--", color=line.get_color(), label=f"XLA gather, n={n}")
        ax.set(xscale="log", yscale="log", xlabel="batch B", ylabel="us per application and sample", title=model)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 5, 16, 64])
    parser.add_argument("--steps", type=int, default=64, help="chained applications per timed call")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (medians)")
    parser.add_argument("--block-batches", type=int, nargs="*", default=[5, 10],
                        help="batches of the solve_block comparison (sensor model); none to skip it")
    parser.add_argument("--block-steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    if not native_available():
        parser.error("the native kernel is unavailable here (QEQPROP_NATIVE=0 or no compiler): nothing to compare")
    rng = np.random.default_rng(args.seed)
    rows = []
    for model, by_size in tables(args.sizes).items():
        for n, table in by_size.items():
            for batch in args.batches:
                rows.append({"model": model, **measure(table, batch, args.steps, args.rounds, rng)})
                row = rows[-1]
                print(f"{model:6s} n={n:2d} B={batch:3d}: native {row['native_us']:7.2f} us, XLA {row['xla_us']:7.2f} us "
                      f"per application-sample ({row['speedup']:.1f}x; CPU time {row['native_cpu_us']:.2f} vs "
                      f"{row['xla_cpu_us']:.2f} us; load {row['load'][0]:.2f})", flush=True)
    blocks = []
    for batch in args.block_batches:
        blocks.append(measure_block(sensor_system().hamiltonian.table, batch, args.block_steps, args.rounds, rng))
        row = blocks[-1]
        print(f"sensor solve_block B={batch:3d}, {args.block_steps} steps, ms per sample (CPU time): "
              + ", ".join(f"{kind} {row[kind + '_ms']:.2f} ({row[kind + '_cpu_ms']:.2f})" for kind in BLOCK_VARIANTS)
              + f"; load {row['load'][0]:.2f}", flush=True)
    out = Path(args.out)
    settings = {key: getattr(args, key) for key in ("sizes", "batches", "steps", "rounds", "block_batches", "block_steps", "seed")}
    write_json(out / "batched_apply.json", {"machine": machine_info(), "settings": settings, "rows": rows, "blocks": blocks})
    plot(rows, out / "batched_apply.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
