"""The circuits a device runs for one EP phase: state preparation, then readout rotations.

For a prepared state |psi(phi)> = U(phi)|0...0> (a variational ansatz's gate list) and a
measurement basis b (one letter per qubit, e.g. ``"ZZXZ"`` from a MeasurementPlan), the circuit is

    U(phi), then on every qubit q with b_q = X: H;  b_q = Y: S^dagger then H;  b_q = Z: nothing,

followed by a computational-basis readout of all wires, so every Pauli string P_s of the basis's
group reads as the parity (-1)^{|c & m_s|} of the outcome bits c on its support m_s
(readout.records). Circuits are PennyLane ``QuantumScript`` objects: any PennyLane device runs
them, and ``qml.to_openqasm`` carries them to other SDKs (qeqprop.device.clients).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pennylane as qml

MEASUREMENTS = ("counts", "probs")


def readout_rotations(basis: str) -> list:
    """The gates that rotate each qubit's measured Pauli letter onto Z (U P U^dagger = Z):
    X -> H, Y -> S^dagger then H, Z -> none.

    Example:
        >>> [op.name for op in readout_rotations("XYZ")]
        ['Hadamard', 'Adjoint(S)', 'Hadamard']
    """
    if not isinstance(basis, str) or set(basis) - set("XYZ"):
        raise ValueError(f"basis must be a string of X, Y, Z (one letter per qubit), got {basis!r}")
    gates = []
    for q, letter in enumerate(basis):
        if letter == "Y":
            gates.append(qml.adjoint(qml.S(q)))
        if letter in "XY":
            gates.append(qml.Hadamard(q))
    return gates


def basis_circuit(preparation: Sequence, basis: str, shots: int | None, measurement: str = "counts") -> qml.tape.QuantumScript:
    """``preparation`` (a gate list on wires 0..n-1, n = len(basis)) + readout rotations of ``basis``
    + a readout of all wires: ``qml.counts`` with ``shots`` shots, or ``qml.probs`` (analytic, shots None)."""
    if measurement not in MEASUREMENTS:
        raise ValueError(f"measurement must be one of {MEASUREMENTS}, got {measurement!r}")
    if measurement == "counts" and shots is None:
        raise ValueError("measurement='counts' needs shots (an integer >= 1); analytic runs use measurement='probs'")
    wires = range(len(basis))
    readout = qml.counts(wires=wires) if measurement == "counts" else qml.probs(wires=wires)
    return qml.tape.QuantumScript(list(preparation) + readout_rotations(basis), [readout],
                                  shots=None if shots is None else int(shots))


def phase_circuits(preparations: Sequence[Sequence], bases: Sequence[str], shots: int | np.ndarray | None,
                   measurement: str = "counts") -> list[qml.tape.QuantumScript]:
    """One circuit per (sample, basis), samples outer: ``len(preparations) * len(bases)`` circuits;
    ``shots`` per basis (a number, or one per basis)."""
    per_basis = [None] * len(bases) if shots is None else np.broadcast_to(np.asarray(shots), (len(bases),)).tolist()
    return [basis_circuit(prep, basis, count, measurement) for prep in preparations for basis, count in zip(bases, per_basis)]
