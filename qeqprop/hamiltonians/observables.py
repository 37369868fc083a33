"""Observables as real Pauli sums O = sum_k a_k P_k, computational-basis projectors, and the
text form of Pauli sums.

Every way of writing an observable becomes one list of (Pauli string, real coefficient) pairs
(``pauli_sum``), equal strings merged:

    "Z2"                                   a Pauli word (coefficient 1)
    {"Z0 Z1": 0.5, "X2": -1.0}             word -> coefficient (JSON-friendly; "I" is the identity)
    [(0.5, "Z0 Z1"), (-1.0, "X2")]         (coefficient, word) pairs
    PauliOperator, PennyLane operator      sum_s c_s P_s (PennyLane wire q = qubit q)

A projector onto computational-basis values b_k of qubits a_k (|0> has Z = +1) expands as

    prod_k (1 + (-1)^{b_k} Z_{a_k}) / 2  =  2^{-m} sum_{S subset of {1..m}} prod_{k in S} (-1)^{b_k} Z_{a_k},

e.g. |01><01| on qubits (0, 1) = (I + Z0 - Z1 - Z0 Z1) / 4 (``projector``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from .pauli import PauliString

# How many terms a printed Pauli sum shows before it says how many it left out.
PRINT_TERMS = 24


def pauli_sum(observable, name: str = "observable") -> list[tuple[PauliString, float]]:
    """``observable`` (any form in the module docstring) as [(P_k, a_k)] with distinct P_k.

    Example:
        >>> from qeqprop.hamiltonians.observables import pauli_sum
        >>> [(str(p), a) for p, a in pauli_sum({"Z1 Z0": 0.5, "Z0 Z1": 0.25, "X2": -1})]
        [('Z0 Z1', 0.75), ('X2', -1.0)]
    """
    from .pauli import PauliOperator

    if isinstance(observable, (str, PauliString)) or (
        isinstance(observable, Mapping) and all(isinstance(k, (int, np.integer)) for k in observable)
    ):
        pairs = [(1.0, observable)]
    elif isinstance(observable, Mapping):
        pairs = [(coeff, word) for word, coeff in observable.items()]
    elif isinstance(observable, PauliOperator):
        pairs = list(zip(observable.coeffs.tolist(), observable.table.strings))
    elif hasattr(observable, "wires") and hasattr(observable, "pauli_rep"):  # a PennyLane operator
        from .export import terms_from_pennylane

        pairs = [(term.weight, term.string) for term in terms_from_pennylane(observable)[1]]
    elif isinstance(observable, Sequence):
        pairs = list(observable)
    else:
        raise ValueError(f"{name} must be a Pauli word ('Z0 Z1'), a dict word -> coefficient, a list of "
                         f"(coefficient, word) pairs, a PauliOperator or a PennyLane operator, got {observable!r}")
    merged: dict[PauliString, float] = {}
    for pair in pairs:
        try:
            coeff, word = pair
            coeff = float(coeff)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {pair!r} is not a (coefficient, Pauli word) pair") from None
        if not np.isfinite(coeff):
            raise ValueError(f"{name}: coefficient {coeff} of {word!r} is not finite")
        string = PauliString.coerce(word)
        merged[string] = merged.get(string, 0.0) + coeff
    return list(merged.items())


def projector(bits: str, wires: Sequence[int]) -> dict[str, float]:
    """The projector |bits><bits| on ``wires`` as a Pauli sum {word: coefficient} (module docstring).

    Args:
        bits: one character "0" or "1" per wire (|0> has Z = +1).
        wires: the qubits, in the order of ``bits``.

    Example:
        >>> from qeqprop.hamiltonians import projector
        >>> projector("01", wires=(0, 1))
        {'I': 0.25, 'Z0': 0.25, 'Z1': -0.25, 'Z0 Z1': -0.25}
    """
    wires = [int(w) for w in wires]
    if not isinstance(bits, str) or len(bits) != len(wires) or set(bits) - {"0", "1"} or not bits:
        raise ValueError(f"bits must be a string of '0'/'1', one per wire ({len(wires)}), got {bits!r}")
    if len(set(wires)) != len(wires) or min(wires) < 0:
        raise ValueError(f"wires must be distinct non-negative qubit indices, got {wires}")
    signs = [1.0 if b == "0" else -1.0 for b in bits]
    out: dict[str, float] = {}
    for size in range(len(wires) + 1):
        for subset in combinations(range(len(wires)), size):
            word = str(PauliString.from_dict({wires[k]: "Z" for k in subset}))
            out[word] = float(np.prod([signs[k] for k in subset])) / 2 ** len(wires)
    return out


def format_sum(parts: Sequence[tuple[str, str]]) -> str:
    """``" + "``-joined "coefficient * factor" parts, the way PennyLane prints a Hamiltonian
    ("-1.0 * Z0 Z1 + 0.5 * X2 + J[0] * (Y0 Y1)"); an empty coefficient prints the factor alone.
    Long sums show the first PRINT_TERMS parts and how many are left out."""
    shown = [f"{c} * {f}" if c else f for c, f in parts[:PRINT_TERMS]]
    if len(parts) > PRINT_TERMS:
        shown.append(f"... ({len(parts) - PRINT_TERMS} more terms)")
    return " + ".join(shown) if shown else "0"


def format_pauli_sum(pairs: Sequence[tuple[PauliString, float]]) -> str:
    """A Pauli sum as text: a lone word of coefficient 1 prints as the word ("Z2")."""
    if len(pairs) == 1 and pairs[0][1] == 1.0:
        return str(pairs[0][0])
    return format_sum([(repr(float(a)), str(p)) for p, a in pairs])
