"""numpy's BLAS on one thread inside qeqprop's numerical entry points.

OpenBLAS worker threads keep spinning for a while after every threaded call, and on a small
machine they take the cores from the XLA threads of the JAX solve that follows (measurements:
benchmarks/NOTES.md). The matrices qeqprop hands to BLAS (Walsh sums, Jacobians, count moments)
are small or memory-bound, so one thread costs nothing there. The previous limit is restored
on return.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)
_CONTROLLER: list[ThreadpoolController] = []  # created on first use (it scans the loaded libraries)
_LIMITED = threading.local()  # .depth: limited calls open on this thread


def one_blas_thread(fn: F) -> F:
    """``fn`` run with numpy's BLAS limited to one thread (see the module docstring). A call made
    inside another limited call on the same thread runs as it is (the limit already holds): setting
    and restoring the limit costs ~40 us, and one ``predict`` of one sample nests three."""

    @functools.wraps(fn)
    def limited(*args, **kwargs):
        depth = getattr(_LIMITED, "depth", 0)
        if depth:
            return fn(*args, **kwargs)
        if not _CONTROLLER:
            _CONTROLLER.append(ThreadpoolController())
        _LIMITED.depth = 1
        try:
            with _CONTROLLER[0].limit(limits=1, user_api="blas"):
                return fn(*args, **kwargs)
        finally:
            _LIMITED.depth = 0

    return limited  # type: ignore[return-value]
