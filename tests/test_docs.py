"""The API reference (docs/, Sphinx autodoc + napoleon) builds from the docstrings with warnings as errors."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_builds_without_warnings(tmp_path):
    build = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                            str(ROOT / "docs"), str(tmp_path)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stdout}\n{build.stderr}"
    pages = {p.stem for p in (tmp_path / "api").glob("*.html")}
    sources = {p.stem for p in (ROOT / "docs" / "api").glob("*.rst")}
    assert pages == sources and {"qeqprop", "solvers", "systems", "classical"} <= pages
    assert "TFIMNetwork" in (tmp_path / "api" / "systems.html").read_text()
