"""Ground state of an all-to-all TFIM (random J, small random h, Gamma = 1), or of an XXZ chain: build + solve.

    tfim:  H = -sum_{i<j} J_ij Z_i Z_j - sum_i h_i Z_i - sum_i X_i
    xxz:   H = sum_i (X_i X_{i+1} + Y_i Y_{i+1} + 0.5 Z_i Z_{i+1}) + sum_i h_i Z_i   (periodic)

qeqprop (jitted JAX Lanczos; scipy ARPACK on our matrix-free operator) against the tools a
user would otherwise pick, in the same process: QuSpin, QuTiP, PennyLane (sparse_matrix +
scipy eigsh) and NetKet (lanczos_ed), each where installed (`pip install -e ".[bench]"`).
Energies are cross-checked. Writes ground_state.json and ground_state.png to --out
(ground_state_xxz.* for --model xxz).

    python benchmarks/ground_state.py --qubits 12 14 16 18 20 --out benchmarks/results
    python benchmarks/ground_state.py --model xxz --qubits 12 14 16 18 20 --out benchmarks/results
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
    """The all-to-all TFIM's couplings J (upper triangle, standard normal) and fields h (0.1 N(0, 1))."""
    rng = np.random.default_rng(seed)
    couplings = np.triu(rng.normal(size=(n, n)), 1)
    fields = 0.1 * rng.normal(size=n)
    return couplings, fields


XXZ_DELTA = 0.5


def model_terms(n: int, model: str = "tfim") -> list[tuple[float, tuple[tuple[str, int], ...]]]:
    """H as terms (coefficient, ((pauli, site), ...)), which every tool builds its own way.

    "tfim": -sum_{i<j} J_ij Z_i Z_j - sum_i h_i Z_i - sum_i X_i (``instance``; its flips are scalars);
    "xxz": the periodic XXZ chain sum_i (X_i X_{i+1} + Y_i Y_{i+1} + Delta Z_i Z_{i+1}) + sum_i h_i Z_i,
    Delta = XXZ_DELTA, h_i = 0.1 N(0, 1) (seed 0): real, with a flip group per bond whose factor
    depends on its two qubits (X X and Y Y share the flip), the case compact factors are for."""
    if model == "tfim":
        couplings, fields = instance(n)
        return ([(-couplings[i, j], (("z", i), ("z", j))) for i in range(n) for j in range(i + 1, n)]
                + [(-fields[i], (("z", i),)) for i in range(n)] + [(-1.0, (("x", i),)) for i in range(n)])
    if model == "xxz":
        fields = 0.1 * np.random.default_rng(0).normal(size=n)
        bonds = [(i, (i + 1) % n) for i in range(n)]
        return ([(coeff, ((p, i), (p, j))) for p, coeff in (("x", 1.0), ("y", 1.0), ("z", XXZ_DELTA)) for i, j in bonds]
                + [(fields[i], (("z", i),)) for i in range(n)])
    raise ValueError(f"model must be 'tfim' or 'xxz', got {model!r}")


def qeqprop_operator(n, terms):
    strings = [" ".join(f"{p.upper()}{i}" for p, i in ops) for _, ops in terms]
    return qp.hamiltonians.PauliTable(n, strings).operator(np.array([c for c, _ in terms]))


def run_qeqprop_jax(n, terms):
    return qp.solvers.jax_ground_state(qeqprop_operator(n, terms), with_gap=False).energy


def run_qeqprop_scipy(n, terms):
    return qp.solvers.lanczos_ground_state(qeqprop_operator(n, terms), with_gap=False).energy


def run_quspin(n, terms):
    from quspin.basis import spin_basis_1d
    from quspin.operators import hamiltonian

    basis = spin_basis_1d(n, pauli=True)
    static: dict[str, list] = {}
    for coeff, ops in terms:
        static.setdefault("".join(p for p, _ in ops), []).append([coeff, *(i for _, i in ops)])
    real = all(key.count("y") % 2 == 0 for key in static)
    h = hamiltonian([[key, value] for key, value in static.items()], [], basis=basis,
                    dtype=np.float64 if real else np.complex128, check_herm=False, check_symm=False, check_pcon=False)
    return float(np.real(h.eigsh(k=1, which="SA", return_eigenvectors=False)[0]))


def run_qutip(n, terms):
    import qutip

    single = {"x": qutip.sigmax(), "y": qutip.sigmay(), "z": qutip.sigmaz()}

    def op(ops):
        factors = dict((i, single[p]) for p, i in ops)
        return qutip.tensor([factors.get(k, qutip.qeye(2)) for k in range(n)]).to("csr")

    h = sum(coeff * op(ops) for coeff, ops in terms)
    h.isherm = True
    return float(h.groundstate(sparse=True)[0])


def run_pennylane(n, terms):
    import pennylane as qml

    single = {"x": qml.PauliX, "y": qml.PauliY, "z": qml.PauliZ}
    ops = [qml.prod(*(single[p](i) for p, i in term)) if len(term) > 1 else single[term[0][0]](term[0][1])
           for _, term in terms]
    matrix = qml.Hamiltonian([c for c, _ in terms], ops).sparse_matrix(wire_order=range(n))
    return float(np.real(sla.eigsh(matrix, k=1, which="SA", return_eigenvectors=False)[0]))


def run_netket(n, terms):
    import netket as nk

    hilbert = nk.hilbert.Spin(s=0.5, N=n)
    single = {"x": nk.operator.spin.sigmax, "y": nk.operator.spin.sigmay, "z": nk.operator.spin.sigmaz}
    h = None
    for coeff, ops in terms:
        term = single[ops[0][0]](hilbert, ops[0][1])
        for p, i in ops[1:]:
            term = term @ single[p](hilbert, i)
        h = coeff * term if h is None else h + coeff * term
    return float(np.real(nk.exact.lanczos_ed(h, k=1)[0]))


TOOLS = {
    "qeqprop (JAX Lanczos)": (run_qeqprop_jax, 26),
    "qeqprop (scipy ARPACK)": (run_qeqprop_scipy, 22),
    "QuSpin": (run_quspin, 22),
    "PennyLane + scipy": (run_pennylane, 20),
    "NetKet lanczos_ed": (run_netket, 18),
    "QuTiP": (run_qutip, 16),
}


def suffix(model: str) -> str:
    """Result file name suffix: none for the TFIM (the files README's table reads), "_xxz" else."""
    return "" if model == "tfim" else f"_{model}"


def paired(names, qubits, repeats: int, out: Path, model: str = "tfim") -> int:
    """The named tools timed in alternation at each size (one warm-up call each, then
    ``repeats`` rounds of one call per tool): on a machine shared with other work every tool
    sees the same load. Writes ground_state_paired.json."""
    results = {"machine": {**machine_info(), "load_average_start": os.getloadavg()}, "model": model, "repeats": repeats,
               "seconds": {name: {} for name in names}, "ratio_to_jax": {name: {} for name in names}}
    for n in qubits:
        terms = model_terms(n, model)
        runners = {name: TOOLS[name][0] for name in names}
        for runner in runners.values():
            runner(n, terms)
        times = {name: [] for name in names}
        for _ in range(repeats):
            for name, runner in runners.items():
                times[name].append(median_seconds(lambda: runner(n, terms), 1))
        jax_times = np.array(times["qeqprop (JAX Lanczos)"])
        for name in names:
            results["seconds"][name][n] = float(np.median(times[name]))
            results["ratio_to_jax"][name][n] = float(np.median(np.array(times[name]) / jax_times))
        print(f"N={n}: " + ", ".join(f"{name} {results['seconds'][name][n]:.3f} s ({results['ratio_to_jax'][name][n]:.1f}x)"
                                     for name in names), flush=True)
    results["machine"]["load_average_end"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"ground_state{suffix(model)}_paired.json", results)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[12, 14, 16, 18, 20])
    parser.add_argument("--repeats", type=int, default=3, help="repeats below 18 qubits (above: the first call, or 1 warm repeat for JAX)")
    parser.add_argument("--large-repeats", type=int, default=1,
                        help="repeats from 18 qubits on (every tool; the median is reported: use 3 on a loaded machine)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--model", choices=("tfim", "xxz"), default="tfim", help="the Hamiltonian (model_terms)")
    parser.add_argument("--paired", nargs="+", choices=list(TOOLS), default=None,
                        help="time these tools (with qeqprop JAX) in alternation; median per-round ratios")
    args = parser.parse_args(argv)
    if args.paired:
        names = ["qeqprop (JAX Lanczos)"] + [name for name in args.paired if name != "qeqprop (JAX Lanczos)"]
        return paired(names, args.qubits, args.repeats, Path(args.out), args.model)
    results = {"machine": {**machine_info(), "load_average_start": os.getloadavg()}, "model": args.model, "qubits": args.qubits,
               "seconds": {}, "first_call_seconds": {}, "energies": {}, "skipped": {}}
    for name, (runner, max_qubits) in TOOLS.items():
        results["seconds"][name], results["first_call_seconds"][name], results["energies"][name] = {}, {}, {}
        for n in args.qubits:
            if n > max_qubits:
                continue
            terms = model_terms(n, args.model)
            time.sleep(SETTLE_S)  # the first call may count as a repeat (see median_seconds)
            start = time.perf_counter()
            try:
                energy = runner(n, terms)  # first call: includes jit compilation, caches
            except ImportError as exc:
                results["skipped"][name] = f"not installed: {exc}"
                break
            first = time.perf_counter() - start
            repeats = args.repeats if n < 18 else args.large_repeats
            if n < 18 or "JAX" in name:  # warm calls (JAX's first call compiles)
                seconds = median_seconds(lambda: runner(n, terms), repeats)
            else:  # large and slow: the first call counts as one of the repeats
                times = [first] + [median_seconds(lambda: runner(n, terms), 1) for _ in range(repeats - 1)]
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
    title = {"tfim": "all-to-all TFIM", "xxz": f"XXZ chain (Delta = {XXZ_DELTA})"}[args.model]
    ax.set(xlabel="qubits N", ylabel="build + ground state [s]", title=f"{title} ground state")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"ground_state{suffix(args.model)}.png", dpi=120)
    write_json(out / f"ground_state{suffix(args.model)}.json", results)
    for name, ratios in results["speedup_vs"].items():
        print(f"{name:<24} time / qeqprop-JAX: " + ", ".join(f"N={n}: {r:.1f}x" for n, r in ratios.items()))
    print("max |E0| disagreement across tools:", results["max_energy_disagreement"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
