"""qeqprop._blas.one_blas_thread: numpy's BLAS on one thread inside, the previous limit back after,
nested calls inside the limit, and the limit set again after a call that raised."""

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from qeqprop._blas import one_blas_thread


def blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_one_blas_thread_nests_restores_and_recovers_from_errors():
    if not blas_threads():
        pytest.skip("numpy has no BLAS threadpool that threadpoolctl can see here")
    seen = []

    @one_blas_thread
    def inner():
        seen.append(blas_threads())

    @one_blas_thread
    def outer():
        inner()
        seen.append(blas_threads())

    @one_blas_thread
    def failing():
        raise RuntimeError("inside")

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        outer()
        assert seen and all(threads == 1 for pools in seen for threads in pools)
        assert blas_threads() == before
        with pytest.raises(RuntimeError, match="inside"):
            failing()
        assert blas_threads() == before
        seen.clear()
        inner()  # a fresh outermost call after the error: limited again
        assert seen == [[1] * len(before)]
