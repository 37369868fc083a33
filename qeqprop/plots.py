"""Figures people ask for: learning curves, coupling matrices (heatmap and graph) and EP
gradient error vs beta on log-log axes with fitted slopes.

``coupling_heatmap``, ``coupling_graph`` and ``gradient_error_plot`` draw into ``ax`` (a new
pyplot figure when omitted, so notebooks show it inline) and return it (gradient_error_plot
with the fitted slopes); ``save_figure`` writes a PNG. No backend is forced here: matplotlib
picks a headless one (Agg) where there is no display, and notebooks keep theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .gradcheck import log_slope
from .validation import as_finite_array


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def history_figure(history: list[dict[str, float]], title: str = "") -> Figure:
    """Loss (left, log scale) and accuracy (right, when present) per epoch, train and test."""
    if not history:
        raise ValueError("history is empty: train for at least one epoch (fit(..., epochs>=1)) before plotting")
    epochs = [h["epoch"] for h in history]
    has_accuracy = any("train_accuracy" in h for h in history)
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(10 if has_accuracy else 5, 3.6), squeeze=False)
    for split in ("train", "test"):
        axes[0, 0].plot(epochs, [h[f"{split}_loss"] for h in history], marker="o", ms=3, label=split)
        if has_accuracy:
            axes[0, 1].plot(epochs, [h[f"{split}_accuracy"] for h in history], marker="o", ms=3, label=split)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", yscale="log")
    if has_accuracy:
        axes[0, 1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    for ax in axes[0]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """history_figure saved as a PNG at ``path`` (the figure is closed); returns the path."""
    fig = history_figure(history, title)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def _coupling_matrix(matrix) -> np.ndarray:
    matrix = as_finite_array("matrix", matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be a square (n, n) coupling matrix, got shape {matrix.shape}; "
                         "TFIMNetwork.coupling_matrix(params) gives one")
    if not np.allclose(matrix, matrix.T, atol=0, rtol=1e-12):
        raise ValueError("matrix must be symmetric (J_ij == J_ji); symmetrize it with (J + J.T) / 2")
    return matrix


def coupling_heatmap(matrix, ax: Axes | None = None, title: str = "couplings J_ij", labels: Sequence[str] | None = None) -> Axes:
    """The symmetric coupling matrix J (e.g. TFIMNetwork.coupling_matrix) as a heatmap with a
    diverging colour scale centred on J = 0 (red ferromagnetic J > 0, blue J < 0)."""
    matrix = _coupling_matrix(matrix)
    n = matrix.shape[0]
    ax = _axes(ax, (4.6, 3.8))
    scale = float(np.max(np.abs(matrix))) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -scale, scale))
    ax.figure.colorbar(image, ax=ax, label="J")
    ticks = list(labels) if labels is not None else [str(i) for i in range(n)]
    ax.set(xticks=range(n), yticks=range(n), xticklabels=ticks, yticklabels=ticks, title=title)
    return ax


def coupling_graph(
    matrix,
    ax: Axes | None = None,
    title: str = "coupling graph",
    highlight: Sequence[int] = (),
    labels: Sequence[str] | None = None,
    layout: str = "circular",
) -> Axes:
    """The couplings as a networkx graph: one edge per J_ij != 0, width proportional to |J_ij|,
    colour by sign (red J > 0, blue J < 0); ``highlight`` nodes (e.g. outputs) drawn orange.
    ``layout`` is "circular" or "spring" (seeded, weights |J|)."""
    matrix = _coupling_matrix(matrix)
    layouts = ("circular", "spring")
    if layout not in layouts:
        raise ValueError(f"layout must be one of {layouts}, got {layout!r}")
    n = matrix.shape[0]
    ax = _axes(ax, (4.2, 4.2))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from((i, j, matrix[i, j]) for i in range(n) for j in range(i + 1, n) if matrix[i, j] != 0)
    for _, _, data in graph.edges(data=True):
        data["strength"] = abs(data["weight"])
    pos = nx.circular_layout(graph) if layout == "circular" else nx.spring_layout(graph, weight="strength", seed=0)
    edges = list(graph.edges())
    weights = np.array([graph.edges[e]["weight"] for e in edges])
    scale = float(np.max(np.abs(weights))) if len(weights) else 1.0
    highlight = set(int(q) for q in highlight)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=["tab:orange" if q in highlight else "lightgrey" for q in graph.nodes],
                           edgecolors="k", node_size=420)
    nx.draw_networkx_labels(graph, pos, ax=ax, labels=None if labels is None else dict(enumerate(labels)), font_size=9)
    nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=edges, width=0.5 + 4.5 * np.abs(weights) / scale,
                           edge_color=weights, edge_cmap=plt.get_cmap("RdBu_r"), edge_vmin=-scale, edge_vmax=scale)
    ax.set_title(title)
    ax.set_axis_off()
    return ax


def gradient_error_plot(
    betas: Sequence[float],
    errors: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    title: str = "EP gradient error vs beta",
    fit_range: tuple[float, float] | None = None,
    ylabel: str = "||g_EP - g_ref|| / ||g_ref||",
) -> tuple[Axes, dict[str, float]]:
    """Error vs beta on log-log axes, one curve per entry of ``errors``, each with its fitted
    power law err ~ A beta^p (least squares in log-log, gradcheck.log_slope) drawn dashed and
    the slope p in the legend. EP bias gives p = 1 (one-sided) and p = 2 (centered); shot noise
    p = -1. ``fit_range`` = (lo, hi) fits only the betas in [lo, hi]. Returns (ax, slopes)."""
    betas = as_finite_array("betas", betas)
    if betas.ndim != 1 or betas.size < 2 or np.any(betas <= 0):
        raise ValueError(f"betas must be a 1-D sequence of at least two positive values, got {betas.tolist()}")
    mask = np.ones(betas.size, dtype=bool) if fit_range is None else (betas >= fit_range[0]) & (betas <= fit_range[1])
    if mask.sum() < 2:
        raise ValueError(f"fit_range {fit_range} keeps fewer than two betas of {betas.tolist()}; widen it")
    ax = _axes(ax, (5.6, 4.0))
    slopes = {}
    for name, values in errors.items():
        values = as_finite_array(f"errors[{name!r}]", values, betas.shape)
        if np.any(values <= 0):
            raise ValueError(f"errors[{name!r}] must be positive for a log-log plot, got {values.tolist()}")
        slopes[name] = log_slope(betas[mask], values[mask])
        intercept = np.mean(np.log(values[mask]) - slopes[name] * np.log(betas[mask]))
        line, = ax.loglog(betas, values, "o-", ms=4, label=f"{name} (slope {slopes[name]:+.2f})")
        fitted = betas[mask]
        ax.loglog(fitted, np.exp(intercept) * fitted ** slopes[name], "--", color=line.get_color(), lw=1, alpha=0.7)
    ax.set(xlabel="beta", ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax, slopes
