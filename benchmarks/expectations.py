"""Expectation values <psi|P_s|psi> of every Pauli string of a model, for a batch of states.

Every EP gradient reads them (the local gradient is J(x)^T <P>): ``PauliTable.expectations`` on the
native kernel (``qeqprop/native/pauli_expectations.cc``), on its numpy path (one einsum per flip
group over strided views; ``NATIVE_EXPECTATIONS_QUBITS`` set to 0), against what a research script
does (``sensor_workload.ResearchScript``'s way: every string a scipy.sparse matrix from kron
products, Re <psi| (P_s psi) for the batch as one sparse product per string) and QuTiP
(``qutip.expect`` of each string's Qobj on each state), checked to agree to 1e-10. Models:

    sensor   the issue-18 sensor model (10 qubits, complex; 56 strings, its 54 terms and two
             outputs, in 15 flip groups), random complex unit states, batches of 1, 10, 20 (a
             centered EP call's two nudged phases at batch 10), 128 and 256;
    tfim     an open transverse-field Ising chain with longitudinal fields (Z Z, X, Z on every
             qubit: 3n - 1 strings), real unit states, one state at n = 8, 12, 14 (QuTiP up to 12).

Reported: milliseconds per call, the median of alternating rounds (each tool in turn), and the
ratios to the native kernel. Writes expectations.json and expectations.png.

    python benchmarks/expectations.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json
from sensor_workload import sensor_system, string_matrix

from qeqprop.hamiltonians import PauliTable, pauli
from qeqprop.native import native_library


def numpy_path(table: PauliTable, states: np.ndarray) -> np.ndarray:
    """``table.expectations`` with the native kernel switched off (its qubit limit set to 0)."""
    limit = pauli.NATIVE_EXPECTATIONS_QUBITS
    pauli.NATIVE_EXPECTATIONS_QUBITS = 0
    try:
        return table.expectations(states)
    finally:
        pauli.NATIVE_EXPECTATIONS_QUBITS = limit


def sparse_script(mats: list, states: np.ndarray) -> np.ndarray:
    """A research script's expectations: Re sum_c conj(psi_c) (P_s psi)_c, one sparse product per string."""
    columns = states.T
    return np.stack([np.real(np.sum(np.conj(columns) * (m @ columns), axis=0)) for m in mats], axis=-1)


def qutip_expect(objs: list, kets: list) -> np.ndarray:
    """``qutip.expect`` of every string on every state."""
    import qutip

    return np.array([[qutip.expect(o, k) for o in objs] for k in kets]).real


def tfim_strings(n: int) -> list[str]:
    return [f"Z{q} Z{q + 1}" for q in range(n - 1)] + [f"X{q}" for q in range(n)] + [f"Z{q}" for q in range(n)]


def measure(name: str, n: int, strings: list[str], states: np.ndarray, rounds: int, with_qutip: bool) -> dict:
    """Milliseconds per call of each tool on ``states`` (module docstring), medians of alternating rounds."""
    import qutip

    table = PauliTable(n, strings)
    mats = [string_matrix(w, n) for w in strings]
    tools = {"qeqprop native": lambda: table.expectations(states), "qeqprop numpy": lambda: numpy_path(table, states),
             "scipy.sparse script": lambda: sparse_script(mats, states)}
    if with_qutip:
        dims = [[2] * n, [2] * n]
        objs = [qutip.Qobj(m, dims=dims) for m in mats]
        kets = [qutip.Qobj(v.reshape(-1, 1), dims=[[2] * n, [1] * n]) for v in states]
        tools["qutip.expect"] = lambda: qutip_expect(objs, kets)
    reference = tools["scipy.sparse script"]()
    for tool, fn in tools.items():
        error = float(np.abs(fn() - reference).max())
        if error > 1e-10:
            raise AssertionError(f"{tool} disagrees with the sparse script by {error:.2e} on {name}")
    repeats = max(1, int(2e5 // states.size))  # calls per timed round: ~0.2 M amplitudes
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for _ in range(rounds):
        for tool, fn in tools.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            times[tool].append((time.perf_counter() - start) / repeats * 1e3)
    ms = {tool: float(np.median(t)) for tool, t in times.items()}
    row = {"model": name, "qubits": n, "strings": len(strings), "batch": int(states.shape[0]), "ms": ms,
           "ratio_to_native": {tool: ms[tool] / ms["qeqprop native"] for tool in ms}}
    print(f"{name:7s} n={n:<3d} B={states.shape[0]:<4d} " + "  ".join(f"{tool} {v:.3f} ms" for tool, v in ms.items()), flush=True)
    return row


def figure(rows: list[dict], path: Path) -> None:
    tools = list(rows[0]["ms"])
    labels = [f"{r['model']} n={r['qubits']}\nB={r['batch']}" for r in rows]
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 3, 4))
    width = 0.8 / len(tools)
    for k, tool in enumerate(tools):
        values = [r["ms"].get(tool, np.nan) for r in rows]
        ax.bar(np.arange(len(rows)) + (k - (len(tools) - 1) / 2) * width, values, width, label=tool)
    ax.set_xticks(np.arange(len(rows)), labels, fontsize=7)
    ax.set(ylabel="ms per call", yscale="log", title="<psi|P_s|psi> of every string, per call (medians)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if native_library() is None:
        raise SystemExit("the native kernels are not available here: nothing to compare")
    rng = np.random.default_rng(0)
    rows = []
    sensor = sensor_system().hamiltonian.table
    sensor_words = [str(s) for s in sensor.strings]
    for batch in (1, 10, 20, 128, 256):
        states = rng.normal(size=(batch, sensor.dim)) + 1j * rng.normal(size=(batch, sensor.dim))
        states /= np.linalg.norm(states, axis=1, keepdims=True)
        rows.append(measure("sensor", sensor.n_qubits, sensor_words, states, args.rounds, with_qutip=batch <= 10))
    for n in (8, 12, 14):
        states = rng.normal(size=(1, 1 << n))
        states /= np.linalg.norm(states, axis=1, keepdims=True)
        rows.append(measure("tfim", n, tfim_strings(n), states, args.rounds, with_qutip=n <= 12))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "expectations.json", {"machine": machine_info(), "rows": rows})
    figure(rows, args.out / "expectations.png")


if __name__ == "__main__":
    main()
