"""Reports of a ComparisonReport: JSON, a Markdown table (mean +- std over seeds), PNG
figures (learning curves with +-1 std bands, accuracy bars, gradient fidelity over training,
phase-diagram predictions), and the README block between ``<!-- compare:start -->`` and
``<!-- compare:end -->``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..plots import plt
from ..datasets import decode_outputs
from ..markdown import replace_block
from .harness import ComparisonReport
from .phases import PARAMETER_RANGE
from .systems import QUANTUM, build
from .tasks import load_task

README_START, README_END = "<!-- compare:start -->", "<!-- compare:end -->"


def _pm(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(report: ComparisonReport) -> str:
    """One row per (task, system): parameters, accuracies (mean ± std over seeds), mean cosine
    and median relative error of EP vs the exact gradient, iterations and time per equilibrium."""
    s = report.settings
    lines = [
        f"{s['estimator']} EP, beta = {s['beta']}, Adam lr = {s['learning_rate']}, {s['epochs']} epochs, "
        f"batch {s['batch_size']}, seeds {s['seeds']} (mean ± std over seeds).",
        "",
        "| task | system | params | train acc | test acc | cos(EP, exact) | rel. error | iterations | ms / equilibrium |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in report.summary():
        name = f"**{row['system']}**" if row["system"] in QUANTUM else row["system"]
        seconds = None if row["seconds_per_equilibrium"] is None else 1e3 * row["seconds_per_equilibrium"]
        lines.append(
            f"| {row['task']} | {name} | {row['n_params']} | {_pm(row['train_accuracy'], row['train_accuracy_std'])} | "
            f"{_pm(row['test_accuracy'], row['test_accuracy_std'])} | {_fmt(row['cosine'], '.4f')} | "
            f"{_fmt(row['relative_error'], '.1e')} | {_fmt(row['iterations'], '.1f')} | {_fmt(seconds, '.2f')} |"
        )
    lines.append("")
    lines.append("Quantum systems in bold. Fidelity: EP minibatch gradient vs the exact reference gradient on a fixed "
                 f"probe batch of {s['probe_size']} training samples, every epoch (cosine: mean; relative error: median). "
                 "Iterations: solver iterations per free equilibrium (0 = direct dense solve; – = closed form or exact "
                 "enumeration).")
    for skip in report.skipped:
        lines.append(f"Skipped {skip['system']} on {skip['task']}: {skip['reason']}.")
    for fail in report.failed:
        lines.append(f"Failed (left out of the means): {fail['system']} on {fail['task']}, seed {fail['seed']}: {fail['error']}")
    return "\n".join(lines) + "\n"


def _curves(report: ComparisonReport, task: str, system: str, key: str, source: str = "history"):
    runs = [r for r in report.runs if r["task"] == task and r["system"] == system]
    if not runs:
        return None
    values = np.array([[np.nan if rec[key] is None else rec[key] for rec in r[source]] for r in runs], dtype=float)
    epochs = np.array([rec["epoch"] for rec in runs[0][source]])
    defined = ~np.all(np.isnan(values), axis=0)  # epochs where some seed has a value (fidelity of a zero gradient is undefined)
    values = values[:, defined]
    return epochs[defined], np.nanmean(values, axis=0), np.nanstd(values, axis=0)


def _panels(report: ComparisonReport, path: Path, key: str, source: str, ylabel: str, yscale: str = "linear") -> Path:
    tasks = report.settings["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for system in report.settings["systems"]:
            curve = _curves(report, task, system, key, source)
            if curve is None:
                continue
            epochs, mean, std = curve
            ax.plot(epochs, mean, marker="o", ms=3, lw=2 if system in QUANTUM else 1, label=system)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
        ax.set(title=task, xlabel="epoch", ylabel=ylabel, yscale=yscale)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy_bars(report: ComparisonReport, path: Path) -> Path:
    """Final test accuracy per system and task, mean ± std over seeds."""
    rows = report.summary()
    tasks, systems = report.settings["tasks"], report.settings["systems"]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks) * len(systems) / 4), 3.8))
    for k, system in enumerate(systems):
        xs, means, stds = [], [], []
        for t, task in enumerate(tasks):
            row = next((r for r in rows if r["task"] == task and r["system"] == system), None)
            if row is not None:
                xs.append(t + (k - len(systems) / 2 + 0.5) * width)
                means.append(row["test_accuracy"])
                stds.append(row["test_accuracy_std"])
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=system, hatch="//" if system in QUANTUM else None)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(ylabel="test accuracy", ylim=(0, 1.05))
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def phase_predictions(report: ComparisonReport, system: str, resolution: int = 21, seed: int | None = None):
    """(grid J, grid g, predicted class) of ``system``'s trained parameters on a (J, g) grid."""
    runs = [r for r in report.runs if r["task"] == "phases" and r["system"] == system and "params" in r]
    if seed is not None:
        runs = [r for r in runs if r["seed"] == seed]
    if not runs:
        raise ValueError(f"system: no trained run of {system!r} on task 'phases' with parameters in this report")
    run = runs[0]
    data = load_task("phases", seed=run["seed"])
    model, _ = build(system, "phases", data.n_features, data.n_classes)
    axis = np.linspace(*PARAMETER_RANGE, resolution)
    J, g = np.meshgrid(axis, axis)
    points = np.column_stack([J.ravel(), g.ravel()])
    predicted = np.array([np.ravel(model.predict(model.equilibrate(run["params"], p))) for p in points])
    return J, g, decode_outputs(predicted).reshape(J.shape)


def plot_phase_diagram(report: ComparisonReport, path: Path, systems=None, resolution: int = 21) -> Path:
    """Predicted phase (ferro / para) over the (J, g) plane for each system, true line g = J."""
    trained = {r["system"] for r in report.runs if r["task"] == "phases" and "params" in r}
    systems = [s for s in (systems or report.settings["systems"]) if s in trained]
    if not systems:
        raise ValueError("systems: no run on task 'phases' with trained parameters to plot")
    cols = min(4, len(systems))
    rows = int(np.ceil(len(systems) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.ravel()[len(systems):]:
        ax.axis("off")
    for ax, system in zip(axes.ravel(), systems):
        J, g, classes = phase_predictions(report, system, resolution)
        ax.contourf(J, g, classes, levels=[-0.5, 0.5, 1.5], colors=["#9ecae1", "#fdae6b"], alpha=0.8)
        ax.plot(PARAMETER_RANGE, PARAMETER_RANGE, "k--", lw=1.5, label="exact g = J")
        ax.set(title=system, xlabel="J", ylabel="g")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle("predicted phase: orange ferromagnet, blue paramagnet")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: ComparisonReport, out: str | Path) -> dict[str, Path]:
    """Write compare.json, compare.md and the PNG figures into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    for run in data["runs"]:
        run.pop("params", None)
    paths = {"json": out / "compare.json", "markdown": out / "compare.md"}
    paths["json"].write_text(json.dumps(data, indent=1))
    paths["markdown"].write_text(markdown_table(report))
    paths["learning_curves"] = _panels(report, out / "learning_curves.png", "test_accuracy", "history", "test accuracy")
    paths["loss_curves"] = _panels(report, out / "loss_curves.png", "train_loss", "history", "train loss", "log")
    paths["fidelity"] = _panels(report, out / "gradient_fidelity.png", "relative_error", "fidelity",
                                "|g_EP - g_exact| / |g_exact|", "log")
    paths["accuracy"] = plot_accuracy_bars(report, out / "accuracy.png")
    if any(r["task"] == "phases" and "params" in r for r in report.runs):
        paths["phase_diagram"] = plot_phase_diagram(report, out / "phase_diagram.png")
    return paths


def readme_block(report: ComparisonReport, command: str) -> str:
    """The README section: what was compared, the command that regenerates it, the table."""
    return (
        "Every system below is trained by the same learning rule and budget on the same tasks "
        "(`qeqprop.comparison.compare`); `phases` is the quantum-data task: the phase (ferromagnet "
        "g < J / paramagnet g > J, exact TFIM result) of a 4-site transverse-field Ising chain from "
        "its parameters (J, g). The `sensor` reads them as Hamiltonian coefficients of the chain "
        "itself (one trained sensor qubit coupled to it); the other systems get (J, g) as plain "
        "features. Figures: `benchmarks/results/compare/*.png`; all five tasks, three seeds: "
        "`qeqprop compare --seeds 3 --epochs 8 --out benchmarks/results/compare/full` (about 17 minutes on 2 busy "
        "cores). Regenerate this block with\n\n"
        f"    {command}\n\n" + markdown_table(report)
    )


def update_readme(readme: str | Path, block: str) -> Path:
    """Replace the text between the compare markers of ``readme`` by ``block``."""
    return replace_block(readme, README_START, README_END, block)
