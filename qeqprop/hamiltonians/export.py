"""Exports of a Pauli-sum operator to scipy.sparse, qutip.Qobj and PennyLane, and import
from a PennyLane Hamiltonian. All use our bit order (qubit 0 = most significant bit), which
is PennyLane's ``wire_order=range(n)`` and QuTiP's tensor order.

The sparse matrix is read off the same grouped representation the matvec uses:
H[c, c xor x] = d_x[c] for every flip mask x.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .parametrized import Term
from .pauli import PauliOperator, PauliString, PauliTable


def to_sparse(operator: PauliOperator) -> sp.csr_matrix:
    """The operator as a scipy CSR matrix (float64 if real, complex128 otherwise):

        H = sum_s c_s P_s,   P_s = sigma_{s,0} (x) sigma_{s,1} (x) ... (x) sigma_{s,n-1}
        (qubit 0 leftmost = most significant bit), H[c, c xor x] = d_x[c].
    """
    dim = operator.dim
    index = np.arange(dim, dtype=np.int64)
    rows, cols, data = [index], [index], [operator.diagonal.astype(operator.dtype)]
    for x_mask, factor in operator.flips:
        values = np.broadcast_to(np.asarray(factor, dtype=operator.dtype).reshape(-1), (dim,))
        rows.append(index)
        cols.append(index ^ x_mask)
        data.append(values)
    matrix = sp.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)
    ).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def to_qutip(operator: PauliOperator):
    """The operator as a Hermitian ``qutip.Qobj`` with CSR data and dims [[2]*n, [2]*n]:
    H = sum_s c_s P_s in QuTiP's tensor order (qubit 0 = first factor), complex128."""
    import qutip

    n = operator.n_qubits
    qobj = qutip.Qobj(to_sparse(operator).astype(np.complex128), dims=[[2] * n, [2] * n], isherm=True)
    return qobj.to("csr")


def _pennylane_word(string: PauliString):
    import pennylane as qml

    gates = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    factors = [gates[letter](qubit) for qubit, letter in string.ops]
    if not factors:
        return qml.Identity(0)
    return factors[0] if len(factors) == 1 else qml.prod(*factors)


def to_pennylane(operator: PauliOperator):
    """The operator as a PennyLane ``LinearCombination`` on wires 0..n-1 (zero terms dropped):
    H = sum_{s: c_s != 0} c_s P_s, our qubit q = PennyLane wire q."""
    import pennylane as qml

    keep = [s for s in range(len(operator.table)) if operator.coeffs[s] != 0.0]
    coeffs = [float(operator.coeffs[s]) for s in keep]
    ops = [_pennylane_word(operator.table.strings[s]) for s in keep]
    return qml.Hamiltonian(coeffs, ops)


def terms_from_pennylane(hamiltonian, n_qubits: int | None = None) -> tuple[int, list[Term]]:
    """Fixed terms (and the qubit count) of a PennyLane Pauli Hamiltonian.

    Wires must be integers 0..n-1 (our qubit q = PennyLane wire q). Coefficients must be real.
    """
    import pennylane as qml

    try:
        sentence = qml.pauli.pauli_sentence(hamiltonian)
    except Exception as exc:  # PennyLane raises several types for non-Pauli operators
        raise ValueError(f"hamiltonian must be a sum of Pauli words: {exc}") from None
    wires = [w for w in hamiltonian.wires]
    if any(not isinstance(w, (int, np.integer)) or w < 0 for w in wires):
        raise ValueError(f"hamiltonian wires must be non-negative integers, got {wires}; relabel with qml.map_wires")
    n = int(n_qubits) if n_qubits is not None else (max(wires) + 1 if wires else 1)
    terms = []
    for word, coeff in sentence.items():
        coeff = complex(coeff)
        if abs(coeff.imag) > 1e-12 * max(1.0, abs(coeff.real)):
            raise ValueError(f"hamiltonian term {word} has complex coefficient {coeff}; H must be Hermitian")
        terms.append(Term(PauliString.from_dict(dict(word)), coeff.real))
    return n, terms


def from_pennylane(hamiltonian, n_qubits: int | None = None) -> PauliOperator:
    """A PennyLane Pauli Hamiltonian as our matrix-free operator: sum_w c_w P_w becomes
    H = sum_s c_s P_s with c_s the summed real coefficients of equal Pauli words (wire q = qubit q)."""
    n, terms = terms_from_pennylane(hamiltonian, n_qubits)
    table = PauliTable(n, [t.string for t in terms])
    coeffs = np.zeros(len(table))
    position = {s: i for i, s in enumerate(table.strings)}
    for term in terms:
        coeffs[position[PauliString.coerce(term.string)]] += term.weight
    return table.operator(coeffs)
