"""Variational EP: gradient bias from the ansatz vs circuit depth and beta.

On a random TFIM instance (qeqprop.random_tfim_instance) the centered EP gradient computed
on variational ground states (VariationalSpinSystem) is compared with the exact
linear-response reference gradient: cosine similarity and relative error
||g_EP - g_ref|| / ||g_ref|| vs depth (at --beta-main) and vs beta, next to the variational
energy error, the infidelity and the optimizer steps of free and nudged phases. The
exact-solver EP error at each beta is the floor (EP's own O(beta^2) bias).

A timing section compares ways of evaluating E(phi) and dE/dphi (jitted value_and_grad):
default.qubit kernels scanned over layers + our matrix-free operator (the solver's choice),
a QNode returning qml.state() + our operator, a QNode with qml.expval of the exported
Hamiltonian, and lightning.qubit adjoint differentiation; and the optimizers.

    python benchmarks/variational_bias.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, median_seconds, write_json  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pennylane as qml  # noqa: E402

from qeqprop import ep_gradient, random_tfim_instance, relative_error
from qeqprop.hamiltonians import to_pennylane  # noqa: E402
from qeqprop.ep import flatten_grad  # noqa: E402
from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator  # noqa: E402
from qeqprop.solvers.variational import VariationalConvergenceWarning, circuit_ops  # noqa: E402
from qeqprop.systems.variational import VariationalSpinSystem  # noqa: E402

ANSATZ_CONFIGS = {
    "hva": dict(ansatz="hva"),
    "hva_per_term": dict(ansatz="hva", per_term=True),
    "hardware_efficient": dict(ansatz="hardware_efficient"),
}


def cosine(a, b) -> float:
    a, b = flatten_grad(a), flatten_grad(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def depth_sweep(n_qubits: int, seed: int, configs: list[str], depths: list[int], betas: list[float]) -> dict:
    """Energy error, fidelity, steps and EP-gradient bias for every ansatz config and depth."""
    exact, params, x, y = random_tfim_instance(n_qubits, seed=seed)
    reference = exact.reference_grad(params, x, y)
    out = {
        "n_qubits": n_qubits, "seed": seed, "n_params": int(flatten_grad(reference).size),
        "reference_norm": float(np.linalg.norm(flatten_grad(reference))),
        "exact_solver_ep": {str(b): relative_error(ep_gradient(exact, params, x, y, b).grad, reference) for b in betas},
        "ansatze": {},
    }
    for name in configs:
        rows = []
        for depth in depths:
            system = VariationalSpinSystem(exact.hamiltonian, depth=depth, **ANSATZ_CONFIGS[name])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", VariationalConvergenceWarning)
                start = time.perf_counter()
                free = system.equilibrate(params, x)
                first = time.perf_counter() - start
                solve = median_seconds(lambda: system.equilibrate(params, x), repeats=1)
                row = {
                    "depth": depth, "n_circuit_params": int(free.circuit_params.size),
                    "energy_error_rel": free.relative_energy_error, "infidelity": 1.0 - free.fidelity,
                    "free_steps": free.steps, "free_stop": free.stop_reason, "free_grad_norm": free.grad_norm,
                    "first_call_s": first, "free_solve_s": solve, "beta": {},
                }
                for beta in betas:
                    start = time.perf_counter()
                    result = ep_gradient(system, params, x, y, beta, "centered", free=free)
                    row["beta"][str(beta)] = {
                        "cosine": cosine(result.grad, reference),
                        "relative_error": relative_error(result.grad, reference),
                        "nudged_steps": [s.steps for s in result.nudged.values()],
                        "nudged_s": time.perf_counter() - start,
                    }
            row["warnings"] = [str(w.message) for w in caught if issubclass(w.category, VariationalConvergenceWarning)]
            rows.append(row)
            main = row["beta"][str(betas[len(betas) // 2])]
            print(f"n={n_qubits} {name} depth={depth}: relE={row['energy_error_rel']:.2e} 1-F={row['infidelity']:.2e} "
                  f"steps={row['free_steps']} nudged={main['nudged_steps']} cos={main['cosine']:.6f} "
                  f"rel={main['relative_error']:.2e} first={first:.1f}s solve={solve:.3f}s", flush=True)
        out["ansatze"][name] = rows
    return out


def energy_timings(n_qubits: int, seed: int, depth: int) -> dict:
    """Compile and per-call seconds of a jitted value_and_grad of E(phi), four ways."""
    exact, params, x, _ = random_tfim_instance(n_qubits, seed=seed)
    system = VariationalSpinSystem(exact.hamiltonian, "hva", depth, per_term=True)
    solver = system.variational
    operator = exact.hamiltonian.operator(params, x)
    kernel = JaxPauliOperator(operator)
    phi = jnp.asarray(solver.init_params(operator.coeffs))
    device = qml.device("default.qubit", wires=n_qubits)

    @qml.qnode(device, interface="jax", diff_method="backprop")
    def qnode_state(phi):
        circuit_ops(solver.ansatz, phi)
        return qml.state()

    hamiltonian = to_pennylane(operator)

    @qml.qnode(device, interface="jax", diff_method="backprop")
    def qnode_expval(phi):
        circuit_ops(solver.ansatz, phi)
        return qml.expval(hamiltonian)

    def state_energy(phi):
        psi = qnode_state(phi)
        return jnp.real(jnp.vdot(psi, kernel.matvec(psi)))

    variants = {
        "scan_kernels_ours (chosen)": lambda phi: solver._energy(phi, kernel.diagonal, kernel.factors),
        "qnode_state_ours": state_energy,
        "qnode_expval_exported": qnode_expval,
    }
    out = {"n_qubits": n_qubits, "depth": depth, "n_circuit_params": int(phi.size), "variants": {}}
    reference = None
    for name, energy in variants.items():
        start = time.perf_counter()
        compiled = jax.jit(jax.value_and_grad(energy)).lower(phi).compile()
        compile_s = time.perf_counter() - start
        value, _ = compiled(phi)
        reference = float(value) if reference is None else reference
        call = median_seconds(lambda: jax.block_until_ready(compiled(phi)), repeats=50)
        out["variants"][name] = {"compile_s": compile_s, "call_s": call, "energy": float(value)}
        print(f"timing n={n_qubits} depth={depth} {name}: compile {compile_s:.2f} s, value_and_grad {call * 1e3:.3f} ms", flush=True)
        assert abs(float(value) - reference) < 1e-10, "energy variants disagree"
    lightning = qml.device("lightning.qubit", wires=n_qubits)
    phi_np = qml.numpy.array(np.asarray(phi), requires_grad=True)

    @qml.qnode(lightning, diff_method="adjoint")
    def adjoint_expval(phi):
        circuit_ops(solver.ansatz, phi)
        return qml.expval(hamiltonian)

    gradient = qml.grad(adjoint_expval)
    gradient(phi_np)
    call = median_seconds(lambda: gradient(phi_np), repeats=5)
    out["variants"]["lightning_adjoint_expval (no jit)"] = {"compile_s": 0.0, "call_s": call, "energy": float(adjoint_expval(phi_np))}
    print(f"timing n={n_qubits} depth={depth} lightning adjoint: grad {call * 1e3:.3f} ms", flush=True)
    return out


def optimizer_comparison(n_qubits: int, seed: int, depth: int, beta: float) -> dict:
    """Steps, time and final |grad| of free and warm-started nudged phases per optimizer."""
    exact, params, x, y = random_tfim_instance(n_qubits, seed=seed)
    reference = exact.reference_grad(params, x, y)
    out = {}
    for optimizer in ("newton", "lbfgs", "adam"):
        system = VariationalSpinSystem(exact.hamiltonian, "hva", depth, per_term=True, optimizer=optimizer, maxiter=3000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VariationalConvergenceWarning)
            system.equilibrate(params, x)  # compile
            start = time.perf_counter()
            result = ep_gradient(system, params, x, y, beta)
            seconds = time.perf_counter() - start
        out[optimizer] = {
            "free_steps": result.free.steps, "free_stop": result.free.stop_reason, "free_grad_norm": result.free.grad_norm,
            "nudged_steps": [s.steps for s in result.nudged.values()],
            "nudged_grad_norm": [s.grad_norm for s in result.nudged.values()],
            "energy_error_rel": result.free.relative_energy_error, "ep_seconds": seconds,
            "cosine": cosine(result.grad, reference), "relative_error": relative_error(result.grad, reference),
        }
        print(f"optimizer n={n_qubits} depth={depth} {optimizer}: {out[optimizer]}", flush=True)
    return out


def plot(results: dict, path: Path, beta_main: float) -> None:
    sweeps = results["sweeps"]
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(15, 4.2 * len(sweeps)), squeeze=False)
    for row_axes, sweep in zip(axes, sweeps):
        n = sweep["n_qubits"]
        ax_e, ax_g, ax_b = row_axes
        for (name, rows), marker in zip(sweep["ansatze"].items(), "osd^"):
            depths = [r["depth"] for r in rows]
            ax_e.semilogy(depths, [max(r["energy_error_rel"], 1e-16) for r in rows], marker + "-", label=f"{name}: rel. energy error")
            ax_e.semilogy(depths, [max(r["infidelity"], 1e-16) for r in rows], marker + ":", label=f"{name}: 1 - fidelity")
            main = [r["beta"][str(beta_main)] for r in rows]
            ax_g.semilogy(depths, [m["relative_error"] for m in main], marker + "-", label=f"{name}: rel. error")
            ax_g.semilogy(depths, [max(1.0 - m["cosine"], 1e-16) for m in main], marker + ":", label=f"{name}: 1 - cosine")
        ax_g.axhline(sweep["exact_solver_ep"][str(beta_main)], color="k", ls="--", label="exact-solver EP")
        ax_e.axhline(1e-4, color="grey", ls="--", lw=0.8)
        ax_g.axhline(1e-2, color="grey", ls="--", lw=0.8)
        betas = [float(b) for b in sweep["exact_solver_ep"]]
        name = "hva_per_term" if "hva_per_term" in sweep["ansatze"] else next(iter(sweep["ansatze"]))
        for r in sweep["ansatze"][name]:
            ax_b.loglog(betas, [r["beta"][str(b)]["relative_error"] for b in betas], "o-", label=f"{name} depth {r['depth']}")
        ax_b.loglog(betas, list(sweep["exact_solver_ep"].values()), "k--", label="exact-solver EP")
        ax_e.set(xlabel="depth", ylabel="error", title=f"{n} qubits: variational ground state")
        ax_g.set(xlabel="depth", ylabel="vs exact reference gradient", title=f"{n} qubits: centered EP, beta={beta_main:g}")
        ax_b.set(xlabel="beta", ylabel="||g_EP - g_ref|| / ||g_ref||", title=f"{n} qubits: bias vs beta")
        for ax in row_axes:
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 6])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--betas", type=float, nargs="+", default=[1e-1, 3e-2, 1e-2, 3e-3, 1e-3])
    parser.add_argument("--ansatze", nargs="+", default=list(ANSATZ_CONFIGS), choices=list(ANSATZ_CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-timings", action="store_true")
    args = parser.parse_args(argv)
    betas = sorted(args.betas, reverse=True)
    beta_main = betas[len(betas) // 2]
    results = {"machine": machine_info(), "betas": betas, "beta_main": beta_main, "estimator": "centered", "sweeps": []}
    for n in args.qubits:
        results["sweeps"].append(depth_sweep(n, args.seed, args.ansatze, args.depths, betas))
    if not args.skip_timings:
        results["energy_timings"] = [energy_timings(n, args.seed, d) for n in args.qubits for d in (2, 6)]
        results["optimizers"] = optimizer_comparison(args.qubits[-1], args.seed, 2, beta_main)
    out = Path(args.out)
    write_json(out / "variational_bias.json", results)
    plot(results, out / "variational_bias.png", beta_main)
    print(f"wrote {out / 'variational_bias.json'} and {out / 'variational_bias.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
