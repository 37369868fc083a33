"""Finite-temperature EP on a TFIM learner: accuracy and gradient fidelity as T grows.

For each temperature T, a 6-qubit complete-graph TFIM (4 inputs, outputs <Z_3>, <Z_4>, <Z_5>)
in the exact Gibbs state exp(-H/T)/Z is trained by centered EP on iris. Gradient fidelity is
measured on a fixed minibatch at two parameter points (the initial parameters and the
parameters trained at T = 0): the minibatch-mean thermal EP gradient against

    the zero-temperature reference gradient (what a ground-state learner would follow) and
    the thermal reference gradient d<C>_T/dtheta (exact Kubo-Mori response: EP's own target),

as cosine similarity and relative error ||g - g_ref|| / ||g_ref||.

    python benchmarks/thermal_tfim.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json  # noqa: E402

from qeqprop import TFIMNetwork, fit, load_dataset, relative_error  # noqa: E402
from qeqprop.ep import flatten_grad  # noqa: E402
from qeqprop.train import minibatch_gradient, targets_for  # noqa: E402


def learner(temperature: float) -> TFIMNetwork:
    return TFIMNetwork(6, "complete", n_inputs=4, output_qubits=[3, 4, 5], temperature=temperature)


def cosine(a: dict, b: dict) -> float:
    u, v = flatten_grad(a), flatten_grad(b)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def fidelity(system: TFIMNetwork, params: dict, x: np.ndarray, y: np.ndarray, zero_reference: dict, beta: float) -> dict:
    """Minibatch-mean thermal EP gradient against the T = 0 and the thermal reference gradients."""
    ep = minibatch_gradient(system, params, x, y, beta=beta, task="regression")[0]  # y: cost targets, unchanged
    thermal = minibatch_gradient(system, params, x, y, gradient="reference", task="regression")[0]
    return {
        "cosine_vs_zero_T_reference": cosine(ep, zero_reference),
        "relative_error_vs_zero_T_reference": relative_error(ep, zero_reference),
        "cosine_vs_thermal_reference": cosine(ep, thermal),
        "relative_error_vs_thermal_reference": relative_error(ep, thermal),
        "ep_gradient_norm": float(np.linalg.norm(flatten_grad(ep))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 0.05, 0.2, 0.5, 1.0, 2.0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--beta", type=float, default=1e-2)
    parser.add_argument("--samples", type=int, default=16, help="minibatch size for the gradient-fidelity probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    if any(t < 0 for t in args.temperatures):
        parser.error("--temperatures must all be >= 0")
    data = load_dataset("iris", seed=args.seed)
    ground = learner(0.0)
    x = data.x_train[: args.samples]
    y = targets_for(ground, data, data.y_train[: args.samples])
    points = {"initial": ground.init_params(np.random.default_rng(args.seed))}
    points["trained_at_T0"] = fit(ground, data, epochs=args.epochs, learning_rate=args.learning_rate,
                                  beta=args.beta, seed=args.seed, progress=False).params
    zero_reference = {name: minibatch_gradient(ground, p, x, y, gradient="reference", task="regression")[0]
                      for name, p in points.items()}

    rows = []
    for temperature in args.temperatures:
        system = learner(temperature)
        start = time.perf_counter()
        result = fit(system, data, epochs=args.epochs, learning_rate=args.learning_rate, beta=args.beta,
                     seed=args.seed, progress=False)
        row = {
            "temperature": temperature,
            "test_accuracy": result.final["test_accuracy"],
            "train_accuracy": result.final["train_accuracy"],
            "test_loss": result.final["test_loss"],
            "train_loss": result.final["train_loss"],
            "train_min_gap": result.final["train_min_gap"],
            "train_seconds": time.perf_counter() - start,
            "test_accuracy_per_epoch": [h["test_accuracy"] for h in result.history],
            "train_loss_per_epoch": [h["train_loss"] for h in result.history],
            "gradient": {name: fidelity(system, p, x, y, zero_reference[name], args.beta) for name, p in points.items()},
        }
        rows.append(row)
        summary = {k: round(row[k], 4) for k in ("temperature", "test_accuracy", "train_loss", "train_seconds")}
        summary.update({f"{name}_cos_T0": round(g["cosine_vs_zero_T_reference"], 4) for name, g in row["gradient"].items()})
        summary.update({f"{name}_err_thermal": float(f"{g['relative_error_vs_thermal_reference']:.3g}") for name, g in row["gradient"].items()})
        print(summary, flush=True)

    out = Path(args.out)
    settings = {k: getattr(args, k) for k in ("epochs", "learning_rate", "beta", "samples", "seed")}
    settings.update({"model": "TFIMNetwork(6, 'complete', n_inputs=4, output_qubits=[3, 4, 5])", "dataset": "iris",
                     "estimator": "centered"})
    write_json(out / "thermal_tfim.json", {"machine": machine_info(), "settings": settings, "rows": rows})

    temperatures = [r["temperature"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    axes[0].plot(temperatures, [r["test_accuracy"] for r in rows], "o-", label="test")
    axes[0].plot(temperatures, [r["train_accuracy"] for r in rows], "s--", label="train")
    axes[0].set(xlabel="temperature T", ylabel="accuracy", title=f"iris, {args.epochs} epochs, centered EP")
    for name, marker in (("initial", "o"), ("trained_at_T0", "s")):
        for key, style in (("cosine_vs_zero_T_reference", "-"), ("cosine_vs_thermal_reference", ":")):
            axes[1].plot(temperatures, [r["gradient"][name][key] for r in rows], marker + style,
                         label=f"{name}: vs {'T=0' if 'zero' in key else 'thermal'} ref")
    axes[1].set(xlabel="temperature T", ylabel="cosine similarity", title=f"thermal EP gradient (beta={args.beta})")
    for row in rows:
        axes[2].plot(range(1, len(row["train_loss_per_epoch"]) + 1), row["train_loss_per_epoch"], label=f"T={row['temperature']:g}")
    axes[2].set(xlabel="epoch", ylabel="train loss", title="training curves")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "thermal_tfim.png", dpi=120)
    print(f"wrote {out / 'thermal_tfim.json'} and {out / 'thermal_tfim.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
