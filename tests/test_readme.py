"""The README example runs as printed and its commented numbers hold."""

import re
from pathlib import Path


def test_readme_example_runs():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1).replace("learning_rate=0.03)", "learning_rate=0.03, progress=False)")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    qp = namespace["qp"]
    assert qp.relative_error(namespace["ep"].grad, namespace["exact"]) < 2e-5
    assert abs(namespace["ep"].free.gap - 1.59) < 0.01
    assert namespace["result"].final["test_accuracy"] >= 0.95


def test_readme_pauli_model_runs():
    """The "Any Pauli model" block: a gapped ground state and a nonzero gradient equal to the reference."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"Any Pauli model.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    qp, ep = namespace["qp"], namespace["ep"]
    assert abs(ep.free.gap - 1.67) < 0.01
    assert abs(ep.grad["J"][1] - 0.204) < 1e-3 and abs(ep.grad["J"][0] - 0.0016) < 1e-4
    exact = qp.reference_gradient(namespace["model"], namespace["params"], namespace["x"], namespace["y"])
    assert qp.relative_error(ep.grad, exact) < 1e-6
    assert min(abs(v).min() for v in namespace["grad"].values()) > 1e-3
