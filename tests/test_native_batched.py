"""The batched H application (jax_kernel.batched_apply): the native kernel for a batch of states with
one operator each against the vmapped XLA gather and dense matrices, real and complex, scalar and
vector factors, one sample and several, every size path of the kernel; its fallback, its checks,
and the batched Lanczos block, whose results it must not change."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_strings, stacked_operators

from qeqprop.config import compiler
from qeqprop.hamiltonians import PauliTable
from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator, batched_apply, full_factor
from qeqprop.hamiltonians.native_kernel import COMPACT_BITS, native_apply
from qeqprop.hamiltonians.pauli import compact_length
from qeqprop.native import native_available
from qeqprop.solvers.batched_lanczos import solve_block

if shutil.which(compiler()[0]) is None:  # pragma: no cover (CI has a compiler)
    pytest.skip("no C++ compiler: the native kernel cannot be built here", allow_module_level=True)


def batch_model(rng, n: int, batch: int, complex_terms: bool, compact: bool = False):
    """(table, coefficients (B, S), operators stacked along B) of a Hermitian Pauli model: X fields,
    X Z and Z Z strings and random strings (with Y when complex); ``compact``: vector factors compiled
    compact (``PauliTable.compile(..., compact_bits=COMPACT_BITS)``)."""
    strings = [f"X{q}" for q in range(n)] + [f"X{q} Z{(q + 1) % n}" for q in range(n)]
    strings += [f"Z{q} Z{(q + 1) % n}" for q in range(n)] + random_strings(rng, n, 2 * n, with_y=complex_terms)
    table = PauliTable(n, sorted(set(strings)))
    coeffs = rng.normal(size=(batch, len(table)))
    dtype = jnp.float64 if table.is_real else jnp.complex128
    return table, coeffs, stacked_operators(table, coeffs, dtype, compact)


def random_values(rng, shape, dtype):
    return jnp.asarray(rng.normal(size=shape) + (1j * rng.normal(size=shape) if np.dtype(dtype).kind == "c" else 0), dtype)


def grouped_model(rng, n: int, batch: int, dtype, compact: bool = False):
    """Operators stacked along B with random leaves in the grouped form: flips at every lane
    distance (masks 1, 2, 3, the top qubit and random ones), scalar and vector factors alternating
    (complex scalars too, which no Pauli table makes); ``compact``: the vector factors in the compact
    layout, each over a random support (its values random: any function of the support's bits)."""
    dim = 1 << n
    masks = sorted({1, 2, 3, dim // 2, dim - 1, *rng.integers(1, dim, size=6).tolist()})
    supports = [int(rng.integers(0, dim)) if compact else -1 for _ in masks]
    structure = (n, tuple((x, k % 2 == 0, supports[k] if k % 2 == 0 else -1) for k, x in enumerate(masks)))

    def length(compact_support):
        return dim if compact_support < 0 else compact_length(n, compact_support, COMPACT_BITS)

    factors = tuple(random_values(rng, (batch, length(c)) if is_vector else (batch,), dtype) for _, is_vector, c in structure[1])
    return JaxPauliOperator.from_arrays(structure, random_values(rng, (batch, dim), dtype), factors)


def grouped_dense(operators: JaxPauliOperator, b: int) -> np.ndarray:
    """Sample b's matrix from the grouped form: H[c, c] = d_0[c], H[c, c xor x] += d_x[(c)] (compact factors expanded)."""
    dim, rows = operators.dim, np.arange(operators.dim)
    matrix = np.diag(np.asarray(operators.diagonal[b])).astype(np.complex128)
    for (x, _, compact), factor in zip(operators.structure[1], operators.factors):
        matrix[rows, rows ^ x] += np.broadcast_to(np.asarray(full_factor(operators.n_qubits, compact, factor[b])), (dim,))
    return matrix


def states(rng, batch: int, dim: int, dtype):
    return random_values(rng, (batch, dim), dtype)


def without_native(operators: JaxPauliOperator) -> JaxPauliOperator:
    return JaxPauliOperator.from_arrays(operators.structure, operators.diagonal, operators.factors, native=False)


def native_and_xla(operators, psi):
    """batched_apply by the native kernel (checked to be in the program) and by the XLA gather."""
    assert native_available() and operators.native
    assert "qeqprop_pauli_apply" in jax.jit(batched_apply).lower(operators, psi).as_text()
    return np.asarray(jax.jit(batched_apply)(operators, psi)), np.asarray(jax.jit(batched_apply)(without_native(operators), psi))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
@pytest.mark.parametrize("n", [2, 4, 7])  # element by element (below one 32-double chunk), one short row, chunks
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("compact", [False, True])
def test_batched_apply_equals_xla_gather_and_the_grouped_form(n, batch, dtype, compact):
    rng = np.random.default_rng(100 * n + 10 * batch + (dtype == jnp.complex128) + 1000 * compact)
    operators = grouped_model(rng, n, batch, dtype, compact)
    assert {is_vector for _, is_vector, _ in operators.structure[1]} == {True, False}
    psi = states(rng, batch, operators.dim, dtype)
    native, xla = native_and_xla(operators, psi)
    dense = np.stack([grouped_dense(operators, b) @ p for b, p in enumerate(np.asarray(psi))])
    scale = np.max(np.abs(dense))
    assert np.max(np.abs(native - dense)) < 1e-12 * scale
    assert np.max(np.abs(xla - dense)) < 1e-12 * scale


@pytest.mark.parametrize("complex_terms", [False, True])
@pytest.mark.parametrize("compact", [False, True])
def test_batched_apply_equals_pauli_matrices(complex_terms, compact):
    rng = np.random.default_rng(7 + complex_terms)
    table, coeffs, operators = batch_model(rng, 6, 3, complex_terms, compact)
    assert compact == any(c >= 0 for _, _, c in operators.structure[1])
    assert table.is_real != complex_terms
    psi = states(rng, 3, table.dim, operators.dtype)
    native, xla = native_and_xla(operators, psi)
    dense = np.stack([table.operator(c).to_dense() @ p for c, p in zip(coeffs, np.asarray(psi))])
    scale = np.max(np.abs(dense))
    assert np.max(np.abs(native - dense)) < 1e-12 * scale
    assert np.max(np.abs(xla - dense)) < 1e-12 * scale


def test_vmap_of_the_single_state_kernel_is_one_batched_call():
    """jax.vmap of native_apply broadcasts the operands into one call of the batched handler
    (vmap_method="broadcast_all", not a loop of calls), with the batch's results."""
    rng = np.random.default_rng(3)
    table, _, operators = batch_model(rng, 6, 4, True)
    psi = states(rng, 4, table.dim, operators.dtype)
    mapped = jax.jit(jax.vmap(native_apply))
    text = mapped.lower(operators, psi).as_text()
    assert text.count("qeqprop_pauli_apply") == 1 and "while" not in text
    np.testing.assert_allclose(np.asarray(mapped(operators, psi)), np.asarray(jax.jit(batched_apply)(operators, psi)),
                               rtol=0, atol=1e-13)


def test_batched_apply_falls_back_and_checks_shapes():
    rng = np.random.default_rng(4)
    table, _, operators = batch_model(rng, 5, 3, False)
    psi = states(rng, 3, table.dim, jnp.float64)
    assert "qeqprop_pauli_apply" not in jax.jit(batched_apply).lower(without_native(operators), psi).as_text()
    single = JaxPauliOperator.from_arrays(operators.structure, operators.diagonal.astype(jnp.float32),
                                          tuple(f.astype(jnp.float32) for f in operators.factors))
    assert "qeqprop_pauli_apply" not in jax.jit(batched_apply).lower(single, psi.astype(jnp.float32)).as_text()
    for bad in (psi[0], psi[:2], psi[:, :16]):
        with pytest.raises(ValueError, match="psi must be"):
            batched_apply(operators, bad)


def same_up_to_sign(a, b):
    """Per sample, a = s b with |s| = 1 to 1e-10 (eigenvectors have no canonical sign: the Ritz
    vector's follows the last bits of the tridiagonal eigensolver's input)."""
    overlap = np.sum(np.conj(a) * b, axis=1)
    np.testing.assert_allclose(np.abs(overlap), 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a * (overlap / np.abs(overlap))[:, None], b, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("complex_terms", "deflated"), [(True, False), pytest.param(False, True, marks=pytest.mark.slow)])
def test_solve_block_unchanged_by_the_native_kernel(complex_terms, deflated):
    """One batched Lanczos block (two chunks; with the gap pair, or deflated) gives the same ground
    states, energies, gaps and residuals with the native batched product as with the vmapped XLA gather."""
    rng = np.random.default_rng(5 + complex_terms)
    table, _, operators = batch_model(rng, 6, 4, complex_terms, compact=complex_terms)
    starts = states(rng, 4, table.dim, operators.dtype)
    deflate = None
    if deflated:
        deflate = states(rng, 4, table.dim, operators.dtype)
        deflate = deflate / jnp.linalg.norm(deflate, axis=1, keepdims=True)
    options = {"steps": 48, "orthogonalize": "full", "with_gap": not deflated, "chunk": 2}
    lowered = solve_block.lower(operators, starts, deflate, **options)
    assert "qeqprop_pauli_apply" in lowered.as_text()
    native = [np.asarray(a) for a in lowered.compile()(operators, starts, deflate)]
    xla = [np.asarray(a) for a in solve_block(without_native(operators), starts, deflate, **options)]
    assert np.max(native[3]) < 1e-8  # converged: the comparison is of the solutions
    same_up_to_sign(native[0], xla[0])
    for mine, theirs in zip(native[1:4], xla[1:4]):  # energy, gap, residual
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-10)
