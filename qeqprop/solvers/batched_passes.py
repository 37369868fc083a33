"""Steps of the batched Lanczos block as one native call for the whole batch (``lanczos_steps``).

For every sample b and step j the block (``batched_lanczos._block``) computes

    basis[b, j] = v,   w = Q_b H_b v,   a_j = Re <v, w>,   w <- w - a_j v - b_prev v_prev,
    w <- w - V (V^H w)  ("full"),   w <- w - g_b (g_b^H w)  ("ground"),
    b_j = |w|,   v_prev <- v,   v <- w / b_j

(Q_b = 1 - p_b p_b^H for a deflated solve, else 1; the recurrence stops at a breakdown
b_j <= 100 eps max(1, |a_j|)). By XLA ops that is a dozen small ops per step on vectors of a
few thousand doubles, whose per-op cost is several times the H application's. The native
handler (``qeqprop/native/lanczos_steps.cc``) runs ``count`` steps for every sample in one
call, one sample after another with its vectors in cache, the H application by the
``pauli_apply`` kernel; the basis, v and v_prev are updated in place (aliased buffers).

``basis_combination`` forms the block's Ritz vectors V_b^T y_b from the basis (``basis_combination``
in the same source; an XLA einsum elsewhere).

Not differentiable (the solver is not differentiated). CPU only, float64/complex128 states,
``native_available()``; ``batched_lanczos`` keeps its XLA scan for everything else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..hamiltonians.native_kernel import native_available, native_operands, on_cpu
from ..native import supports, target_name
from ..native.build import COMBINATION_TARGET

MODES = {"none": 0, "ground": 1, "full": 2}


def native_steps_supported(operators, dtype) -> bool:
    """Whether ``native_lanczos_steps`` takes these operators and states: the native kernel was
    loaded when the operators were made (their static ``native`` flag) and the dtype is
    float64 or complex128."""
    return bool(operators.native) and supports(dtype)


def native_lanczos_steps(operators, deflate, orthogonalize: str, carry, guard, start, count: int):
    """``count`` block steps from row ``start`` for the batch (module docstring) in one native call.

    Args:
        operators: the batch's ``JaxPauliOperator`` (leaves with a leading batch axis B).
        deflate: (B, D) unit vectors p_b, or None.
        orthogonalize: "none", "ground" or "full" (``batched_lanczos.ORTHOGONALIZATIONS``).
        carry: (basis (B, m, W) float64 in real view, v (B, D), v_prev (B, D), b_prev (B,), alive (B,) bool).
        guard: (B, D) guard vectors for "ground", else None.
        start: the first basis row written (an integer or a traced scalar); a Python 0 means the
            first steps of a block, whose basis is all zeros: the handler writes a fresh one (its
            other rows zeros) instead of updating the input (XLA then drops the input's zeros).
        count: steps (static).

    Returns:
        (the carry after the steps, (alpha, beta, alive) each (count, B)): the layout of
        ``jax.lax.scan`` over the XLA step, alive as it was before each step.
    """
    basis, v, v_prev, b_prev, alive = carry
    diagonal, scalars, vectors, attributes = native_operands(operators, v.dtype)
    empty = jnp.zeros((0,), v.dtype)
    state = jnp.stack([b_prev, alive.astype(b_prev.dtype)], axis=1)
    outputs = (jax.ShapeDtypeStruct(basis.shape, basis.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype),
               jax.ShapeDtypeStruct(v.shape, v.dtype), jax.ShapeDtypeStruct(state.shape, state.dtype),
               jax.ShapeDtypeStruct((v.shape[0], 3, count), jnp.float64))
    fresh = isinstance(start, int) and start == 0  # the first steps: the basis is all zeros so far
    aliases = {3: 1, 4: 2, 5: 3} if fresh else {2: 0, 3: 1, 4: 2, 5: 3}
    call = jax.ffi.ffi_call(target_name("lanczos_steps", v.dtype), outputs, input_output_aliases=aliases)
    basis, v, v_prev, state, coefficients = call(
        diagonal, scalars, jnp.zeros((0,), basis.dtype) if fresh else basis, v, v_prev, state, empty if guard is None else guard,
        empty if deflate is None else deflate.astype(v.dtype), jnp.asarray(start, jnp.int64), *vectors,
        mode=np.int64(MODES[orthogonalize]), **attributes)
    alpha, beta, was_alive = (coefficients[:, k].T for k in range(3))
    return (basis, v, v_prev, state[:, 0], state[:, 1] != 0), (alpha, beta, was_alive != 0)


def basis_combination(basis, coefficients, used=None):
    """out[b, p] = sum_k coefficients[b, k, p] basis[b, k]: the Ritz vectors V_b^T y_{b,p} of a block,
    in the basis's real view; basis (B, m, W) float64, coefficients (B, m, P) -> (B, P, W). ``used``
    (an integer, possibly traced; None: m): the rows written so far, the rest being zeros, which the
    native handler then does not read (a guard refresh after 8 of 64 steps reads 8 rows).

    On CPU with the native library, one ``basis_combination`` call (tiles of the P output rows in L1,
    each basis row read once): 12 us per sample at (m, W, P) = (40, 2048, 1) and 19 us for P = 2,
    where XLA's CPU batched einsum takes 45 and 71 us (8-sample chunks of the 10-qubit sensor model).
    Elsewhere the einsum."""
    xla = lambda basis, coefficients, used: jnp.einsum("bkd,bkp->bpd", basis, coefficients)
    used = jnp.asarray(basis.shape[1] if used is None else used, jnp.int64)
    if not native_available():
        return xla(basis, coefficients, used)
    shape = jax.ShapeDtypeStruct((basis.shape[0], coefficients.shape[2], basis.shape[2]), basis.dtype)
    native = lambda basis, coefficients, used: jax.ffi.ffi_call(COMBINATION_TARGET, shape)(basis, coefficients, used)
    return on_cpu(native, xla, basis, coefficients.astype(basis.dtype), used)
