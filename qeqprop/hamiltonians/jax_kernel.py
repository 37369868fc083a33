"""The Pauli-sum application as one jitted XLA kernel (CPU or accelerator).

Same grouped form as ``PauliOperator`` (``PauliTable.compile``):

    (H psi)[c] = d_0[c] psi[c] + sum_x d_x[c] psi[c xor x],

with psi[c xor x] formed without index tables or 2^n x n spin arrays, in one of two ways:

- one state (``vmapped=False``): psi viewed with one axis of length 2 per flipped qubit
  and the runs of other qubits merged, (..., 2, 2^k) for a one-qubit flip, rolled by one
  along the flipped axes (contiguous half-block swaps);
- a kernel to ``jax.vmap`` over samples (``vmapped=True``): a gather at iota xor x,
  computed inside the fused loop.

Measured on this 2-core machine (one core, scalar factors): at 2^20 the half-block swap
takes 8 ms per 20-flip application against 17 ms for the gather and 11 ms for reversing the
axes of the (2,)*n view; vmapped over 256 x 2^10 the gather takes 1.0 ms against 1.4 ms.

The flip structure (which masks, which factors are vectors) is static and compiled once
per model; diagonals and factors are arguments, so new parameters or inputs reuse the
compiled kernel, and ``jax.vmap`` batches samples.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from .native_kernel import TARGETS, native_kernels
from .pauli import split_view

Structure = tuple[int, tuple[tuple[int, bool], ...]]


def structure_of(n_qubits: int, flips) -> Structure:
    """Static description: (n, ((x_mask, factor_is_vector), ...))."""
    return n_qubits, tuple((int(x), np.ndim(f) > 0) for x, f in flips)


@lru_cache(maxsize=128)
def matvec_kernel(structure: Structure, vmapped: bool = False):
    """Un-jitted single-sample kernel ``apply(diagonal, factors, psi) -> H psi``; ``vmapped``
    selects the flip form that is fastest under ``jax.vmap`` (module docstring)."""
    n, flips = structure
    views = [split_view(n, x_mask) for x_mask, _ in flips]

    def flip(psi, x_mask, shape, axes):
        """psi[c xor x]."""
        if vmapped:
            return psi[jnp.arange(1 << n, dtype=jnp.int32 if n < 31 else jnp.int64) ^ x_mask]
        return jnp.roll(psi.reshape(shape), (1,) * len(axes), axis=axes).reshape(-1)

    def apply(diagonal, factors, psi):
        out = diagonal * psi
        for (x_mask, _), (shape, axes), factor in zip(flips, views, factors):
            out = out + factor * flip(psi, x_mask, shape, axes)
        return out

    return apply


def lanczos_residual_of(apply):
    """``residual(*operator, v, v_prev, shift, b_prev) -> (w, <v, w>, <w, w>, v)`` with
    w = H v - shift v - b_prev v_prev (a Lanczos step's pass) and H v = ``apply(*operator, v)``,
    by XLA ops (v is returned as the next step's v_prev, as the native pass does)."""

    def residual(*args):
        *operator, v, v_prev, shift, b_prev = args
        w = apply(*operator, v) - shift * v - b_prev * v_prev
        return w, jnp.vdot(v, w), jnp.real(jnp.vdot(w, w)), v

    return residual


def _native_on_cpu(native, xla):
    """``native`` where the program runs on CPU with one float64/complex128 state, else ``xla``."""

    def call(diagonal, factors, psi, *rest):
        if jnp.dtype(psi.dtype) not in TARGETS or jnp.ndim(psi) != 1:
            return xla(diagonal, factors, psi, *rest)
        return jax.lax.platform_dependent(diagonal, factors, psi, *rest, cpu=native, default=xla)

    return call


@lru_cache(maxsize=128)
def fast_matvec_kernel(structure: Structure):
    """``matvec_kernel(structure)``'s ``apply``, by the native kernel (``native_kernel``: 4-6x
    faster) where the program runs on CPU in float64/complex128 and the kernel could be built,
    else by the XLA kernel. Not differentiable (the native kernel has no autodiff rule)."""
    native = native_kernels(structure)
    xla_apply = matvec_kernel(structure)
    return xla_apply if native is None else _native_on_cpu(native.apply, xla_apply)


@lru_cache(maxsize=128)
def fast_lanczos_residual(structure: Structure):
    """``lanczos_residual_of(matvec_kernel(structure))``, fused into one native pass where
    ``fast_matvec_kernel`` is native. Not differentiable."""
    native = native_kernels(structure)
    xla_residual = lanczos_residual_of(matvec_kernel(structure))
    return xla_residual if native is None else _native_on_cpu(native.lanczos_residual, xla_residual)


@lru_cache(maxsize=64)
def jitted_matvec(structure: Structure):
    return jax.jit(fast_matvec_kernel(structure))


class JaxPauliOperator:
    """A ``PauliOperator``'s action as a jitted kernel (``fast_matvec_kernel``: not differentiable);
    ``matvec`` takes and returns jax arrays.

    ``precision="single"`` runs in float32/complex64 (faster, ~1e-7 relative accuracy).
    """

    def __init__(self, operator, precision: str = "double"):
        if precision not in ("double", "single"):
            raise ValueError(f"precision must be 'double' or 'single', got {precision!r}")
        real = np.dtype(operator.dtype) == np.float64
        self.dtype = {("double", True): jnp.float64, ("double", False): jnp.complex128,
                      ("single", True): jnp.float32, ("single", False): jnp.complex64}[(precision, real)]
        self.n_qubits = operator.n_qubits
        self.dim = operator.dim
        flips = [(x, np.reshape(f, -1) if np.ndim(f) else f) for x, f in operator.flips]
        self.structure = structure_of(self.n_qubits, flips)
        self.diagonal = jnp.asarray(operator.diagonal, dtype=self.dtype)
        self.factors = tuple(jnp.asarray(f, dtype=self.dtype) for _, f in flips)
        self._kernel = jitted_matvec(self.structure)

    def matvec(self, psi):
        return self._kernel(self.diagonal, self.factors, psi)
