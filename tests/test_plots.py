"""Plot helpers: they write PNGs, their axes carry exactly the data given, slopes are fitted
correctly, and bad input is refused with a message naming the argument."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from qeqprop import TFIMNetwork  # noqa: E402
from qeqprop.plots import coupling_graph, coupling_heatmap, gradient_error_plot, plot_history, save_figure  # noqa: E402


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
    edges = [c for c in ax.collections if isinstance(c, LineCollection)][0]
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
