"""Wall time of the centered EP gradient on Gaussian QHO networks, 10..2000 oscillators.

One gradient = free phase + two nudged phases (one scipy eigh each, O(N^3)) + two local
gradients, exactly as qeqprop.ep.ep_gradient runs it. Reported per N: median over --repeats
of the centered EP gradient, of one phase (equilibrate), and of the exact reference gradient,
plus the EP error against the reference. BLAS threads are pinned by --threads (threadpoolctl).
Writes qho_gradient.json and qho_gradient.png to --out.

    python benchmarks/qho_gradient.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_size_arguments, machine_info, median_seconds, sweep_sizes, write_json  # noqa: E402

from qeqprop.ep import ep_gradient, relative_error  # noqa: E402
from qeqprop.systems.oscillators import OscillatorNetwork  # noqa: E402

SIZES = (10, 30, 100, 300, 1000, 2000)


def network_graph(kind: str, n: int, seed: int):
    """"chain", "complete", or "random": a chain plus Erdos-Renyi edges of mean degree 2."""
    if kind != "random":
        return kind
    graph = nx.gnp_random_graph(n, min(1.0, 2.0 / max(n - 1, 1)), seed=seed)
    graph.add_edges_from((i, i + 1) for i in range(n - 1))
    return graph


def measure(n: int, args) -> dict:
    system = OscillatorNetwork(n, network_graph(args.graph, n, args.seed), n_inputs=min(4, n),
                               output_nodes=list(range(n - min(2, n), n)), anchors=0.1, hbar=args.hbar)
    rng = np.random.default_rng(args.seed)
    params, x, y = system.init_params(rng), rng.normal(size=system.n_inputs), rng.normal(size=system.n_outputs)
    repeats = args.repeats if n <= 300 else max(3, args.repeats // 2)
    gradient = lambda: ep_gradient(system, params, x, y, args.beta, "centered")  # noqa: E731
    reference = system.reference_grad(params, x, y)
    return {
        "n": n,
        "edges": len(system.edges),
        "repeats": repeats,
        "centered_ep_s": median_seconds(gradient, repeats),
        "phase_s": median_seconds(lambda: system.equilibrate(params, x), repeats),
        "reference_s": median_seconds(lambda: system.reference_grad(params, x, y), repeats),
        "relative_error_vs_reference": relative_error(gradient().grad, reference),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--graph", choices=("chain", "random", "complete"), default="chain")
    parser.add_argument("--hbar", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=1e-3)
    add_size_arguments(parser, SIZES, repeats=7)
    args = parser.parse_args(argv)

    blas, rows = sweep_sizes(args, measure, lambda row: (
        f"N={row['n']:5d}  centered EP {row['centered_ep_s']:.4f} s  phase {row['phase_s']:.4f} s  "
        f"reference {row['reference_s']:.4f} s  EP error {row['relative_error_vs_reference']:.1e}"))
    machine = machine_info()
    machine["load_average_1_5_15"] = os.getloadavg()
    machine["blas"] = blas
    results = {"machine": machine, "settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": rows}

    sizes = np.array([r["n"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, label in (("centered_ep_s", "centered EP gradient (3 phases)"), ("phase_s", "one phase (eigh)"),
                       ("reference_s", "exact reference gradient")):
        ax.loglog(sizes, [r[key] for r in rows], "o-", ms=4, label=label)
    top = rows[-1]["centered_ep_s"]
    ax.loglog(sizes, top * (sizes / sizes[-1]) ** 3, "k:", lw=1, label="N^3")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set(xlabel="oscillators N", ylabel="median wall time (s)",
           title=f"Gaussian QHO network ({args.graph}, hbar={args.hbar}), threads={args.threads or 'default'}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "qho_gradient.png", dpi=120)
    write_json(out / "qho_gradient.json", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
