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
