"""The batched Lanczos block's native steps (qeqprop/native/lanczos_steps.cc via
solvers.batched_passes) against the XLA scan they replace: the same recurrence coefficients,
basis and final vectors for every orthogonalisation, with and without deflation, real and
complex, register-sized and tiny states (tails), through a breakdown; and whole blocks
(solve_block) against dense eigh."""

import shutil
from functools import partial

import jax
import numpy as np
import pytest
from conftest import random_strings, stacked_operators

from qeqprop.config import compiler
from qeqprop.hamiltonians import PauliTable
from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator, batched_apply, full_factor
from qeqprop.native import native_available
from qeqprop.solvers.batched_lanczos import _block, _projected, solve_block
from qeqprop.solvers.batched_passes import basis_combination, native_lanczos_steps

if shutil.which(compiler()[0]) is None:  # pragma: no cover (CI has a compiler)
    pytest.skip("no C++ compiler: the native kernel cannot be built here", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def native():
    if not native_available():
        pytest.skip("the native kernel is not built here")


def model(n: int, batch: int, complex_terms: bool, seed: int = 0):
    """(operators stacked along B, unit starts (B, D), unit deflation vectors (B, D)); vector factors
    compact (as BatchedLanczos compiles them on CPU) for complex terms, full for real ones."""
    rng = np.random.default_rng(seed)
    strings = [f"X{q}" for q in range(n)] + [f"Z{q} Z{(q + 1) % n}" for q in range(n) if n > 1]
    strings += random_strings(rng, n, 2 * n, with_y=complex_terms)
    table = PauliTable(n, sorted(set(strings) - {""}))
    dtype = np.float64 if table.is_real else np.complex128
    operators = stacked_operators(table, rng.normal(size=(batch, len(table))), dtype, compact=complex_terms, native=True)

    def unit():
        v = rng.normal(size=(batch, table.dim)) + (0 if table.is_real else 1j * rng.normal(size=(batch, table.dim)))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(dtype)

    return operators, unit(), unit()


@partial(jax.jit, static_argnames=("steps", "orthogonalize", "native"))
def block(operators, v0, p, steps: int, orthogonalize: str, native: bool):
    """_block as solve_block calls it, with the native steps or the XLA scan."""
    matvec = partial(batched_apply, operators)
    if p is not None:
        matvec, v0 = partial(_projected, p, matvec), _projected(p, None, v0)
    steps_fn = partial(native_lanczos_steps, operators, p, orthogonalize) if native else None
    return _block(matvec, v0, steps, orthogonalize, steps_fn)


SLOW = pytest.mark.slow


@pytest.mark.parametrize("orthogonalize, n, complex_terms, deflated", [
    *((mode, 7, True, True) for mode in ("none", "ground", "full")), ("full", 3, True, False), ("full", 2, False, False),
    *(pytest.param(mode, 7, True, False, marks=SLOW) for mode in ("none", "ground", "full")),
    *(pytest.param(mode, 6, False, True, marks=SLOW) for mode in ("none", "ground", "full")),
    *(pytest.param(mode, n, c, False, marks=SLOW) for mode in ("none", "ground") for n, c in ((3, True), (2, False)))])
def test_native_steps_equal_the_xla_scan(orthogonalize, n, complex_terms, deflated):
    """The first 16 steps' alpha, beta and real-view basis agree to 1e-12 (later, the lost
    orthogonality of the plain recurrence amplifies the different rounding of the two), the lowest
    Ritz value of all 48 steps to 1e-10; at 2 and 3 qubits the 48 steps run past the dimension, so
    with full reorthogonalisation the recurrence breaks down for both (and the native handler's
    tails, states shorter than a register, are used)."""
    operators, starts, p = model(n, 3, complex_terms, seed=n)
    steps, early = 48, 16
    outs = {native: [np.asarray(a) for a in block(operators, starts, p if deflated else None, steps, orthogonalize, native)]
            for native in (True, False)}
    (alpha, beta, basis), (alpha_x, beta_x, basis_x) = outs[True], outs[False]
    assert alpha.shape == alpha_x.shape == (3, steps) and basis.shape == basis_x.shape
    scale = np.max(np.abs(alpha_x[:, :early]))
    live = min(early, int(np.min(np.sum(beta_x > 0, axis=1))) + 1)  # steps up to the breakdown
    if (1 << n) < steps and orthogonalize == "full":  # the space closes (without full reorthogonalisation
        assert np.all(beta_x[:, -1] == 0) and np.all(beta[:, -1] == 0)  # rounding may keep it open)
        assert live < early
    np.testing.assert_allclose(alpha[:, :live], alpha_x[:, :live], atol=1e-12 * scale, rtol=0)
    np.testing.assert_allclose(beta[:, :live], beta_x[:, :live], atol=1e-12 * scale, rtol=0)
    np.testing.assert_allclose(basis[:, :live], basis_x[:, :live], atol=1e-12, rtol=0)
    if (1 << n) < steps and orthogonalize != "full":
        return  # past the dimension without full reorthogonalisation, T continues on rounding noise
    lowest = [[np.linalg.eigvalsh(np.diag(a) + np.diag(b[:-1], 1) + np.diag(b[:-1], -1))[0] for a, b in zip(al, be)]
              for al, be in ((alpha, beta), (alpha_x, beta_x))]
    np.testing.assert_allclose(lowest[0], lowest[1], atol=1e-10 * scale, rtol=0)


def dense(operators, b: int) -> np.ndarray:
    """Sample b's H as a dense matrix from the grouped form: H[c, c xor x] = d_x[c] (d_0 on the diagonal)."""
    diagonal = np.asarray(operators.diagonal[b])
    rows = np.arange(len(diagonal))
    matrix = np.diag(diagonal).astype(complex)
    for (x, _, compact), factor in zip(operators.structure[1], operators.factors):
        matrix[rows, rows ^ x] += np.asarray(full_factor(operators.n_qubits, compact, factor[b]))
    return matrix


@pytest.mark.parametrize("orthogonalize, complex_terms", [
    ("ground", True), pytest.param("full", True, marks=SLOW), pytest.param("ground", False, marks=SLOW),
    pytest.param("full", False, marks=SLOW)])
def test_solve_block_with_native_steps_matches_dense(complex_terms, orthogonalize):
    """A whole block with the native steps gives the dense ground energies to 1e-10 and the ground
    states to 1e-8 (|<psi|psi_dense>| = 1), and the same numbers as without the native kernel."""
    operators, starts, _ = model(8, 4, complex_terms, seed=1)
    xla = JaxPauliOperator.from_arrays(operators.structure, operators.diagonal, operators.factors, native=False)
    options = {"steps": 64, "orthogonalize": orthogonalize, "with_gap": True, "chunk": 4}
    psi, energy, gap = (np.asarray(a) for a in solve_block(operators, starts, **options)[:3])
    psi_x, energy_x, gap_x = (np.asarray(a) for a in solve_block(xla, starts, **options)[:3])
    for b in range(4):
        values, vectors = np.linalg.eigh(dense(operators, b))
        assert abs(energy[b] - values[0]) < 1e-10 and abs(gap[b] - (values[1] - values[0])) < 1e-8
        assert abs(abs(np.vdot(vectors[:, 0], psi[b])) - 1) < 1e-8
    np.testing.assert_allclose(energy, energy_x, atol=1e-10, rtol=0)
    np.testing.assert_allclose(gap, gap_x, atol=1e-8, rtol=0)
    assert np.all(np.abs(np.sum(np.conj(psi) * psi_x, axis=1)) > 1 - 1e-10)


@pytest.mark.parametrize("rows, width, count", [(1, 6, 1), (40, 2048, 2), (17, 1030, 2), (5, 3, 3)])
def test_basis_combination_equals_the_einsum(rows, width, count):
    """The native Ritz-vector combination (tiles of 512 doubles, register tails) equals the XLA
    einsum it replaces, for one and several pairs, widths below a register and across tiles; with
    ``used`` it reads only the leading rows (the later ones hold NaN here: they must not be read)."""
    rng = np.random.default_rng(rows * width)
    basis, coefficients = rng.standard_normal((3, rows, width)), rng.standard_normal((3, rows, count))
    native = np.asarray(jax.jit(basis_combination)(basis, coefficients))
    assert native.shape == (3, count, width)
    np.testing.assert_allclose(native, np.einsum("bkd,bkp->bpd", basis, coefficients), rtol=0, atol=1e-12 * rows)
    used = (rows + 1) // 2
    unwritten = basis.copy()
    unwritten[:, used:] = np.nan
    leading = np.asarray(jax.jit(basis_combination)(unwritten, coefficients, used))
    expected = np.einsum("bkd,bkp->bpd", basis[:, :used], coefficients[:, :used])
    np.testing.assert_allclose(leading, expected, rtol=0, atol=1e-12 * rows)
