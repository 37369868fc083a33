"""The Pauli-sum application in JAX: ``JaxPauliOperator``, a pytree whose arrays are leaves.

Same grouped form as ``PauliOperator`` (``PauliTable.compile``):

    (H psi)[c] = d_0[c] psi[c] + sum_x d_x[c] psi[c xor x],

with psi[c xor x] formed without index tables or 2^n x n spin arrays, in one of two ways:

- one state (``gather=False``): psi viewed with one axis of length 2 per flipped qubit and the
  runs of other qubits merged, (..., 2, 2^k) for a one-qubit flip, rolled by one along the
  flipped axes (contiguous half-block swaps);
- a kernel to ``jax.vmap`` over samples (``gather=True``): a gather at iota xor x, computed
  inside the fused loop (the form that vectorises across a batch).

``JaxPauliOperator.apply`` uses the native CPU kernel (``native_kernel``) for one float64 or
complex128 state where it could be built, and the XLA form otherwise; ``batched_apply`` does
the same for a batch of states with one operator each (the batched Lanczos solver's product).

Why a pytree: the diagonal d_0 and the factors d_x are the operator's leaves, and its structure
(qubit count, flip masks, which factors are vectors, whether the native kernel is loaded) is
static auxiliary data. ``jax.jit`` of any function taking the operator therefore compiles once
per structure, dtype and shape and reuses the program for new coefficients (new parameters,
inputs or nudges), by jit's own cache; ``jax.vmap`` over a stack of operators sharing one
structure batches samples, and ``jax.tree.map`` slices or stacks them.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from .native_kernel import COMPACT_BITS, native_apply, native_available, on_cpu, supports
from .pauli import compact_index, split_view

Structure = tuple[int, tuple[tuple[int, bool, int], ...]]


def structure_of(n_qubits: int, flips, supports=None) -> Structure:
    """Static description of grouped flips [(x_mask, factor), ...]: (n, ((x_mask, factor_is_vector,
    compact), ...)), ``compact`` the group's support (``PauliTable.support``) where its vector factor is
    stored compact (``supports`` {x_mask: support} given: ``PauliTable.compile(..., compact_bits=COMPACT_BITS)``),
    else -1 (full (2^n,) vectors and scalars)."""
    vector = lambda f: np.ndim(f) > 0
    return n_qubits, tuple((int(x), vector(f), int(supports[x]) if supports is not None and vector(f) else -1)
                           for x, f in flips)


def full_factor(n_qubits: int, compact: int, factor):
    """A flip group's factor over the whole basis (..., 2^n): a compact one expanded
    (``pauli.compact_index``), a full vector or a scalar as it is."""
    if compact < 0:
        return factor
    return factor[..., compact_index(n_qubits, compact, COMPACT_BITS)]


def xla_apply(structure: Structure, diagonal, factors, psi, gather: bool = False):
    """H psi by XLA ops (differentiable): d_0 psi + sum_x d_x psi[c xor x] over ``structure``'s flips,
    psi[c xor x] by half-block swaps of a reshaped view, or with ``gather`` (the form to
    ``jax.vmap``) by a gather at iota xor x; compact factors expanded first (``full_factor``)."""
    n, flips = structure
    out = diagonal * psi
    for (x_mask, _, compact), factor in zip(flips, factors):
        factor = full_factor(n, compact, factor)
        if gather:
            flipped = psi[jnp.arange(1 << n, dtype=jnp.int32 if n < 31 else jnp.int64) ^ x_mask]
        else:
            shape, axes = split_view(n, x_mask)
            flipped = jnp.roll(psi.reshape(shape), (1,) * len(axes), axis=axes).reshape(-1)
        out = out + factor * flipped
    return out


@jax.tree_util.register_pytree_node_class
class JaxPauliOperator:
    """A ``PauliOperator``'s action in JAX, as a pytree (module docstring): leaves ``diagonal``
    (2^n,) and ``factors`` (one scalar, (2^n,) vector or compact vector per flip group); static ``structure``
    (``structure_of``) and ``native`` (whether the native CPU kernel was loaded when it was made).

    ``precision="single"`` runs in float32/complex64 (faster, ~1e-7 relative accuracy).

    Args:
        operator: a ``PauliOperator`` (``PauliTable.operator(coeffs)``).
        precision: "double" (float64 / complex128) or "single".
        compact: store vector factors compact (``PauliTable.compile(..., compact_bits=COMPACT_BITS)``):
            their supports' size instead of 2^n each, read as they are by the native kernel
            (``native_kernel.cpu_compact_bits`` says where it runs) and expanded by the XLA kernel
            at every application. The operator then never builds its full factors.

    Example:
        >>> import jax, numpy as np
        >>> from qeqprop.hamiltonians.pauli import PauliTable
        >>> op = PauliTable(2, ["Z0 Z1", "X0", "X1"]).operator(np.array([-1.0, -0.5, -0.5]))
        >>> kernel = JaxPauliOperator(op)
        >>> psi = np.arange(4.0)
        >>> bool(np.allclose(kernel.matvec(psi), op.matvec(psi)))
        True
        >>> leaves, treedef = jax.tree.flatten(kernel)
        >>> len(leaves)  # the diagonal and one scalar factor per flip group
        3
    """

    def __init__(self, operator, precision: str = "double", compact: bool = False):
        if precision not in ("double", "single"):
            raise ValueError(f"precision must be 'double' or 'single', got {precision!r}")
        real = np.dtype(operator.dtype) == np.float64
        dtype = {("double", True): jnp.float64, ("double", False): jnp.complex128,
                 ("single", True): jnp.float32, ("single", False): jnp.complex64}[(precision, real)]
        diagonal, flips = operator.compiled(COMPACT_BITS) if compact else (operator.diagonal, operator.flips)
        flips = [(x, np.reshape(f, -1) if np.ndim(f) else f) for x, f in flips]
        supports = {x: operator.table.support(x) for x, _ in flips} if compact else None
        self.structure = structure_of(operator.n_qubits, flips, supports)
        self.native = native_available()
        # used in place where XLA can (CPU, dtype kept, pauli.ALIGNMENT-aligned: PauliTable.compile's
        # diagonals are), else copied; the solvers never write to it
        self.diagonal = (jax.device_put(diagonal, may_alias=True) if diagonal.dtype == dtype
                         else jnp.asarray(diagonal, dtype=dtype))
        self.factors = tuple(jnp.asarray(f, dtype=dtype) for _, f in flips)

    @classmethod
    def from_arrays(cls, structure: Structure, diagonal, factors, native: bool | None = None) -> JaxPauliOperator:
        """The operator of ``structure`` with these leaves (arrays or tracers, possibly with
        leading batch axes); ``native`` None asks ``native_available()``."""
        return cls.tree_unflatten((structure, native_available() if native is None else bool(native)),
                                  (diagonal, tuple(factors)))

    def tree_flatten(self):
        return (self.diagonal, self.factors), (self.structure, self.native)

    @classmethod
    def tree_unflatten(cls, aux, children):
        op = object.__new__(cls)
        op.structure, op.native = aux
        op.diagonal, op.factors = children
        return op

    @property
    def n_qubits(self) -> int:
        return self.structure[0]

    @property
    def dim(self) -> int:
        return 1 << self.structure[0]

    @property
    def dtype(self):
        return self.diagonal.dtype

    def __repr__(self) -> str:
        return (f"JaxPauliOperator(n_qubits={self.n_qubits}, groups={len(self.structure[1])}, "
                f"dtype={getattr(self.diagonal, 'dtype', None)}, native={self.native})")

    def xla_apply(self, psi, gather: bool = False):
        """H psi by XLA ops (``xla_apply``; differentiable, any platform and dtype)."""
        return xla_apply(self.structure, self.diagonal, self.factors, psi, gather)

    def uses_native(self, psi) -> bool:
        """Whether ``apply`` takes the native kernel for ``psi`` on CPU: it is loaded, and psi is
        one float64/complex128 state (under ``jax.vmap``: one sample's)."""
        return self.native and supports(psi.dtype) and jnp.ndim(psi) == 1

    def apply(self, psi):
        """H psi, traceable: by the native kernel (one pass over the state for all flip groups,
        ``native_kernel``) where the program runs on CPU and ``uses_native(psi)``, else by the XLA
        kernel. Not differentiable."""
        if not self.uses_native(psi):
            return self.xla_apply(psi)
        return on_cpu(native_apply, JaxPauliOperator.xla_apply, self, psi)

    def matvec(self, psi):
        """H psi as one compiled call (``apply`` under jit: compiled once per structure); takes and
        returns jax arrays."""
        return _jitted_apply(self, psi)


_jitted_apply = jax.jit(JaxPauliOperator.apply)


_vmapped_gather = jax.vmap(partial(JaxPauliOperator.xla_apply, gather=True))


def batched_apply(operators: JaxPauliOperator, psi):
    """H_b psi_b for a stack of B operators sharing one structure (leaves with a leading batch
    axis: diagonal (B, D), factors (B,) or (B, D)) and states ``psi`` (B, D), traceable:

        (H_b psi_b)[c] = d_0[b, c] psi[b, c] + sum_x d_x[b, (c)] psi[b, c xor x].

    By the native kernel in one call for the whole batch (``native_kernel.native_apply``: one
    pass over each state for all flip groups, single-threaded for states below 2^15 doubles)
    where the program runs on CPU, the kernel is loaded (``operators.native``) and psi is
    float64/complex128; else by ``jax.vmap`` of the XLA gather form (accelerators, single
    precision, ``QEQPROP_NATIVE=0``, no compiler). Not differentiable.

    Raises:
        ValueError: psi is not (B, D) with B and D those of ``operators.diagonal``.
    """
    if jnp.ndim(psi) != 2 or jnp.shape(psi) != jnp.shape(operators.diagonal):
        raise ValueError(f"psi must be (B, D) = {jnp.shape(operators.diagonal)}, the operators' batch and dimension "
                         f"(stack one operator per state), got shape {jnp.shape(psi)}")
    if not (operators.native and supports(psi.dtype)):
        return _vmapped_gather(operators, psi)
    return on_cpu(native_apply, _vmapped_gather, operators, psi)
