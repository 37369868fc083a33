"""Compiled once per machine: JAX's persistent compilation cache as qeqprop configures it (on by
default in a per-CPU directory, QEQPROP_JAX_CACHE to move or switch it off, the user's own JAX
setting left alone, an unwritable directory a warning and not a failed import), and the visible
note while the native kernel builds. Each case runs in a fresh Python process: the settings are
read when qeqprop first loads JAX, once per process."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from qeqprop.config import (
    JAX_CACHE_MIN_COMPILE_TIME_S,
    default_compilation_cache,
    disable_compilation_cache,
    enable_compilation_cache,
    jax_cache_dir,
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with ``env`` on top of this one's minus qeqprop's and JAX's
    cache settings; fails the test with its stderr when it exits non-zero."""
    base = {k: v for k, v in os.environ.items() if k not in ("QEQPROP_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**base, "QEQPROP_NATIVE": "0", **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


SETTINGS = """
    import json, warnings
    warnings.simplefilter("always")
    import jax
    {before}
    with warnings.catch_warnings(record=True) as caught:
        import qeqprop._jax
    print(json.dumps({{"dir": jax.config.jax_compilation_cache_dir,
                       "min_s": jax.config.jax_persistent_cache_min_compile_time_secs,
                       "warnings": [str(w.message) for w in caught]}}))
"""


def settings(before: str = "", **env: str) -> dict:
    """JAX's cache settings after ``import qeqprop._jax`` in a fresh process, and its warnings."""
    return json.loads(run_python(SETTINGS.format(before=before), **env).stdout.splitlines()[-1])


def test_on_by_default_in_a_per_cpu_directory_under_the_cache_dir(tmp_path):
    got = settings(QEQPROP_CACHE_DIR=str(tmp_path))
    assert got["dir"] is not None and os.path.dirname(got["dir"]) == str(tmp_path / "jax")
    assert os.path.basename(got["dir"]).startswith("cpu-") and os.path.isdir(got["dir"])
    assert got["min_s"] == JAX_CACHE_MIN_COMPILE_TIME_S and got["warnings"] == []


@pytest.mark.parametrize("off", ["0", "off", "False"])
def test_switched_off_by_the_environment(tmp_path, monkeypatch, off):
    import jax

    monkeypatch.setenv("QEQPROP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("QEQPROP_JAX_CACHE", off)
    assert jax_cache_dir() is None and default_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None and not (tmp_path / "jax").exists()


def test_a_path_in_the_environment_moves_it_and_1_means_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("QEQPROP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("QEQPROP_JAX_CACHE", str(tmp_path / "elsewhere"))
    assert jax_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("QEQPROP_JAX_CACHE", "1")
    assert jax_cache_dir().parent == tmp_path / "jax"


def test_the_users_own_jax_setting_is_left_alone(tmp_path):
    got = settings(before=f"jax.config.update('jax_compilation_cache_dir', {str(tmp_path / 'mine')!r})",
                   QEQPROP_CACHE_DIR=str(tmp_path))
    assert got["dir"] == str(tmp_path / "mine") and got["min_s"] == 1.0  # JAX's default threshold kept
    assert not (tmp_path / "jax").exists()


def test_an_unwritable_directory_warns_once_and_imports(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    got = settings(QEQPROP_JAX_CACHE=str(blocker / "jax"))
    assert got["dir"] is None
    assert len(got["warnings"]) == 1 and "cannot be written" in got["warnings"][0]


COMPILE = """
    import json
    import jax, jax.numpy as jnp
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(lambda event, **_: hits.append(event))
    import qeqprop._jax
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # keep even a fast compile
    value = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x))(jnp.linspace(0.0, 1.0, 33))
    print(json.dumps({"value": float(value), "hits": hits.count("/jax/compilation_cache/cache_hits")}))
"""


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "jax"
    first = json.loads(run_python(COMPILE, QEQPROP_JAX_CACHE=str(cache)).stdout.splitlines()[-1])
    entries = sorted(p.name for p in cache.iterdir())
    assert first["hits"] == 0 and any(name.startswith("jit_") for name in entries)
    second = json.loads(run_python(COMPILE, QEQPROP_JAX_CACHE=str(cache)).stdout.splitlines()[-1])
    assert second["hits"] >= 1 and second["value"] == first["value"]
    assert sorted(p.name for p in cache.iterdir()) == entries


def test_enable_then_disable_in_process(tmp_path):
    import jax

    assert jax.config.jax_compilation_cache_dir is None  # the test run keeps it off (conftest)
    try:
        assert enable_compilation_cache(tmp_path / "jax", min_compile_time_s=0.5) == tmp_path / "jax"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "jax")
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.5
    finally:
        disable_compilation_cache()
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    assert jax.config.jax_compilation_cache_dir is None


def test_enable_compilation_cache_rejects_a_negative_threshold(tmp_path):
    with pytest.raises(ValueError, match="min_compile_time_s"):
        enable_compilation_cache(tmp_path, min_compile_time_s=-1.0)


def test_the_native_build_says_so_on_stderr(tmp_path):
    """No logging configured (a plain script): the build announces itself and its duration on
    stderr. A stand-in compiler writes an empty file, so the load then fails with the usual
    warning and ``python -m qeqprop.native`` exits 1 saying the kernel is unavailable."""
    fake = tmp_path / "fake_cxx.py"
    fake.write_text("import sys\nopen(sys.argv[sys.argv.index('-o') + 1], 'w').close()\n")
    done = subprocess.run([sys.executable, "-m", "qeqprop.native"], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QEQPROP_CACHE_DIR": str(tmp_path / "cache"), "QEQPROP_JAX_CACHE": "0",
                               "CXX": shlex.join([sys.executable, str(fake)])})
    lines = done.stderr.splitlines()
    assert done.returncode == 1
    assert any(line.startswith("qeqprop: building qeqprop's native CPU kernel into " + str(tmp_path / "cache"))
               for line in lines), done.stderr
    assert any(line.startswith("qeqprop: native kernel built in ") and line.endswith(" s") for line in lines)
    assert "NativeKernelWarning" in done.stderr and "native kernel is not available" in lines[-1]


def test_glibc_malloc_thresholds_are_raised_unless_the_user_tuned_malloc():
    """qeqprop's first JAX load raises glibc's mmap threshold, trim threshold and top pad
    (config.tune_allocator: the solvers' tens of MiB of temporaries are then reused from the heap,
    not mapped and zeroed afresh per call); QEQPROP_MALLOC=0, a MALLOC_*_ variable or a glibc.malloc
    tunable leaves malloc alone. Checked in fresh processes (the setting is made once per process);
    off glibc it is never made."""
    import platform

    code = """
        import qeqprop as qp
        import qeqprop.config as config
        qp.TFIMNetwork(3)  # loads JAX, hence qeqprop._jax
        made = config.tune_allocator.cache_info().currsize  # 1: qeqprop._jax made the call on loading JAX
        print([made, config.tune_allocator()])
    """
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    outputs = {}
    for name, extra in {"default": {}, "off": {"QEQPROP_MALLOC": "0"}, "user": {"MALLOC_ARENA_MAX_": "2"},
                        "tunable": {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}}.items():
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**base, "QEQPROP_NATIVE": "0", **extra},
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[name] = done.stdout.strip()
    assert outputs == {"default": f"[1, {glibc}]", "off": "[1, False]", "user": "[1, False]", "tunable": "[1, False]"}
