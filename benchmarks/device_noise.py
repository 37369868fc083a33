"""EP on a noisy quantum device: gradient bias vs noise strength and beta, zero-noise
extrapolation, the device-optimal beta, and training under noise (issue 21).

Learner: a 4-qubit TFIM (complete graph, 2 inputs, trainable transverse fields) whose phases
are prepared by a per-term HVA of depth 3 (fidelity ~1 - 1e-14 with the exact ground states), at
``init_params(0)`` on the first xor training points. Every gradient is the device loop's
(qeqprop.device): the nudge from the measured free outputs, centered estimator.

* bias_vs_noise: depolarizing and amplitude-damping channels of strength p after every gate
  (PennyLane ``qml.add_noise`` on default.mixed), ANALYTIC probabilities (no shots: the bias
  itself), raw and with Richardson ZNE over global-folding scales (1, 3, 5); relative error
  against the noiseless analytic loop (same circuits) and against the exact linear-response
  gradient. beta = 0.2.
* bias_vs_beta: the same at depolarizing p = 0.01 for beta in 0.05..0.8.
* aer: an Aer noise model (depolarizing error p on every 1- and 2-qubit basis gate after
  transpiling: a per-gate noise on a deeper, decomposed circuit), shots, raw and ZNE; the error
  against the noiseless analytic gradient with its standard error.
* optimal_beta: ``device_optimal_beta`` on default.mixed (p = 0.01, 2000 shots per circuit)
  and the measured RMSE around it over seeds.
* training: xor through default.qubit with shots and through default.mixed with 1 %
  depolarizing noise and shots (fit(device=...)); test accuracy, wall time, shots.

    nice -n 19 python benchmarks/device_noise.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import pennylane as qml
from _common import machine_info, write_json

import qeqprop as qp
from qeqprop.device import DeviceLoop, ZeroNoiseExtrapolation, device_optimal_beta
from qeqprop.ep import flatten_grad
from qeqprop.train import targets_for

CHANNELS = {"depolarizing": qml.DepolarizingChannel, "amplitude_damping": qml.AmplitudeDamping}
ZNE = ZeroNoiseExtrapolation((1, 3, 5))
N = 4


def noisy_mixed(channel: str, p: float, shots: int | None = None):
    """default.mixed with ``channel`` of strength p on every wire a gate touches, after the gate."""
    device = qml.device("default.mixed", wires=N, seed=0) if shots else qml.device("default.mixed", wires=N)
    if p == 0.0:
        return device
    model = qml.NoiseModel({qml.noise.wires_in(range(N)): qml.noise.partial_wires(CHANNELS[channel], p)})
    return qml.add_noise(device, model)


def aer_backend(p: float):
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    if p == 0.0:
        return AerSimulator()
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(p, 1), ["h", "rz", "rx", "ry", "sx", "x", "s", "sdg", "u", "u1", "u2", "u3"])
    model.add_all_qubit_quantum_error(depolarizing_error(p, 2), ["cx"])
    return AerSimulator(noise_model=model)


def problem(samples: int):
    net = qp.variational_tfim(N, n_inputs=2, ansatz="hva", depth=3, per_term=True, train_gamma=True, compare_exact=False)
    data = qp.load_dataset("xor", seed=0)
    Y = targets_for(net, data, data.y_train[:samples])
    return net, net.init_params(0), data.x_train[:samples], Y


def gradients(loop: DeviceLoop, net, params, X, Y, beta: float, rng=0) -> tuple[np.ndarray, np.ndarray]:
    """Flat gradients and standard errors per sample, (B, P) each."""
    out, err = [], []
    for k, (x, y) in enumerate(zip(X, Y)):
        r = loop.gradient(net, params, x, y, beta=beta, rng=[rng, k])
        out.append(flatten_grad(r.grad))
        err.append(flatten_grad(r.stderr))
    return np.array(out), np.array(err)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over samples of ||a_b - b_b|| / ||b_b||."""
    return float(np.mean(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


def bias_vs_noise(net, params, X, Y, strengths, beta: float) -> dict:
    clean, _ = gradients(DeviceLoop(qml.device("default.qubit", wires=N)), net, params, X, Y, beta)
    reference = np.array([flatten_grad(net.reference_grad(params, x, y)) for x, y in zip(X, Y)])
    rows = []
    for channel in CHANNELS:
        for p in strengths:
            raw, _ = gradients(DeviceLoop(noisy_mixed(channel, p)), net, params, X, Y, beta)
            zne, _ = gradients(DeviceLoop(noisy_mixed(channel, p), mitigation=ZNE), net, params, X, Y, beta)
            rows.append({"channel": channel, "p": p, "raw_vs_clean": relative(raw, clean), "zne_vs_clean": relative(zne, clean),
                         "raw_vs_reference": relative(raw, reference), "zne_vs_reference": relative(zne, reference)})
            print(rows[-1], flush=True)
    return {"beta": beta, "clean_vs_reference": relative(clean, reference), "rows": rows}


def bias_vs_beta(net, params, X, Y, betas, p: float) -> dict:
    reference = np.array([flatten_grad(net.reference_grad(params, x, y)) for x, y in zip(X, Y)])
    rows = []
    for beta in betas:
        clean, _ = gradients(DeviceLoop(qml.device("default.qubit", wires=N)), net, params, X, Y, beta)
        raw, _ = gradients(DeviceLoop(noisy_mixed("depolarizing", p)), net, params, X, Y, beta)
        zne, _ = gradients(DeviceLoop(noisy_mixed("depolarizing", p), mitigation=ZNE), net, params, X, Y, beta)
        rows.append({"beta": beta, "clean_vs_reference": relative(clean, reference), "raw_vs_reference": relative(raw, reference),
                     "zne_vs_reference": relative(zne, reference), "raw_vs_clean": relative(raw, clean),
                     "zne_vs_clean": relative(zne, clean)})
        print(rows[-1], flush=True)
    return {"p": p, "channel": "depolarizing", "rows": rows}


def aer(net, params, X, Y, strengths, beta: float, shots: int) -> dict:
    clean, _ = gradients(DeviceLoop(qml.device("default.qubit", wires=N)), net, params, X, Y, beta)
    rows = []
    for p in strengths:
        for name, mitigation in (("raw", None), ("zne", ZNE)):
            if p == 0.0 and mitigation is not None:
                continue
            start = time.perf_counter()
            loop = DeviceLoop(aer_backend(p), shots=shots, mitigation=mitigation)
            got, err = gradients(loop, net, params, X, Y, beta, rng=1)
            # error against the noiseless gradient, and the part shot noise explains
            rows.append({"p": p, "mitigation": name, "vs_clean": relative(got, clean),
                         "shot_noise_share": float(np.mean(np.linalg.norm(err, axis=1) / np.linalg.norm(clean, axis=1))),
                         "shots": loop.total.shots, "circuits": loop.total.circuits, "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    return {"beta": beta, "shots_per_circuit": shots, "rows": rows}


def optimal_beta(net, params, X, Y, betas, seeds: int, p: float, shots: int) -> dict:
    x, y = X[0], Y[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loop = DeviceLoop(noisy_mixed("depolarizing", p, shots=True), shots=shots)
    choice = device_optimal_beta(net, params, x, y, loop, probe_beta=0.2, rng=0)
    target = flatten_grad(net.reference_grad(params, x, y))
    rows = []
    for beta in betas:
        draws = np.array([flatten_grad(loop.gradient(net, params, x, y, beta=beta, rng=s).grad) for s in range(seeds)])
        rows.append({"beta": beta, "rmse": float(np.sqrt(np.mean(np.sum((draws - target) ** 2, axis=1)))),
                     "predicted_rmse_without_noise_bias": float(choice.rmse(beta))})
        print(rows[-1], flush=True)
    return {"p": p, "shots_per_circuit": shots, "seeds": seeds, "beta_star": choice.beta,
            "bias_coefficient": choice.bias_coefficient, "variance_coefficient": choice.variance_coefficient,
            "predicted_rmse": choice.predicted_rmse, "rows": rows}


def training(epochs: int, strengths, shots: int, beta: float, learning_rate: float, subset: int | None, save) -> dict:
    """xor through the device loop per noise strength; ``save(partial)`` after every epoch (a long run
    keeps what it measured)."""
    from qeqprop.datasets import Dataset

    data = qp.load_dataset("xor", seed=0)
    if subset:
        data = Dataset("xor", data.x_train[:subset], data.y_train[:subset], data.x_test, data.y_test, 2)
    rows = []
    partial = {"epochs": epochs, "beta": beta, "learning_rate": learning_rate, "shots_per_circuit": shots,
               "train_points": len(data.x_train), "rows": rows}
    for noise in strengths:
        name = "default.qubit shots" if noise == 0.0 else f"default.mixed depolarizing {noise:g}, shots"
        net = qp.variational_tfim(N, n_inputs=2, ansatz="hva", depth=3, per_term=True, compare_exact=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            device = qml.device("default.qubit", wires=N, seed=0) if noise == 0.0 else noisy_mixed("depolarizing", noise, shots=True)
        loop = DeviceLoop(device, shots=shots)
        start = time.perf_counter()
        history = []

        def keep(epoch, record, params, name=name, history=history, loop=loop, start=start):
            history.append(record)
            save({**partial, "rows": [*rows, {"device": name, "seconds": time.perf_counter() - start, "history": history,
                                              "test_accuracy": record["test_accuracy"], "total": loop.total.as_dict(),
                                              "per_gradient": loop.total.per_gradient(), "partial": True}]})
            print(epoch, {k: round(v, 4) for k, v in record.items()}, flush=True)

        result = qp.fit(net, data, device=loop, epochs=epochs, batch_size=16, beta=beta, learning_rate=learning_rate,
                        progress=False, callback=keep)
        rows.append({"device": name, "seconds": time.perf_counter() - start, "history": result.history,
                     "test_accuracy": result.final["test_accuracy"], "total": loop.total.as_dict(),
                     "per_gradient": loop.total.per_gradient()})
        print({k: v for k, v in rows[-1].items() if k != "history"}, flush=True)
    return {**partial, "load": os.getloadavg()}


def plot(results: dict, path: Path) -> None:
    panels = [k for k in ("bias_vs_noise", "bias_vs_beta", "optimal_beta", "training") if k in results]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, key in zip(axes[0], panels):
        data = results[key]
        if key == "bias_vs_noise":
            for channel, style in zip(CHANNELS, ("o", "s")):
                rows = [r for r in data["rows"] if r["channel"] == channel and r["p"] > 0]
                ax.loglog([r["p"] for r in rows], [r["raw_vs_clean"] for r in rows], style + "-", label=f"{channel}")
                ax.loglog([r["p"] for r in rows], [r["zne_vs_clean"] for r in rows], style + "--", label=f"{channel} + ZNE")
            ax.set(xlabel="noise strength p per gate", ylabel="rel. error vs noiseless", title=f"beta = {data['beta']}")
        elif key == "bias_vs_beta":
            rows = data["rows"]
            for name in ("clean_vs_reference", "raw_vs_reference", "zne_vs_reference"):
                ax.loglog([r["beta"] for r in rows], [r[name] for r in rows], "o-", label=name.replace("_vs_reference", ""))
            ax.set(xlabel="beta", ylabel="rel. error vs exact gradient", title=f"depolarizing p = {data['p']}")
        elif key == "optimal_beta":
            rows = data["rows"]
            ax.loglog([r["beta"] for r in rows], [r["rmse"] for r in rows], "o-", label="measured RMSE")
            ax.loglog([r["beta"] for r in rows], [r["predicted_rmse_without_noise_bias"] for r in rows], "--", label="model (no noise bias)")
            ax.axvline(data["beta_star"], color="k", lw=0.8, label=f"beta* = {data['beta_star']:.2f}")
            ax.set(xlabel="beta", ylabel="RMSE vs exact gradient", title=f"p = {data['p']}, {data['shots_per_circuit']} shots")
        else:
            for row in data["rows"]:
                ax.plot([h["epoch"] for h in row["history"]], [h["test_accuracy"] for h in row["history"]], "o-", label=row["device"])
            ax.set(xlabel="epoch", ylabel="xor test accuracy", title="training through the device loop")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only", nargs="+", default=["bias_vs_noise", "bias_vs_beta", "aer", "optimal_beta", "training"])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.001, 0.003, 0.01, 0.03])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4, 0.8])
    parser.add_argument("--aer-shots", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-noise", type=float, nargs="+", default=[0.0, 0.01], help="depolarizing p per training run")
    parser.add_argument("--train-subset", type=int, default=None, help="first N xor training points (default: all 140)")
    parser.add_argument("--train-beta", type=float, default=0.2)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    net, params, X, Y = problem(args.samples)
    results: dict = {"machine": machine_info(), "load_before": os.getloadavg(), "args": vars(args)}
    if "bias_vs_noise" in args.only:
        results["bias_vs_noise"] = bias_vs_noise(net, params, X, Y, args.strengths, 0.2)
    if "bias_vs_beta" in args.only:
        results["bias_vs_beta"] = bias_vs_beta(net, params, X, Y, args.betas, 0.01)
    if "aer" in args.only:
        results["aer"] = aer(net, params, X, Y, [0.0, 0.003, 0.01], 0.2, args.aer_shots)
    if "optimal_beta" in args.only:
        results["optimal_beta"] = optimal_beta(net, params, X, Y, args.betas, args.seeds, 0.01, 2000)
    out = Path(args.out)
    suffix = "" if len(args.only) == 5 else "_" + "_".join(args.only)
    if "training" in args.only and args.train_noise != [0.0, 0.01]:
        suffix += "_p" + "_".join(f"{p:g}" for p in args.train_noise)
    if "training" in args.only:
        results["training"] = training(args.epochs, args.train_noise, 2000, args.train_beta, args.learning_rate,
                                       args.train_subset, lambda partial: write_json(out / f"device_noise{suffix}.json",
                                                                                     {**results, "training": partial}))
    results["load_after"] = os.getloadavg()
    write_json(out / f"device_noise{suffix}.json", results)
    plot(results, out / f"device_noise{suffix}.png")


if __name__ == "__main__":
    main()
