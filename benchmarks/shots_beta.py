"""Measured-EP gradient error vs beta for several shot budgets (positive vs centered).

RMS error ||g_measured - g_ref|| over repetitions, with M shots per phase. Expected shapes:
slope -1 where shot noise dominates (small beta: std ~ 1/(beta sqrt M)), +1 (positive) or
+2 (centered) where the EP bias dominates (large beta, exact expectations). Writes
shots_beta.json and shots_beta.png to --out.

    python benchmarks/shots_beta.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json  # noqa: E402

from qeqprop import ep_gradient, random_tfim_instance
from qeqprop.measurement import measured_ep_gradient, optimal_beta  # noqa: E402
from qeqprop.ep import flatten_grad  # noqa: E402
from qeqprop.gradcheck import log_slope  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--qubits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--shots", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    args = parser.parse_args(argv)

    system, params, x, y = random_tfim_instance(args.qubits, seed=0)
    reference = flatten_grad(system.reference_grad(params, x, y))
    betas = np.logspace(-3, 0, 13)
    results = {"machine": machine_info(), "n_qubits": args.qubits, "betas": betas.tolist(), "repeats": args.repeats,
               "reference_norm": float(np.linalg.norm(reference)), "curves": {}, "slopes": {}, "optimal_beta": {}}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, estimator in zip(axes, ("positive", "centered")):
        exact = [np.linalg.norm(flatten_grad(ep_gradient(system, params, x, y, b, estimator).grad) - reference) for b in betas]
        results["curves"][f"{estimator}/exact"] = exact
        large = betas >= 1e-2
        results["slopes"][f"{estimator}/bias"] = log_slope(betas[large], np.array(exact)[large])
        ax.loglog(betas, exact, "k--", label="exact expectations (bias)")
        for shots in args.shots:
            rms = []
            for beta in betas:
                errors = [np.sum((flatten_grad(measured_ep_gradient(system, params, x, y, beta, shots, estimator, rng=k).grad) - reference) ** 2)
                          for k in range(args.repeats)]
                rms.append(float(np.sqrt(np.mean(errors))))
            results["curves"][f"{estimator}/M={shots}"] = rms
            small = betas <= 1e-2
            results["slopes"][f"{estimator}/M={shots}/noise"] = log_slope(betas[small], np.array(rms)[small])
            choice = optimal_beta(system, params, x, y, shots, estimator)
            results["optimal_beta"][f"{estimator}/M={shots}"] = {"beta": choice.beta, "predicted_rmse": choice.predicted_rmse,
                                                                "measured_min_rmse": min(rms), "beta_at_measured_min": float(betas[int(np.argmin(rms))])}
            line, = ax.loglog(betas, rms, "o-", ms=3, label=f"M = {shots}")
            ax.axvline(choice.beta, color=line.get_color(), ls=":", lw=1)
        ax.set(title=f"{estimator} EP, {args.qubits}-qubit TFIM", xlabel="beta", ylabel="RMS gradient error")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("dotted: beta* predicted by qeqprop.optimal_beta")
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "shots_beta.png", dpi=120)
    write_json(out / "shots_beta.json", results)
    for key, value in results["slopes"].items():
        print(f"{key:<28} slope {value:+.3f}")
    for key, value in results["optimal_beta"].items():
        print(f"{key:<20} beta* {value['beta']:.3g} (pred rmse {value['predicted_rmse']:.3g}); measured min rmse {value['measured_min_rmse']:.3g} at beta {value['beta_at_measured_min']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
