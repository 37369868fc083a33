"""EP on matrix-product ground states (qeqprop.solvers.MPS, DMRG on TeNPy): four measurements.

``library``  time to a fixed energy accuracy on the open 1D TFIM H = -sum Z_i Z_i+1 - g sum X_i at
             g = 1 (critical: the hardest case), TeNPy vs quimb, sweep by sweep in one process,
             alternating, against the exact free-fermion energy E_0 = -sum_k s_k (s_k: singular
             values of the bidiagonal matrix with g on the diagonal and 1 above it).
``scaling``  seconds per centered EP gradient (free phase with gap + two warm nudged phases) on a
             random TFIM chain learner vs N, MPS against the exact JAX Lanczos solver where it fits;
             memory: the three MPS states' tensors (JAX: the memory check's estimate,
             working_set_vectors('jax', N) = 72 state vectors of 2^N float64).
``chi``      EP gradient error vs bond dimension chi_max at N > 20 (against chi_max = 128), and the
             EP gradient against central finite differences of the MPS loss along random directions
             d: (L(theta + h d) - L(theta - h d)) / 2h vs g . d.
``learner``  a 48-qubit TFIM chain trained by centered EP with MPS ground states: a sign fed as a
             boundary field at qubit 0 must reach the output <Z_47> at the far end (the couplings
             must carry it across the whole chain: the task grows with N).

    nice -n 19 python benchmarks/mps.py learner --out benchmarks/results
    nice -n 19 python benchmarks/mps.py scaling library chi --out benchmarks/results

Every part records os.getloadavg() (the machine is shared) and writes mps_<part>.json (+ .png).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json

import qeqprop as qp
from qeqprop.datasets import chain_sign_data
from qeqprop.gradcheck import critical_tfim_chain, random_tfim_instance
from qeqprop.solvers import MPS, working_set_vectors
from qeqprop.systems.long_chain import TFIMChain


def tfim_exact_energy(n: int, g: float) -> float:
    """Free-fermion ground energy of the open TFIM chain -sum Z Z - g sum X (module docstring)."""
    matrix = np.diag(np.full(n, g)) + np.diag(np.ones(n - 1), 1)
    return float(-np.linalg.svd(matrix, compute_uv=False).sum())


def library(args) -> dict:
    """Time to |E - E_0| < args.target per library and N (sweep by sweep, chi_max = 64)."""
    import quimb.tensor as qtn
    from tenpy.algorithms.dmrg import TwoSiteDMRGEngine
    from tenpy.models.tf_ising import TFIChain
    from tenpy.networks.mps import MPS as TenpyMPS

    def quimb_run(n):
        start = time.perf_counter()
        dmrg = qtn.DMRG2(qtn.MPO_ham_ising(n, j=-4.0, bx=2.0), bond_dims=64, cutoffs=1e-12)  # spin-1/2 units: 4 S S, 2 S
        exact = tfim_exact_energy(n, 1.0)
        for sweep in range(1, args.max_sweeps + 1):
            energy = float(np.real(dmrg.sweep_right() if sweep % 2 else dmrg.sweep_left()))
            if abs(energy - exact) < args.target:
                break
        return time.perf_counter() - start, sweep, energy - exact

    def tenpy_run(n):
        start = time.perf_counter()
        model = TFIChain({"L": n, "J": 1.0, "g": 1.0, "bc_MPS": "finite", "conserve": None})
        psi = TenpyMPS.from_product_state(model.lat.mps_sites(), ["up"] * n, "finite", unit_cell_width=n)
        engine = TwoSiteDMRGEngine(psi, model, {"trunc_params": {"chi_max": 64, "svd_min": 1e-12}, "mixer": True,
                                                "mixer_params": {"disable_after": 3}, "combine": True})
        exact = tfim_exact_energy(n, 1.0)
        for sweep in range(1, args.max_sweeps + 1):
            engine.sweep()
            energy = float(model.H_MPO.expectation_value(psi))
            if abs(energy - exact) < args.target:
                break
        return time.perf_counter() - start, sweep, energy - exact

    rows = []
    runs = (("quimb", quimb_run), ("tenpy", tenpy_run))
    for n in args.library_sizes:
        for rnd in range(args.rounds):
            for name, run in runs if rnd % 2 == 0 else runs[::-1]:
                seconds, sweeps, error = run(n)
                rows.append({"library": name, "n": n, "round": rnd, "seconds": seconds, "sweeps": sweeps,
                             "energy_error": error, "load": os.getloadavg()[0]})
                print(rows[-1], flush=True)
    summary = {}
    for name, _ in runs:
        for n in args.library_sizes:
            times = [r["seconds"] for r in rows if r["library"] == name and r["n"] == n]
            summary[f"{name}_{n}"] = float(np.median(times))
    return {"target": args.target, "rows": rows, "median_seconds": summary}


def state_bytes(state) -> int:
    """Bytes of an MPS ground state's tensors (what the MPS path holds per phase)."""
    return sum(state.mps.get_B(i).to_ndarray().nbytes for i in range(state.mps.L))


def scaling(args) -> dict:
    """Seconds and memory per centered EP gradient vs N (MPS at every N: a Pauli table past 63
    qubits keeps its terms only; JAX up to args.jax_max)."""
    rows = []
    for n in args.sizes:
        system, params, x, y = random_tfim_instance(n, seed=3, solver="mps", graph="chain")
        for solver in ("mps", "jax"):
            if solver == "jax" and n > args.jax_max:
                continue
            if solver == "jax":
                system, params, x, y = random_tfim_instance(n, seed=3, solver="jax", graph="chain")
                qp.ep_gradient(system, params, x, y, args.beta)  # compile outside the timing
            start = time.perf_counter()
            result = qp.ep_gradient(system, params, x, y, args.beta)
            seconds = time.perf_counter() - start
            states = [result.free, *result.nudged.values()]
            row = {"solver": solver, "n": n, "seconds": seconds, "load": os.getloadavg()[0],
                   "memory_mib": (sum(state_bytes(s) for s in states) if solver == "mps"
                                  else 8 * 2**n * working_set_vectors("jax", n)) / 2**20}
            if solver == "mps":
                row.update(bond_dimension=result.free.bond_dimension, sweeps=result.free.sweeps,
                           truncation_error=result.free.truncation_error, variance=result.free.variance, gap=result.free.gap)
            rows.append(row)
            print(row, flush=True)
    return {"beta": args.beta, "rows": rows}


def chi(args) -> dict:
    """EP gradient error vs chi_max (reference chi_max = 128) and EP vs directional central FD of
    the MPS loss, on ``critical_tfim_chain``."""
    out = {"n": args.chi_qubits, "beta": args.beta, "rows": []}
    _, params, x, y = critical_tfim_chain(args.chi_qubits, "mps")

    def system(chi_max):
        return critical_tfim_chain(args.chi_qubits, MPS(chi_max=chi_max, gap=False))[0]

    best = system(128)
    reference = qp.ep_gradient(best, params, x, y, args.beta).grad
    for chi_max in args.chis:
        grad = qp.ep_gradient(system(chi_max), params, x, y, args.beta).grad
        out["rows"].append({"chi_max": chi_max, "error": qp.relative_error(grad, reference)})
        print(out["rows"][-1], flush=True)
    rng = np.random.default_rng(0)
    out["directional"] = []
    for _ in range(args.directions):  # central differences along random directions d: slope vs g . d
        direction = {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}
        norm = np.sqrt(sum(float(np.sum(d**2)) for d in direction.values()))
        direction = {k: d / norm for k, d in direction.items()}  # a unit step: h is the step length
        losses = [best.loss({k: params[k] + sign * args.fd_step * direction[k] for k in params}, x, y) for sign in (1, -1)]
        slope = (losses[0] - losses[1]) / (2 * args.fd_step)
        predicted = sum(float(np.sum(reference[k] * direction[k])) for k in params)
        out["directional"].append({"finite_difference": slope, "ep": predicted, "relative_error": abs(slope - predicted) / abs(slope)})
    out["load"] = os.getloadavg()[0]
    print(out, flush=True)
    return out


def learner(args) -> dict:
    """The 48-qubit boundary-to-boundary learner (module docstring; qeqprop.systems.long_chain), trained
    by qp.fit on chain-sign data (qeqprop.datasets.chain_sign_data) with targets 0.5 s."""
    n = args.qubits
    net = TFIMChain(n, j_init=args.j_init, chi_max=args.chi_max, solver="mps")  # J0 < Gamma: correlation length < N
    rng = np.random.default_rng(args.seed)
    params = net.init_params(rng)
    x_train, labels_train = chain_sign_data(args.train, rng)
    x_test, labels_test = chain_sign_data(args.test, rng)
    y_train, y_test = (labels_train - 0.5)[:, None], (labels_test - 0.5)[:, None]

    def evaluate(p):
        states = [net.equilibrate(p, x) for x in x_test]
        outputs = np.array([net.predict(s)[0] for s in states])
        return {"test_loss": float(np.mean([(o - t[0]) ** 2 for o, t in zip(outputs, y_test)])),
                "test_accuracy": float(np.mean((outputs > 0) == (labels_test == 1))),
                "bond_dimension": int(max(s.bond_dimension for s in states))}

    start = time.perf_counter()
    before = evaluate(params)
    print("before", before, os.getloadavg(), flush=True)
    history = []

    def callback(epoch, metrics, p):
        history.append({"epoch": epoch, **{k: float(v) for k, v in metrics.items() if np.isscalar(v)},
                        "seconds": time.perf_counter() - start, "load": os.getloadavg()[0]})
        print(history[-1], flush=True)

    trained = qp.fit(net, (x_train, y_train), params=params, epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.lr, beta=args.beta, estimator="centered", seed=args.seed, progress=False,
                     callback=callback)
    params = trained.params if hasattr(trained, "params") else trained[0]
    after = evaluate(params)
    seconds = time.perf_counter() - start
    print("after", after, seconds, flush=True)
    return {"qubits": n, "chi_max": args.chi_max, "train": args.train, "test": args.test, "epochs": args.epochs, "batch_size": args.batch_size,
            "lr": args.lr, "beta": args.beta, "j_init": args.j_init, "before": before, "after": after,
            "history": history, "seconds": seconds, "load_end": os.getloadavg()}


PARTS = {"library": library, "scaling": scaling, "chi": chi, "learner": learner}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=tuple(PARTS))
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--library-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--target", type=float, default=1e-8)
    parser.add_argument("--max-sweeps", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 20, 32, 64, 128])
    parser.add_argument("--jax-max", type=int, default=22)
    parser.add_argument("--beta", type=float, default=1e-2)
    parser.add_argument("--chi-qubits", type=int, default=32)
    parser.add_argument("--chis", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--fd-step", type=float, default=2e-4)
    parser.add_argument("--directions", type=int, default=2)
    parser.add_argument("--qubits", type=int, default=48)
    parser.add_argument("--train", type=int, default=8)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--j-init", type=float, default=0.9)
    parser.add_argument("--chi-max", type=int, default=16, help="learner: bond dimension cap")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.disable(logging.WARNING)
    out = Path(args.out)
    for part in args.parts:
        with threadpool_limits(1):
            result = PARTS[part](args)
        write_json(out / f"mps_{part}.json", {"machine": machine_info(), **result})
        plot(part, result, out / f"mps_{part}.png")
    return 0


def plot(part: str, result: dict, path: Path) -> None:
    """One figure per part."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if part == "library":
        for name in ("quimb", "tenpy"):
            sizes = sorted({r["n"] for r in result["rows"]})
            ax.plot(sizes, [result["median_seconds"][f"{name}_{n}"] for n in sizes], "o-", label=name)
        ax.set(xlabel="N", ylabel=f"s to |E - E0| < {result['target']:g}", yscale="log", title="1D TFIM g = 1, chi <= 64")
    elif part == "scaling":
        for solver in ("mps", "jax"):
            rows = [r for r in result["rows"] if r["solver"] == solver]
            ax.plot([r["n"] for r in rows], [r["seconds"] for r in rows], "o-", label=solver)
        ax.set(xlabel="N (chain)", ylabel="s per centered EP gradient", yscale="log")
    elif part == "chi":
        ax.plot([r["chi_max"] for r in result["rows"]], [r["error"] for r in result["rows"]], "o-", label="vs chi_max=128")
        ax.set(xlabel="chi_max", ylabel="relative EP gradient error", xscale="log", yscale="log", title=f"N = {result['n']}")
    else:
        ax.plot([h["epoch"] for h in result["history"]], [h.get("loss", np.nan) for h in result["history"]], "o-", label="train loss")
        ax.set(xlabel="epoch", ylabel="loss", title=f"{result['qubits']}-qubit TFIM chain, MPS EP")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
