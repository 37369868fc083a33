"""Every notebooks/*.ipynb runs top to bottom (fresh kernel, temporary copy) without a cell
error and produces at least one PNG figure.

The kernel is this interpreter: a kernelspec pointing at sys.executable is installed into a
temporary Jupyter data directory, so a fresh `pip install -e ".[test]"` venv works without
`jupyter kernelspec install` and no user-level "python3" kernel can pick another Python.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "qeqprop-tests"
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory) -> str:
    prefix = tmp_path_factory.mktemp("jupyter")
    kernelspec.install(kernel_name=KERNEL, display_name=f"Python ({sys.executable})", prefix=str(prefix))
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    patch.setenv("MPLBACKEND", "Agg")  # the notebooks select the inline backend themselves
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        # small matrices: BLAS threads only oversubscribe the cores (5x slower on 2 busy cores)
        patch.setenv(threads, "1")
    yield KERNEL
    patch.undo()


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_makes_figures(path: Path, kernel_name: str, tmp_path: Path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{path.name} produced no image/png output"
