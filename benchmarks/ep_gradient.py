"""Cost of one full centered EP gradient (free + two warm-started nudged phases, local
gradients included) relative to one cold ground state, for TFIM learners of N qubits.

    python benchmarks/ep_gradient.py --qubits 12 14 16 18 20 22 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, median_seconds, write_json  # noqa: E402

import qeqprop as qp  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[12, 14, 16, 18, 20, 22])
    parser.add_argument("--beta", type=float, default=1e-2)
    parser.add_argument("--solver", default="jax", choices=["jax", "lanczos"])
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = {}
    for n in args.qubits:
        system = qp.TFIMNetwork(n, "complete", n_inputs=2, output_qubits=[n - 1], solver=args.solver)
        params = system.init_params(0)
        x, y = np.array([0.4, -0.7]), np.array([0.5])
        operator = system.hamiltonian.operator(params, x)
        cold = lambda: qp.ground_state(operator, args.solver, with_gap=False)  # noqa: E731
        gradient = lambda: qp.ep_gradient(system, params, x, y, beta=args.beta)  # noqa: E731
        gradient()  # compile
        repeats = 3 if n <= 18 else 1
        t_cold, t_ep = median_seconds(cold, repeats), median_seconds(gradient, repeats)
        result = gradient()
        rows[n] = {
            "cold_ground_state_s": t_cold, "centered_ep_s": t_ep, "ratio": t_ep / t_cold,
            "applications": {"free": result.free.iterations, **{str(b): s.iterations for b, s in result.nudged.items()}},
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        }
        print(f"N={n:<3} cold {t_cold:8.3f} s  centered EP {t_ep:8.3f} s  ratio {t_ep / t_cold:5.2f}  "
              f"H applications {rows[n]['applications']}  peak RSS {rows[n]['peak_rss_gib']:.2f} GiB", flush=True)
    write_json(Path(args.out) / "ep_gradient.json", {"machine": machine_info(), "beta": args.beta, "solver": args.solver, "rows": rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(list(rows), [r["ratio"] for r in rows.values()], "o-")
    ax.axhline(1.6, ls=":", c="k", label="target 1.6")
    ax.set(xlabel="qubits N", ylabel="centered EP gradient / cold ground state", title=f"solver={args.solver}, beta={args.beta}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "ep_gradient.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
