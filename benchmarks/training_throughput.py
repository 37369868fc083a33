"""Centered-EP gradient samples per second for learners as used in training.

TFIM learners (complete graph, 4 inputs, 3 outputs) at N = 6..12: the per-sample path
(ep_gradient on one sample at a time; solver "auto") and the batched path (ep_gradient on the
whole batch with solver "jax": fixed-length batched Lanczos blocks, free phase with gaps, +-beta
phases stacked and warm-started; a fresh block-length schedule per call, and "kept":
``keep_block_lengths=True``, the learned block lengths carried across calls, as ``fit`` trains). A
complex general Pauli model (10 qubits, XX+YY+ZZ chain couplings, three-body ZXZ, Y fields, ~50
trainable terms) with exact expectations and with 10 shots per measurement basis (per sample,
and batched: readout=Shots). Load averages are recorded with the numbers.

The small-learner workload of issue 18 (``sensor_workload``: a 10-qubit complex sensor model,
54 strings, 51 parameters; centered EP at beta = 0.4; 10 shots per term) against the research
script it replaces (kron-built scipy.sparse matrices, ``eigsh`` per sample and phase), side by
side in alternating rounds: milliseconds per sample for training (exact; shots: the per-term
Gaussian model of the script, and multinomial records; each call the next minibatch of a pool,
on the copy of the system that ``fit`` trains, its learned block lengths carried from call to call)
and evaluation (free ground state + outputs: ``qp.predict``, also on the next minibatch; it solves no
gaps, as the script's ``eigsh`` does not), at batch 1, 10
and 128. Each round times a stretch of 128 samples per path in consecutive calls (128 calls of one
sample, 13 of ten, one of 128), as an epoch or a test-set loop runs them; for batches 1 and 10 the
latency of one call after an idle pause is recorded too (``*_after_idle``). The compute floor is next to it (H
applications per sample, from the solver's counts, times the measured cost of one batched
application per sample, over the worker threads).

    python benchmarks/training_throughput.py --out benchmarks/results
    python benchmarks/training_throughput.py --only sensor     # the small-learner table alone
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import SETTLE_S, machine_info, write_json
from sensor_workload import ResearchScript, sensor_data, sensor_system

import qeqprop as qp
from qeqprop.inference import equilibrate_chunks
from qeqprop.measurement import measured_ep_gradient, measurement_plan
from qeqprop.readout import Shots

SENSOR_BETA, SENSOR_SHOTS_PER_TERM = 0.4, 10


def rate(fn, samples: int, budget: float = 5.0, warmup: int = 1) -> float:
    """Samples per second of fn() (which processes ``samples`` samples): ``samples`` over the median
    call time of >= 3 calls or ``budget`` s, after ``warmup`` calls (compilation)."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < budget:
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return samples / float(np.median(times))


def alternating_ms(paths: dict, rounds: int, stretch: int = 1) -> dict:
    """Median milliseconds per sample of each path {name: (fn, samples)}, rounds alternating
    between the paths (so that load changes hit them alike), after one warm-up call each. Per round
    a path runs ``ceil(stretch / samples)`` calls back to back, timed together: a stretch of
    ``stretch`` samples as an epoch loop or a test-set loop runs them (one call alone, after the
    pause, measures the latency of a call after idle instead: ``after_idle_ms``)."""
    for fn, _ in paths.values():
        fn()
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (fn, samples) in paths.items():
            calls = -(-stretch // samples)
            time.sleep(SETTLE_S)  # the previous path's BLAS / XLA worker threads stop spinning
            begin = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - begin) / (calls * samples))
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def after_idle_ms(paths: dict, rounds: int) -> dict:
    """Median milliseconds per sample of one call of each path after a SETTLE_S pause (the latency
    a single call sees when the process was idle: caches cold, worker threads asleep)."""
    return alternating_ms(paths, rounds, stretch=1)


def application_ms(system, params, X) -> float:
    """Milliseconds per H application per sample of the batched kernel (``jax_kernel.batched_apply``),
    64 applications of a batch of len(X) in one jitted scan (the block's inner loop without the rest)."""
    import jax

    from qeqprop.hamiltonians.jax_kernel import (
        JaxPauliOperator,
        batched_apply,
        structure_of,
    )

    table = system.hamiltonian.table
    dtype = np.float64 if table.is_real else np.complex128
    diagonal, flips = table.compile(system.hamiltonian.coefficients_batch(params, X))
    operators = JaxPauliOperator.from_arrays(structure_of(table.n_qubits, [(x, f[0]) for x, f in flips]),
                                             diagonal.astype(dtype), tuple(np.asarray(f, dtype) for _, f in flips))
    psi = np.random.default_rng(0).standard_normal((len(X), table.dim)).astype(dtype)

    @jax.jit
    def applications(operators, psi):
        def step(v, _):
            w = batched_apply(operators, v)
            return w / np.sqrt(table.dim), None
        return jax.lax.scan(step, psi, None, length=64)[0]

    jax.block_until_ready(applications(operators, psi))
    times = []
    for _ in range(20):
        begin = time.perf_counter()
        jax.block_until_ready(applications(operators, psi))
        times.append(time.perf_counter() - begin)
    return 1e3 * float(np.median(times)) / 64 / len(X)


def sensor_rows(batches=(1, 10, 128), rounds: int = 7) -> dict:
    """The issue-18 small-learner table (module docstring): ms per sample per path and batch."""
    from qeqprop.solvers.batched_lanczos import default_workers

    script = ResearchScript()
    system, params = sensor_system(), script.params
    trained = system.with_kept_block_lengths()  # what fit trains: block lengths carried from minibatch to minibatch
    stretch = max(batches)  # samples per path and round, in consecutive calls (alternating_ms)
    pool = 4 * stretch  # every call takes the next minibatch of the pool, as an epoch does
    X, Y = sensor_data(pool)
    bases = len(measurement_plan(system, X[0], 1000).bases)
    gaussian = Shots(SENSOR_SHOTS_PER_TERM * bases, sampler="gaussian")  # 10 shots per basis = per term
    multinomial = Shots(SENSOR_SHOTS_PER_TERM * bases)
    rng = np.random.default_rng(0)
    few = 10
    script_ms = alternating_ms({
        "train_exact": (lambda: [script.gradient(X[i], Y[i], SENSOR_BETA) for i in range(few)], few),
        "train_shots": (lambda: [script.gradient(X[i], Y[i], SENSOR_BETA, SENSOR_SHOTS_PER_TERM, rng) for i in range(few)], few),
        "evaluate": (lambda: [script.predict(X[i]) for i in range(few)], few)}, rounds)
    rows = {"research_script": script_ms, "bases": bases, "beta": SENSOR_BETA, "shots_per_term": SENSOR_SHOTS_PER_TERM,
            "n_strings": len(system.hamiltonian.table), "n_params": system.hamiltonian.n_params, "qeqprop": {}}
    cost = application_ms(system, params, X[:16])
    for batch in batches:
        xs = X[:batch]
        cursor = itertools.count()

        def minibatch(batch=batch):
            k = next(cursor) % (pool // batch)
            return X[k * batch : (k + 1) * batch], Y[k * batch : (k + 1) * batch]

        paths = {
            "train_exact": (lambda: qp.ep_gradient(trained, params, *minibatch(), SENSOR_BETA), batch),
            "train_shots_gaussian": (lambda: qp.ep_gradient(trained, params, *minibatch(), SENSOR_BETA, readout=gaussian, rng=1),
                                     batch),
            "train_shots_multinomial": (lambda: qp.ep_gradient(trained, params, *minibatch(), SENSOR_BETA, readout=multinomial,
                                                               rng=1), batch),
            "evaluate": (lambda: qp.predict(system, params, minibatch()[0]), batch)}
        measured = alternating_ms(paths, rounds, stretch)
        if batch < stretch:  # one call after idle, for the small batches whose calls are short
            measured.update({f"{name}_after_idle": value for name, value in after_idle_ms(paths, rounds).items()})
        result = qp.ep_gradient(trained, params, *minibatch(), SENSOR_BETA)
        train_apps = float(np.mean(result.free.iterations + sum(s.iterations for s in result.nudged.values())))
        (_, predicted, _), = equilibrate_chunks(system, params, xs, batch, gaps=False)  # what qp.predict solves
        eval_apps = float(np.mean(predicted.iterations))
        workers = min(default_workers(), batch)
        measured.update({"applications_train": train_apps, "applications_evaluate": eval_apps, "application_ms": cost,
                         "floor_train": train_apps * cost / workers, "floor_evaluate": eval_apps * cost / workers,
                         "load_average": os.getloadavg()[0]})
        rows["qeqprop"][batch] = measured
        print(f"sensor B={batch:<4} " + "  ".join(f"{k} {v:.2f}" for k, v in measured.items())
              + f"   (script: {', '.join(f'{k} {v:.2f}' for k, v in script_ms.items())} ms/sample)", flush=True)
    return rows


def sensor_figure(rows: dict, path: Path) -> None:
    """Grouped bars: ms per sample of the script and of qeqprop at each batch, per path, with the floor."""
    paths = [("train_exact", "training, exact"), ("train_shots_gaussian", "training, 10 shots/term"),
             ("evaluate", "evaluation")]
    script_key = {"train_exact": "train_exact", "train_shots_gaussian": "train_shots", "evaluate": "evaluate"}
    batches = list(rows["qeqprop"])
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / (len(batches) + 1)
    for k, (key, _) in enumerate(paths):
        ax.bar(k, rows["research_script"][script_key[key]], width, color="0.6", label="research script" if k == 0 else None)
        for j, batch in enumerate(batches):
            ax.bar(k + (j + 1) * width, rows["qeqprop"][batch][key], width, color=f"C{j}", label=f"qeqprop B={batch}" if k == 0 else None)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(paths))], [label for _, label in paths])
    ax.set(ylabel="ms per sample", yscale="log", title="10-qubit sensor learner (centered EP, beta 0.4)")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def general_model(n: int = 10, n_inputs: int = 4, **options):
    terms = []
    for k in range(n - 1):
        for axis, letter in enumerate("XYZ"):
            terms.append(qp.Term(f"{letter}{k} {letter}{k + 1}", 1.0, "J", (k, axis)))
    terms += [qp.Term(f"Z{k} X{k + 1} Z{k + 2}", 1.0, "K", (k,)) for k in range(n - 2)]
    terms += [qp.Term(f"Y{k}", 1.0, "g", (k,)) for k in range(n)]
    terms += [qp.Term(f"X{k}", -1.0) for k in range(n)]
    terms += [qp.Term(f"Z{j}", 1.0, "W", (i, j), input=i) for i in range(n_inputs) for j in range(2)]
    params = {"J": qp.ParamSpec((n - 1, 3), std=0.5), "K": qp.ParamSpec((n - 2,), std=0.3),
              "g": qp.ParamSpec((n,), std=0.2), "W": qp.ParamSpec((n_inputs, 2), std=0.5)}
    return qp.pauli_system(n, terms, params, outputs=[f"Z{n - 1}", f"Z{n - 2}"], n_inputs=n_inputs, solver="jax",
                            **options)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[6, 8, 10, 12])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only", choices=["sensor"], help="run only the small-learner (sensor) table")
    args = parser.parse_args(argv)
    out = Path(args.out)
    sensor = sensor_rows()
    write_json(out / "small_learner.json", {"machine": machine_info(), "rows": sensor,
                                            "load_average_1_5_15_min": list(os.getloadavg())})
    sensor_figure(sensor, out / "small_learner.png")
    if args.only == "sensor":
        return 0
    rng = np.random.default_rng(0)
    rows = {"tfim": {}, "general_complex_10q": {}}
    for n in args.qubits:
        xs, ys = rng.normal(size=(args.batch, 4)), rng.choice([-1.0, 1.0], size=(args.batch, 3))
        per_sample = qp.TFIMNetwork(n, "complete", n_inputs=4, output_qubits=[n - 3, n - 2, n - 1])
        batched = qp.TFIMNetwork(n, "complete", n_inputs=4, output_qubits=[n - 3, n - 2, n - 1], solver="jax")
        kept = qp.TFIMNetwork(n, "complete", n_inputs=4, output_qubits=[n - 3, n - 2, n - 1], solver="jax",
                              keep_block_lengths=True)
        params = per_sample.init_params(0)
        few = 8
        single_rate = rate(lambda: [qp.ep_gradient(per_sample, params, xs[i], ys[i]) for i in range(few)], few)
        batch_rate = rate(lambda: qp.ep_gradient(batched, params, xs, ys), args.batch, warmup=3)
        kept_rate = rate(lambda: qp.ep_gradient(kept, params, xs, ys), args.batch, warmup=3)
        rows["tfim"][n] = {"per_sample": single_rate, "batched": batch_rate, "batched_kept": kept_rate,
                           "load_average": os.getloadavg()[0]}
        print(f"TFIM N={n:<3} per-sample {single_rate:8.1f}/s   batched {batch_rate:8.1f}/s  kept {kept_rate:8.1f}/s  "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    system, kept = general_model(), general_model(keep_block_lengths=True)
    params = system.init_params(0)
    xs, ys = rng.normal(size=(args.batch, 4)), rng.uniform(-1, 1, size=(args.batch, 2))
    n_params = system.hamiltonian.n_params
    few = 8
    plan = measurement_plan(system, xs[0], 1000)
    shots = 10 * len(plan.bases)
    general = {
        "n_params": n_params,
        "exact_per_sample": rate(lambda: [qp.ep_gradient(system, params, xs[i], ys[i]) for i in range(few)], few),
        "exact_batched": rate(lambda: qp.ep_gradient(system, params, xs, ys), args.batch, warmup=3),
        "exact_batched_kept": rate(lambda: qp.ep_gradient(kept, params, xs, ys), args.batch, warmup=3),
        "shots_per_sample": rate(lambda: [measured_ep_gradient(system, params, xs[i], ys[i], 0.1, shots, rng=i) for i in range(few)], few),
        "shots_batched": rate(lambda: qp.ep_gradient(system, params, xs, ys, 0.1, readout=Shots(shots), rng=0), args.batch),
        "shots_batched_kept": rate(lambda: qp.ep_gradient(kept, params, xs, ys, 0.1, readout=Shots(shots), rng=0), args.batch,
                                   warmup=3),
        "shots_per_phase": shots,
        "bases": len(plan.bases),
    }
    general["load_average"] = os.getloadavg()[0]
    rows["general_complex_10q"] = general
    print(f"general complex 10q ({n_params} params): " + ", ".join(f"{k} {v:.1f}" for k, v in general.items()), flush=True)
    write_json(out / "training_throughput.json", {"machine": machine_info(), "batch": args.batch, "rows": rows,
                                                  "load_average_1_5_15_min": list(os.getloadavg())})
    fig, ax = plt.subplots(figsize=(6, 4))
    qubits = list(rows["tfim"])
    ax.semilogy(qubits, [rows["tfim"][n]["per_sample"] for n in qubits], "o-", label="per sample")
    ax.semilogy(qubits, [rows["tfim"][n]["batched"] for n in qubits], "s-", label=f"batched (B={args.batch})")
    ax.semilogy(qubits, [rows["tfim"][n]["batched_kept"] for n in qubits], "^--", label="batched, block lengths kept")
    ax.set(xlabel="qubits N", ylabel="centered-EP gradients / s", title="TFIM learner throughput")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "training_throughput.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
