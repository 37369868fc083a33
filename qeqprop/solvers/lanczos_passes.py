"""The JAX Lanczos solver's passes over the state: a step's residual pass and the thick restart,
each by XLA ops and, on CPU for float64/complex128 states, by one fused native pass
(``qeqprop/native/pauli_apply.cc``; built and registered by ``qeqprop.native``).

Step pass (``lanczos_residual``): one Lanczos step needs

    w = H v - shift v - b_prev v_prev,   <v, w>,   <w, w>,

and by XLA ops that is an application of H plus three more passes over the state. The native
pass computes all of it while H v is in registers (the operator laid out as for
``hamiltonians.native_kernel``), and writes v into v_prev's buffer (aliased), which spares the
Lanczos loop the copies XLA makes of the (v, v_prev) -> (v_next, v) shuffle of its carry.
The sums are added in a fixed task order, so results do not depend on the thread count.

Restart (``restart``): the kept Ritz vectors u_i = sum_j Y[j, i] basis[j] written over basis rows
0..k-1, v orthogonalised against them and normalised, and v_prev = sum_i s_i u_i. The native
handler does it in place in three passes and skips it after the final cycle; the XLA version
builds the kept vectors as a temporary block.

Neither native pass has an autodiff rule; the solver is not differentiated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..hamiltonians.native_kernel import native_operands, on_cpu
from ..native import native_available, supports, target_name


def xla_lanczos_residual(apply, v, v_prev, shift, b_prev):
    """(w, <v, w>, <w, w>, v) with w = apply(v) - shift v - b_prev v_prev, by XLA ops (v is
    returned as the next step's v_prev, as the native pass does)."""
    w = apply(v) - shift * v - b_prev * v_prev
    return w, jnp.vdot(v, w), jnp.real(jnp.vdot(w, w)), v


def native_lanczos_residual(operator, v, v_prev, shift, b_prev):
    """``xla_lanczos_residual(operator.apply, ...)`` in one native pass over the state; the
    returned v is written into v_prev's buffer. CPU only, float64/complex128, ``native_available()``."""
    diagonal, scalars, vectors, attributes = native_operands(operator, v.dtype)
    coefficients = jnp.stack([shift, b_prev]).astype(jnp.float64)
    shape = jax.ShapeDtypeStruct(v.shape, v.dtype)
    sums = jax.ShapeDtypeStruct((3,), jnp.float64)
    call = jax.ffi.ffi_call(target_name("lanczos_residual", v.dtype), (shape, sums, shape), vmap_method="sequential",
                            input_output_aliases={3: 2})
    w, sums, v_copy = call(diagonal, scalars, v, v_prev, coefficients, *vectors, **attributes)
    overlap = sums[0] + 1j * sums[1] if jnp.iscomplexobj(v) else sums[0]
    return w, overlap, sums[2], v_copy


def lanczos_residual(operator, v, v_prev, shift, b_prev):
    """A Lanczos step's pass on a ``JaxPauliOperator``: ``native_lanczos_residual`` where the
    program runs on CPU and ``operator.uses_native(v)``, else XLA ops on the XLA kernel."""

    def xla(operator, v, v_prev, shift, b_prev):
        return xla_lanczos_residual(operator.xla_apply, v, v_prev, shift, b_prev)

    if not operator.uses_native(v):
        return xla(operator, v, v_prev, shift, b_prev)
    return on_cpu(native_lanczos_residual, xla, operator, v, v_prev, shift, b_prev)


def xla_restart(weights, couplings, skip, basis, v, v_prev):
    """The thick restart by XLA ops: the kept Ritz vectors u_i = sum_j weights[j, i] basis[j]
    over basis rows 0..k-1, v orthogonalised against them and normalised, and
    v_prev = sum_i couplings[i] u_i (H v_k's component along the u_i). ``skip`` (the final
    cycle, whose results are not used) is ignored: the work is done anyway."""
    kept = weights.astype(basis.dtype).T @ basis
    v = v - kept.T @ (kept.conj() @ v)
    v = v / jnp.maximum(jnp.linalg.norm(v), 1e-300)
    return basis.at[:weights.shape[1]].set(kept), v, couplings.astype(basis.dtype) @ kept


def native_restart(weights, couplings, skip, basis, v, v_prev):
    """``xla_restart`` in place on the solver's buffers (``pauli_apply.cc``), nothing when
    ``skip`` is true (the final cycle). Real weights (m, k <= 64), float64/complex128 states of
    at least 8 doubles; CPU only, needs ``native_available()``. Returns (basis, v, v_prev)."""
    like = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (basis, v, v_prev)]
    call = jax.ffi.ffi_call(target_name("lanczos_restart", basis.dtype), like, input_output_aliases={3: 0, 4: 1, 5: 2})
    return tuple(call(weights.astype(jnp.float64), couplings.astype(jnp.float64), jnp.asarray(skip, jnp.float64),
                      basis, v, v_prev))


def restart(weights, couplings, skip, basis, v, v_prev, native: bool | None = None):
    """``xla_restart``, by ``native_restart`` (in place, three passes, nothing for the final
    cycle: no temporary block of kept vectors) where the program runs on CPU with
    float64/complex128 states and ``native`` (None: ``native_available()``; the solver passes its
    operator's static ``native`` flag, so that a compiled solve's choice follows its cache key)."""
    native = native_available() if native is None else native
    # the handler takes at most 64 kept vectors and states of at least one register; tiny states
    # (full reorthogonalisation anyway) keep the XLA ops
    native = native and supports(basis.dtype) and weights.shape[1] <= 64 and basis.shape[1] >= 64
    if not native:
        return xla_restart(weights, couplings, skip, basis, v, v_prev)
    return on_cpu(native_restart, xla_restart, weights, couplings, skip, basis, v, v_prev)
