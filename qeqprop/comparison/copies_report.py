"""Report of the copies-vs-accuracy experiment (comparison.quantum_data.copies_curve): a Markdown
table and a two-panel figure per task (PNG + PDF).

Left panel: test accuracy against copies M per state (log axis), mean with 95% t-interval bars
over seeds per access model, the 90% target and the majority-class baseline. Right panel: the
task's phase diagram, true classes as the background (published boundaries), the learned
boundaries (M -> infinity readout) of the sensor and of the snapshot classifier as contours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .stats import welch_interval

LABELS = {"sensor": "quantum sensor (EP), M shots", "snapshots": "snapshots, M copies (train and test)",
          "snapshots_exact_train": "snapshots, exact train, M test copies", "parameters": "Hamiltonian parameters"}


def _cell(row: dict) -> str:
    if row["low"] is None:
        return f"{row['accuracy']:.3f}"
    return f"{row['accuracy']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def markdown_table(result: dict) -> str:
    """Accuracy [95% CI] per access model (rows) and copy budget M (columns), then copies to 90%;
    with the sensor and the M-copy snapshot learner, the Welch interval of their difference per M."""
    copies = result["settings"]["copies"]
    settings = result["settings"]
    title = (f"**{result['task']}** ({settings['n_chain']} sites, {settings['n_train']} train / {settings['n_test']} test "
             f"states, {len(settings['seeds'])} seeds, majority class {result['majority_baseline']:.3f})")
    lines = [title, "",
             "| access | " + " | ".join(f"M = {m}" for m in copies) + " | M for 90% (mean / CI low) |",
             "|---" * (len(copies) + 2) + "|"]
    for name, rows in result["curves"].items():
        needed = result["copies_for_target"][name]
        shown = " / ".join("-" if v is None else str(v) for v in (needed["mean"], needed["ci_low"]))
        if name == "parameters":
            shown = "no copies (" + shown + ")"
        lines.append(f"| {LABELS[name]} | " + " | ".join(_cell(r) for r in rows) + f" | {shown} |")
    curves = result["curves"]
    if "sensor" in curves and "snapshots" in curves and len(settings["seeds"]) > 1:
        gaps = [welch_interval(a["values"], b["values"]) for a, b in zip(curves["sensor"], curves["snapshots"])]
        lines.append("| sensor - snapshots (Welch 95%) | " + " | ".join(
            f"{g.mean:+.3f} [{g.low:+.3f}, {g.high:+.3f}]" for g in gaps) + " | |")
    return "\n".join(lines) + "\n"


def copies_figure(result: dict):
    """The two-panel figure of the module docstring (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in result["curves"].items():
        m = np.array([r["copies"] for r in rows], dtype=float)
        mean = np.array([r["accuracy"] for r in rows])
        half = np.array([0.0 if r["low"] is None else (r["high"] - r["low"]) / 2 for r in rows])
        left.errorbar(m, mean, yerr=half, marker="o", capsize=3, label=LABELS[name])
    left.axhline(result["settings"]["target"], color="k", lw=0.8, ls="--", label="90% target")
    left.axhline(result["majority_baseline"], color="grey", lw=0.8, ls=":", label="majority class")
    left.set(xscale="log", ylim=(0.0, 1.02), xlabel="copies M per state", ylabel="test accuracy (95% CI over seeds)", title=result["task"])
    left.legend(fontsize=7, loc="lower right")
    points = np.array(result["grid"]["points"])
    side = round(np.sqrt(len(points)))
    a, b = points[:, 0].reshape(side, side), points[:, 1].reshape(side, side)
    true = np.array(result["grid"]["true"]).reshape(side, side)
    classes = result["model"]["classes"]
    shades = ["#c6dbef", "#fdd0a2", "#e5e5e5", "#d9f0d3"][: len(classes)]
    from matplotlib.colors import ListedColormap

    # nearest-cell shading: interpolating the labels would draw a false class along every boundary
    right.pcolormesh(a, b, true, shading="nearest", cmap=ListedColormap(shades), vmin=-0.5, vmax=len(classes) - 0.5)
    for shade, name in zip(shades, classes):
        right.fill_between([], [], color=shade, label=f"true: {name}")
    styles = {"sensor": "C0", "snapshots_exact_train": "C2", "parameters": "C3"}
    for name, predicted in result["grid"]["predicted"].items():
        predicted = np.array(predicted).reshape(side, side)
        for c in range(len(result["model"]["classes"])):  # each class's edge: one line per boundary
            if 0 < np.sum(predicted == c) < predicted.size:
                right.contour(a, b, (predicted == c).astype(float), levels=[0.5], colors=styles.get(name, "k"), linewidths=1.5)
        right.plot([], [], color=styles.get(name, "k"), label=f"learned: {LABELS[name]}")
    x0, x1 = result["model"]["inputs"]
    right.set(xlabel=x0, ylabel=x1, title="phase diagram: published boundaries (shading), learned boundaries (lines)")
    right.title.set_fontsize(9)
    right.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def write_copies_report(results: list[dict], out: str | Path) -> dict[str, Path]:
    """quantum_data.json, quantum_data.md and quantum_data_<task>.png/.pdf in ``out``."""
    import json

    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "quantum_data.json", "markdown": out / "quantum_data.md"}
    paths["json"].write_text(json.dumps(results, indent=1))
    paths["markdown"].write_text("\n".join(markdown_table(r) for r in results))
    for result in results:
        fig = copies_figure(result)
        for suffix in ("png", "pdf"):
            path = out / f"quantum_data_{result['task']}.{suffix}"
            fig.savefig(path, dpi=150)
            paths[f"{result['task']}_{suffix}"] = path
        plt.close(fig)
    return paths
