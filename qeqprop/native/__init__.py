"""The native CPU kernels (``pauli_apply.cc``) and their build, cache and XLA registration (``build``).

``hamiltonians.native_kernel`` calls the Pauli-sum application; ``solvers.lanczos_passes``
calls the Lanczos step's pass and the thick restart. Both ask ``native_library()`` (or
``native_available()``) first and fall back to XLA ops where it is None.
"""

from .build import (COMPILE_TIMEOUT_S, DTYPES, FLAGS, KERNELS, SOURCE, build, build_key, native_available,
                    native_library, supports, target_name)

__all__ = ["COMPILE_TIMEOUT_S", "DTYPES", "FLAGS", "KERNELS", "SOURCE", "build", "build_key", "native_available",
           "native_library", "supports", "target_name"]
