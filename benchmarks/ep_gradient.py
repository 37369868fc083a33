"""Cost of one full centered EP gradient (free + two warm-started nudged phases, local
gradients included) relative to one cold ground state, for TFIM learners of N qubits, with
the peak memory of each size and the working-set estimate the solver checks up front.

Two cold references: the ground state alone (``with_gap=False``: the "ratio") and the ground
state with its certified gap (``ground_state``'s default, the free phase's own work: the deflated
second solve, ``solvers.deflation``; "ratio_certified"). H applications are reported per phase,
the free phase's split into the ground solve and the gap solve.

Each size runs in its own process, so its peak RSS is its own. Up to 20 qubits the times are
medians of 5 alternating rounds (cold, EP) after one compiling call, and the ratio is the
median of the rounds' ratios; above, one call each (compilation is < 1 % there).

    python benchmarks/ep_gradient.py --qubits 12 14 16 18 20 22 24 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, median_seconds, write_json  # noqa: E402

import qeqprop as qp  # noqa: E402
from qeqprop.solvers import working_set_vectors  # noqa: E402


WARM_MAX_QUBITS = 22  # above: one first call per path (a warm-up would double the run)
ROUNDS = 5  # alternating cold / EP rounds up to 20 qubits


def measure(n: int, beta: float, solver: str) -> dict:
    """One size: cold ground state and centered EP gradient times, H applications, peak RSS."""
    system = qp.TFIMNetwork(n, "complete", n_inputs=2, output_qubits=[n - 1], solver=solver)
    params = system.init_params(0)
    x, y = np.array([0.4, -0.7]), np.array([0.5])
    operator = system.hamiltonian.operator(params, x)
    cold = lambda: qp.solvers.ground_state(operator, solver, with_gap=False)  # noqa: E731
    certified = lambda: qp.solvers.ground_state(operator, solver, with_gap=True)  # noqa: E731
    gradient = lambda: qp.ep_gradient(system, params, x, y, beta=beta)  # noqa: E731
    warm = n <= WARM_MAX_QUBITS
    if warm:  # compile both paths first: the ratio compares solves, not XLA compilations
        cold(), certified(), gradient()
        # alternating rounds (cold, certified, EP, ...): this VM's speed drifts by tens of percent
        # within a minute, so the ratio is the median of per-round ratios, not a ratio of medians
        rounds = [(median_seconds(cold, 1), median_seconds(certified, 1), median_seconds(gradient, 1))
                  for _ in range(ROUNDS if n <= 20 else 1)]
        t_cold, t_certified, t_ep = (float(np.median(times)) for times in zip(*rounds))
        ratio = float(np.median([ep / cold_s for cold_s, _, ep in rounds]))
        ratio_certified = float(np.median([ep / gap_s for _, gap_s, ep in rounds]))
        cold_applications = cold().iterations  # the state itself is not kept: peak RSS is the library's
        result = gradient()
    else:  # first calls, compilation included (what a user waits for at this size)
        start = time.perf_counter()
        cold_applications = cold().iterations
        t_cold = time.perf_counter() - start
        start = time.perf_counter()
        result = gradient()
        t_ep = time.perf_counter() - start
        ratio = t_ep / t_cold
        t_certified = ratio_certified = float("nan")  # the free phase is the certified solve
    estimate = working_set_vectors(solver, n) * (1 << n) * 8
    return {
        "cold_ground_state_s": t_cold, "centered_ep_s": t_ep, "ratio": ratio,
        "certified_ground_state_s": t_certified, "ratio_certified": ratio_certified,
        "ground_state_plus_ep_s": t_cold + t_ep, "includes_compilation": not warm,
        "applications": {"cold": cold_applications, "free": result.free.iterations,
                         "free_gap_solve": result.free.iterations - cold_applications,
                         **{str(b): s.iterations for b, s in result.nudged.items()}},
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "load_average": os.getloadavg(),
        # which solver one sample's phases take: the single-state JAX Lanczos, or the batched one
        "path": "batched" if system.batch_view(1).joint_phases else "single-state",
        "working_set_estimate_gib": estimate / 2**30,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[12, 14, 16, 18, 20, 22, 24])
    parser.add_argument("--beta", type=float, default=1e-2)
    parser.add_argument("--solver", default="jax", choices=["jax", "lanczos"])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.beta, args.solver)))
        return 0
    rows = {}
    for n in args.qubits:
        child = subprocess.run([sys.executable, __file__, "--one", str(n), "--beta", str(args.beta), "--solver", args.solver],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:  # the child's own error, not only its exit status
            sys.exit(f"N={n} failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
        rows[n] = row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"N={n:<3} cold {row['cold_ground_state_s']:8.3f} s  centered EP {row['centered_ep_s']:8.3f} s  "
              f"ratio {row['ratio']:5.2f} (to the certified ground state {row['ratio_certified']:5.2f})  H applications {row['applications']}  peak RSS {row['peak_rss_gib']:.2f} GiB "
              f"(estimate {row['working_set_estimate_gib']:.2f} GiB)", flush=True)
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    write_json(Path(args.out) / "ep_gradient.json", {"machine": {**machine_info(), "load_average": load},
                                                     "beta": args.beta, "solver": args.solver, "rows": rows})
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(list(rows), [r["ratio"] for r in rows.values()], "o-", label="to the cold ground state (no gap)")
    ax.plot(list(rows), [r["ratio_certified"] for r in rows.values()], "s--", label="to the certified ground state")
    ax.axhline(1.3, ls=":", c="k", label="target 1.3")
    ax.set(xlabel="qubits N", ylabel="centered EP gradient / cold ground state", title=f"solver={args.solver}, beta={args.beta}")
    ax.legend()
    ax.grid(alpha=0.3)
    bx.semilogy(list(rows), [r["peak_rss_gib"] for r in rows.values()], "o-", label="peak RSS")
    bx.semilogy(list(rows), [r["working_set_estimate_gib"] for r in rows.values()], "s--", label="working-set estimate")
    bx.axhline(4.0, ls=":", c="k", label="4 GB")
    bx.set(xlabel="qubits N", ylabel="GiB", title="memory")
    bx.legend()
    bx.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(Path(args.out) / "ep_gradient.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
