"""numpy's BLAS on one thread inside qeqprop's numerical entry points.

OpenBLAS worker threads keep spinning for about 0.1 s after every threaded call, and on a
small machine they take the cores from the XLA threads of the JAX solve that follows
(measured on 2 cores: a 20-qubit ground state 1.05 s after single-threaded numpy work
against 1.12 s after threaded, a 16-qubit one 0.052 s against 0.081 s, a batched free phase
of 128 10-qubit samples 0.050 s against 0.075 s). The matrices qeqprop hands to BLAS
(Walsh sums, Jacobians, count moments) are small or memory-bound, so one thread costs
nothing there. The previous limit is restored on return.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)
_CONTROLLER: list[ThreadpoolController] = []  # created on first use (it scans the loaded libraries)


def one_blas_thread(fn: F) -> F:
    """``fn`` run with numpy's BLAS limited to one thread (see the module docstring)."""

    @functools.wraps(fn)
    def limited(*args, **kwargs):
        if not _CONTROLLER:
            _CONTROLLER.append(ThreadpoolController())
        with _CONTROLLER[0].limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return limited  # type: ignore[return-value]
