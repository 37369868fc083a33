"""Reports of a ComparisonReport: JSON, a Markdown table (mean +- std over seeds), figures as
PNG and PDF (learning curves with +-1 std bands, accuracy bars, gradient fidelity over training,
phase-diagram predictions; paper defaults of qeqprop.plots, the settings in each title), and the
README block between ``<!-- compare:start -->`` and ``<!-- compare:end -->``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..datasets import decode_outputs
from ..markdown import replace_block
from ..plots import (
    PAGE_WIDTH,
    band,
    panel_grid,
    paper_style,
    plt,
    save_figure,
    shared_legend,
)
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
        (f"{s['estimator']} EP, beta = {s['beta']}, Adam lr = {s['learning_rate']}, {s['epochs']} epochs, "
         f"batch {s['batch_size']}, seeds {s['seeds']} (mean ± std over seeds)."),
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


def settings_caption(report: ComparisonReport) -> str:
    """The training settings every figure of the report states (mathtext beta)."""
    s = report.settings
    return (f"{s['estimator']} EP, $\\beta$ = {s['beta']}, Adam lr {s['learning_rate']}, {s['epochs']} epochs, "
            f"batch {s['batch_size']}, {len(s['seeds'])} seed(s): mean $\\pm$ std")


@paper_style
def panels_figure(report: ComparisonReport, key: str, source: str, ylabel: str, yscale: str = "linear"):
    """One panel per task of ``key`` (a per-epoch record of each run's ``source`` list) against the
    epoch, mean +- std over seeds per system (a band, kept positive on a log axis); one legend."""
    tasks = report.settings["tasks"]
    fig, axes = panel_grid(len(tasks))
    for ax, task in zip(axes, tasks):
        ax.set(title=task, xlabel="epoch", ylabel=ylabel, yscale=yscale)
        for system in report.settings["systems"]:
            curve = _curves(report, task, system, key, source)
            if curve is None:
                continue
            epochs, mean, std = curve
            line, = ax.plot(epochs, mean, marker="o", lw=2 if system in QUANTUM else 1, label=system)
            band(ax, epochs, mean, std, color=line.get_color())
    shared_legend(fig)
    fig.suptitle(settings_caption(report))
    return fig


def _save(fig, path: Path) -> Path:
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


@paper_style
def accuracy_figure(report: ComparisonReport):
    """Final test accuracy per system and task, mean ± std over seeds (page width, one legend)."""
    rows = report.summary()
    tasks, systems = report.settings["tasks"], report.settings["systems"]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 2.8), layout="constrained")
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
    ax.grid(False, axis="x")
    shared_legend(fig, ncols=min(len(systems), 6))
    fig.suptitle(settings_caption(report))
    return fig


def plot_accuracy_bars(report: ComparisonReport, path: Path) -> Path:
    """accuracy_figure saved at ``path`` (.png, with the .pdf beside it)."""
    return _save(accuracy_figure(report), path)


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


@paper_style
def phase_figure(report: ComparisonReport, systems=None, resolution: int = 21):
    """Predicted phase (ferro / para) over the (J, g) plane for each system, true line g = J."""
    trained = {r["system"] for r in report.runs if r["task"] == "phases" and "params" in r}
    systems = [s for s in (systems or report.settings["systems"]) if s in trained]
    if not systems:
        raise ValueError("systems: no run on task 'phases' with trained parameters to plot")
    fig, axes = panel_grid(len(systems), panel_height=2.0)
    for ax, system in zip(axes, systems):
        J, g, classes = phase_predictions(report, system, resolution)
        ax.contourf(J, g, classes, levels=[-0.5, 0.5, 1.5], colors=["#9ecae1", "#fdae6b"], alpha=0.8)
        ax.plot(PARAMETER_RANGE, PARAMETER_RANGE, "k--", lw=1.5, label="exact $g = J$")
        ax.set(title=system, xlabel="$J$", ylabel="$g$")
    shared_legend(fig)
    fig.suptitle("predicted phase: orange ferromagnet, blue paramagnet\n" + settings_caption(report))
    return fig


def plot_phase_diagram(report: ComparisonReport, path: Path, systems=None, resolution: int = 21) -> Path:
    """phase_figure saved at ``path`` (.png, with the .pdf beside it)."""
    return _save(phase_figure(report, systems, resolution), path)


def write_report(report: ComparisonReport, out: str | Path) -> dict[str, Path]:
    """Write compare.json, compare.md and the figures (each .png with its .pdf) into ``out``;
    returns the paths (the PNGs for figures)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    for run in data["runs"]:
        run.pop("params", None)
    paths = {"json": out / "compare.json", "markdown": out / "compare.md"}
    paths["json"].write_text(json.dumps(data, indent=1))
    paths["markdown"].write_text(markdown_table(report))
    panels = {"learning_curves": ("test_accuracy", "history", "test accuracy", "linear"),
              "loss_curves": ("train_loss", "history", "train loss", "log"),
              "gradient_fidelity": ("relative_error", "fidelity",
                                    r"$\|g_\mathrm{EP} - g_\mathrm{exact}\| \,/\, \|g_\mathrm{exact}\|$", "log")}
    for name, (key, source, ylabel, yscale) in panels.items():
        paths["fidelity" if name == "gradient_fidelity" else name] = _save(
            panels_figure(report, key, source, ylabel, yscale), out / f"{name}.png")
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
