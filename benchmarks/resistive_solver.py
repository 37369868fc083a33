"""Exact block-coordinate descent vs scipy's L-BFGS-B on nonlinear resistive networks.

Both minimize the same co-content (classical.resistive) of a layered network with N nodes
(5 layers of N/5: input sources, three hidden layers with diodes clipping at [0, 1], outputs;
all consecutive layers fully connected, bias sources +-1 on every free layer):

    E(v) = 1/2 sum_ij g_ij (v_i - v_j)^2,   0 <= v_hidden <= 1,

the first with the library's solver (alternating exact layer updates
v_i <- clip((sum_j g_ij v_j + I_i) / sum_j g_ij, lo, hi)), the second with
scipy.optimize.minimize(method="L-BFGS-B", bounds=...) on the same energy and analytic
gradient. Reported per N: median wall time of each over --repeats, sweeps / iterations, the
largest voltage difference between the two solutions, energies and KKT residuals.
Writes resistive_solver.json and resistive_solver.png to --out.

    python benchmarks/resistive_solver.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_size_arguments, machine_info, median_seconds, sweep_sizes, write_json  # noqa: E402

from classical.resistive import ResistiveNetwork  # noqa: E402

SIZES = (100, 300, 1000, 3000, 10000)
LAYERS = 5


def network(n_nodes: int, seed: int, tol: float):
    """A 5-layer network of n_nodes nodes, random conductances, random input, and its QP."""
    width = max(2, 2 * (n_nodes // (2 * LAYERS)))
    net = ResistiveNetwork(width // 2, (width,) * (LAYERS - 2), width, input_gain=3.0, hidden_bounds=(0.0, 1.0),
                           bias_voltages=(1.0, -1.0), current_sources=False, tol=tol, max_iter=1_000_000)
    rng = np.random.default_rng(seed)
    params, x = net.init_params(rng), rng.normal(size=width // 2)
    return net, params, x


def lbfgsb(net, params, x, gtol: float, max_iter: int):
    """scipy L-BFGS-B on the free voltages, same energy and gradient as the library's solver."""
    quadratic = net.quadratic(params)
    sources = net.sources(x)
    sizes = net.sizes[1:]
    ends = np.cumsum(sizes)

    def layers(free):
        return [sources] + [free[end - size : end] for size, end in zip(sizes, ends)]

    def fun(free):
        current = layers(free)
        return quadratic.energy(current), np.concatenate(quadratic.gradient(current)[1:])

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for k in range(1, len(net.sizes)) for lo, hi in zip(quadratic.lower[k], quadratic.upper[k])]  # per node
    result = scipy.optimize.minimize(fun, np.zeros(sum(sizes)), jac=True, method="L-BFGS-B", bounds=bounds,
                                     options={"ftol": 0.0, "gtol": gtol, "maxiter": max_iter, "maxfun": 10 * max_iter})
    return result, quadratic.residual(layers(result.x))


def measure(n_nodes: int, args) -> dict:
    net, params, x = network(n_nodes, args.seed, args.tol)
    state = net.equilibrate(params, x)
    result, residual = lbfgsb(net, params, x, args.gtol, args.max_iter)
    repeats = args.repeats
    free = state.state[net.sizes[0]:]
    hidden = free[: sum(net.hidden)]
    return {
        "n_nodes": int(sum(net.sizes)),
        "layer_sizes": net.sizes,
        "conductances": int(sum(np.prod(s) for s in net.conductance_shapes.values())),
        "repeats": repeats,
        "coordinate_descent_s": median_seconds(lambda: net.equilibrate(params, x), repeats),
        "lbfgsb_s": median_seconds(lambda: lbfgsb(net, params, x, args.gtol, args.max_iter), repeats),
        "coordinate_descent_sweeps": state.iterations,
        "lbfgsb_iterations": int(result.nit),
        "lbfgsb_message": str(result.message),
        "max_abs_voltage_difference": float(np.max(np.abs(free - result.x))),
        "voltage_scale": float(np.max(np.abs(state.state))),
        "energy_coordinate_descent": state.energy,
        "energy_lbfgsb": float(result.fun),
        "kkt_residual_coordinate_descent": state.residual,
        "kkt_residual_lbfgsb": residual,
        "clipped_fraction": float(np.mean((hidden <= 0.0) | (hidden >= 1.0))),
    }


def plot(rows, path: Path) -> None:
    n = [r["n_nodes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(n, [r["coordinate_descent_s"] for r in rows], "o-", label="block coordinate descent (exact layer updates)")
    left.loglog(n, [r["lbfgsb_s"] for r in rows], "s-", label="scipy L-BFGS-B with bounds")
    left.set_xlabel("nodes N")
    left.set_ylabel("median wall time per equilibrium (s)")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    right.semilogx(n, [r["lbfgsb_s"] / r["coordinate_descent_s"] for r in rows], "o-")
    right.set_xlabel("nodes N")
    right.set_ylabel("speed ratio  t(L-BFGS-B) / t(coordinate descent)")
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle("Nonlinear resistive network equilibrium (5 dense layers, diodes at [0, 1])")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tol", type=float, default=1e-10, help="coordinate descent: largest voltage change per sweep")
    parser.add_argument("--gtol", type=float, default=1e-10, help="L-BFGS-B: projected-gradient tolerance")
    parser.add_argument("--max-iter", type=int, default=100_000)
    add_size_arguments(parser, SIZES, repeats=3)
    args = parser.parse_args(argv)

    blas, rows = sweep_sizes(args, measure, lambda row: (
        f"N={row['n_nodes']:6d}  coordinate descent {row['coordinate_descent_s']:.4f} s "
        f"({row['coordinate_descent_sweeps']} sweeps)  L-BFGS-B {row['lbfgsb_s']:.4f} s "
        f"({row['lbfgsb_iterations']} it)  ratio {row['lbfgsb_s'] / row['coordinate_descent_s']:.1f}  "
        f"max |dv| {row['max_abs_voltage_difference']:.2e}"))
    out = Path(args.out)
    payload = {"benchmark": "resistive_solver", "machine": machine_info(), "blas": blas,
               "settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": rows}
    write_json(out / "resistive_solver.json", payload)
    plot(rows, out / "resistive_solver.png")
    print(f"wrote {out / 'resistive_solver.json'} and {out / 'resistive_solver.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
