"""Ground state of an all-to-all TFIM (random J, small random h, Gamma = 1): build + solve.

    H = -sum_{i<j} J_ij Z_i Z_j - sum_i h_i Z_i - sum_i X_i

qeqprop (jitted JAX Lanczos; scipy ARPACK on our matrix-free operator) against the tools a
user would otherwise pick, in the same process: QuSpin, QuTiP, PennyLane (sparse_matrix +
scipy eigsh) and NetKet (lanczos_ed), each where installed (`pip install -e ".[bench]"`).
Energies are cross-checked. Writes ground_state.json and ground_state.png to --out.

    python benchmarks/ground_state.py --qubits 12 14 16 18 20 --out benchmarks/results
    python benchmarks/ground_state.py --qubits 16 18 20 --paired QuSpin --repeats 3   # alternating, same load
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse.linalg as sla  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import SETTLE_S, machine_info, median_seconds, write_json  # noqa: E402

import qeqprop as qp  # noqa: E402


def instance(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    couplings = np.triu(rng.normal(size=(n, n)), 1)
    fields = 0.1 * rng.normal(size=n)
    return couplings, fields


def qeqprop_operator(n, couplings, fields):
    strings, coeffs = [], []
    for i in range(n):
        for j in range(i + 1, n):
            strings.append(f"Z{i} Z{j}")
            coeffs.append(-couplings[i, j])
    strings += [f"Z{i}" for i in range(n)] + [f"X{i}" for i in range(n)]
    coeffs += list(-fields) + [-1.0] * n
    return qp.hamiltonians.PauliTable(n, strings).operator(np.array(coeffs))


def run_qeqprop_jax(n, couplings, fields):
    return qp.solvers.jax_ground_state(qeqprop_operator(n, couplings, fields), with_gap=False).energy


def run_qeqprop_scipy(n, couplings, fields):
    return qp.solvers.lanczos_ground_state(qeqprop_operator(n, couplings, fields), with_gap=False).energy


def run_quspin(n, couplings, fields):
    from quspin.basis import spin_basis_1d
    from quspin.operators import hamiltonian

    basis = spin_basis_1d(n, pauli=True)
    zz = [[-couplings[i, j], i, j] for i in range(n) for j in range(i + 1, n)]
    static = [["zz", zz], ["z", [[-fields[i], i] for i in range(n)]], ["x", [[-1.0, i] for i in range(n)]]]
    h = hamiltonian(static, [], basis=basis, dtype=np.float64, check_herm=False, check_symm=False, check_pcon=False)
    return float(h.eigsh(k=1, which="SA", return_eigenvectors=False)[0])


def run_qutip(n, couplings, fields):
    import qutip

    def op(single, i):
        return qutip.tensor([single if k == i else qutip.qeye(2) for k in range(n)]).to("csr")

    z = [op(qutip.sigmaz(), i) for i in range(n)]
    h = sum(-couplings[i, j] * z[i] * z[j] for i in range(n) for j in range(i + 1, n))
    h = h + sum(-fields[i] * z[i] - op(qutip.sigmax(), i) for i in range(n))
    h.isherm = True
    return float(h.groundstate(sparse=True)[0])


def run_pennylane(n, couplings, fields):
    import pennylane as qml

    coeffs, ops = [], []
    for i in range(n):
        for j in range(i + 1, n):
            coeffs.append(-couplings[i, j])
            ops.append(qml.PauliZ(i) @ qml.PauliZ(j))
        coeffs += [-fields[i], -1.0]
        ops += [qml.PauliZ(i), qml.PauliX(i)]
    matrix = qml.Hamiltonian(coeffs, ops).sparse_matrix(wire_order=range(n))
    return float(sla.eigsh(matrix, k=1, which="SA", return_eigenvectors=False)[0])


def run_netket(n, couplings, fields):
    import netket as nk

    hilbert = nk.hilbert.Spin(s=0.5, N=n)
    sz, sx = nk.operator.spin.sigmaz, nk.operator.spin.sigmax
    h = sum(-couplings[i, j] * sz(hilbert, i) @ sz(hilbert, j) for i in range(n) for j in range(i + 1, n))
    h = h + sum(-fields[i] * sz(hilbert, i) - sx(hilbert, i) for i in range(n))
    return float(nk.exact.lanczos_ed(h, k=1)[0])


TOOLS = {
    "qeqprop (JAX Lanczos)": (run_qeqprop_jax, 26),
    "qeqprop (scipy ARPACK)": (run_qeqprop_scipy, 22),
    "QuSpin": (run_quspin, 22),
    "PennyLane + scipy": (run_pennylane, 20),
    "NetKet lanczos_ed": (run_netket, 18),
    "QuTiP": (run_qutip, 16),
}


def paired(names, qubits, repeats: int, out: Path) -> int:
    """The named tools timed in alternation at each size (one warm-up call each, then
    ``repeats`` rounds of one call per tool): on a machine shared with other work every tool
    sees the same load. Writes ground_state_paired.json."""
    results = {"machine": {**machine_info(), "load_average_start": os.getloadavg()}, "repeats": repeats,
               "seconds": {name: {} for name in names}, "ratio_to_jax": {name: {} for name in names}}
    for n in qubits:
        couplings, fields = instance(n)
        runners = {name: TOOLS[name][0] for name in names}
        for runner in runners.values():
            runner(n, couplings, fields)
        times = {name: [] for name in names}
        for _ in range(repeats):
            for name, runner in runners.items():
                times[name].append(median_seconds(lambda: runner(n, couplings, fields), 1))
        jax_times = np.array(times["qeqprop (JAX Lanczos)"])
        for name in names:
            results["seconds"][name][n] = float(np.median(times[name]))
            results["ratio_to_jax"][name][n] = float(np.median(np.array(times[name]) / jax_times))
        print(f"N={n}: " + ", ".join(f"{name} {results['seconds'][name][n]:.3f} s ({results['ratio_to_jax'][name][n]:.1f}x)"
                                     for name in names), flush=True)
    results["machine"]["load_average_end"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ground_state_paired.json", results)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[12, 14, 16, 18, 20])
    parser.add_argument("--repeats", type=int, default=3, help="repeats below 18 qubits (above: the first call, or 1 warm repeat for JAX)")
    parser.add_argument("--large-repeats", type=int, default=1,
                        help="repeats from 18 qubits on (every tool; the median is reported: use 3 on a loaded machine)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--paired", nargs="+", choices=list(TOOLS), default=None,
                        help="time these tools (with qeqprop JAX) in alternation; median per-round ratios")
    args = parser.parse_args(argv)
    if args.paired:
        names = ["qeqprop (JAX Lanczos)"] + [name for name in args.paired if name != "qeqprop (JAX Lanczos)"]
        return paired(names, args.qubits, args.repeats, Path(args.out))
    results = {"machine": {**machine_info(), "load_average_start": os.getloadavg()}, "qubits": args.qubits,
               "seconds": {}, "first_call_seconds": {}, "energies": {}, "skipped": {}}
    for name, (runner, max_qubits) in TOOLS.items():
        results["seconds"][name], results["first_call_seconds"][name], results["energies"][name] = {}, {}, {}
        for n in args.qubits:
            if n > max_qubits:
                continue
            couplings, fields = instance(n)
            time.sleep(SETTLE_S)  # the first call may count as a repeat (see median_seconds)
            start = time.perf_counter()
            try:
                energy = runner(n, couplings, fields)  # first call: includes jit compilation, caches
            except ImportError as exc:
                results["skipped"][name] = f"not installed: {exc}"
                break
            first = time.perf_counter() - start
            repeats = args.repeats if n < 18 else args.large_repeats
            if n < 18 or "JAX" in name:  # warm calls (JAX's first call compiles)
                seconds = median_seconds(lambda: runner(n, couplings, fields), repeats)
            else:  # large and slow: the first call counts as one of the repeats
                times = [first] + [median_seconds(lambda: runner(n, couplings, fields), 1) for _ in range(repeats - 1)]
                seconds = float(np.median(times))
            results["seconds"][name][n] = seconds
            results["first_call_seconds"][name][n] = first
            results["energies"][name][n] = energy
            print(f"{name:<24} N={n:<3} {seconds:9.3f} s (first call {first:8.3f} s)   E0={energy:.10f}", flush=True)
    reference = results["seconds"]["qeqprop (JAX Lanczos)"]
    results["speedup_vs"] = {
        name: {n: t / reference[n] for n, t in times.items() if n in reference}
        for name, times in results["seconds"].items()
    }
    energies = [e for per in results["energies"].values() for e in per.items()]
    results["max_energy_disagreement"] = {
        n: float(np.ptp([e for m, e in energies if m == n])) for n in args.qubits if any(m == n for m, _ in energies)
    }
    results["machine"]["load_average_end"] = os.getloadavg()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, times in results["seconds"].items():
        if times:
            ax.semilogy(list(times), list(times.values()), "o-", label=name)
    ax.set(xlabel="qubits N", ylabel="build + ground state [s]", title="all-to-all TFIM ground state")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "ground_state.png", dpi=120)
    write_json(out / "ground_state.json", results)
    for name, ratios in results["speedup_vs"].items():
        print(f"{name:<24} time / qeqprop-JAX: " + ", ".join(f"N={n}: {r:.1f}x" for n, r in ratios.items()))
    print("max |E0| disagreement across tools:", results["max_energy_disagreement"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
