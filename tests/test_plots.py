"""Plot helpers: they write PNGs, their axes carry exactly the data given, slopes are fitted
correctly, and bad input is refused with a message naming the argument."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection

from qeqprop import TFIMNetwork
from qeqprop.plots import (
    coupling_graph,
    coupling_heatmap,
    gradient_error_plot,
    plot_history,
    save_figure,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def assert_png(path, min_pixels: int = 100) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    assert image.shape[0] >= min_pixels and image.shape[1] >= min_pixels
    assert image[..., :3].std() > 0.01, "the PNG is blank"


def test_plot_history_writes_png_with_loss_and_accuracy(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.2 / e, "train_accuracy": 0.5 + 0.1 * e,
                "test_accuracy": 0.4 + 0.1 * e} for e in range(1, 5)]
    path = plot_history(history, tmp_path / "sub" / "curve.png", "title")
    assert path == tmp_path / "sub" / "curve.png"
    assert_png(path)
    assert not plt.get_fignums(), "plot_history must close its figure"
    with pytest.raises(ValueError, match="history is empty"):
        plot_history([], tmp_path / "empty.png")


def test_coupling_heatmap_shows_the_matrix(tmp_path):
    net = TFIMNetwork(4, "chain")
    params = net.init_params(0)
    matrix = net.coupling_matrix(params)
    ax = coupling_heatmap(matrix, labels=["a", "b", "c", "d"])
    shown = ax.images[0].get_array()
    np.testing.assert_array_equal(shown, matrix)
    assert shown[0, 2] == 0.0 and shown[0, 1] == params["J"][0]
    norm = ax.images[0].norm
    assert norm.vcenter == 0.0 and norm.vmax == pytest.approx(np.abs(matrix).max())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    assert_png(save_figure(ax.figure, tmp_path / "heatmap.png"))


def test_coupling_graph_edges_widths_and_signs(tmp_path):
    matrix = np.zeros((4, 4))
    for (i, j), value in {(0, 1): 1.0, (1, 2): -0.5, (0, 3): 0.25}.items():
        matrix[i, j] = matrix[j, i] = value
    ax = coupling_graph(matrix, highlight=[3])
    edges = next(c for c in ax.collections if isinstance(c, LineCollection))
    segments = edges.get_segments()
    assert len(segments) == 3
    widths = edges.get_linewidths()
    # edge order follows the upper triangle: (0, 1), (0, 3), (1, 2); width 0.5 + 4.5 |J| / max|J|
    np.testing.assert_allclose(widths, [5.0, 0.5 + 4.5 * 0.25, 0.5 + 4.5 * 0.5])
    colours = edges.get_colors()
    assert colours[0][0] > colours[0][2] and colours[2][2] > colours[2][0]  # J > 0 red, J < 0 blue
    nodes = ax.collections[0].get_facecolors()
    assert len(nodes) == 4 and not np.allclose(nodes[3], nodes[0])
    assert_png(save_figure(ax.figure, tmp_path / "graph.png"))
    coupling_graph(matrix, layout="spring")


def test_gradient_error_plot_fits_slopes_and_keeps_data(tmp_path):
    betas = np.logspace(-3, -1, 5)
    errors = {"positive": 3.0 * betas, "centered": 0.5 * betas**2}
    ax, slopes = gradient_error_plot(betas, errors)
    assert slopes == {"positive": pytest.approx(1.0, abs=1e-12), "centered": pytest.approx(2.0, abs=1e-12)}
    data_lines = ax.lines[0::2]
    fit_lines = ax.lines[1::2]
    for line, values in zip(data_lines, errors.values()):
        np.testing.assert_allclose(line.get_xdata(), betas)
        np.testing.assert_allclose(line.get_ydata(), values)
    for line, values in zip(fit_lines, errors.values()):  # exact power laws: fit lies on the data
        np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-10)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "slope +2.00" in ax.get_legend().get_texts()[1].get_text()
    assert_png(save_figure(ax.figure, tmp_path / "err.png"))


def test_gradient_error_plot_fit_range_separates_bias_from_noise():
    betas = np.logspace(-5, 0, 21)
    errors = {"shots": betas**2 + 1e-9 / betas}  # noise ~ 1/beta below beta = 1e-3, bias ~ beta^2 above
    _, whole = gradient_error_plot(betas, errors)
    _, large = gradient_error_plot(betas, errors, fit_range=(1e-1, 1.0))
    _, small = gradient_error_plot(betas, errors, fit_range=(1e-5, 1e-4))
    assert abs(large["shots"] - 2.0) < 1e-3 and abs(small["shots"] + 1.0) < 1e-2
    assert -1.0 < whole["shots"] < 2.0


def test_plot_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="symmetric"):
        coupling_heatmap(np.array([[0.0, 1.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        coupling_graph(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        coupling_heatmap(np.array([[0.0, np.nan], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="layout"):
        coupling_graph(np.zeros((2, 2)), layout="grid")
    betas = [1e-2, 1e-1]
    with pytest.raises(ValueError, match=r"errors\['a'\] must have shape"):
        gradient_error_plot(betas, {"a": [1.0]})
    with pytest.raises(ValueError, match="positive"):
        gradient_error_plot(betas, {"a": [0.0, 1.0]})
    with pytest.raises(ValueError, match="betas"):
        gradient_error_plot([0.0, 1.0], {"a": [1.0, 1.0]})
    with pytest.raises(ValueError, match="fit_range"):
        gradient_error_plot(betas, {"a": [1.0, 2.0]}, fit_range=(1.0, 2.0))


def test_plot_helpers_live_in_the_plots_namespace():
    """The curated top level: qeqprop.plots (loaded on first use) holds the helpers; the old
    top-level names say where they moved."""
    import qeqprop
    from qeqprop import plots

    assert qeqprop.plots is plots
    for name in ("coupling_graph", "coupling_heatmap", "gradient_error_plot", "history_figure"):
        assert callable(getattr(plots, name)) and name not in qeqprop.__all__
        with pytest.raises(AttributeError, match=f"use qeqprop.plots.{name}"):
            getattr(qeqprop, name)


# ----------------------------------------------------------------------------- paper defaults

from matplotlib.collections import PolyCollection

from qeqprop.comparison.harness import ComparisonReport
from qeqprop.comparison.report import accuracy_figure, panels_figure, write_report
from qeqprop.plots import COLUMN_WIDTH, MAX_COLUMNS, PAGE_WIDTH, history_figure


def legends(fig) -> int:
    return len(fig.legends) + sum(ax.get_legend() is not None for ax in fig.axes)


def assert_fits(fig) -> None:
    width = fig.get_size_inches()[0]
    assert width in (COLUMN_WIDTH, PAGE_WIDTH), f"figure is {width} in wide, not one column or one page"


def assert_png_and_pdf(path) -> None:
    assert_png(path)
    assert path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def synthetic_report(tasks=("xor", "iris", "moons", "digits", "phases"), systems=("tfim", "hopfield")):
    """A report as compare() writes it, without training: 3 seeds, 3 epochs; the relative error's
    spread exceeds its mean at epoch 2 (a band that would reach zero on the log axis)."""
    report = ComparisonReport({"systems": list(systems), "tasks": list(tasks), "seeds": [0, 1, 2], "epochs": 3,
                               "beta": 0.1, "estimator": "centered", "optimizer": "adam", "learning_rate": 0.05,
                               "batch_size": 16, "probe_size": 4})
    for task in tasks:
        for system in systems:
            for seed, error in enumerate(([1e-2, 1e-4, 1e-3], [1e-2, 1e-4, 1e-3], [1e-2, 1.0, 1e-3])):
                history = [{"epoch": e, "train_loss": 1.0 / e + seed, "test_accuracy": 0.5 + 0.1 * e,
                            "train_accuracy": 0.5 + 0.1 * e, "seconds": 1.0} for e in (1, 2, 3)]
                fidelity = [{"epoch": e, "relative_error": error[e - 1], "cosine": 0.9, "seconds_per_equilibrium": 1e-3,
                             "iterations": None} for e in (1, 2, 3)]
                report.runs.append({"task": task, "system": system, "seed": seed, "n_params": 10,
                                    "history": history, "fidelity": fidelity})
    return report


def test_library_figures_are_paper_ready(tmp_path):
    """Every figure: PNG and PDF with one stem, one column or one page wide, at most one legend
    (exactly one where there are several series), mathtext labels, settings in the title."""
    history = [{"epoch": e, "step": 4 * e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "test_loss": 1.2 / e,
                "train_accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e, "test_accuracy": 0.4 + 0.1 * e}
               for e in range(1, 4)]
    fig = history_figure(history, "tfim on iris", "cost mse, centered EP, $\\beta$ = 0.1")
    assert_fits(fig)
    assert legends(fig) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "val", "test"]
    assert "cost mse" in fig.get_suptitle() and fig.axes[0].get_yscale() == "log"
    assert_png_and_pdf(plot_history(history, tmp_path / "curve.png", "t", "cost mse"))

    ax, _ = gradient_error_plot([1e-2, 1e-1], {"centered": [1e-4, 1e-2], "positive": [1e-2, 1e-1]})
    assert_fits(ax.figure)
    assert legends(ax.figure) == 1 and ax.get_xlabel() == r"$\beta$"
    assert_png_and_pdf(save_figure(ax.figure, tmp_path / "err.png"))

    matrix = np.array([[0.0, 1.0], [1.0, 0.0]])
    for ax in (coupling_heatmap(matrix), coupling_graph(matrix)):
        assert_fits(ax.figure)
        assert legends(ax.figure) == 0
    with pytest.raises(ValueError, match="path must end in one of"):
        save_figure(ax.figure, tmp_path / "graph.svg")


def test_comparison_figures_wrap_into_a_page_with_one_legend(tmp_path):
    """Five tasks used to make a 23 x 3.6 in strip with a legend in one panel only."""
    report = synthetic_report()
    fig = panels_figure(report, "test_accuracy", "history", "test accuracy")
    assert fig.get_size_inches()[0] == PAGE_WIDTH
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5 and len({ax.get_position().y0 for ax in visible}) == -(-5 // MAX_COLUMNS)
    assert legends(fig) == 1 and "$\\beta$ = 0.1" in fig.get_suptitle() and "Adam lr 0.05" in fig.get_suptitle()
    fig = accuracy_figure(report)
    assert fig.get_size_inches()[0] == PAGE_WIDTH and legends(fig) == 1
    paths = write_report(synthetic_report(tasks=("xor",)), tmp_path)
    for key in ("learning_curves", "loss_curves", "fidelity", "accuracy"):
        assert_png_and_pdf(paths[key])


def test_log_scale_bands_stay_positive():
    """mean - std <= 0 (epoch 2 of the relative error) must not draw a band down to the axis floor."""
    report = synthetic_report(tasks=("xor",), systems=("tfim",))
    fig = panels_figure(report, "relative_error", "fidelity", "relative error", "log")
    ax = fig.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert bands, "no band drawn"
    lows = np.concatenate([path.vertices[:, 1] for c in bands for path in c.get_paths()])
    assert np.all(lows[np.isfinite(lows)] > 0), "a band reaches a non-positive value on a log axis"
    xs = np.concatenate([path.vertices[:, 0] for c in bands for path in c.get_paths()])
    assert 2.0 not in set(xs), "the band must be left out where mean - std <= 0"


def test_history_figure_steps_and_signed_losses():
    """Records taken within epochs plot against the step; a negative loss keeps a linear axis."""
    history = [{"epoch": 1, "step": s, "train_loss": -0.5 + 0.1 * s} for s in (1, 2, 3)]
    fig = history_figure(history)
    assert fig.axes[0].get_xlabel() == "minibatch step" and fig.axes[0].get_yscale() == "linear"
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), [1, 2, 3])
