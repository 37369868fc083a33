"""JAX in float64 before anything makes arrays (qeqprop.config.enable_float64 says why), JAX's
persistent compilation cache switched on (qeqprop.config.default_compilation_cache: compiled once
per machine, not once per process), glibc's malloc thresholds raised for the solvers' large
temporaries (qeqprop.config.tune_allocator), and the notice a user sees while a jitted solver
compiles for a new shape."""

from __future__ import annotations

import logging
from collections.abc import Hashable

from .config import default_compilation_cache, enable_float64, tune_allocator

enable_float64()
default_compilation_cache()
tune_allocator()

log = logging.getLogger("qeqprop.compile")
_announced: set[Hashable] = set()


def announce_compile(what: str, key: Hashable) -> None:
    """Log (INFO, logger "qeqprop.compile") that ``what`` is about to be traced and compiled, once
    per ``key`` (the static arguments and shapes jit keys its cache on) and process: the first
    call with a new register size, batch or block length waits seconds for XLA, later ones
    reuse the compiled program. The key mirrors jit's cache, it does not query it, so a shape
    compiled before this process announced it (none: jit's cache is per process) is not missed.
    With JAX's persistent cache (qeqprop.config) a shape an earlier process compiled is loaded
    from disk instead: the wait is then tracing and loading, about a second, and the notice
    still appears."""
    if key not in _announced:
        _announced.add(key)
        log.info("compiling %s (first call with these shapes in this process; later calls reuse it)", what)
