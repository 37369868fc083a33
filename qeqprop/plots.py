"""Figures people ask for: learning curves, coupling matrices (heatmap and graph) and EP
gradient error vs beta on log-log axes with fitted slopes; paper-ready by default.

Paper defaults: every figure is one column (``COLUMN_WIDTH`` = 3.4 in) or one page (``PAGE_WIDTH``
= 7 in) wide, panels wrap into rows of at most ``MAX_COLUMNS``, labels are mathtext ($\\beta$,
$J_{ij}$, $\\langle Z \\rangle$), a multi-panel figure has one shared legend, confidence bands on
a log axis are drawn only where they stay positive (``band``), and ``save_figure`` writes a PNG
and a PDF with the same stem.

``coupling_heatmap``, ``coupling_graph`` and ``gradient_error_plot`` draw into ``ax`` (a new
pyplot figure when omitted, so notebooks show it inline) and return it (gradient_error_plot
with the fitted slopes). No backend is forced here: matplotlib picks a headless one (Agg) where
there is no display, and notebooks keep theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .gradcheck import log_slope
from .validation import as_finite_array

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
PAGE_WIDTH = 7.0  # inches: the full text width
MAX_COLUMNS = 3  # panels per row before a grid wraps
FORMATS = (".png", ".pdf")  # what save_figure writes, same stem
STYLE = {  # small type that stays legible at column width
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "figure.titlesize": 8, "lines.linewidth": 1.2, "lines.markersize": 3,
    "axes.grid": True, "grid.alpha": 0.3, "pdf.fonttype": 42, "savefig.dpi": 200,
}
SPLITS = ("train", "val", "test")  # history record prefixes, in legend order

F = TypeVar("F", bound=Callable)


def paper_style(function: F) -> F:
    """Run ``function`` (which draws) under the paper rcParams ``STYLE``."""

    @functools.wraps(function)
    def styled(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)

    return styled  # type: ignore[return-value]


def save_figure(fig: Figure, path: str | Path, dpi: int | None = None) -> Path:
    """Write ``fig`` as PNG and PDF (``path`` with each suffix of ``FORMATS``; parent folders
    created); returns ``path``, which must end in one of them."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"path must end in one of {FORMATS} (both are written), got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in FORMATS:
        fig.savefig(path.with_suffix(suffix), dpi=dpi or STYLE["savefig.dpi"], bbox_inches="tight")
    return path


def panel_grid(n_panels: int, panel_height: float = 2.2, max_columns: int = MAX_COLUMNS) -> tuple[Figure, np.ndarray]:
    """A figure for ``n_panels`` panels: at most ``max_columns`` per row, wrapped into rows; one
    column wide (``COLUMN_WIDTH``) for a single panel, else the page width. Unused axes are hidden.
    Returns (fig, axes) with axes a flat array of the ``n_panels`` used axes."""
    if n_panels < 1:
        raise ValueError(f"n_panels must be >= 1, got {n_panels}")
    cols = min(n_panels, max_columns)
    rows = -(-n_panels // cols)
    width = COLUMN_WIDTH if cols == 1 else PAGE_WIDTH
    fig, axes = plt.subplots(rows, cols, figsize=(width, panel_height * rows + 0.6), squeeze=False, layout="constrained")
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n_panels]


def shared_legend(fig: Figure, ncols: int | None = None) -> None:
    """One legend for the whole figure, below the panels: every distinct label of its axes once."""
    entries: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncols=ncols or min(len(entries), 4), frameon=False)


def band(ax: Axes, x, mean, std, **kwargs) -> None:
    """mean +- std as a shaded band; on a log y axis only where mean - std > 0 (a band cannot reach
    the axis floor: where the lower edge is not positive no band is drawn)."""
    x, mean, std = (np.asarray(a, dtype=float) for a in (x, mean, std))
    lower, upper = mean - std, mean + std
    where = lower > 0 if ax.get_yscale() == "log" else np.ones(mean.shape, dtype=bool)
    ax.fill_between(x, np.where(where, lower, np.nan), np.where(where, upper, np.nan), alpha=0.2, lw=0, **kwargs)


def _records(history: list[dict[str, float]], key: str) -> np.ndarray:
    return np.array([np.nan if h.get(key) is None else h[key] for h in history], dtype=float)


@paper_style
def history_figure(history: list[dict[str, float]], title: str = "", caption: str = "") -> Figure:
    """Loss (left; log scale when every loss is positive) and accuracy (right, when recorded) of
    each split in ``history`` ("train_*", "val_*", "test_*") against the epoch, or against the
    minibatch step when records are taken within epochs; one shared legend. ``title`` names the
    run; ``caption`` (e.g. "cost mse, centered EP, $\\beta$ = 0.1, Adam lr 0.05") goes under it."""
    if not history:
        raise ValueError("history is empty: train for at least one epoch (fit(..., epochs>=1)) before plotting")
    epochs = [h["epoch"] for h in history]
    by_step = len(set(epochs)) < len(epochs) and all("step" in h for h in history)
    x = np.array([h["step"] for h in history] if by_step else epochs, dtype=float)
    splits = [s for s in SPLITS if any(h.get(f"{s}_loss") is not None for h in history)]
    has_accuracy = any(h.get(f"{s}_accuracy") is not None for h in history for s in splits)
    fig, axes = panel_grid(2 if has_accuracy else 1)
    for split in splits:
        axes[0].plot(x, _records(history, f"{split}_loss"), marker="o", label=split)
        if has_accuracy:
            axes[1].plot(x, _records(history, f"{split}_accuracy"), marker="o", label=split)
    losses = np.concatenate([_records(history, f"{s}_loss") for s in splits]) if splits else np.array([1.0])
    positive = bool(np.all(losses[~np.isnan(losses)] > 0))
    xlabel = "minibatch step" if by_step else "epoch"
    axes[0].set(xlabel=xlabel, ylabel="loss", yscale="log" if positive else "linear")
    if has_accuracy:
        axes[1].set(xlabel=xlabel, ylabel="accuracy", ylim=(0, 1.02))
    shared_legend(fig)
    if title or caption:
        fig.suptitle("\n".join(t for t in (title, caption) if t))
    return fig


def plot_history(history: list[dict[str, float]], path: str | Path, title: str = "", caption: str = "") -> Path:
    """history_figure saved at ``path`` (.png, with the .pdf beside it; the figure is closed);
    returns the path."""
    fig = history_figure(history, title, caption)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return plt.subplots(figsize=figsize, layout="constrained")[1] if ax is None else ax


def _coupling_matrix(matrix) -> np.ndarray:
    matrix = as_finite_array("matrix", matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be a square (n, n) coupling matrix, got shape {matrix.shape}; "
                         "TFIMNetwork.coupling_matrix(params) gives one")
    if not np.allclose(matrix, matrix.T, atol=0, rtol=1e-12):
        raise ValueError("matrix must be symmetric (J_ij == J_ji); symmetrize it with (J + J.T) / 2")
    return matrix


@paper_style
def coupling_heatmap(matrix, ax: Axes | None = None, title: str = "couplings $J_{ij}$",
                     labels: Sequence[str] | None = None) -> Axes:
    """The symmetric coupling matrix J (e.g. TFIMNetwork.coupling_matrix) as a heatmap with a
    diverging colour scale centred on J = 0 (red ferromagnetic J > 0, blue J < 0)."""
    matrix = _coupling_matrix(matrix)
    n = matrix.shape[0]
    ax = _axes(ax, (COLUMN_WIDTH, 2.8))
    scale = float(np.max(np.abs(matrix))) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -scale, scale))
    ax.figure.colorbar(image, ax=ax, label="$J$")
    ticks = list(labels) if labels is not None else [str(i) for i in range(n)]
    ax.set(xticks=range(n), yticks=range(n), xticklabels=ticks, yticklabels=ticks, title=title)
    ax.grid(False)
    return ax


@paper_style
def coupling_graph(
    matrix,
    ax: Axes | None = None,
    title: str = "coupling graph",
    highlight: Sequence[int] = (),
    labels: Sequence[str] | None = None,
    layout: str = "circular",
) -> Axes:
    """The couplings as a networkx graph: one edge per ``J_ij != 0``, width proportional to
    ``|J_ij|``, colour by sign (red J > 0, blue J < 0); ``highlight`` nodes (e.g. outputs) drawn
    orange. ``layout`` is "circular" or "spring" (seeded, weights ``|J|``)."""
    matrix = _coupling_matrix(matrix)
    layouts = ("circular", "spring")
    if layout not in layouts:
        raise ValueError(f"layout must be one of {layouts}, got {layout!r}")
    n = matrix.shape[0]
    ax = _axes(ax, (COLUMN_WIDTH, COLUMN_WIDTH))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from((i, j, matrix[i, j]) for i in range(n) for j in range(i + 1, n) if matrix[i, j] != 0)
    for _, _, data in graph.edges(data=True):
        data["strength"] = abs(data["weight"])
    pos = nx.circular_layout(graph) if layout == "circular" else nx.spring_layout(graph, weight="strength", seed=0)
    edges = list(graph.edges())
    weights = np.array([graph.edges[e]["weight"] for e in edges])
    scale = float(np.max(np.abs(weights))) if len(weights) else 1.0
    highlight = {int(q) for q in highlight}
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=["tab:orange" if q in highlight else "lightgrey" for q in graph.nodes],
                           edgecolors="k", node_size=300)
    nx.draw_networkx_labels(graph, pos, ax=ax, labels=None if labels is None else dict(enumerate(labels)), font_size=7)
    nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=edges, width=0.5 + 4.5 * np.abs(weights) / scale,
                           edge_color=weights, edge_cmap=plt.get_cmap("RdBu_r"), edge_vmin=-scale, edge_vmax=scale)
    ax.set_title(title)
    ax.set_axis_off()
    return ax


@paper_style
def gradient_error_plot(
    betas: Sequence[float],
    errors: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    title: str = r"EP gradient error vs $\beta$",
    fit_range: tuple[float, float] | None = None,
    ylabel: str = r"$\|g_\mathrm{EP} - g_\mathrm{ref}\| \,/\, \|g_\mathrm{ref}\|$",
) -> tuple[Axes, dict[str, float]]:
    """Error vs beta on log-log axes, one curve per entry of ``errors``, each with its fitted
    power law ``err ~ A beta^p`` (least squares in log-log, gradcheck.log_slope) drawn dashed and
    the slope p in the legend. EP bias gives p = 1 (one-sided) and p = 2 (centered); shot noise
    p = -1. ``fit_range`` = (lo, hi) fits only the betas in [lo, hi]. Returns (ax, slopes)."""
    betas = as_finite_array("betas", betas)
    if betas.ndim != 1 or betas.size < 2 or np.any(betas <= 0):
        raise ValueError(f"betas must be a 1-D sequence of at least two positive values, got {betas.tolist()}")
    mask = np.ones(betas.size, dtype=bool) if fit_range is None else (betas >= fit_range[0]) & (betas <= fit_range[1])
    if mask.sum() < 2:
        raise ValueError(f"fit_range {fit_range} keeps fewer than two betas of {betas.tolist()}; widen it")
    ax = _axes(ax, (COLUMN_WIDTH, 2.8))
    slopes = {}
    for name, values in errors.items():
        values = as_finite_array(f"errors[{name!r}]", values, betas.shape)
        if np.any(values <= 0):
            raise ValueError(f"errors[{name!r}] must be positive for a log-log plot, got {values.tolist()}")
        slopes[name] = log_slope(betas[mask], values[mask])
        intercept = np.mean(np.log(values[mask]) - slopes[name] * np.log(betas[mask]))
        line, = ax.loglog(betas, values, "o-", label=f"{name} (slope {slopes[name]:+.2f})")
        fitted = betas[mask]
        ax.loglog(fitted, np.exp(intercept) * fitted ** slopes[name], "--", color=line.get_color(), lw=1, alpha=0.7)
    ax.set(xlabel=r"$\beta$", ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax, slopes
