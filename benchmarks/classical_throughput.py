"""EP training throughput of the classical systems: batched vs per-sample, and EP vs backprop.

For every case in CASES (a classical system sized for a dataset), samples per second of the
training step ``qeqprop.train.minibatch_gradient`` (centered EP, exact phases, the step ``fit``
takes) through the system's own batch view ("batched") and through ``LoopBatch`` (one
``equilibrate`` per sample and phase: the per-sample path the classical systems had before
issue 19), on the same minibatches, measured side by side in alternating rounds in one process
(medians over rounds). Then one training epoch of EP (minibatch_gradient + the Adam update, as
in fit, without its evaluation pass) against one epoch of backprop on the reference MLP of the
same architecture (qeqprop.backprop.BackpropMLP, jitted JAX step, same split and batch size),
again alternating. BLAS runs on one thread throughout; load averages are recorded.

Adding a system: one ``Case(...)`` line in CASES (name, builder(n_inputs, n_classes), dataset,
batch size, beta; ``bp=True`` also times the EP-vs-BP epoch for it).

    nice -n 19 python benchmarks/classical_throughput.py --out benchmarks/results
    nice -n 19 python benchmarks/classical_throughput.py --only hopfield-mnist --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from _common import SETTLE_S, machine_info, write_json

from qeqprop.backprop import BackpropMLP, reference_sizes
from qeqprop.datasets import load_dataset
from qeqprop.systems.protocol import LoopBatch
from qeqprop.train import minibatch_gradient


@dataclass(frozen=True)
class Case:
    """One row: ``build(n_inputs, n_classes)`` -> the EP system; trained on ``dataset`` in
    minibatches of ``batch_size`` at nudge ``beta``; ``bp``: also time an EP epoch vs a BP epoch."""

    name: str
    build: Callable
    dataset: str
    batch_size: int = 20
    beta: float = 0.5
    bp: bool = False


def _hopfield(hidden):
    def build(n_inputs: int, n_classes: int):
        from classical import HopfieldNetwork

        return HopfieldNetwork(n_inputs, hidden, n_classes)

    return build


def _resistive(hidden, **options):
    def build(n_inputs: int, n_classes: int):
        from classical import ResistiveNetwork

        return ResistiveNetwork(n_inputs, hidden, n_classes, **options)

    return build


def _flow(hidden):
    def build(n_inputs: int, n_classes: int):
        from classical import random_flow_network

        return random_flow_network(n_inputs, n_classes, hidden)

    return build


def _registered(name: str, hidden: int, **options):
    """The system ``name`` of qeqprop.systems.registry with ``hidden`` hidden units (as the CLI builds it)."""

    def build(n_inputs: int, n_classes: int):
        from qeqprop.systems.registry import build as build_system

        return build_system(name, n_inputs, n_classes, hidden, **options)

    return build


CASES = [
    Case("hopfield-mnist", _hopfield((500,)), "mnist", bp=True),
    Case("hopfield-digits", _hopfield((256,)), "digits"),
    Case("hopfield-mnist-2", _hopfield((500, 500)), "mnist"),
    Case("resistive-mnist", _resistive((128,), input_gain=480.0, init_std=1.0, tol=1e-8), "mnist", 16, 1.0),  # preset resistive-mnist
    Case("resistive-iris", _resistive((32,), tol=1e-10), "iris", 16, 0.5),  # preset resistive-iris
    Case("flow-iris", _flow(30), "iris", 16, 0.5),  # the flow-iris network (EP steps)
    Case("oscillators-digits", _registered("phase_oscillators", 64, input_scale=0.5, target_amplitude=0.7), "digits", 32, 0.1),  # preset oscillators-digits
    Case("ising-digits", _registered("ising", 64, graph="layered"), "digits", 32, 0.1),  # preset ising-digits
    Case("elastic-digits", _registered("elastic", 32, graph="complete"), "digits", 32, 0.1),
    # other systems: one Case(...) line each, above this comment
]


class PerSample:
    """``system`` with the per-sample batch view (LoopBatch): every other attribute is the system's."""

    def __init__(self, system):
        self._system = system

    def __getattr__(self, name):
        return getattr(self._system, name)

    def batch_view(self, batch_size: int) -> LoopBatch:
        return LoopBatch(self._system)


def step_rate(system, params, batches, beta: float) -> float:
    """Samples per second of minibatch_gradient over ``batches`` [(X, labels)] (one pass)."""
    start = time.perf_counter()
    for X, labels in batches:
        minibatch_gradient(system, params, X, labels, beta=beta)
    return sum(len(X) for X, _ in batches) / (time.perf_counter() - start)


def ep_epoch(system, params, data, batch_size: int, beta: float, learning_rate: float, seed: int) -> float:
    """Seconds of one EP training epoch (minibatch_gradient + Adam, shuffled minibatches)."""
    optimizer = optax.adam(learning_rate)
    state, order = optimizer.init(params), np.random.default_rng(seed).permutation(len(data.x_train))
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        index = order[first : first + batch_size]
        grad, _ = minibatch_gradient(system, params, data.x_train[index], data.y_train[index], beta=beta)
        updates, state = optimizer.update(grad, state, params)
        params = optax.apply_updates(params, updates)
    return time.perf_counter() - start


def bp_epoch(mlp: BackpropMLP, data, batch_size: int, learning_rate: float, seed: int) -> float:
    """Seconds of one backprop epoch (the jitted step compiled before the clock starts)."""
    optimizer = optax.adam(learning_rate)
    params = mlp.init_params(seed)
    state, step = optimizer.init(params), mlp.step_function(optimizer)
    X, T = data.x_train, np.eye(data.n_classes)[data.y_train]
    rng = np.random.default_rng(seed)
    for size in {batch_size, len(X) % batch_size or batch_size}:  # compile both batch shapes
        step(params, state, X[:size], T[:size])
    start = time.perf_counter()
    mlp.epoch(step, params, state, X, T, batch_size, rng)
    return time.perf_counter() - start


def measure(case: Case, rounds: int, loop_batches: int, seed: int) -> dict:
    data = load_dataset(case.dataset, seed=seed)
    system = case.build(data.n_features, data.n_classes)
    params = system.init_params(seed)
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    batches = [(data.x_train[order[i : i + case.batch_size]], data.y_train[order[i : i + case.batch_size]])
               for i in range(0, loop_batches * case.batch_size, case.batch_size)]
    slow = PerSample(system)
    step_rate(system, params, batches[:1], case.beta)  # warm-up (imports, JAX compilation of nothing here)
    batched, per_sample, loads = [], [], []
    for _ in range(rounds):
        time.sleep(SETTLE_S)
        batched.append(step_rate(system, params, batches, case.beta))
        time.sleep(SETTLE_S)
        per_sample.append(step_rate(slow, params, batches, case.beta))
        loads.append(os.getloadavg()[0])
    row = {"name": case.name, "system": type(system).__name__, "dataset": case.dataset, "units": system.describe()["units"],
           "batch_size": case.batch_size, "beta": case.beta, "samples_timed": loop_batches * case.batch_size,
           "batched_samples_per_s": float(np.median(batched)), "per_sample_samples_per_s": float(np.median(per_sample)),
           "rounds_batched": batched, "rounds_per_sample": per_sample, "load_1min": loads}
    row["speedup"] = row["batched_samples_per_s"] / row["per_sample_samples_per_s"]
    print(f"{case.name}: batched {row['batched_samples_per_s']:.1f} samples/s, per-sample "
          f"{row['per_sample_samples_per_s']:.1f} samples/s ({row['speedup']:.1f}x), load {np.mean(loads):.1f}", flush=True)
    if case.bp:
        mlp = BackpropMLP(reference_sizes(system, data.n_features, 0, data.n_classes))
        ep_times, bp_times, loads = [], [], []
        for _ in range(rounds):
            time.sleep(SETTLE_S)
            ep_times.append(ep_epoch(system, params, data, case.batch_size, case.beta, 1e-3, seed))
            time.sleep(SETTLE_S)
            bp_times.append(bp_epoch(mlp, data, case.batch_size, 1e-3, seed))
            loads.append(os.getloadavg()[0])
        row.update({"ep_epoch_s": float(np.median(ep_times)), "bp_epoch_s": float(np.median(bp_times)),
                    "rounds_ep_epoch_s": ep_times, "rounds_bp_epoch_s": bp_times, "bp_model": "-".join(map(str, mlp.sizes)),
                    "epoch_load_1min": loads})
        row["ep_over_bp"] = row["ep_epoch_s"] / row["bp_epoch_s"]
        print(f"{case.name}: EP epoch {row['ep_epoch_s']:.2f} s, BP epoch {row['bp_epoch_s']:.2f} s "
              f"({row['ep_over_bp']:.1f}x), load {np.mean(loads):.1f}", flush=True)
    return row


def plot(rows: list[dict], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [max(len(rows), 1), 1]})
    names, x = [r["name"] for r in rows], np.arange(len(rows))
    axes[0].bar(x - 0.2, [r["batched_samples_per_s"] for r in rows], 0.4, label="batched view")
    axes[0].bar(x + 0.2, [r["per_sample_samples_per_s"] for r in rows], 0.4, label="per sample (LoopBatch)")
    axes[0].set(xticks=x, yscale="log", ylabel="EP training samples / s (centered, exact)")
    axes[0].set_xticklabels(names, rotation=20, ha="right")
    axes[0].legend()
    epochs = [r for r in rows if "ep_epoch_s" in r]
    for i, r in enumerate(epochs):
        axes[1].bar([2 * i - 0.4, 2 * i + 0.4], [r["ep_epoch_s"], r["bp_epoch_s"]], 0.8, color=["C0", "C2"])
        axes[1].text(2 * i, max(r["ep_epoch_s"], r["bp_epoch_s"]), f"{r['ep_over_bp']:.1f}x", ha="center", va="bottom")
    axes[1].set(xticks=[2 * i + d for i in range(len(epochs)) for d in (-0.4, 0.4)], ylabel="seconds per epoch")
    axes[1].set_xticklabels([kind for _ in epochs for kind in ("EP", "BP")])
    axes[1].set_title(", ".join(r["name"] for r in epochs), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only", nargs="+", default=None, help="case names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5, help="minibatches timed per round and path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only is None or c.name in args.only]
    if args.only and len(cases) != len(args.only):
        parser.error(f"--only: unknown case(s) {sorted(set(args.only) - {c.name for c in cases})}; cases: {[c.name for c in CASES]}")
    with threadpool_limits(limits=1, user_api="blas"):
        rows = [measure(case, args.rounds, args.batches, args.seed) for case in cases]
    out = Path(args.out)
    name = "classical_throughput" if args.only is None else "classical_throughput_" + "_".join(args.only)
    write_json(out / f"{name}.json", {"machine": machine_info(), "rounds": args.rounds, "blas_threads": 1, "rows": rows})
    print(f"wrote {out / (name + '.json')} and {plot(rows, out / (name + '.png'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
