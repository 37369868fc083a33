"""Measurement bases per model: graph colouring vs greedy vs PennyLane's grouping; shot readout cost.

For each model the strings a shot readout measures (those in some dH/dtheta at random inputs,
plus the outputs: readout.shots.batch_plan) are grouped into qubit-wise commuting bases by

    greedy      first fit, heaviest strings first (the plan before issue 18)
    colouring   qeqprop's default: fewest colours of the non-QWC conflict graph among greedy and
                networkx's greedy_color strategies (every strategy also listed on its own)
    pennylane   qml.pauli.compute_partition_indices(grouping_type="qwc", method=lf/rlf/dsatur/gis)

next to the clique lower bound (the largest set of pairwise non-QWC strings: no grouping can
use fewer bases). Models: TFIM complete graph and chain, XXZ chain (n = 6..12), random Pauli
models (n = 6..12 qubits, 3n and 8n distinct strings of weight 1..3, several seeds) and the
issue-18 sensor model (benchmarks/sensor_workload.py). Planning time is per uncached plan.

Second part (``--batch``): the readout of one phase of a batch of sensor-model ground states,
alternating rounds in one process: the multinomial sampler, the batched Gaussian-per-term
sampler, and the per-sample Gaussian loop it replaces (exact term moments per state, then one
normal draw per string). Writes measurement_bases.json and measurement_bases.png to --out.

    nice -n 19 python benchmarks/measurement_bases.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json
from sensor_workload import sensor_data, sensor_system

from qeqprop import TFIMNetwork, XXZNetwork
from qeqprop.hamiltonians import PauliTable
from qeqprop.hamiltonians.parametrized import gradient_rows
from qeqprop.readout import Shots
from qeqprop.readout.plan import (
    _groups,
    conflict_graph,
    conflict_matrix,
    qubitwise_groups,
)
from qeqprop.readout.sampling import exact_term_moments
from qeqprop.readout.shots import jacobians_of

PENNYLANE_METHODS = ("lf", "rlf", "dsatur", "gis")
# every networkx greedy_color strategy, each listed on its own (qeqprop's colouring tries
# readout.plan.COLOURING_STRATEGIES, a subset)
NX_STRATEGIES = (
    ("largest_first", False), ("largest_first", True), ("smallest_last", False), ("smallest_last", True),
    ("saturation_largest_first", False), ("independent_set", False),
    ("connected_sequential_bfs", False), ("connected_sequential_bfs", True),
    ("connected_sequential_dfs", False), ("connected_sequential_dfs", True),
)


def random_strings(rng: np.random.Generator, n: int, count: int) -> list[str]:
    """``count`` distinct random Pauli strings of weight 1..3 on ``n`` qubits."""
    seen: set[str] = set()
    while len(seen) < count:
        qubits = sorted(rng.choice(n, size=int(rng.integers(1, 4)), replace=False).tolist())
        seen.add(" ".join(f"{'XYZ'[rng.integers(3)]}{q}" for q in qubits))
    return sorted(seen)


def measured_strings(system, rng: np.random.Generator) -> tuple[list, int]:
    """The strings a shot readout of ``system`` measures at 4 random inputs, and n_qubits."""
    ham = system.pauli_measurement()
    X = rng.normal(size=(4, ham.n_inputs))
    needed = np.union1d(gradient_rows(np.abs(jacobians_of(ham, X)).sum(axis=0)), ham.observable_index)
    return [ham.table.strings[i] for i in needed], ham.n_qubits


def models(sizes, seeds) -> list[tuple[str, str, int, list, int]]:
    """(family, name, n, strings, seed) of every model benchmarked."""
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        for family, system in (("tfim_complete", TFIMNetwork(n, "complete", n_inputs=2, output_qubits=[n - 1], train_gamma=True)),
                               ("tfim_chain", TFIMNetwork(n, "chain", n_inputs=2, output_qubits=[n - 1], train_gamma=True)),
                               ("xxz_chain", XXZNetwork(n, "chain", n_inputs=2, output_qubits=[n - 1]))):
            strings, qubits = measured_strings(system, rng)
            out.append((family, f"{family} n={n}", qubits, strings, 0))
        for per_qubit in (3, 8):
            for seed in seeds:
                strings = PauliTable(n, random_strings(np.random.default_rng([n, per_qubit, seed]), n, per_qubit * n)).strings
                out.append((f"random_{per_qubit}n", f"random {per_qubit}n n={n} seed={seed}", n, strings, seed))
    strings, qubits = measured_strings(sensor_system(), rng)
    out.append(("sensor", "sensor (issue 18)", qubits, strings, 0))
    return out


def pennylane_bases(strings, method: str) -> int:
    import pennylane as qml

    def word(string):
        ops = [getattr(qml, letter)(q) for q, letter in string.ops]
        return ops[0] if len(ops) == 1 else qml.prod(*ops)

    return len(qml.pauli.compute_partition_indices([word(s) for s in strings], grouping_type="qwc", method=method))


def count_bases(strings, n: int) -> dict:
    """Bases of every method on one model, the clique bound and the planning times."""
    needed = np.arange(len(strings))
    row = {"strings": len(strings)}
    for grouping in ("greedy", "colouring"):
        _groups.cache_clear()
        start = time.perf_counter()
        bases, members = qubitwise_groups(strings, needed, n, grouping)
        row[f"{grouping}_ms"] = 1e3 * (time.perf_counter() - start)
        row[grouping] = len(bases)
        assert sorted(np.concatenate(members).tolist()) == needed.tolist()
    conflicts = conflict_matrix(strings, n)
    graph = conflict_graph(conflicts)
    for strategy, interchange in NX_STRATEGIES:
        name = f"nx_{strategy}" + ("+interchange" if interchange else "")
        row[name] = len(set(nx.greedy_color(graph, strategy, interchange=interchange).values()))
    for method in PENNYLANE_METHODS:
        row[f"pennylane_{method}"] = pennylane_bases(strings, method)
    row["pennylane_best"] = min(row[f"pennylane_{m}"] for m in PENNYLANE_METHODS)
    row["clique_bound"] = max(len(c) for c in nx.find_cliques(graph))
    return row


def readout_timings(batch: int, rounds: int, shots_per_basis: int) -> dict:
    """Median seconds per readout of one phase of ``batch`` sensor ground states (module docstring)."""
    system = sensor_system(solver="auto")
    params = system.init_params(np.random.default_rng(0))
    X, _ = sensor_data(batch)
    view = system.batch_view(batch)
    free = view.equilibrate(params, X)
    plan_shots = shots_per_basis * len(Shots(10**6).start(system, X, free, 0).plan.bases)
    measurements = {sampler: Shots(plan_shots, sampler=sampler).start(system, X, free, 0) for sampler in ("multinomial", "gaussian")}
    strings, plan, rng = system.hamiltonian.table.strings, measurements["gaussian"].plan, np.random.default_rng(1)

    def per_sample_gaussian():  # the loop the batched sampler replaces
        for vector in free.vectors:
            exact = exact_term_moments(vector, strings, plan)
            variances = np.diag(exact.covariance)
            exact.means + np.sqrt(variances) * rng.standard_normal(len(variances))

    tasks = {"multinomial_batched": lambda: measurements["multinomial"].measure(free),
             "gaussian_batched": lambda: measurements["gaussian"].measure(free),
             "gaussian_per_sample_loop": per_sample_gaussian}
    times = {name: [] for name in tasks}
    for _ in range(rounds):
        for name, task in tasks.items():  # alternating rounds
            start = time.perf_counter()
            task()
            times[name].append(time.perf_counter() - start)
    return {"batch": batch, "rounds": rounds, "shots_per_phase": int(plan_shots), "bases": len(plan.bases),
            "median_s": {k: float(np.median(v)) for k, v in times.items()},
            "per_sample_ms": {k: 1e3 * float(np.median(v)) / batch for k, v in times.items()},
            "loadavg": os.getloadavg()}


def plot(rows: list[dict], path: Path) -> None:
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(1, len(families), figsize=(3.0 * len(families), 3.6), sharey=False)
    for ax, family in zip(np.atleast_1d(axes), families):
        picked = [r for r in rows if r["family"] == family]
        sizes = sorted({r["n"] for r in picked})
        for key, style in (("greedy", "s-"), ("pennylane_best", "^-"), ("colouring", "o-"), ("clique_bound", "k:")):
            means = [np.mean([r[key] for r in picked if r["n"] == n]) for n in sizes]
            ax.plot(sizes, means, style, ms=4, label=key)
        ax.set(title=family, xlabel="qubits")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("measurement bases (mean over seeds)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12])
    parser.add_argument("--seeds", type=int, default=5, help="random Pauli models per size and density")
    parser.add_argument("--batch", type=int, default=10, help="batch of the readout timing (0: skip it)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shots-per-basis", type=int, default=10)
    args = parser.parse_args(argv)

    rows = []
    for family, name, n, strings, seed in models(args.sizes, range(args.seeds)):
        row = {"family": family, "model": name, "n": n, "seed": seed, **count_bases(strings, n)}
        rows.append(row)
        print(f"{name:<28} strings {row['strings']:>3}  greedy {row['greedy']:>2}  colouring {row['colouring']:>2}  "
              f"pennylane best {row['pennylane_best']:>2}  clique bound {row['clique_bound']:>2}  "
              f"(plan {row['colouring_ms']:.1f} ms)", flush=True)
    summary = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        picked = [r for r in rows if r["family"] == family]
        summary[family] = {key: float(np.mean([r[key] for r in picked]))
                           for key in ("strings", "greedy", "colouring", "pennylane_best", "clique_bound", "colouring_ms")}
        summary[family]["models"] = len(picked)
        summary[family]["colouring_below_greedy"] = sum(r["colouring"] < r["greedy"] for r in picked)
        summary[family]["colouring_at_clique_bound"] = sum(r["colouring"] == r["clique_bound"] for r in picked)
        summary[family]["pennylane_below_colouring"] = sum(r["pennylane_best"] < r["colouring"] for r in picked)
    results = {"machine": machine_info(), "loadavg": os.getloadavg(), "rows": rows, "summary": summary}
    if args.batch:
        results["readout"] = readout_timings(args.batch, args.rounds, args.shots_per_basis)
        print("readout per sample (ms):", {k: round(v, 3) for k, v in results["readout"]["per_sample_ms"].items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, out / "measurement_bases.png")
    write_json(out / "measurement_bases.json", results)
    for family, s in summary.items():
        print(f"{family:<14} mean bases: greedy {s['greedy']:.2f}  colouring {s['colouring']:.2f}  pennylane best "
              f"{s['pennylane_best']:.2f}  clique bound {s['clique_bound']:.2f}  (colouring < greedy in "
              f"{s['colouring_below_greedy']}/{s['models']}, pennylane < colouring in {s['pennylane_below_colouring']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
