"""Process-wide settings, read in one place.

Environment variables (read when first asked, so a test or script may set them after import)::

    QEQPROP_NATIVE=0        do not build or load the native CPU kernel (the XLA kernel runs)
    QEQPROP_CACHE_DIR=PATH  where the compiled native kernel and JAX's compiled programs are cached
                            (default: $XDG_CACHE_HOME/qeqprop, else ~/.cache/qeqprop)
    QEQPROP_JAX_CACHE=0     do not switch on JAX's persistent compilation cache (read once, when
                            qeqprop first loads JAX)
    QEQPROP_JAX_CACHE=PATH  keep JAX's compiled programs in PATH instead
                            (default: QEQPROP_CACHE_DIR/jax/cpu-<hash of the CPU's feature flags>)
    CXX                     the C++ compiler for the native kernel (default ``c++``)
    QEQPROP_MALLOC=0        leave glibc's malloc thresholds as they are (``tune_allocator``)

Compiled once per machine, not once per process: the first JAX solve of a shape compiles XLA
programs for seconds (tens of seconds for the batched Lanczos blocks on 2 cores), and the native
kernel's C++ build takes tens of seconds once (``python -m qeqprop.native`` runs it ahead of
time). qeqprop switches on JAX's persistent compilation cache when it first loads JAX
(``default_compilation_cache``: programs that took at least JAX_CACHE_MIN_COMPILE_TIME_S to
compile), so a later process loads them from disk; it still traces and lowers them (about a
second per solver program on 2 cores). It leaves JAX's cache alone when the user configured it
before qeqprop loads JAX (``jax_compilation_cache_dir`` or ``JAX_COMPILATION_CACHE_DIR`` set, or
``jax_enable_compilation_cache`` off); ``enable_compilation_cache(path)`` moves it and
``disable_compilation_cache()`` switches it off at any time. Where the directory cannot be written
qeqprop warns once and runs without it. The setting is JAX's, so process-wide: the user's own
jitted functions in the process are cached there too. The directory grows with the shapes
compiled (tens to hundreds of KiB per program) and is not pruned (JAX bounds it only with the
optional ``filelock`` package); deleting it is safe. It is keyed by the CPU's feature flags
because JAX's cache key is not while XLA compiles for the host CPU: a home directory shared by
machines with different CPUs must not hand one machine's code to another. JAX writes entries in
place, so a process that reads one while another writes it may warn once and compile instead.

What qeqprop changes in the C allocator: on Linux with glibc, when qeqprop first loads JAX,
``tune_allocator`` raises malloc's mmap threshold to ALLOCATOR_MMAP_THRESHOLD (256 MiB), its trim
threshold to 1 GiB and its top pad to 64 MiB (``mallopt``). A batched EP call allocates and frees
tens of MiB of temporaries (operators, Krylov bases, states: 4-60 MiB each on the 10-qubit sensor
model at batch 128); under glibc's defaults each such block is a fresh mapping, or heap returned to
the kernel and taken back, so every call pays page faults, page zeroing and TLB shootdowns
(measured on the sensor model at batch 128, three alternating pairs of runs: 8-29% of an EP call,
sys time 0.10-0.39 -> 0.01 ms per sample). With the thresholds raised they are reused from the
heap. The cost: freed heap memory up to 1 GiB stays with the process (its resident size does not
shrink back after a large batch); blocks above
256 MiB (states of 25+ qubits) are still mapped and returned at once. Process-wide, like every
malloc setting; skipped when the user set any ``MALLOC_*_`` variable or a ``glibc.malloc`` tunable
(their choice stands), or ``QEQPROP_MALLOC=0``.

What qeqprop changes in JAX: ``enable_float64()`` sets ``jax_enable_x64`` for the whole process.
It runs when qeqprop first loads a module that uses JAX (every such module imports
``qeqprop._jax``), i.e. on first use of ``qeqprop.TFIMNetwork``, ``qeqprop.ep_gradient`` and the
like, and at ``import qeqprop`` itself when JAX is already imported; ``import qeqprop`` alone loads
no JAX (it is lazy, to start fast). EP gradients are differences of expectation values at small
beta; in float32 they drown in rounding (an error ~1e-7 / beta). JAX has no per-library precision
switch, so this is global: code that needs float32 JAX arrays in the same process should ask for
``dtype=jnp.float32`` explicitly, and code that makes its own JAX arrays before using qeqprop
should call ``qeqprop.config.enable_float64()`` first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shlex
import tempfile
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

# JAX's persistent cache keeps programs that took at least this long to compile: the batched
# Lanczos blocks take 4-9 s on 2 cores, the solvers' smaller programs 0.1-1 s (JAX's default
# threshold, 1 s, would miss those); below, loading an entry costs about what compiling does.
JAX_CACHE_MIN_COMPILE_TIME_S = 0.1
_OFF = ("0", "off", "false", "no")  # values that switch a QEQPROP_* setting off
_JAX_CACHE_ON = ("", "1", "on", "true", "yes")  # the default directory


def enable_float64() -> None:
    """Switch JAX to float64 (``jax_enable_x64``); idempotent, called by ``import qeqprop._jax``."""
    import jax

    jax.config.update("jax_enable_x64", True)


ALLOCATOR_MMAP_THRESHOLD = 256 << 20  # glibc mallopt settings of tune_allocator (module docstring)
ALLOCATOR_TRIM_THRESHOLD = 1 << 30
ALLOCATOR_TOP_PAD = 64 << 20
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameter numbers


# An lru_cache, as native_library's: setting malloc's thresholds is a process-wide side effect made once.
@lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Raise glibc malloc's mmap threshold, trim threshold and top pad (module docstring), once per
    process; True where they were set. Skipped (False) off glibc, with ``QEQPROP_MALLOC=0``, or when
    any ``MALLOC_*_`` environment variable or ``glibc.malloc`` tunable is set (the user tuned malloc)."""
    tuned = False
    user_set = (any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ)
                or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""))
    if (os.environ.get("QEQPROP_MALLOC", "1").strip().lower() not in _OFF and not user_set
            and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"):
        import ctypes

        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            tuned = all(mallopt(parameter, value) == 1 for parameter, value in (
                (_M_MMAP_THRESHOLD, ALLOCATOR_MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD),
                (_M_TOP_PAD, ALLOCATOR_TOP_PAD)))
    return tuned


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def native_enabled() -> bool:
    """False when ``QEQPROP_NATIVE=0`` switches the native CPU kernel off."""
    return os.environ.get("QEQPROP_NATIVE", "1") != "0"


def cache_dir() -> Path:
    """Where compiled native kernels (and, under ``jax/``, JAX's compiled programs) are kept:
    $QEQPROP_CACHE_DIR, else $XDG_CACHE_HOME/qeqprop, else ~/.cache/qeqprop."""
    if os.environ.get("QEQPROP_CACHE_DIR"):
        return Path(os.environ["QEQPROP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qeqprop"


def cpu_flags() -> str:
    """The CPU's feature flags (what ``-march=native`` and XLA's CPU backend compile for): the
    ``flags``/``Features`` line of /proc/cpuinfo, else the processor and machine names."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() + platform.machine()


def jax_cache_dir() -> Path | None:
    """Where qeqprop keeps JAX's compiled programs: None when ``QEQPROP_JAX_CACHE`` is 0 (or off,
    false, no), the path it names when it names one, else (unset, 1, on, true, yes)
    ``cache_dir()/jax/cpu-<12 hex digits of sha256(cpu_flags())>``."""
    setting = os.environ.get("QEQPROP_JAX_CACHE", "").strip()
    if setting.lower() in _OFF:
        return None
    if setting.lower() not in _JAX_CACHE_ON:
        return Path(setting).expanduser()
    return cache_dir() / "jax" / f"cpu-{hashlib.sha256(cpu_flags().encode()).hexdigest()[:12]}"


def enable_compilation_cache(path: str | os.PathLike | None = None,
                             min_compile_time_s: float = JAX_CACHE_MIN_COMPILE_TIME_S) -> Path | None:
    """Switch on JAX's persistent compilation cache in ``path`` for this process (module docstring).

    Sets ``jax_compilation_cache_dir`` and ``jax_persistent_cache_min_compile_time_secs``, and
    resets JAX's handle on the cache so a change after the first compilation takes effect. qeqprop
    calls it with no arguments when it first loads JAX, unless ``QEQPROP_JAX_CACHE=0`` or the user
    configured JAX's cache already; a call of your own always applies.

    Args:
        path: the directory (created if missing); None: ``jax_cache_dir()``, or nothing to do when
            ``QEQPROP_JAX_CACHE=0``.
        min_compile_time_s: programs that compiled faster than this are not written.

    Returns:
        The directory in use, or None when switched off or when the directory cannot be written
        (then one ``RuntimeWarning`` says why, and JAX compiles per process as before).

    Raises:
        ValueError: ``min_compile_time_s`` negative or not finite.
    """
    if not 0.0 <= float(min_compile_time_s) < float("inf"):
        raise ValueError(f"min_compile_time_s must be a finite number >= 0 (seconds), got {min_compile_time_s!r}")
    target = None
    try:
        target = jax_cache_dir() if path is None else Path(path).expanduser()
        if target is None:
            return None
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):  # writable, not only present
            pass
    except (OSError, RuntimeError) as problem:  # RuntimeError: Path.home() without a home directory
        from .errors import warn

        warn(f"JAX's compilation cache is off: {target or path or 'its default directory'} cannot be written "
             f"({problem}); every process compiles its solvers again (set QEQPROP_JAX_CACHE to a "
             "writable directory, or to 0 to silence this)", RuntimeWarning)
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    compilation_cache.reset_cache()
    log.debug("JAX's persistent compilation cache: %s", target)
    return target


def disable_compilation_cache() -> None:
    """Switch JAX's persistent compilation cache off for the rest of this process (whoever switched
    it on); ``QEQPROP_JAX_CACHE=0`` keeps qeqprop from switching it on in the first place."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()


def default_compilation_cache() -> Path | None:
    """What qeqprop does when it first loads JAX: ``enable_compilation_cache()`` unless the user
    configured JAX's cache (a directory set, or the cache switched off in JAX); returns the
    directory qeqprop set, else None."""
    import jax

    if jax.config.jax_compilation_cache_dir is not None or not jax.config.jax_enable_compilation_cache:
        return None
    return enable_compilation_cache()


def compiler() -> list[str]:
    """The C++ compiler command for the native kernel: $CXX split like a shell would, else ``c++``."""
    return shlex.split(os.environ.get("CXX", "c++"))
