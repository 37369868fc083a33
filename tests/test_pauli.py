"""The matrix-free Pauli operator against independent Kronecker-product matrices."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import kron_pauli, random_strings
from qeqprop import PauliString, PauliTable
from qeqprop.hamiltonians.pauli import walsh_hadamard


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


def test_expectations_and_transition_elements(rng):
    n = 5
    strings = random_strings(rng, n, 25)
    table = PauliTable(n, strings)
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    bra = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    mats = [kron_pauli(s, n) for s in strings]
    np.testing.assert_allclose(table.expectations(psi, bra=bra), [np.vdot(bra, m @ psi) for m in mats], atol=1e-12)


def test_block_matvec_matches_columns(rng):
    n = 4
    strings = random_strings(rng, n, 10)
    op = PauliTable(n, strings).operator(rng.normal(size=10))
    block = rng.normal(size=(2**n, 3))
    np.testing.assert_allclose(op.matvec(block), np.stack([op.matvec(block[:, k]) for k in range(3)], axis=1), atol=1e-14)


def test_walsh_hadamard_is_the_sign_matrix(rng):
    n = 5
    values = rng.normal(size=2**n)
    signs = np.array([[(-1) ** bin(c & z).count("1") for z in range(2**n)] for c in range(2**n)])
    np.testing.assert_allclose(walsh_hadamard(values, n), signs @ values, atol=1e-12)


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
