"""The Pauli-sum application by the native XLA FFI kernel on CPU (``qeqprop/native``).

The kernel computes the grouped form of ``jax_kernel``,

    (H psi)[c] = d_0[c] psi[c] + sum_x d_x[c] psi[c xor x],

in one pass over registers of 32 doubles held across all flip groups (one load per group and
register, the partner's lanes permuted in register), instead of one pass over the state per
group as XLA's fused half-block swaps do. It runs on CPU for float64/complex128 states, one
(``jax_kernel.JaxPauliOperator.apply``) or a batch with one operator each
(``jax_kernel.batched_apply``; under ``jax.vmap`` too), and gives accelerators and single
precision the XLA kernel; it has no autodiff rule: differentiated code uses
``JaxPauliOperator.xla_apply``.

Building, caching and registering the shared object is ``qeqprop.native``'s job; this module
only lays an operator out for the handler (``native_operands``) and calls it. The Lanczos
solver's fused passes over the same layout live in ``solvers.lanczos_passes``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..native import native_available, supports, target_name

__all__ = ["COMPACT_BITS", "cpu_compact_bits", "native_apply", "native_available", "native_operands", "on_cpu", "supports"]

# The compact factor layout's low bits (``PauliTable.compile(..., compact_bits=COMPACT_BITS)``): rows of
# 32 amplitudes, a whole number of the kernel's 32-double register chunks for real and complex states,
# so that a chunk reads its factor from one row (chosen by pext of the chunk index on the support bits).
COMPACT_BITS = 5


def cpu_compact_bits() -> int | None:
    """COMPACT_BITS where programs run the native kernel (CPU): vector factors are then compiled
    compact (``PauliTable.compile``), so that compiling, copying and reading them costs their
    support's size, not 2^n per group (the 10-qubit sensor model: 32-128 values instead of 1024;
    a 20-qubit XXZ bond: 128 instead of 2^20); None elsewhere (XLA would expand them at every
    application)."""
    return COMPACT_BITS if native_available() and jax.default_backend() == "cpu" else None


def native_operands(operator, dtype):
    """The handler's operands of a ``JaxPauliOperator`` whose leaves may carry leading batch axes
    (diagonal (..., D)): (diagonal, scalar factors (..., groups) (zero for vector groups), vector
    factors (..., D) or compact (..., R) each, and the static attributes masks (the flips), slots (each
    group's index among the vector factors, -1 for scalars), rows (a compact factor's support bits
    above the lowest ``period``, which pick its row; -1 for a full vector) and period
    (``COMPACT_BITS``)), in ``dtype``."""
    flips = operator.structure[1]
    vector = [is_vector for _, is_vector, _ in flips]
    masks = np.array([x for x, _, _ in flips], dtype=np.int64)
    slots = np.where(vector, np.cumsum(vector, dtype=np.int64) - 1, -1).astype(np.int64)
    rows = np.array([compact >> COMPACT_BITS if compact >= 0 else -1 for _, _, compact in flips], dtype=np.int64)
    head = jnp.shape(operator.diagonal)[:-1]
    scalars = [jnp.zeros(head, dtype) if is_vector else jnp.asarray(f, dtype) for is_vector, f in zip(vector, operator.factors)]
    vectors = [jnp.asarray(f, dtype) for is_vector, f in zip(vector, operator.factors) if is_vector]
    scalars = jnp.stack(scalars, axis=-1) if scalars else jnp.zeros(head + (0,), dtype)
    return operator.diagonal.astype(dtype), scalars, vectors, {"masks": masks, "slots": slots, "rows": rows,
                                                               "period": np.int64(COMPACT_BITS)}


def native_apply(operator, psi):
    """H psi by the native handler (CPU only, float64/complex128, ``native_available()``), for one
    state psi (D,) or a batch (..., D) with the operator's leaves stacked along the same leading
    axes: (H_b psi_b)[c] = d_0[b, c] psi[b, c] + sum_x d_x[b, (c)] psi[b, c xor x], the samples one
    after another in one call on the calling thread (``jax.vmap`` of it is one batched call too)."""
    diagonal, scalars, vectors, attributes = native_operands(operator, psi.dtype)
    call = jax.ffi.ffi_call(target_name("pauli_apply", psi.dtype), jax.ShapeDtypeStruct(psi.shape, psi.dtype),
                            vmap_method="broadcast_all")
    return call(diagonal, scalars, psi, *vectors, **attributes)


def on_cpu(native, xla, *args):
    """``native(*args)`` where the program runs on CPU, ``xla(*args)`` elsewhere (decided when
    the program is lowered for its platform; the other branch is never compiled)."""
    return jax.lax.platform_dependent(*args, cpu=native, default=xla)
