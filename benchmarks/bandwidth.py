"""The single-state H application against this machine's memory bandwidth, measured in one run.

Reference: a STREAM-like triad a = b + s c on float64 arrays of 2^24 elements (128 MiB each,
far beyond any cache), best of several runs, in three forms: numpy on one thread (two passes,
``np.multiply(c, s, out=a); a += b``: 5 arrays moved), numpy on two threads (the same on halves,
numpy releases the GIL), and one fused jitted JAX pass (3 arrays). Bandwidth = bytes moved / time,
counting each array read or written once (STREAM's convention: write-allocate traffic is not
counted). The machine's bandwidth is the best of the three (the JAX pass writes a fresh output
buffer per call, whose page faults cap it far below numpy's; it is reported, numpy sets the bar).

H application: the all-to-all TFIM of ``ground_state.py`` (its ZZ and Z terms are one diagonal
d_0, its X_i terms n scalar flip groups), applied by ``JaxPauliOperator.apply`` (the native
kernel on CPU) K times in one jitted ``fori_loop`` (buffers reused, as in the solver), and the
Lanczos step's fused pass (``lanczos_passes.lanczos_residual``) likewise. Bytes model, per
amplitude of a float64 state (the compulsory traffic; partner amplitudes psi[c xor x] are
counted once, as they are re-read from cache when the kernel's blocking works):

    H psi:          read psi, read d_0, write H psi, read each vector factor d_x   -> (3 + v) * 8 B
    Lanczos step:   read v, v_prev, d_0 (+ factors), write w and the copy of v    -> (5 + v) * 8 B

with v = 0 vector factors for the TFIM. Fraction = (bytes / time) / machine bandwidth.

    python benchmarks/bandwidth.py --qubits 20 21 22 23 24 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import jax
import jax.numpy as jnp
from _common import machine_info, write_json
from ground_state import model_terms, qeqprop_operator

from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator
from qeqprop.solvers.lanczos_passes import lanczos_residual

TRIAD_LENGTH = 1 << 24
APPLICATIONS = 8  # H applications per timed fori_loop


def best_seconds(fn, repeats: int) -> float:
    """Fastest wall time of ``fn()`` over ``repeats`` calls (STREAM reports the best)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def triad_bandwidths(length: int = TRIAD_LENGTH, repeats: int = 10) -> dict[str, float]:
    """Bytes/s of a = b + s c in three forms (module docstring): numpy one thread, numpy two
    threads, fused JAX."""
    rng = np.random.default_rng(0)
    b, c = rng.standard_normal(length), rng.standard_normal(length)
    a = np.empty(length)
    scale = 3.0

    def numpy_triad(lo=0, hi=length):
        np.multiply(c[lo:hi], scale, out=a[lo:hi])
        a[lo:hi] += b[lo:hi]

    half = length // 2
    pool = ThreadPoolExecutor(2)

    def threaded_triad():
        list(pool.map(lambda bounds: numpy_triad(*bounds), [(0, half), (half, length)]))

    jb, jc = jnp.asarray(b), jnp.asarray(c)
    fused = jax.jit(lambda b, c: b + scale * c)
    fused(jb, jc).block_until_ready()
    numpy_triad(), threaded_triad()
    rates = {
        "numpy_1_thread": 5 * 8 * length / best_seconds(numpy_triad, repeats),
        "numpy_2_threads": 5 * 8 * length / best_seconds(threaded_triad, repeats),
        "jax_fused": 3 * 8 * length / best_seconds(lambda: fused(jb, jc).block_until_ready(), repeats),
    }
    pool.shutdown()
    return rates


def application_rates(n: int, repeats: int) -> dict:
    """Seconds per H application and per Lanczos step pass at n qubits, and their bytes/s by the
    module's model."""
    operator = JaxPauliOperator(qeqprop_operator(n, model_terms(n, "tfim")))
    vector_factors = sum(is_vector for _, is_vector, _ in operator.structure[1])
    psi = jax.random.normal(jax.random.key(0), (operator.dim,), jnp.float64)
    psi = psi / jnp.linalg.norm(psi)

    @jax.jit
    def applications(operator, psi):
        return jax.lax.fori_loop(0, APPLICATIONS, lambda _, x: operator.apply(x), psi)

    @jax.jit
    def steps(operator, v, v_prev):
        def step(_, carry):
            w, _, _, v = lanczos_residual(operator, *carry, jnp.zeros(()), jnp.zeros(()))
            return w, v
        return jax.lax.fori_loop(0, APPLICATIONS, step, (v, v_prev))

    applications(operator, psi).block_until_ready()
    jax.block_until_ready(steps(operator, psi, psi))
    apply_s = best_seconds(lambda: applications(operator, psi).block_until_ready(), repeats) / APPLICATIONS
    step_s = best_seconds(lambda: jax.block_until_ready(steps(operator, psi, psi)), repeats) / APPLICATIONS
    amplitudes = operator.dim
    return {
        "apply_s": apply_s, "apply_bytes": (3 + vector_factors) * 8 * amplitudes,
        "apply_bytes_per_s": (3 + vector_factors) * 8 * amplitudes / apply_s,
        "step_s": step_s, "step_bytes": (5 + vector_factors) * 8 * amplitudes,
        "step_bytes_per_s": (5 + vector_factors) * 8 * amplitudes / step_s,
        "flip_groups": len(operator.structure[1]), "vector_factors": vector_factors,
        "native": bool(operator.native),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[20, 21, 22, 23, 24])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    triad = triad_bandwidths()
    bandwidth = max(triad.values())
    print("triad GB/s: " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in triad.items()), flush=True)
    rows = {}
    for n in args.qubits:
        row = application_rates(n, args.repeats)
        row["apply_fraction"] = row["apply_bytes_per_s"] / bandwidth
        row["step_fraction"] = row["step_bytes_per_s"] / bandwidth
        rows[n] = row
        print(f"N={n}: H psi {row['apply_s'] * 1e3:7.2f} ms ({row['apply_bytes_per_s'] / 1e9:5.2f} GB/s, "
              f"{row['apply_fraction']:.0%} of triad); Lanczos step {row['step_s'] * 1e3:7.2f} ms "
              f"({row['step_bytes_per_s'] / 1e9:5.2f} GB/s, {row['step_fraction']:.0%})", flush=True)
    # the triad again after the sweep: the machine's load drifts, the fraction uses the best
    again = triad_bandwidths()
    triad = {k: max(v, again[k]) for k, v in triad.items()}
    bandwidth = max(triad.values())
    for row in rows.values():
        row["apply_fraction"] = row["apply_bytes_per_s"] / bandwidth
        row["step_fraction"] = row["step_bytes_per_s"] / bandwidth
    payload = {"machine": {**machine_info(), "load_average": os.getloadavg()}, "triad_bytes_per_s": triad,
               "bandwidth_bytes_per_s": bandwidth, "applications_per_timing": APPLICATIONS, "rows": rows}
    write_json(Path(args.out) / "bandwidth.json", payload)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(list(rows), [r["apply_fraction"] for r in rows.values()], "o-", label="H psi")
    ax.plot(list(rows), [r["step_fraction"] for r in rows.values()], "s--", label="Lanczos step pass")
    ax.axhline(0.6, ls=":", c="k", label="target 60 %")
    ax.set(xlabel="qubits N", ylabel="bytes/s / triad bytes/s", title=f"triad {bandwidth / 1e9:.1f} GB/s")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "bandwidth.png", dpi=120)
    print(f"bandwidth {bandwidth / 1e9:.2f} GB/s; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
