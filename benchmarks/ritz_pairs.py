"""The batched Lanczos solver's Ritz pairs: qeqprop's native kernel against LAPACK through scipy.

The solver asks, a few times per block and sample, for the lowest ``count`` eigenpairs of short
tridiagonal matrices T_k (m = 8-160 Lanczos steps). Two ways, alternating rounds in one process,
on random tridiagonals (B samples, diagonals N(0, 1), off-diagonals |N(0, 1)| + 0.1):

    native   solvers.batched_lanczos._lowest_pairs (qeqprop/native/tridiagonal.cc, inside XLA)
    scipy    scipy.linalg.eigh_tridiagonal(select="i") per sample: LAPACK dstebz + dstein, what
             the solver called through a host callback before (and still does without the native
             kernel); its per-sample Python included, as the solver paid it

Per-sample microseconds (medians), the largest eigenvalue difference over |T| and the largest
eigenvector residual. Writes ritz_pairs.json and ritz_pairs.png to --out.

    nice -n 19 python benchmarks/ritz_pairs.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json


def measure(batch: int, m: int, count: int, rounds: int) -> dict:
    import jax

    from qeqprop.solvers.batched_lanczos import _host_lowest_pairs, _lowest_pairs

    rng = np.random.default_rng(m)
    alpha, beta = rng.normal(size=(batch, m)), np.abs(rng.normal(size=(batch, m - 1))) + 0.1
    native = jax.jit(partial(_lowest_pairs, count=count))
    values, vectors = map(np.asarray, native(alpha, beta))
    want, _ = _host_lowest_pairs(alpha, beta, count)
    norm = np.abs(alpha).max(axis=1) + 2 * np.abs(beta).max(axis=1)
    tridiagonal = (np.einsum("bi,bik->bik", alpha, vectors) + np.pad(np.einsum("bi,bik->bik", beta, vectors[:, 1:]), ((0, 0), (0, 1), (0, 0)))
                   + np.pad(np.einsum("bi,bik->bik", beta, vectors[:, :-1]), ((0, 0), (1, 0), (0, 0))))
    residual = np.abs(tridiagonal - vectors * values[:, None, :]).max(axis=(1, 2)) / norm
    times = {"native": [], "scipy": []}
    for _ in range(rounds):
        start = time.perf_counter()
        jax.block_until_ready(native(alpha, beta))
        times["native"].append(time.perf_counter() - start)
        start = time.perf_counter()
        _host_lowest_pairs(alpha, beta, count)
        times["scipy"].append(time.perf_counter() - start)
    row = {"batch": batch, "m": m, "count": count, "value_error": float((np.abs(values - want).max(axis=1) / norm).max()),
           "vector_residual": float(residual.max())}
    row.update({f"{k}_us_per_sample": float(np.median(v) / batch * 1e6) for k, v in times.items()})
    row["ratio"] = row["scipy_us_per_sample"] / row["native_us_per_sample"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = [measure(args.batch, m, count, args.rounds) for m in (16, 32, 64, 128) for count in (1, 2)]
    for row in rows:
        print(f"m={row['m']:4d} count={row['count']}: native {row['native_us_per_sample']:7.2f} us, scipy "
              f"{row['scipy_us_per_sample']:7.2f} us per sample ({row['ratio']:.1f}x); value error {row['value_error']:.1e}|T|, "
              f"residual {row['vector_residual']:.1e}|T|")
    out = Path(args.out)
    write_json(out / "ritz_pairs.json", {"machine": machine_info(), "load": os.getloadavg(), "rows": rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    for count, marker in ((1, "o"), (2, "s")):
        picked = [r for r in rows if r["count"] == count]
        for kind, colour in (("native", "C0"), ("scipy", "C3")):
            ax.plot([r["m"] for r in picked], [r[f"{kind}_us_per_sample"] for r in picked], marker=marker, color=colour,
                    label=f"{kind}, {count} pair{'s' * (count > 1)}")
    ax.set(xscale="log", yscale="log", xlabel="Lanczos steps m", ylabel="us per sample",
           title=f"lowest Ritz pairs, batch {args.batch}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ritz_pairs.png", dpi=120)


if __name__ == "__main__":
    main()
