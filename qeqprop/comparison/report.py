"""Reports of a ComparisonReport: JSON (settings, summary, per-task quantum-classical gaps, every
search's trial history, runs), a Markdown table (test accuracy as mean [95% t-interval] over seeds),
figures as PNG and PDF (learning curves with 95% CI bands, accuracy bars and accuracy vs parameter
count and vs training time with 95% CI bars, gradient fidelity over training, phase-diagram
predictions; paper defaults of qeqprop.plots, the settings in each title), and the README block
between ``<!-- compare:start -->`` and ``<!-- compare:end -->``."""

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
from .sensor import N_CHAIN
from .stats import t_interval
from .systems import MAX_HIDDEN, QUANTUM, TARGET_PARAMS, TASK_MAX_HIDDEN, configure
from .tasks import DIGITS_FEATURES, QUANTUM_DATA, SCALINGS, load_task
from .tuning import HYPERBAND, MULTI_FIDELITY, TASK_CHOICES

README_START, README_END = "<!-- compare:start -->", "<!-- compare:end -->"
SEARCHED_WORDS = {"batch_size": "batch size", "lr_schedule": "learning-rate schedule", "scaling": "pixel scaling"}


def _ci(row: dict, key: str, digits: int = 3) -> str:
    """"mean [low, high]" of a summary row's ``key`` (just the mean for one seed)."""
    if row.get(key) is None:
        return "–"
    if row.get(f"{key}_low") is None:
        return f"{row[key]:.{digits}f}"
    return f"{row[key]:.{digits}f} [{row[f'{key}_low']:.{digits}f}, {row[f'{key}_high']:.{digits}f}]"


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _searched(tasks) -> dict[str, list[str]]:
    """Per task among ``tasks`` whose search also chooses training settings (comparison.tuning.TASK_CHOICES,
    a feature scaling of tasks.SCALINGS): those settings in words."""
    keys = {task: [*TASK_CHOICES.get(task, {}), *(["scaling"] if task in SCALINGS else [])] for task in tasks}
    return {task: [SEARCHED_WORDS[key] for key in names] for task, names in keys.items() if names}


def _multi_fidelity_words(settings: dict) -> str:
    """The sentence on the tasks searched multi-fidelity (comparison.tuning.MULTI_FIDELITY), or ""."""
    tasks = [task for task in settings["tasks"] if task in MULTI_FIDELITY]
    if not tasks:
        return ""
    return (f" On {', '.join(tasks)} the trials run up to the retraining's {settings['epochs']} epoch"
            f"{'s' if settings['epochs'] != 1 else ''} instead, stopped "
            f"early by Hyperband (first rung after {HYPERBAND['min_resource']} epoch, 1 in {HYPERBAND['reduction_factor']} "
            "kept per rung) and chosen at their last epoch, and each system's search starts from its issue-19 preset "
            "where it has one.")


def settings_line(report: ComparisonReport) -> str:
    """How the settings were chosen, in words (plain text; settings_caption is the figures' version)."""
    s = report.settings
    seeds = f"seeds {s['seeds']}: mean [95% t-interval over seeds]"
    if s.get("mode") == "tuned":
        searched = "; ".join(f"{task}: {', '.join(words)}" for task, words in _searched(s["tasks"]).items())
        return (f"Tuned: per (task, system) {s['trials']} Optuna TPE trials of {s['trial_epochs']} epochs on a "
                f"{s['validation_fraction']:.0%} validation split of the training data (search seed {s['search_seed']}), "
                f"then the chosen setting retrained on the whole training split for {s['epochs']} epochs, "
                f"batch {s['batch_size']}" + (f" (searched as well on {searched})" if searched else "") + f", {seeds}."
                + _multi_fidelity_words(s))
    return (f"{s['estimator']} EP, beta = {s['beta']}, Adam lr = {s['learning_rate']}, {s['epochs']} epochs, "
            f"batch {s['batch_size']}, {seeds}.")


def markdown_table(report: ComparisonReport) -> str:
    """One row per (task, system): parameters, test and train accuracy (mean [95% t-interval] over
    seeds), the chosen trial's validation accuracy (tuned), mean cosine and median relative error
    of EP vs the exact gradient, iterations and time per equilibrium, training seconds and
    equilibrations per run, the search's seconds; then per task the best-quantum minus
    best-classical gap with its 95% Welch interval."""
    s = report.settings
    tuned = s.get("mode") == "tuned"
    lines = [
        settings_line(report),
        "",
        "| task | system | params | test acc [95% CI] | train acc | " + ("val acc | " if tuned else "")
        + "cos(EP, exact) | rel. error | iterations | ms / equilibrium | train s | equilibrations |"
        + (" search s |" if tuned else ""),
        "| --- | --- | ---: | --- | --- | " + ("---: | " if tuned else "") + "---: | ---: | ---: | ---: | ---: | ---: |"
        + (" ---: |" if tuned else ""),
    ]
    for row in report.summary():
        name = f"**{row['system']}**" if row["system"] in QUANTUM else row["system"]
        seconds = None if row["seconds_per_equilibrium"] is None else 1e3 * row["seconds_per_equilibrium"]
        lines.append(
            f"| {row['task']} | {name} | {row['n_params']} | {_ci(row, 'test_accuracy')} | {_fmt(row['train_accuracy'], '.3f')} | "
            + (f"{_fmt(row.get('val_accuracy'), '.3f')} | " if tuned else "")
            + f"{_fmt(row['cosine'], '.4f')} | {_fmt(row['relative_error'], '.1e')} | {_fmt(row['iterations'], '.1f')} | "
            f"{_fmt(seconds, '.2f')} | {_fmt(row['train_seconds'], '.1f')} | {_fmt(row['equilibrations'], '.3g')} |"
            + (f" {_fmt(row.get('tuning_seconds'), '.0f')} |" if tuned else "")
        )
    lines.append("")
    lines.append("Quantum systems in bold. CI: Student-t interval of the mean over the seeds (init and minibatch order; "
                 "the data split is fixed). Fidelity: EP minibatch gradient vs the exact reference gradient on a fixed "
                 f"probe batch of {s['probe_size']} training samples, every epoch (cosine: mean; relative error: median). "
                 "Iterations: solver iterations per free equilibrium (0 = direct dense solve; – = closed form or exact "
                 "enumeration). Equilibrations: equilibrium solves (sample-phases) of one training run, evaluation "
                 "included, the fidelity probe not.")
    for gap in report.gaps():
        interval = "" if gap["low"] is None else f" [{gap['low']:+.3f}, {gap['high']:+.3f}]"
        lines.append(f"Gap on {gap['task']}: best quantum ({gap['quantum']}) minus best classical ({gap['classical']}) "
                     f"test accuracy {gap['difference']:+.3f}{interval} (95% Welch interval).")
    for skip in report.skipped:
        lines.append(f"Skipped {skip['system']} on {skip['task']}: {skip['reason']}.")
    for fail in report.failed:
        seed = "the search" if fail["seed"] is None else f"seed {fail['seed']}"
        lines.append(f"Failed (left out of the means): {fail['system']} on {fail['task']}, {seed}: {fail['error']}")
    return "\n".join(lines) + "\n"


def _half_width(values: np.ndarray) -> float:
    """Half width of the 95% t-interval of the finite ``values`` (0 for fewer than two)."""
    values = values[np.isfinite(values)]
    return 0.0 if len(values) < 2 else t_interval(values).half_width


def _curves(report: ComparisonReport, task: str, system: str, key: str, source: str = "history"):
    """(epochs, mean, 95% CI half width) over seeds of a per-epoch record, at the epochs where some seed has it."""
    runs = report.runs_of(task, system)
    if not runs:
        return None
    values = np.array([[np.nan if rec[key] is None else rec[key] for rec in r[source]] for r in runs], dtype=float)
    epochs = np.array([rec["epoch"] for rec in runs[0][source]])
    defined = ~np.all(np.isnan(values), axis=0)  # epochs where some seed has a value (fidelity of a zero gradient is undefined)
    values = values[:, defined]
    return epochs[defined], np.nanmean(values, axis=0), np.array([_half_width(column) for column in values.T])


def settings_caption(report: ComparisonReport) -> str:
    """The training settings every figure of the report states (mathtext beta)."""
    s = report.settings
    seeds = f"{len(s['seeds'])} seed(s): mean, 95% t-interval"
    if s.get("mode") == "tuned":
        searched = _searched(s["tasks"])
        return (f"tuned ({s['trials']} trials x {s['trial_epochs']} epochs on validation), {s['epochs']} epochs, "
                f"batch {s['batch_size']}" + (f" (searched on {', '.join(searched)})" if searched else "") + f", {seeds}")
    return (f"{s['estimator']} EP, $\\beta$ = {s['beta']}, Adam lr {s['learning_rate']}, {s['epochs']} epochs, "
            f"batch {s['batch_size']}, {seeds}")


@paper_style
def panels_figure(report: ComparisonReport, key: str, source: str, ylabel: str, yscale: str = "linear"):
    """One panel per task of ``key`` (a per-epoch record of each run's ``source`` list) against the
    epoch, mean and 95% t-interval over seeds per system (a band, kept positive on a log axis); one legend."""
    tasks = report.settings["tasks"]
    fig, axes = panel_grid(len(tasks))
    for ax, task in zip(axes, tasks):
        ax.set(title=task, xlabel="epoch", ylabel=ylabel, yscale=yscale)
        for system in report.settings["systems"]:
            curve = _curves(report, task, system, key, source)
            if curve is None:
                continue
            epochs, mean, half = curve
            line, = ax.plot(epochs, mean, marker="o", lw=2 if system in QUANTUM else 1, label=system)
            band(ax, epochs, mean, half, color=line.get_color())
    shared_legend(fig)
    fig.suptitle(settings_caption(report))
    return fig


def _save(fig, path: Path) -> Path:
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def _error_bar(row: dict, key: str = "test_accuracy") -> tuple[float, float]:
    """(below, above) the mean of a summary row's 95% interval (0, 0 for one seed)."""
    if row.get(f"{key}_low") is None:
        return 0.0, 0.0
    return row[key] - row[f"{key}_low"], row[f"{key}_high"] - row[key]


@paper_style
def accuracy_figure(report: ComparisonReport):
    """Final test accuracy per system and task, mean and 95% t-interval over seeds (page width, one legend)."""
    rows = report.summary()
    tasks, systems = report.settings["tasks"], report.settings["systems"]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 2.8), layout="constrained")
    for k, system in enumerate(systems):
        xs, means, bars = [], [], []
        for t, task in enumerate(tasks):
            row = next((r for r in rows if r["task"] == task and r["system"] == system), None)
            if row is not None:
                xs.append(t + (k - len(systems) / 2 + 0.5) * width)
                means.append(row["test_accuracy"])
                bars.append(_error_bar(row))
        ax.bar(xs, means, width, yerr=np.array(bars).T.reshape(2, -1), capsize=2, label=system,
               hatch="//" if system in QUANTUM else None)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(ylabel="test accuracy", ylim=(0, 1.05))
    ax.grid(False, axis="x")
    shared_legend(fig, ncols=min(len(systems), 6))
    fig.suptitle(settings_caption(report))
    return fig


COSTS = {"n_params": "trainable parameters", "train_seconds": "training time per run (s)"}


@paper_style
def cost_figure(report: ComparisonReport, cost: str):
    """Test accuracy (mean, 95% t-interval bars over seeds) against a cost of each system, one panel
    per task: ``cost`` "n_params" (parameter count) or "train_seconds" (training wall time per run),
    on a log axis; quantum systems with filled markers, classical ones open; one legend."""
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {tuple(COSTS)}, got {cost!r}")
    rows = report.summary()
    tasks = report.settings["tasks"]
    fig, axes = panel_grid(len(tasks))
    for ax, task in zip(axes, tasks):
        ax.set(title=task, xlabel=COSTS[cost], ylabel="test accuracy", xscale="log")
        points = [(k, system, row) for k, system in enumerate(report.settings["systems"])
                  if (row := next((r for r in rows if r["task"] == task and r["system"] == system), None)) is not None
                  and row[cost] is not None]
        costs = {row[cost] for _, _, row in points}
        if len(costs) == 1:  # one cost value: a log axis needs a range around it
            ax.set_xlim(min(costs) / 2, min(costs) * 2)
        for k, system, row in points:
            color = f"C{k % 10}"
            ax.errorbar([row[cost]], [row["test_accuracy"]], yerr=np.array(_error_bar(row)).reshape(2, 1), fmt="o",
                        capsize=3, color=color, mfc=color if system in QUANTUM else "none", label=system)
    shared_legend(fig)
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
    data = load_task("phases", seed=report.settings.get("data_seed", 0))
    model = configure(system, "phases", data.n_features, data.n_classes, run.get("setting", {}), run["seed"])[0]
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
    """Write compare.json (``ComparisonReport.to_dict``: with every search's trial history),
    compare.md and the figures (each .png with its .pdf) into ``out``; returns the paths (the PNGs
    for figures)."""
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
    paths["accuracy_vs_params"] = _save(cost_figure(report, "n_params"), out / "accuracy_vs_params.png")
    paths["accuracy_vs_time"] = _save(cost_figure(report, "train_seconds"), out / "accuracy_vs_time.png")
    if any(r["task"] == "phases" and "params" in r for r in report.runs):
        paths["phase_diagram"] = plot_phase_diagram(report, out / "phase_diagram.png")
    return paths


_DIGITS64_CAPS = TASK_MAX_HIDDEN["digits64"]
TASK_NOTES = {  # what a task is, for the README block (quantum-data tasks: what the sensor reads)
    "digits": f"`digits` is scikit-learn's 8x8 digits reduced to {DIGITS_FEATURES} PCA features (10 classes)",
    "digits64": "`digits64` is the same images and split with all 64 pixels standardized (or divided by 16: the "
                "pixel scaling is searched, with the batch size and the learning-rate schedule, since the issue-19 "
                "presets differ in all three), each system at its own size "
                f"instead of an equal budget (up to {TARGET_PARAMS['digits64']:,} parameters, the Hopfield network "
                "64-256-10): hidden sizes searched from 1 up to those of the issue-19 presets (Hopfield "
                f"{_DIGITS64_CAPS['hopfield']}, resistive {_DIGITS64_CAPS['resistive']}, phase oscillators and Ising "
                f"machine {MAX_HIDDEN}, the Ising machine on its layered graph), {MAX_HIDDEN} for the spring networks "
                f"(qho, elastic), and {_DIGITS64_CAPS['tfim']} hidden qubits ({_DIGITS64_CAPS['tfim'] + 10} qubits) for "
                "the TFIM, a cap set by run time (the `digits-tfim` preset has 14 qubits)",
    "phases": "`phases` is the phase (ferromagnet g < J / paramagnet g > J, exact TFIM result) of a 4-site "
              "transverse-field Ising chain from its parameters (J, g)",
    "annni": f"`annni` is the phase (ferromagnetic / antiphase / paramagnetic) of an {N_CHAIN}-site ANNNI chain from "
             "(kappa, g)",
    "xxz_field": f"`xxz_field` is the phase (XY / Neel / polarized) of an {N_CHAIN}-site XXZ chain in a field from "
                 "(Delta, h)",
}


def readme_block(report: ComparisonReport, command: str) -> str:
    """The README section: what was compared, the command that regenerates it, the table."""
    notes = [TASK_NOTES[task] for task in report.settings["tasks"] if task in TASK_NOTES]
    if any(task in QUANTUM_DATA for task in report.settings["tasks"]):
        notes.append("on the quantum-data tasks the `sensor` reads the parameters as Hamiltonian coefficients of the "
                     "chain itself (trained sensor qubits coupled to it), the other systems get them as plain features")
    return (
        "Quantum and classical EP learners on the same tasks (`qeqprop.comparison.compare`), every one "
        "with the same training budget; with `--tune` every (system, task) first gets the same Optuna "
        "search budget on a validation split carved from the training data (never the test split). "
        + "".join(f"{note[0].upper()}{note[1:]}. " for note in notes)
        + "The output folder also holds compare.json (with "
        "every search's trial history) and figures: accuracy vs parameters and vs training time with 95% "
        "CI bars, learning curves with CI bands. Regenerate this block with\n\n"
        f"    {command}\n\n" + markdown_table(report)
    )


def update_readme(readme: str | Path, block: str) -> Path:
    """Replace the text between the compare markers of ``readme`` by ``block``."""
    return replace_block(readme, README_START, README_END, block)
