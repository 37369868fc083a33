"""Centered-EP gradient samples per second for learners as used in training.

TFIM learners (complete graph, 4 inputs, 3 outputs) at N = 6..12: the per-sample path
(ep_gradient on one sample at a time; solver "auto") and the batched path (ep_gradient on the
whole batch with solver "jax": fixed-length batched Lanczos blocks, free phase with gaps, +-beta
phases stacked and warm-started; a fresh block-length schedule per call, as in training, and
"kept": ``keep_block_lengths=True``, the learned block lengths carried across calls). A
complex general Pauli model (10 qubits, XX+YY+ZZ chain couplings, three-body ZXZ, Y fields, ~50
trainable terms) with exact expectations and with 10 shots per measurement basis (per sample,
and batched: readout=Shots). Load averages are recorded with the numbers.

    python benchmarks/training_throughput.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json  # noqa: E402

import qeqprop as qp  # noqa: E402
from qeqprop.measurement import measured_ep_gradient, measurement_plan  # noqa: E402
from qeqprop.readout import Shots  # noqa: E402


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
    args = parser.parse_args(argv)
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
    out = Path(args.out)
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
