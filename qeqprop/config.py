"""Process-wide settings, read in one place.

Environment variables (read when first asked, so a test or script may set them after import)::

    QEQPROP_NATIVE=0        do not build or load the native CPU kernel (the XLA kernel runs)
    QEQPROP_CACHE_DIR=PATH  where the compiled native kernel is cached
                            (default: $XDG_CACHE_HOME/qeqprop, else ~/.cache/qeqprop)
    CXX                     the C++ compiler for the native kernel (default ``c++``)

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

import os
import shlex
from pathlib import Path


def enable_float64() -> None:
    """Switch JAX to float64 (``jax_enable_x64``); idempotent, called by ``import qeqprop._jax``."""
    import jax

    jax.config.update("jax_enable_x64", True)


def native_enabled() -> bool:
    """False when ``QEQPROP_NATIVE=0`` switches the native CPU kernel off."""
    return os.environ.get("QEQPROP_NATIVE", "1") != "0"


def cache_dir() -> Path:
    """Where compiled native kernels are kept: $QEQPROP_CACHE_DIR, else $XDG_CACHE_HOME/qeqprop,
    else ~/.cache/qeqprop."""
    if os.environ.get("QEQPROP_CACHE_DIR"):
        return Path(os.environ["QEQPROP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qeqprop"


def compiler() -> list[str]:
    """The C++ compiler command for the native kernel: $CXX split like a shell would, else ``c++``."""
    return shlex.split(os.environ.get("CXX", "c++"))
