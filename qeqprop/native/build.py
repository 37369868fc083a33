"""Build, cache, load and register the native CPU kernels of ``pauli_apply.cc`` and ``tridiagonal.cc``.

The C++ source next to this file holds three XLA FFI handlers, each for float64 and complex128
states: ``pauli_apply`` (the grouped Pauli-sum application, used by
``hamiltonians.native_kernel``), and the JAX Lanczos solver's ``lanczos_residual`` (a Lanczos
step's one pass over the state) and ``lanczos_restart`` (the thick restart in place), used by
``solvers.lanczos_passes``. They are registered with XLA under the names ``target_name`` gives.
``lanczos_steps.cc`` holds ``lanczos_steps`` (float64 and complex128): steps of the batched
Lanczos block for a whole batch in one call, and ``basis_combination`` (float64 only, target
``qeqprop_basis_combination``): the block's Ritz vectors from its basis, both used by
``solvers.batched_passes``.
``tridiagonal.cc`` holds ``tridiagonal_lowest`` (float64 only, target ``qeqprop_tridiagonal_lowest``):
the batched Lanczos solver's Ritz pairs (bisection and inverse iteration, several samples at once).
``basis_sampling.cc`` holds a plain C function, ``qeqprop_basis_outcomes`` (called through ctypes by
``readout.sampling.basis_outcomes``, no XLA): shot outcomes of a batch of states in one product basis.
``pauli_expectations.cc`` holds another, ``qeqprop_pauli_expectations`` (called through ctypes by
``hamiltonians.pauli.PauliTable.expectations``): <psi|P_s|psi> of a table's strings for a batch of states.

The source is compiled at first use with the C++ compiler of ``config.compiler()`` against the
installed jaxlib's FFI headers, ``-O3 -march=native``, into ``config.cache_dir()``, keyed by the
source, jaxlib version, compiler and CPU flags; the shared object is written under a temporary
name and renamed into place, so concurrent processes never load a half-written file. The build
(tens of seconds) says so on the ``qeqprop.native.build`` logger, and as one stderr line where no
logging is configured; ``python -m qeqprop.native`` runs it ahead of time (an install cannot: the
package is pure Python to pip). Where it
cannot be built (no compiler, a failed build, a jax without ``jax.ffi``) ``native_library`` says
so with one ``NativeKernelWarning`` and returns None, and callers use their XLA kernels;
``config.native_enabled()`` false (``QEQPROP_NATIVE=0``) switches it off without a warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import jax
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from ..config import cache_dir, compiler, cpu_flags, native_enabled
from ..errors import NativeKernelWarning, warn

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "pauli_apply.cc"
SOURCES = (SOURCE, SOURCE.with_name("tridiagonal.cc"), SOURCE.with_name("lanczos_steps.cc"), SOURCE.with_name("basis_sampling.cc"),
           SOURCE.with_name("pauli_expectations.cc"))
TRIDIAGONAL_TARGET = "qeqprop_tridiagonal_lowest"
COMBINATION_TARGET = "qeqprop_basis_combination"
FLAGS = ("-O3", "-march=native", "-std=c++17", "-fPIC", "-shared", "-w")
COMPILE_TIMEOUT_S = 300
KERNELS = ("pauli_apply", "lanczos_residual", "lanczos_restart", "lanczos_steps")
# the state dtypes the handlers take, and the suffix of their target and symbol names
DTYPES = {np.dtype(np.float64): "f64", np.dtype(np.complex128): "c128"}


def supports(dtype) -> bool:
    """Whether the handlers take states of ``dtype`` (float64 and complex128)."""
    return np.dtype(dtype) in DTYPES


def target_name(kernel: str, dtype) -> str:
    """The XLA FFI target of ``kernel`` (one of KERNELS) for ``dtype`` states,
    e.g. ``qeqprop_lanczos_residual_c128``."""
    return f"qeqprop_{kernel}_{DTYPES[np.dtype(dtype)]}"


def _symbol(kernel: str, suffix: str) -> str:
    """The handler's C symbol in pauli_apply.cc: pauli_apply, f64 -> QeqpropPauliApplyF64."""
    return "Qeqprop" + "".join(part.capitalize() for part in kernel.split("_")) + suffix.upper()


def build_key() -> str:
    """Hash of what the shared object depends on: source, jaxlib version, compiler command, CPU flags."""
    import jaxlib

    parts = [*(source.read_bytes() for source in SOURCES), jaxlib.__version__.encode(), " ".join(compiler() + list(FLAGS)).encode(),
             cpu_flags().encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def build(target: Path) -> None:
    """Compile the kernels into ``target`` (atomically: a temporary file renamed into place).

    Raises:
        RuntimeError: the compiler failed (its command and the end of its error output).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    command = [*compiler(), *FLAGS, "-I", jax.ffi.include_dir(), *map(str, SOURCES), "-o", tmp]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _notice(message: str, *args: object) -> None:
    """``message % args`` at INFO on this module's logger, and on stderr as one line
    ``qeqprop: ...`` when no logging handler would show it (the user configured no logging: the
    build waits tens of seconds, and a silent wait looks like a hang)."""
    log.info(message, *args)
    if not log.hasHandlers():
        print("qeqprop: " + message % args, file=sys.stderr, flush=True)


def library_path() -> Path:
    """Where the shared object for this source, jaxlib, compiler and CPU lives (``build_key``)."""
    return cache_dir() / f"pauli_apply-{build_key()}.so"


# An lru_cache, not a jit: loading and registering a shared library is a process-wide side
# effect that happens once, not a computation that jit could trace and cache.
@lru_cache(maxsize=1)
def native_library() -> ctypes.CDLL | None:
    """The compiled kernels, built if needed, loaded, and every handler registered with XLA
    (platform "cpu"); None where they are switched off (``QEQPROP_NATIVE=0``) or cannot be
    built (one NativeKernelWarning naming the reason). ``native_library.cache_clear()`` forgets
    the answer (the next call asks again)."""
    if not native_enabled():
        return None
    target = library_path()
    try:
        if not target.exists():
            _notice("building qeqprop's native CPU kernel into %s (once per jaxlib, compiler and CPU; "
                    "up to a minute; `python -m qeqprop.native` builds it ahead of time)", target)
            started = time.perf_counter()
            build(target)
            _notice("native kernel built in %.1f s", time.perf_counter() - started)
        library = ctypes.cdll.LoadLibrary(str(target))
        for kernel in KERNELS:
            for dtype, suffix in DTYPES.items():
                handler = jax.ffi.pycapsule(getattr(library, _symbol(kernel, suffix)))
                jax.ffi.register_ffi_target(target_name(kernel, dtype), handler, platform="cpu")
        jax.ffi.register_ffi_target(TRIDIAGONAL_TARGET, jax.ffi.pycapsule(library.QeqpropTridiagonalLowest), platform="cpu")
        jax.ffi.register_ffi_target(COMBINATION_TARGET, jax.ffi.pycapsule(library.QeqpropBasisCombination), platform="cpu")
        pointer = np.ctypeslib.ndpointer
        library.qeqprop_basis_outcomes.argtypes = [
            pointer(np.float64, flags="C"), ctypes.c_int64, ctypes.c_int64, pointer(np.int8, flags="C"),
            pointer(np.float64, flags="C"), ctypes.c_int64, pointer(np.int64, flags="C,W"), ctypes.c_int64]
        library.qeqprop_basis_outcomes.restype = ctypes.c_int
        int64s = pointer(np.int64, flags="C")
        library.qeqprop_pauli_expectations.argtypes = [
            pointer(np.float64, flags="C"), ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, int64s, int64s,
            int64s, int64s, pointer(np.float64, flags="C"), ctypes.c_int64, pointer(np.float64, flags="C,W"), ctypes.c_int64]
        library.qeqprop_pauli_expectations.restype = ctypes.c_int
    except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as error:  # AttributeError: no jax.ffi
        warn(f"qeqprop's native kernel is unavailable ({error}); using the XLA kernel "
             "(set QEQPROP_NATIVE=0 to skip the attempt)", NativeKernelWarning)
        return None
    return library


def native_available() -> bool:
    """Whether the native kernels are built, loaded and registered (``native_library``)."""
    return native_library() is not None


def main(argv: list[str] | None = None) -> int:
    """``python -m qeqprop.native``: build (if needed), load and register the native kernels now,
    e.g. right after ``pip install`` in an image, so no later first call waits for the compiler.
    Prints the shared object's path; exit status 1 where it cannot be built (the warning says why)."""
    import argparse

    argparse.ArgumentParser(prog="python -m qeqprop.native",
                            description="Build qeqprop's native CPU kernel now (once per jaxlib, compiler and CPU).").parse_args(argv)
    if native_library() is None:
        print("qeqprop's native kernel is not available" + ("" if native_enabled() else " (QEQPROP_NATIVE=0)"),
              file=sys.stderr)
        return 1
    print(library_path())
    return 0
