"""Native XLA FFI kernels for the JAX Lanczos solver on CPU (``qeqprop/native/pauli_apply.cc``).

- ``apply``: the grouped Pauli sum of ``jax_kernel.matvec_kernel``,

      (H psi)[c] = d_0[c] psi[c] + sum_x d_x[c] psi[c xor x],

  in one pass over registers of 32 doubles held across all flip groups (one load per group and
  register, the partner's lanes permuted in register). Measured on this 2-core machine for the
  20-flip all-to-all TFIM: 2^16 amplitudes 0.06 ms against 0.37 ms for XLA's fused half-block
  swaps, 2^20 1.1-2.2 ms against 6-7 ms.
- ``lanczos_residual``: a Lanczos step's pass, the same application fused with
  w = H v - a v - b v_prev, <v, w> and <w, w>.
- ``native_restart``: the thick restart in place on the solver's buffers.

The source is compiled at first use with the system C++ compiler (``$CXX``, else ``c++``)
against the installed jaxlib's FFI headers, ``-O3 -march=native``, into a cache directory
(``$QEQPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/qeqprop``, else ``~/.cache/qeqprop``), keyed by
the source, jaxlib version, compiler and CPU flags; the shared object is written under a
temporary name and renamed into place. Where it cannot be built (no compiler, a failed build)
the XLA kernel is used, after one ``NativeKernelWarning`` naming the reason; ``QEQPROP_NATIVE=0``
switches it off without a warning. The kernel runs on CPU
for float64 and complex128 (``jax_kernel.fast_matvec_kernel`` gives accelerators and single
precision the XLA kernel). It has no autodiff rule: differentiated code uses ``matvec_kernel``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..config import cache_dir, compiler, native_enabled
from ..errors import NativeKernelWarning

if TYPE_CHECKING:
    from .jax_kernel import Structure

SOURCE = Path(__file__).resolve().parent.parent / "native" / "pauli_apply.cc"
FLAGS = ("-O3", "-march=native", "-std=c++17", "-fPIC", "-shared", "-w")
COMPILE_TIMEOUT_S = 300
TARGETS = {jnp.dtype(jnp.float64): "qeqprop_pauli_apply_f64", jnp.dtype(jnp.complex128): "qeqprop_pauli_apply_c128"}
RESIDUAL_TARGETS = {jnp.dtype(jnp.float64): "qeqprop_lanczos_residual_f64",
                    jnp.dtype(jnp.complex128): "qeqprop_lanczos_residual_c128"}
RESTART_TARGETS = {jnp.dtype(jnp.float64): "qeqprop_lanczos_restart_f64",
                   jnp.dtype(jnp.complex128): "qeqprop_lanczos_restart_c128"}
_SYMBOLS = {"qeqprop_pauli_apply_f64": "QeqpropPauliApplyF64", "qeqprop_pauli_apply_c128": "QeqpropPauliApplyC128",
            "qeqprop_lanczos_residual_f64": "QeqpropLanczosResidualF64",
            "qeqprop_lanczos_residual_c128": "QeqpropLanczosResidualC128",
            "qeqprop_lanczos_restart_f64": "QeqpropLanczosRestartF64",
            "qeqprop_lanczos_restart_c128": "QeqpropLanczosRestartC128"}



def _cpu_flags() -> str:
    """The CPU's feature flags (what -march=native compiles for)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() + platform.machine()


def _build_key() -> str:
    import jaxlib

    parts = [SOURCE.read_bytes(), jaxlib.__version__.encode(), " ".join(compiler() + list(FLAGS)).encode(),
             _cpu_flags().encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def build(target: Path) -> None:
    """Compile the kernel into ``target`` (atomically: a temporary file renamed into place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    command = [*compiler(), *FLAGS, "-I", jax.ffi.include_dir(), str(SOURCE), "-o", tmp]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=1)
def native_library() -> ctypes.CDLL | None:
    """The compiled kernel, built if needed and registered with XLA; None where it is
    switched off (``QEQPROP_NATIVE=0``) or cannot be built (one NativeKernelWarning)."""
    if not native_enabled():
        return None
    target = cache_dir() / f"pauli_apply-{_build_key()}.so"
    try:
        if not target.exists():
            build(target)
        library = ctypes.cdll.LoadLibrary(str(target))
        for name, symbol in _SYMBOLS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as error:  # AttributeError: no jax.ffi
        warnings.warn(f"qeqprop's native kernel is unavailable ({error}); using the XLA kernel "
                      "(set QEQPROP_NATIVE=0 to skip the attempt)", NativeKernelWarning, stacklevel=2)
        return None
    return library


class NativeKernels(NamedTuple):
    """The native kernels of one model structure (traceable; CPU only, one float64/complex128 state).

    ``apply(diagonal, factors, psi) -> H psi``;
    ``lanczos_residual(diagonal, factors, v, v_prev, shift, b_prev) -> (w, <v, w>, <w, w>, v)`` with
    w = H v - shift v - b_prev v_prev, in one pass over the state; the returned v is written into
    v_prev's buffer (aliased), which spares the Lanczos loop XLA's copies of its carried vectors."""

    apply: Callable
    lanczos_residual: Callable


@lru_cache(maxsize=128)
def native_kernels(structure: "Structure") -> NativeKernels | None:
    """The structure's ``NativeKernels``, or None where the kernel is unavailable (``native_library``)."""
    if native_library() is None:
        return None
    _, flips = structure
    vector = [is_vector for _, is_vector in flips]
    masks = np.array([x for x, _ in flips], dtype=np.int64)
    slots = np.where(vector, np.cumsum(vector, dtype=np.int64) - 1, -1).astype(np.int64)

    def operands(diagonal, factors, dtype):
        scalars = [jnp.zeros((), dtype) if is_vector else jnp.asarray(f, dtype)
                   for is_vector, f in zip(vector, factors)]
        vectors = [jnp.asarray(f, dtype) for is_vector, f in zip(vector, factors) if is_vector]
        return diagonal.astype(dtype), jnp.stack(scalars) if scalars else jnp.zeros((0,), dtype), vectors

    def apply(diagonal, factors, psi):
        diagonal, scalars, vectors = operands(diagonal, factors, psi.dtype)
        call = jax.ffi.ffi_call(TARGETS[jnp.dtype(psi.dtype)], jax.ShapeDtypeStruct(psi.shape, psi.dtype),
                                vmap_method="sequential")
        return call(diagonal, scalars, psi, *vectors, masks=masks, slots=slots)

    def lanczos_residual(diagonal, factors, v, v_prev, shift, b_prev):
        diagonal, scalars, vectors = operands(diagonal, factors, v.dtype)
        coefficients = jnp.stack([shift, b_prev]).astype(jnp.float64)
        shape = jax.ShapeDtypeStruct(v.shape, v.dtype)
        sums = jax.ShapeDtypeStruct((3,), jnp.float64)
        call = jax.ffi.ffi_call(RESIDUAL_TARGETS[jnp.dtype(v.dtype)], (shape, sums, shape), vmap_method="sequential",
                                input_output_aliases={3: 2})
        w, sums, v_copy = call(diagonal, scalars, v, v_prev, coefficients, *vectors, masks=masks, slots=slots)
        overlap = sums[0] + 1j * sums[1] if jnp.iscomplexobj(v) else sums[0]
        return w, overlap, sums[2], v_copy

    return NativeKernels(apply, lanczos_residual)


def native_restart(weights, couplings, skip, basis, v, v_prev):
    """The thick restart in place on the solver's buffers (``pauli_apply.cc``): the kept Ritz
    vectors u_i = sum_j weights[j, i] basis[j] over basis rows 0..k-1, v orthogonalised against
    them and normalised, v_prev = sum_i couplings[i] u_i; nothing when ``skip`` is true (the
    final cycle). Real weights (m, k <= 64), float64/complex128 states of at least 8 doubles;
    CPU only, needs ``native_library()``. Returns (basis, v, v_prev)."""
    like = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (basis, v, v_prev)]
    call = jax.ffi.ffi_call(RESTART_TARGETS[jnp.dtype(basis.dtype)], like, input_output_aliases={3: 0, 4: 1, 5: 2})
    return tuple(call(weights.astype(jnp.float64), couplings.astype(jnp.float64), jnp.asarray(skip, jnp.float64),
                      basis, v, v_prev))
