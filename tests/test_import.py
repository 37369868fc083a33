"""``import qeqprop`` is fast and light: names load on first use (PEP 562), and JAX is in float64
before any qeqprop module that uses it runs."""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import qeqprop

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "pennylane", "qutip", "matplotlib")
JAX_ROOTS = {"jax", "jaxlib", "optax"}  # optax imports jax


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_is_fast():
    """Median of 3 fresh interpreters; qeqprop used to load JAX, QuTiP and matplotlib eagerly (~1.9 s)."""
    code = "import time; t = time.perf_counter(); import qeqprop; print(time.perf_counter() - t)"
    seconds = statistics.median(float(run_python(code)) for _ in range(3))
    assert seconds < 1.5, f"import qeqprop took {seconds:.2f} s (median of 3)"


def test_import_loads_no_heavy_dependency():
    loaded = run_python(f"import sys, qeqprop; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded.strip() == "[]", f"import qeqprop loaded {loaded.strip()}"


def test_first_spin_gradient_loads_no_qutip_pennylane_or_matplotlib():
    """A TFIM learner's first EP gradient needs JAX only: QuTiP (Fock-space solver), PennyLane and
    matplotlib load when their features are used (they cost seconds at first use)."""
    loaded = run_python("import sys, qeqprop as qp; net, params, x, y = qp.random_tfim_instance(4); "
                        "qp.ep_gradient(net, params, x, y); "
                        "print([m for m in ('pennylane', 'qutip', 'matplotlib') if m in sys.modules])")
    assert loaded.strip().splitlines()[-1] == "[]"


def test_lazy_names_resolve_and_listings_are_complete():
    assert sorted(qeqprop.__all__) == sorted(qeqprop._EXPORTS)
    for name in qeqprop.__all__:
        assert getattr(qeqprop, name) is getattr(sys.modules[qeqprop._EXPORTS[name]], name)
    for name in qeqprop._SUBMODULES:
        assert getattr(qeqprop, name) is sys.modules[f"qeqprop.{name}"]
    assert set(qeqprop.__all__) | set(qeqprop._SUBMODULES) <= set(dir(qeqprop))
    with pytest.raises(AttributeError, match="use qeqprop.hamiltonians.PauliTable"):
        qeqprop.PauliTable  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        qeqprop.nonsense  # noqa: B018


def test_using_qeqprop_switches_jax_to_float64_and_a_loaded_submodule_keeps_the_export():
    """JAX is float64 once qeqprop loads a module that uses it; loading the module qeqprop.gradcheck
    first (it binds itself on the package) leaves qeqprop.gradcheck the function."""
    out = run_python("import qeqprop as qp, jax; before = jax.config.jax_enable_x64;"
                     "from qeqprop.gradcheck import random_tfim_instance;"
                     "print(before, jax.config.jax_enable_x64, jax.numpy.ones(1).dtype, callable(qp.gradcheck))")
    assert out.split() == ["False", "True", "float64", "True"]
    out = run_python("import jax, qeqprop; print(jax.config.jax_enable_x64)")  # JAX loaded first: at once
    assert out.split() == ["True"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(module-level imports, every import anywhere) of a source file, as absolute module names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found: dict[str, set[str]] = {"top": set(), "any": set()}
    for scope, nodes in (("top", tree.body), ("any", list(ast.walk(tree)))):
        for node in nodes:
            if isinstance(node, ast.Import):
                found[scope].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                found[scope].add(module)
                found[scope].update(f"{module}.{alias.name}" for alias in node.names)
    return found["top"], found["any"]


def test_every_module_using_jax_switches_it_to_float64_first():
    """A module that imports JAX (or optax) anywhere must load qeqprop._jax at module level, itself or
    through a qeqprop/classical module it imports: ``import qeqprop`` no longer does it eagerly."""
    files = {_module_name(p): p for pkg in ("qeqprop", "classical") for p in (ROOT / pkg).rglob("*.py")}
    imports = {name: _imports(path) for name, path in files.items()}
    ensured = {"qeqprop._jax"}
    changed = True
    while changed:
        changed = False
        for name, (top, _) in imports.items():
            if name not in ensured and top & ensured:
                ensured.add(name)
                changed = True
    exempt = {"qeqprop._jax", "qeqprop.config"}  # config.enable_float64 is the switch itself
    missing = sorted(name for name, (_, anywhere) in imports.items()
                     if name not in ensured | exempt and {m.split(".")[0] for m in anywhere} & JAX_ROOTS)
    assert not missing, f"import qeqprop._jax (float64) at module level in: {missing}"
