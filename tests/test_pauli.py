"""The matrix-free Pauli operator against independent Kronecker-product matrices."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import kron_pauli, random_strings
from qeqprop.hamiltonians import PauliString, PauliTable, pauli
from qeqprop.hamiltonians.pauli import WalshSplit, compact_index, compact_points, deposit, extract
from qeqprop.native import native_library


def dense_reference(strings, coeffs, n):
    return sum(c * kron_pauli(s, n) for s, c in zip(strings, coeffs))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_operator_equals_kronecker_sum(rng, n):
    strings = random_strings(rng, n, min(12, 3**n - 1))
    coeffs = rng.normal(size=len(strings))
    op = PauliTable(n, strings).operator(coeffs)
    np.testing.assert_allclose(op.to_dense(), dense_reference(strings, coeffs, n), atol=1e-13)


def test_many_strings_per_flip_mask_use_walsh_transform(rng):
    """More than the direct-sum limit of strings share flip masks 0 and X0: the transform path."""
    n = 6
    strings = [f"Z{i} Z{j}" for i in range(n) for j in range(i + 1, n)] + [f"X0 Z{j}" for j in range(1, n)] + ["X0"]
    coeffs = rng.normal(size=len(strings))
    table = PauliTable(n, strings)
    op = table.operator(coeffs)
    np.testing.assert_allclose(op.to_dense(), dense_reference(strings, coeffs, n), atol=1e-12)
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    psi /= np.linalg.norm(psi)
    expected = [np.vdot(psi, kron_pauli(s, n) @ psi).real for s in strings]
    np.testing.assert_allclose(table.expectations(psi), expected, atol=1e-13)


def test_real_arithmetic_only_without_odd_y():
    assert PauliTable(3, ["Z0 Z1", "X2", "Y0 Y1"]).operator(np.ones(3)).dtype == np.float64
    assert PauliTable(3, ["Z0 Z1", "Y2"]).operator(np.ones(2)).dtype == np.complex128


@pytest.fixture(params=["native", "numpy"])
def expectation_path(request, monkeypatch):
    """PauliTable.expectations of a state with itself through the native kernel
    (pauli_expectations.cc), or through the numpy path (the kernel's qubit limit set to 0)."""
    if request.param == "numpy":
        monkeypatch.setattr(pauli, "NATIVE_EXPECTATIONS_QUBITS", 0)
    elif native_library() is None:
        pytest.skip("the native kernels are not built here")
    return request.param


@pytest.mark.parametrize("n", [5, 9])
def test_expectations_and_transition_elements(rng, n, expectation_path):
    """Both numpy expectation paths: groups touching <= 6 qubits (one einsum over split views) and
    wider ones (n = 9: product vector and WalshSplit), and the native kernel (its corner folds, and
    per-string folds for the groups over more than 6 qubits), against Kronecker products; batched rows too."""
    strings = random_strings(rng, n, 25) + [" ".join(f"Z{q}" for q in range(n)), "X0 " + " ".join(f"Z{q}" for q in range(1, n))]
    table = PauliTable(n, strings)
    assert max(np.bitwise_count(x | int(np.bitwise_or.reduce(table.z_masks[m]))) for x, m in table.groups.items()) == n
    probe = np.ones((1, 2**n)) / 2 ** (n / 2)
    assert (table._native_expectations(probe, None) is not None) == (expectation_path == "native")
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    bra = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    mats = [kron_pauli(s, n) for s in strings]
    np.testing.assert_allclose(table.expectations(psi, bra=bra), [np.vdot(bra, m @ psi) for m in mats], atol=1e-12)
    states = np.stack([psi, bra]) / np.linalg.norm(np.stack([psi, bra]), axis=1, keepdims=True)
    expected = [[np.vdot(v, m @ v).real for m in mats] for v in states]
    np.testing.assert_allclose(table.expectations(states), expected, atol=1e-12)
    real = rng.normal(size=2**n) / np.sqrt(2**n)  # real arithmetic in the half-state sums
    np.testing.assert_allclose(table.expectations(real), [np.vdot(real, m @ real).real for m in mats], atol=1e-12)
    wanted = np.array([len(strings) - 1, 3, 0])  # a subset in any order: only its groups are computed
    np.testing.assert_allclose(table.expectations(states, strings=wanted), np.asarray(expected)[:, wanted], atol=1e-12)
    np.testing.assert_allclose(table.expectations(psi, bra=bra, strings=wanted),
                               [np.vdot(bra, mats[s] @ psi) for s in wanted], atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_expectations_of_every_group_shape_match_kronecker_products(rng, n, expectation_path):
    """Expectations of random tables with identity strings (a group without support), flips of
    the lowest qubit bit (partners within a pair) and of the highest, real and complex states, two
    leading batch axes, and a batch large enough for the native kernel's threads
    (NATIVE_EXPECTATIONS_PARALLEL amplitudes), against Kronecker products."""
    for trial in range(6):
        strings = random_strings(rng, n, min(20, 4**n - 1)) + ["I0", f"X{n - 1}", "X0"]
        table = PauliTable(n, strings)
        mats = [kron_pauli(s, n) for s in strings]
        states = rng.normal(size=(2, 3, 2**n)) + (1j * rng.normal(size=(2, 3, 2**n)) if trial % 2 else 0)
        states /= np.linalg.norm(states, axis=-1, keepdims=True)
        expected = np.einsum("abi,sij,abj->abs", np.conj(states), np.array(mats), states).real
        np.testing.assert_allclose(table.expectations(states), expected, atol=1e-13)
        wanted = rng.choice(len(strings), size=3, replace=False)
        np.testing.assert_allclose(table.expectations(states[0, 1], strings=wanted), expected[0, 1, wanted], atol=1e-13)
    many = rng.normal(size=(pauli.NATIVE_EXPECTATIONS_PARALLEL // 2**n + 3, 2**n))
    many /= np.linalg.norm(many, axis=1, keepdims=True)
    expected = np.einsum("bi,sij,bj->bs", many, np.array(mats), many).real
    np.testing.assert_allclose(table.expectations(many), expected, atol=1e-13)


def test_block_matvec_matches_columns(rng):
    n = 4
    strings = random_strings(rng, n, 10)
    op = PauliTable(n, strings).operator(rng.normal(size=10))
    block = rng.normal(size=(2**n, 3))
    np.testing.assert_allclose(op.matvec(block), np.stack([op.matvec(block[:, k]) for k in range(3)], axis=1), atol=1e-14)


@pytest.mark.parametrize("masks", [[0], [5], list(range(32)), [0, 1, 3, 17, 31, 24, 24], [16, 8, 4, 2, 1]])
def test_walsh_split_equals_the_sign_matrix(rng, masks):
    """Both directions of WalshSplit against the explicit (-1)^{|c & z|} matrix, real, complex and
    batched, for mask sets where the chosen split is direct (b = n), half-and-half and in between."""
    n = 5
    signs = np.array([[(-1) ** bin(c & z).count("1") for z in masks] for c in range(2**n)], dtype=float)
    split = WalshSplit(n, masks)
    products = rng.normal(size=(3, 2**n)) + 1j * rng.normal(size=(3, 2**n))
    np.testing.assert_allclose(split.sums(products), products @ signs, atol=1e-12)
    np.testing.assert_allclose(split.sums(products[0].real), products[0].real @ signs, atol=1e-12)
    weights = rng.normal(size=(2, len(masks))) + 1j * rng.normal(size=(2, len(masks)))
    assert split.dense  # 2^5 |masks| signs: the stored sign matrix; the split products checked too
    for dense in (True, False):
        split.dense = dense
        np.testing.assert_allclose(split.values(weights), weights @ signs.T, atol=1e-12)
        np.testing.assert_allclose(split.values(weights.real), weights.real @ signs.T, atol=1e-12)
        np.testing.assert_allclose(split.values(weights[:, None, :]), (weights @ signs.T)[:, None, :], atol=1e-12)


def test_walsh_split_picks_the_cheapest_split():
    """The 210 diagonal strings of a 20-qubit all-to-all Ising model: 8 low bits (37 low parts:
    1 + 8 + 28, 79 high parts) cost 2^20 * 37 + 2^12 * 79 * 37 multiply-adds, fewer than half and
    half (2^20 * 56 + 2^10 * 56^2) and far fewer than the direct 2^20 * 210."""
    n = 20
    masks = [1 << i for i in range(n)] + [(1 << i) | (1 << j) for i in range(n) for j in range(i + 1, n)]
    split = WalshSplit(n, masks)
    assert split.low_bits == 8
    assert split.low_signs.shape == (256, 37) and split.high_signs.shape == (4096, 79)


def test_qubit_zero_is_most_significant_bit():
    op = PauliTable(3, ["X0"]).operator(np.ones(1))
    basis = np.zeros(8)
    basis[0] = 1.0  # |000>
    assert np.argmax(np.abs(op.matvec(basis))) == 4  # |100>


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.lists(st.sampled_from("IXYZ"), min_size=4, max_size=4), st.floats(-3, 3))
def test_single_string_property(n, letters, weight):
    text = " ".join(f"{letter}{q}" for q, letter in enumerate(letters[:n]) if letter != "I")
    op = PauliTable(n, [text]).operator(np.array([weight]))
    np.testing.assert_allclose(op.to_dense(), weight * kron_pauli(text, n), atol=1e-12)


def test_parse_errors():
    with pytest.raises(ValueError, match="cannot parse"):
        PauliString.parse("Q0")
    with pytest.raises(ValueError, match="appears twice"):
        PauliString.parse("Z0 X0")
    with pytest.raises(ValueError, match="out of range|register has"):
        PauliTable(2, ["Z5"])


@pytest.mark.parametrize("n", [3, 6, 10])
def test_compact_factors_expand_to_the_full_ones(n):
    """compile(..., compact_bits=5): compact_index inverts compact_points, and every compact factor,
    expanded, equals the full factor at every basis index (real and complex tables, random supports)."""
    rng = np.random.default_rng(n)
    for _ in range(10):
        support = int(rng.integers(0, 1 << n))
        points = compact_points(n, support, 5)
        assert np.array_equal(compact_index(n, support, 5)[points], np.arange(len(points)))
        values = np.arange(1 << bin(support).count("1"))
        assert np.array_equal(extract(deposit(values, support), support), values)
    for with_y in (False, True):
        table = PauliTable(n, [f"X{q}" for q in range(n)] + random_strings(rng, n, 3 * n, with_y=with_y))
        coeffs = rng.normal(size=(2, len(table)))
        (full_diagonal, full), (diagonal, compact) = table.compile(coeffs), table.compile(coeffs, compact_bits=5)
        np.testing.assert_array_equal(diagonal, full_diagonal)
        for (x, f), (x2, g) in zip(full, compact):
            assert x == x2
            expanded = g if np.ndim(g) == 1 else g[..., compact_index(n, table.support(x), 5)]
            np.testing.assert_allclose(expanded, f, rtol=0, atol=1e-12)
