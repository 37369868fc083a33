"""Quantum vs classical oscillator networks: EP gradients and trained results as hbar goes 0 -> 1.

hbar = 0 is the classical elastic (spring) network: same class, same code. For each hbar:
the centered-EP gradient of a fixed 6-node network, its error against the exact reference,
the zero-point-fluctuation part (gradient minus the hbar = 0 gradient at the same
parameters), and the test accuracy / loss after training on iris and diabetes.

    python benchmarks/qho_hbar.py --out benchmarks/results
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

from qeqprop import OscillatorNetwork, ep_gradient, fit, load_dataset, relative_error  # noqa: E402
from qeqprop.ep import flatten_grad  # noqa: E402


def network(hbar: float, data) -> OscillatorNetwork:
    n_out = 1 if data.n_classes == 0 else data.n_classes
    return OscillatorNetwork(4 + n_out, "complete", n_inputs=data.n_features, output_nodes=list(range(4, 4 + n_out)), hbar=hbar)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hbars", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    iris, diabetes = load_dataset("iris", seed=0), load_dataset("diabetes", seed=0)
    probe = network(0.0, iris)
    params = probe.init_params(0)
    x, y = iris.x_train[0], np.array([1.0, -1.0, -1.0])
    classical = flatten_grad(ep_gradient(probe, params, x, y, beta=1e-3).grad)
    rows = []
    for hbar in args.hbars:
        system = network(hbar, iris)
        ep = ep_gradient(system, params, x, y, beta=1e-3)
        reference = system.reference_grad(params, x, y)
        trained = fit(system, iris, epochs=args.epochs, learning_rate=0.1, seed=0, progress=False).final
        regression = fit(network(hbar, diabetes), diabetes, epochs=args.epochs, learning_rate=0.05, seed=0, progress=False).final
        row = {
            "hbar": hbar,
            "ep_vs_reference": relative_error(ep.grad, reference),
            "zero_point_part": float(np.linalg.norm(flatten_grad(ep.grad) - classical)),
            "gradient_norm": float(np.linalg.norm(flatten_grad(ep.grad))),
            "iris_test_accuracy": trained["test_accuracy"],
            "iris_test_loss": trained["test_loss"],
            "diabetes_test_loss": regression["test_loss"],
        }
        rows.append(row)
        print({k: float(f"{v:.4g}") for k, v in row.items()}, flush=True)
    out = Path(args.out)
    write_json(out / "qho_hbar.json", {"machine": machine_info(), "epochs": args.epochs, "rows": rows})
    hbars = [r["hbar"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(hbars, [r["zero_point_part"] for r in rows], "o-", label="||g(hbar) - g(0)|| (zero-point part)")
    axes[0].plot(hbars, [r["gradient_norm"] for r in rows], "s--", label="||g(hbar)||")
    axes[0].set(xlabel="hbar", ylabel="gradient norm", title="EP gradient, fixed parameters")
    axes[1].plot(hbars, [r["iris_test_accuracy"] for r in rows], "o-")
    axes[1].set(xlabel="hbar", ylabel="test accuracy", title=f"iris, {args.epochs} epochs")
    axes[2].plot(hbars, [r["diabetes_test_loss"] for r in rows], "o-")
    axes[2].set(xlabel="hbar", ylabel="test <C> (incl. zero-point variance)", title=f"diabetes, {args.epochs} epochs")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "qho_hbar.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
