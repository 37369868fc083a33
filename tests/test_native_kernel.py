"""The native FFI kernel (qeqprop/native/pauli_apply.cc) against dense matrices and the XLA
kernel: real and complex models, scalar and vector factors, every size path (element by
element, one thread, the thread pool), the fused Lanczos pass, the in-place restart, whole
solves, the fallback without a compiler, the checks on its operands, and the operator as a
pytree whose structure keys jit's cache."""

import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_strings
from qeqprop.hamiltonians import PauliTable
from qeqprop.solvers import LanczosOptions, dense_ground_state, jax_ground_state
from qeqprop import native
from qeqprop.config import compiler
from qeqprop.errors import NativeKernelWarning
from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator
from qeqprop.hamiltonians.native_kernel import COMPACT_BITS, native_apply
from qeqprop.solvers import jax_lanczos, lanczos_passes

if shutil.which(compiler()[0]) is None:  # pragma: no cover (CI has a compiler)
    pytest.skip("no C++ compiler: the native kernel cannot be built here", allow_module_level=True)


def reset_kernels():
    """Forget the loaded library (operators made afterwards ask again; compiled programs are keyed
    on their operator's static ``native`` flag, so none of them needs forgetting)."""
    native.native_library.cache_clear()


def xla_apply(kernel, psi):
    """H psi by the XLA kernel (half-block swaps), jitted."""
    return jax.jit(JaxPauliOperator.xla_apply)(kernel, psi)


@pytest.fixture
def xla_only(monkeypatch):
    """Run with the native kernel switched off (QEQPROP_NATIVE=0)."""
    monkeypatch.setenv("QEQPROP_NATIVE", "0")
    reset_kernels()
    yield
    monkeypatch.undo()
    reset_kernels()


def model(rng, n: int, complex_terms: bool):
    """ZZ couplings, X fields and random strings of weight <= 3; with Y strings the model is
    complex, and strings sharing a flip with different Z parts give vector factors."""
    strings = [f"Z{i} Z{j}" for i in range(n) for j in range(i + 1, n)][:25] + [f"X{q}" for q in range(n)]
    strings += [f"X{q} Z{(q + 1) % n}" for q in range(n)] if n > 1 else []
    strings += random_strings(rng, n, min(12, 2 * n), with_y=complex_terms)
    strings = sorted(set(strings))
    op = PauliTable(n, strings).operator(rng.normal(size=len(strings)))
    return op, JaxPauliOperator(op)


def state(rng, dim: int, dtype):
    psi = rng.normal(size=dim) + (1j * rng.normal(size=dim) if np.issubdtype(dtype, np.complexfloating) else 0)
    return jnp.asarray(psi / np.linalg.norm(psi), dtype=dtype)


def test_native_kernel_is_built_and_used():
    assert native.native_library() is not None
    op, kernel = model(np.random.default_rng(0), 6, False)
    assert kernel.native and kernel.uses_native(jnp.zeros(op.dim))
    text = jax.jit(JaxPauliOperator.apply).lower(kernel, jnp.zeros(op.dim)).as_text()
    assert "qeqprop_pauli_apply_f64" in text
    assert "qeqprop_pauli_apply" not in jax.jit(JaxPauliOperator.xla_apply).lower(kernel, jnp.zeros(op.dim)).as_text()


def test_operator_is_a_pytree_with_static_structure():
    """The diagonal and factors are the leaves and the structure is static: a jitted function of
    the operator compiles once per structure and is reused for new coefficients (with the same
    result as a fresh operator's), while another structure compiles anew."""
    rng = np.random.default_rng(12)
    op, kernel = model(rng, 7, True)
    leaves, treedef = jax.tree.flatten(kernel)
    assert len(leaves) == 1 + len(kernel.factors) and leaves[0] is kernel.diagonal
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.structure == kernel.structure and rebuilt.native == kernel.native
    traces = []

    @jax.jit
    def energy(operator, psi):
        traces.append(operator.structure)
        return jnp.real(jnp.vdot(psi, operator.apply(psi)))

    psi = state(rng, op.dim, kernel.dtype)
    other = op.table.operator(rng.normal(size=len(op.coeffs)))  # same table: same structure
    for operator in (op, other):
        got = float(energy(JaxPauliOperator(operator), psi))
        expected = float(np.real(np.vdot(np.asarray(psi), operator.to_dense() @ np.asarray(psi))))
        assert abs(got - expected) < 1e-12 * max(1.0, abs(expected))
    assert len(traces) == 1
    smaller, smaller_kernel = model(rng, 6, True)
    energy(smaller_kernel, state(rng, smaller.dim, smaller_kernel.dtype))
    assert len(traces) == 2


@pytest.mark.parametrize("complex_terms", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 8])
def test_native_apply_equals_dense_matrix(n, complex_terms):
    """Sizes below one chunk (element by element) and above it, against to_dense()."""
    rng = np.random.default_rng(10 * n + complex_terms)
    op, kernel = model(rng, n, complex_terms)
    assert any(np.ndim(f) for f in kernel.factors) == (n > 1)  # vector factors are exercised
    psi = state(rng, op.dim, kernel.dtype)
    np.testing.assert_allclose(np.asarray(kernel.matvec(psi)), op.to_dense() @ np.asarray(psi), rtol=0, atol=1e-12)


@pytest.mark.parametrize("complex_terms", [False, True])
@pytest.mark.parametrize("n", [10, 16])
def test_native_apply_equals_xla_kernel(n, complex_terms):
    """One thread (2^10) and the thread pool (2^16 amplitudes, above kParallelMin), against the XLA kernel."""
    rng = np.random.default_rng(n + complex_terms)
    op, kernel = model(rng, n, complex_terms)
    psi = state(rng, op.dim, kernel.dtype)
    xla = xla_apply(kernel, psi)
    np.testing.assert_allclose(np.asarray(kernel.matvec(psi)), np.asarray(xla), rtol=0, atol=1e-12)


@pytest.mark.parametrize("complex_terms", [False, True])
@pytest.mark.parametrize("n", [2, 9, 16])
def test_fused_lanczos_pass_equals_xla_ops(n, complex_terms):
    """w = H v - shift v - b_prev v_prev with <v, w> and <w, w> from one native pass, against XLA
    ops, and v returned in v_prev's buffer; the sums are added in task order, so repeated calls
    agree bit for bit."""
    rng = np.random.default_rng(3 * n + complex_terms)
    op, kernel = model(rng, n, complex_terms)
    v, v_prev = state(rng, op.dim, kernel.dtype), state(rng, op.dim, kernel.dtype)
    native = jax.jit(lanczos_passes.lanczos_residual)
    reference = jax.jit(lambda op, *rest: lanczos_passes.xla_lanczos_residual(op.xla_apply, *rest))
    args = (kernel, v, v_prev, 0.37, -1.25)
    (w, overlap, squared, v_copy), (w_ref, overlap_ref, squared_ref, _) = native(*args), reference(*args)
    np.testing.assert_allclose(np.asarray(w), np.asarray(w_ref), rtol=0, atol=1e-12)
    assert abs(complex(overlap) - complex(overlap_ref)) < 1e-12 * max(1.0, abs(complex(overlap_ref)))
    assert abs(float(squared) - float(squared_ref)) < 1e-12 * float(squared_ref)
    assert np.iscomplexobj(overlap) == complex_terms
    assert np.array_equal(np.asarray(v_copy), np.asarray(v))
    again = native(*args)
    assert complex(again[1]) == complex(overlap) and float(again[2]) == float(squared)
    assert np.array_equal(np.asarray(again[0]), np.asarray(w))


@pytest.mark.parametrize("complex_terms", [False, True])
@pytest.mark.parametrize("n", [4, 9, 16])
def test_compact_factors_equal_full_ones(n, complex_terms):
    """JaxPauliOperator(compact=True), what the solvers use on CPU: the same H psi and fused Lanczos
    pass as full factors (to rounding), and its PauliOperator never builds the full vectors."""
    rng = np.random.default_rng(5 * n + complex_terms)
    op, full = model(rng, n, complex_terms)
    fresh = op.table.operator(op.coeffs)
    compact = JaxPauliOperator(fresh, compact=True)
    assert list(fresh._compiled) == [COMPACT_BITS]
    vector_groups = [compact_support for _, is_vector, compact_support in compact.structure[1] if is_vector]
    assert vector_groups and all(support >= 0 for support in vector_groups)
    assert sum(np.size(f) for f in compact.factors) < sum(np.size(f) for f in full.factors) or n < 6
    psi, v_prev = state(rng, op.dim, full.dtype), state(rng, op.dim, full.dtype)
    np.testing.assert_allclose(np.asarray(compact.matvec(psi)), op.matvec(np.asarray(psi)), rtol=0, atol=1e-12)
    native = jax.jit(lanczos_passes.lanczos_residual)
    got, expected = native(compact, psi, v_prev, 0.37, -1.25), native(full, psi, v_prev, 0.37, -1.25)
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(expected[0]), rtol=0, atol=1e-12)
    assert abs(complex(got[1]) - complex(expected[1])) < 1e-12 and abs(float(got[2]) - float(expected[2])) < 1e-12


@pytest.mark.parametrize("n", [7, 16])
def test_scalar_flips_of_whole_chunks_run_in_pairs(n):
    """A real model whose X fields are scalar flips of whole 32-double chunks (qubits >= 5), which
    the kernel adds two at a time, broken by a vector group (X_q Z_0 beside X_q; at 16 qubits q = 10
    leaves an odd run of five on each side): H psi against numpy's matvec, and the fused Lanczos
    pass against the XLA ops."""
    rng = np.random.default_rng(n)
    q = 4 if n == 7 else 10
    strings = [f"Z{i} Z{(i + 1) % n}" for i in range(n)] + [f"X{k}" for k in range(n)] + [f"X{q} Z0"]
    op = PauliTable(n, strings).operator(rng.normal(size=len(strings)))
    kernel = JaxPauliOperator(op)
    scalar = [x for x, is_vector, _ in kernel.structure[1] if not is_vector and x >= 32]
    assert len(scalar) >= 2 and any(is_vector for _, is_vector, _ in kernel.structure[1])
    psi, v_prev = state(rng, op.dim, kernel.dtype), state(rng, op.dim, kernel.dtype)
    np.testing.assert_allclose(np.asarray(kernel.matvec(psi)), op.matvec(np.asarray(psi)), rtol=0, atol=1e-12)
    args = (kernel, psi, v_prev, 0.37, -1.25)
    w, overlap, squared, _ = jax.jit(lanczos_passes.lanczos_residual)(*args)
    w_ref, overlap_ref, squared_ref, _ = jax.jit(lambda op, *rest: lanczos_passes.xla_lanczos_residual(op.xla_apply, *rest))(*args)
    np.testing.assert_allclose(np.asarray(w), np.asarray(w_ref), rtol=0, atol=1e-12)
    assert abs(float(overlap) - float(overlap_ref)) < 1e-12 and abs(float(squared) - float(squared_ref)) < 1e-11 * float(squared_ref)


def test_lanczos_loop_carries_no_state_copies():
    """With the native pass the compiled 2^16 solver copies no state vector inside its Lanczos
    step (XLA inserted 3 copies per step for the (v, v_prev) shuffle before)."""
    op, kernel = model(np.random.default_rng(6), 16, False)
    text = jax_lanczos.solve_state.lower(kernel, None, 1e-12, 0.0, jnp.zeros((48, op.dim)), keep=8, max_cycles=60,
                                         full_reorth=False).compile().as_text()
    step = text[text.index("qeqprop_lanczos_residual_f64") - 4000:text.index("qeqprop_lanczos_residual_f64")]
    assert f"f64[{op.dim}]{{0}} copy(" not in step


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("dim", [64, 1 << 15])
def test_native_restart_equals_xla_ops(dtype, dim):
    """The in-place restart (kept u_i over rows 0..k-1, v orthogonalised and normalised, v_prev)
    against XLA ops, for 12 kept vectors (two register groups) of a 48-row basis whose rows from
    30 on are unfilled (zero weights: never read, NaN here); ``skip`` leaves every buffer as it was."""
    rng = np.random.default_rng(dim)
    weights = np.linalg.qr(rng.normal(size=(30, 30)))[0][:, :12]
    weights = np.vstack([weights, np.zeros((18, 12))])
    rows = rng.normal(size=(48, dim)) + (1j * rng.normal(size=(48, dim)) if dtype is np.complex128 else 0)
    rows[:30] = np.linalg.qr(rows[:30].T)[0].T  # orthonormal filled rows, as in a Lanczos basis
    rows[30:] = np.nan
    v, v_prev = rows[29] * 0.3 + state(rng, dim, dtype), state(rng, dim, dtype)
    couplings = rng.normal(size=12)
    operands = [jnp.asarray(a) for a in (weights, couplings)]
    buffers = [jnp.asarray(a, dtype) for a in (rows, v, v_prev)]
    finite = [jnp.asarray(np.nan_to_num(a), dtype) for a in (rows, v, v_prev)]
    expected = lanczos_passes.xla_restart(*operands, False, *finite)
    native = jax.jit(lanczos_passes.native_restart)
    got = native(*operands, jnp.asarray(False), *[b.copy() for b in buffers])
    for a, b in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got[0])[:12], np.asarray(expected[0])[:12], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(got[0])[12:], rows[12:])  # the other rows untouched
    skipped = native(*operands, jnp.asarray(True), *[b.copy() for b in buffers])
    for a, b in zip(skipped, (rows, v, v_prev)):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("complex_terms", [False, True])
def test_solves_agree_with_and_without_the_native_kernel(complex_terms, monkeypatch):
    """Cold JAX Lanczos solves of a 15-qubit model (recurrence path, thread pool) by the native
    kernel and by the XLA kernel land on the same ground state, and on dense eigh's at 9 qubits."""
    rng = np.random.default_rng(7 + complex_terms)
    big, _ = model(rng, 15, complex_terms)
    small, _ = model(rng, 9, complex_terms)
    native = [jax_ground_state(op, with_gap=False) for op in (big, small)]
    monkeypatch.setenv("QEQPROP_NATIVE", "0")
    reset_kernels()
    try:
        xla = [jax_ground_state(op, with_gap=False) for op in (big, small)]
    finally:
        monkeypatch.undo()
        reset_kernels()
    for a, b in zip(native, xla):
        assert abs(a.energy - b.energy) < 1e-10 * max(1.0, abs(b.energy))
        assert abs(abs(np.vdot(a.vector, b.vector)) - 1.0) < 1e-10
    assert abs(native[1].energy - dense_ground_state(small).energy) < 1e-10


def test_switched_off_kernel_falls_back_to_xla(xla_only):
    op, kernel = model(np.random.default_rng(1), 5, True)
    assert native.native_library() is None
    assert not kernel.native and not kernel.uses_native(jnp.zeros(op.dim, kernel.dtype))
    assert "qeqprop_pauli_apply" not in jax.jit(JaxPauliOperator.apply).lower(kernel, jnp.zeros(op.dim, kernel.dtype)).as_text()
    op = PauliTable(3, ["Z0 Z1", "X0", "X1", "X2"]).operator(np.array([-1.0, -0.5, -0.4, -0.3]))
    assert abs(jax_ground_state(op).energy - dense_ground_state(op).energy) < 1e-10


def test_failed_build_warns_and_falls_back(tmp_path, monkeypatch, caplog):
    """A compiler that fails leaves no file behind, warns once naming the way out, and the XLA kernel
    runs; the attempt is logged first (a build takes seconds: the user sees why the call waits)."""
    caplog.set_level("INFO", logger="qeqprop")
    monkeypatch.setenv("QEQPROP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    reset_kernels()
    try:
        with pytest.warns(NativeKernelWarning, match="QEQPROP_NATIVE=0"):
            assert native.native_library() is None
        assert "building qeqprop's native CPU kernel" in caplog.text
        assert list(tmp_path.iterdir()) == []
        op = PauliTable(4, ["Z0 Z1", "Z2 Z3", "X0", "X3"]).operator(np.array([-1.0, -0.3, -0.6, -0.2]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, not on every kernel
            state = jax_ground_state(op)
        assert abs(state.energy - dense_ground_state(op).energy) < 1e-10
    finally:
        monkeypatch.undo()
        reset_kernels()


@pytest.mark.slow  # a full compile of the kernel (~20 s); every run builds it at first import anyway
def test_build_writes_only_the_target(tmp_path):
    target = tmp_path / "sub" / "kernel.so"
    native.build(target)
    assert [p.name for p in target.parent.iterdir()] == ["kernel.so"]
    assert target.stat().st_size > 0


def test_build_key_follows_the_inputs(monkeypatch):
    key = native.build_key()
    assert key == native.build_key()
    monkeypatch.setenv("CXX", "g++-unheard-of")
    assert native.build_key() != key


def test_native_apply_checks_its_operands():
    """The handler refuses operands of inconsistent lengths instead of reading out of bounds."""
    _, kernel = model(np.random.default_rng(2), 5, False)
    short = JaxPauliOperator.from_arrays(kernel.structure, kernel.diagonal[:16], kernel.factors)
    with pytest.raises(Exception, match="differ in length"):
        jax.jit(native_apply)(short, jnp.ones(32)).block_until_ready()


def test_native_apply_under_vmap_and_in_single_precision():
    """vmap runs the kernel per sample; float32 states take the XLA kernel."""
    rng = np.random.default_rng(4)
    op, kernel = model(rng, 6, False)
    psis = jnp.asarray(rng.normal(size=(3, op.dim)))
    batched = jax.vmap(kernel.matvec)(psis)
    np.testing.assert_allclose(np.asarray(batched), np.asarray(psis) @ op.to_dense().T, atol=1e-12)
    single = JaxPauliOperator(op, precision="single")
    out = single.matvec(jnp.asarray(psis[0], jnp.float32))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), op.to_dense() @ np.asarray(psis[0]), atol=1e-4)


def test_thick_restarts_through_the_native_pass(monkeypatch):
    """Many restarts (12-vector basis) through the fused pass (recurrence path forced) land on eigh's state."""
    op, _ = model(np.random.default_rng(5), 8, True)
    exact = dense_ground_state(op)
    monkeypatch.setattr(jax_lanczos, "FULL_REORTH_MAX_DIM", 0)
    try:
        state = jax_ground_state(op, options=LanczosOptions(krylov=12, keep=4))
    finally:
        monkeypatch.undo()
    assert state.iterations > 2 * 12
    assert abs(state.energy - exact.energy) < 1e-10
    assert abs(abs(np.vdot(state.vector, exact.vector)) - 1.0) < 1e-10
