"""Accuracy vs chain length for the site-input chain learner (issue 22: a task where size matters).

The preset teacher48-mps (qeqprop.systems.long_chain.SiteChain on chain-teacher, centered EP) is
trained at every chain length with the same data, seed and hyperparameters, by the command line:

    qeqprop train --preset teacher48-mps --hidden N --solver S --json --save-model DIR/siteN.model

(S: "auto" = exact states up to 16 qubits, "mps" above), then every saved model is scored on the
same fresh samples (``chain_teacher_data(--fresh, 48, default_rng(1))``, standardized with the
training split's statistics, as the preset's data are), with a 95% Wilson interval. The ceiling
1 - arccos(sqrt(min(N, 48) / 48)) / pi is the best a linear reader of the N visible spins can do
(qeqprop.datasets.chain_teacher_data). Wall and CPU seconds, peak RSS and the load average are
recorded per run (the machine is shared: compare walls only at similar load).

The figure (results/mps_size_curve.png and .pdf, redrawn after every run): fresh-sample accuracy
vs qubits with the 95% Wilson intervals, the ceiling curve 1 - arccos(sqrt(N / 48)) / pi and chance.

    python benchmarks/mps_size_curve.py --sizes 12 16 24 48     # -> results/mps_size_curve.json, .png, .pdf
    python benchmarks/mps_size_curve.py --sizes 48 --score-only # rescore saved models
    python benchmarks/mps_size_curve.py --plot-only             # redraw the figure from the stored JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json

from qeqprop.plots import COLUMN_WIDTH, paper_style, save_figure
from qeqprop.datasets import (
    CHAIN_TEACHER,
    chain_teacher_data,
    decode_outputs,
    load_dataset,
)
from qeqprop.serialization import load_model
from qeqprop.systems.long_chain import EXACT_MAX_QUBITS, SiteChain, chain_solver

RESULTS = Path(__file__).parent / "results"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def fresh_samples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n fresh chain-teacher samples, standardized with the preset's training statistics: the
    standardized training spins keep their signs, so np.sign(x_train) are the spins drawn."""
    spins = np.sign(load_dataset("chain-teacher", seed=0).x_train)
    x, labels = chain_teacher_data(n, CHAIN_TEACHER[0], np.random.default_rng(seed))
    return (x - spins.mean(axis=0)) / spins.std(axis=0), labels


def train(n: int, models: Path) -> dict:
    """Run the preset at n sites from the command line; its final JSON record plus wall, CPU, RSS, load."""
    solver = "auto" if n <= EXACT_MAX_QUBITS else "mps"
    command = ["qeqprop", "train", "--preset", "teacher48-mps", "--hidden", str(n), "--solver", solver, "--json",
               "--quiet", "--save-model", str(models / f"site{n}.model")]
    load = os.getloadavg()[0]
    done = subprocess.run(["/usr/bin/time", "-v", *command], check=True, capture_output=True, text=True)
    timing = dict(line.strip().rsplit(": ", 1) for line in done.stderr.splitlines() if line.startswith("\t") and ": " in line)
    return {"command": " ".join(command), "solver": solver, "wall": timing["Elapsed (wall clock) time (h:mm:ss or m:ss)"],
            "cpu_s": round(float(timing["User time (seconds)"]) + float(timing["System time (seconds)"]), 1),
            "peak_rss_mb": round(int(timing["Maximum resident set size (kbytes)"]) / 1024, 1),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "final": json.loads(done.stdout.strip().splitlines()[-1])}


def score(n: int, models: Path, x: np.ndarray, labels: np.ndarray, gap_samples: int) -> dict:
    """Accuracy of the saved n-site model on the fresh samples, and the trained chain's gaps and
    couplings: past EXACT_MAX_QUBITS the gap E_1 - E_0 of the first ``gap_samples`` fresh samples is
    measured here by a second, orthogonalised DMRG (MPS(gap=True)): the stored runs trained without
    gaps (before SiteChain's gap_check; a run now records its training gaps, "batch_min_gap" and
    "batch_gap_checks" in "final"); up to there the exact runs report their own (test_min_gap)."""
    start = time.perf_counter()
    model = load_model(models / f"site{n}.model")
    predicted = decode_outputs(model.predict(x))
    right = int(np.sum(predicted == labels))
    result = {"fresh_accuracy": right / len(labels), "fresh_wilson95": wilson(right, len(labels)),
              "score_wall_s": round(time.perf_counter() - start, 1),
              "J_range": [round(float(model.params["J"].min()), 3), round(float(model.params["J"].max()), 3)]}
    if n > EXACT_MAX_QUBITS and gap_samples:
        solver = chain_solver("mps")
        gapped = SiteChain(n, CHAIN_TEACHER[0], solver=replace(solver, gap=True))
        gaps = [gapped.equilibrate(model.params, sample).gap for sample in x[:gap_samples]]
        result["mps_gaps"] = {"samples": gap_samples, "min": round(float(min(gaps)), 4), "max": round(float(max(gaps)), 4)}
    return result


@paper_style
def plot(path: Path) -> Path:
    """Accuracy on the fresh samples vs qubits from the results file ``path`` (Wilson 95% bars,
    exact and MPS runs marked apart), the ceiling 1 - arccos(sqrt(min(N, 48) / 48)) / pi and chance;
    written beside it as .png and .pdf (qeqprop.plots.save_figure)."""
    import matplotlib.pyplot as plt

    stored = json.loads(path.read_text())
    runs = sorted(stored["runs"].values(), key=lambda run: run["qubits"])
    if not runs:
        raise ValueError(f"{path} holds no runs to plot; run the benchmark first (--sizes ...)")
    spins = CHAIN_TEACHER[0]
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.5), layout="constrained")
    grid = np.linspace(1, max(spins, max(run["qubits"] for run in runs)), 200)
    ax.plot(grid, 1 - np.arccos(np.sqrt(np.minimum(grid, spins) / spins)) / np.pi, color="0.45", lw=1.0,
            label=r"ceiling $1 - \arccos\sqrt{N/48}\,/\,\pi$")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":", label="chance")
    for solver, marker, label in (("auto", "s", "exact states"), ("mps", "o", "MPS (DMRG)")):
        chosen = [run for run in runs if run["solver"] == solver]
        if not chosen:
            continue
        qubits = np.array([run["qubits"] for run in chosen])
        accuracy = np.array([run["fresh_accuracy"] for run in chosen])
        low, high = np.array([run["fresh_wilson95"] for run in chosen]).T
        ax.errorbar(qubits, accuracy, yerr=[accuracy - low, high - accuracy], fmt=marker, capsize=2.5, color="C0",
                    mfc="C0" if solver == "mps" else "white", label=label)
    fresh = stored["data"]["fresh"]
    ax.set_xlabel("qubits N (sites seeing N of the 48 teacher spins)")
    ax.set_ylabel(f"accuracy, {fresh} fresh samples")
    ax.set_title("teacher48-mps: centered EP, 1 epoch, seed 0 (bars: Wilson 95%)")
    ax.set_ylim(0.4, 1.0)
    ax.legend(loc="upper left", frameon=False)
    out = save_figure(fig, path.with_suffix(".png"))
    plt.close(fig)
    return out


def saved_runs(path: Path) -> dict:
    """The runs already in the results file (another size's process may have written some)."""
    return json.loads(path.read_text())["runs"] if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 24, 48])
    parser.add_argument("--fresh", type=int, default=256, help="fresh samples scored per size")
    parser.add_argument("--fresh-seed", type=int, default=1)
    parser.add_argument("--models", type=Path, default=Path("runs/mps_size_curve"), help="where the models are saved")
    parser.add_argument("--gap-samples", type=int, default=8, help="fresh samples whose MPS gap is measured (MPS sizes)")
    parser.add_argument("--score-only", action="store_true", help="score the saved models, do not train")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from --out, run nothing")
    parser.add_argument("--out", type=Path, default=RESULTS / "mps_size_curve.json")
    args = parser.parse_args()
    if args.plot_only:
        print(plot(args.out))
        return
    args.models.mkdir(parents=True, exist_ok=True)
    x, labels = fresh_samples(args.fresh, args.fresh_seed)
    for n in args.sizes:
        run = dict(saved_runs(args.out).get(str(n), {})) if args.score_only else train(n, args.models)
        run.update(score(n, args.models, x, labels, args.gap_samples), qubits=n,
                   ceiling=1 - float(np.arccos(np.sqrt(min(n, CHAIN_TEACHER[0]) / CHAIN_TEACHER[0]))) / np.pi)
        print(json.dumps(run), flush=True)
        runs = {**saved_runs(args.out), str(n): run}  # read again: runs of other sizes may have finished meanwhile
        write_json(args.out, {"machine": machine_info(), "data": {"dataset": "chain-teacher", "seed": 0, "train": 128,
                   "test": 64, "fresh": args.fresh, "fresh_seed": args.fresh_seed},
                   "runs": dict(sorted(runs.items(), key=lambda item: int(item[0])))})
        plot(args.out)


if __name__ == "__main__":
    main()
