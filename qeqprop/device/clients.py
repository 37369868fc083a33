"""Clients: run circuits on a device and return what it measured, wire 0 first.

A client maps a list of circuits (qeqprop.device.circuits) to one record per circuit:

    counts           {bitstring: count}, bitstring listing wire 0 FIRST (PennyLane's order)
    probabilities    an array p[i] over basis indices i (wire 0 = most significant bit), analytic runs

``PennyLaneClient`` runs any PennyLane device (default.qubit, lightning.qubit, default.mixed, a
device with noise from ``qml.add_noise``): ``shots`` per circuit (the device's own ``shots`` by
default; none: analytic probabilities from ``qml.probs``). ``QiskitClient`` runs a Qiskit backend
(e.g. ``qiskit_aer.AerSimulator(noise_model=...)``) through OpenQASM 2 (``qml.to_openqasm`` ->
``qiskit.qasm2.loads`` -> ``transpile``) and REVERSES Qiskit's bitstrings, which list qubit 0 LAST
(classical bit c[0] is the rightmost character), so its records come back wire 0 first like
PennyLane's. ``CountsClient`` wraps any function ``run(circuits, shots) -> [counts]`` (your own
hardware queue) with the bit order you declare.

The bit order is the one thing a client can get silently wrong: counts in the other order give
an EP gradient that looks fine and is wrong (relative error 1.33 on a 4-qubit TFIM learner, issue
21). qeqprop.device.bit_order checks every record against the state the loop prepared; see there
for where that check is blind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pennylane as qml

from ..readout.records import BIT_ORDERS
from ..validation import check_int

Record = "dict[str, int] | np.ndarray"


@runtime_checkable
class Client(Protocol):
    """What the device loop runs circuits on: ``shots`` per circuit (None: analytic) and ``run``."""

    shots: int | None
    name: str

    def run(self, circuits: Sequence[qml.tape.QuantumScript], rng: np.random.Generator | None = None) -> list:
        """One record per circuit: counts (wire 0 first) or, with ``shots`` None, probabilities."""
        ...


def _device_shots(device) -> int | None:
    total = getattr(getattr(device, "shots", None), "total_shots", None)
    return None if total is None else int(total)


class PennyLaneClient:
    """Any PennyLane device. ``shots``: per circuit; default the device's own (``qml.device(...,
    shots=2000)``); None on a device without shots: analytic probabilities. Seed the device
    (``qml.device(..., seed=...)``) for reproducible counts: PennyLane draws from the device's
    generator, so the ``rng`` of ``run`` is not used."""

    def __init__(self, device, shots: int | None = None):
        if not hasattr(device, "execute"):
            raise ValueError(f"device must be a PennyLane device (qml.device(...)), got {type(device).__name__}")
        self.device = device
        self.shots = _device_shots(device) if shots is None else check_int("shots", shots)
        self.name = getattr(device, "name", type(device).__name__)

    def run(self, circuits, rng=None) -> list:
        circuits = [c.copy(shots=self.shots) for c in circuits]
        results = qml.execute(circuits, self.device)
        if self.shots is None:
            return [np.asarray(r, dtype=float) for r in results]
        return [{str(k): int(v) for k, v in r.items()} for r in results]


class QiskitClient:
    """A Qiskit backend (``AerSimulator()``, with a ``noise_model``, or any ``BackendV2``): each
    circuit goes through OpenQASM 2 and ``transpile(circuit, backend)``; ``shots`` per circuit;
    ``seed_simulator`` drawn from the loop's generator where the backend takes it (Aer).

    Bit order is handled here: Qiskit's counts list qubit 0 last and are reversed to wire 0 first.
    """

    def __init__(self, backend, shots: int = 2000):
        if not hasattr(backend, "run"):
            raise ValueError(f"backend must be a Qiskit backend with run() (e.g. AerSimulator()), got {type(backend).__name__}")
        self.backend = backend
        self.shots = check_int("shots", shots)
        self.name = getattr(backend, "name", type(backend).__name__)

    def to_qiskit(self, circuit: qml.tape.QuantumScript):
        """The circuit as a transpiled qiskit QuantumCircuit measuring every wire q into clbit q."""
        from qiskit import qasm2, transpile

        n = len(circuit.measurements[0].wires)
        source = qml.to_openqasm(circuit.copy(measurements=[]), wires=range(n), rotations=False, measure_all=True)
        return transpile(qasm2.loads(source), self.backend)

    def run(self, circuits, rng=None) -> list:
        options = {"shots": self.shots}
        if "seed_simulator" in getattr(self.backend, "options", {}):
            options["seed_simulator"] = int(np.random.default_rng(rng).integers(2**31))
        result = self.backend.run([self.to_qiskit(c) for c in circuits], **options).result()
        return [{bits.replace(" ", "")[::-1]: int(count) for bits, count in result.get_counts(k).items()}
                for k in range(len(circuits))]


class CountsClient:
    """Your own runner ``run(circuits, shots) -> [ {bitstring: count}, ... ]`` (one record per circuit),
    its bitstrings in ``bit_order``: "qubit0_first" (PennyLane) or "qubit0_last" (Qiskit, most raw
    hardware APIs); the records are turned wire 0 first here."""

    def __init__(self, run: Callable[[Sequence[Any], int], list], shots: int, bit_order: str = "qubit0_first", name: str = "counts"):
        if not callable(run):
            raise ValueError(f"run must be a callable run(circuits, shots) -> list of counts, got {type(run).__name__}")  # noqa: TRY004 (house rule: bad input -> ValueError)
        if bit_order not in BIT_ORDERS:
            raise ValueError(f"bit_order must be one of {BIT_ORDERS}, got {bit_order!r}")
        self._run, self.shots, self.bit_order, self.name = run, check_int("shots", shots), bit_order, name

    def run(self, circuits, rng=None) -> list:
        records = self._run(list(circuits), self.shots)
        if len(records) != len(circuits):
            raise ValueError(f"run returned {len(records)} records for {len(circuits)} circuits: one per circuit")
        flip = self.bit_order == "qubit0_last"
        return [{(str(b).replace(" ", "")[::-1] if flip else str(b).replace(" ", "")): int(c) for b, c in r.items()}
                for r in records]


def as_client(device, shots: int | None = None) -> Client:
    """A Client for ``device``: a Client as it is, a PennyLane device (PennyLaneClient) or a Qiskit
    backend (QiskitClient, ``shots`` default 2000)."""
    if isinstance(device, Client):
        if shots is not None:
            raise ValueError("shots is set on the client itself; pass shots=None with a Client")
        return device
    if hasattr(device, "execute") and hasattr(device, "preprocess_transforms"):
        return PennyLaneClient(device, shots)
    if hasattr(device, "run") and hasattr(device, "target"):
        return QiskitClient(device, 2000 if shots is None else shots)
    raise ValueError(f"device must be a PennyLane device, a Qiskit backend or a qeqprop.device Client, got {type(device).__name__}")
