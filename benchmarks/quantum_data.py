"""Copies vs accuracy on the quantum-data tasks (qeqprop.comparison.quantum_data): how many copies
of a chain's ground state do the quantum sensor, the snapshot classifiers and the parameter
classifier need for 90% test accuracy?

    nice -n 19 python benchmarks/quantum_data.py --out benchmarks/results/quantum_data
    nice -n 19 python benchmarks/quantum_data.py --tasks annni --seeds 2 --copies 10 100 --samples 60 --epochs 2
    nice -n 19 python benchmarks/quantum_data.py --access snapshots snapshots_exact_train parameters --copies 2 4 6 10 20

Writes quantum_data.json (curves with 95% t-intervals, copies to 90%, phase-diagram grids, wall
seconds and os.getloadavg()), quantum_data.md and quantum_data_<task>.png/.pdf.
"""

from __future__ import annotations

import argparse
import logging
import time

from threadpoolctl import threadpool_limits

from qeqprop.comparison.copies_report import write_copies_report
from qeqprop.comparison.quantum_data import (
    ACCESS,
    COPIES,
    N_CHAIN,
    N_SAMPLES,
    copies_curve,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["annni", "xxz_field"], choices=["annni", "xxz_field"])
    parser.add_argument("--copies", type=int, nargs="+", default=list(COPIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=N_SAMPLES, help="sampled phase-diagram points (70%% train)")
    parser.add_argument("--chain", type=int, default=N_CHAIN, help="chain sites")
    parser.add_argument("--epochs", type=int, default=15, help="sensor EP epochs")
    parser.add_argument("--grid", type=int, default=21, help="phase-diagram grid side")
    parser.add_argument("--access", nargs="+", default=list(ACCESS), choices=ACCESS, help="access models to measure")
    parser.add_argument("--out", default="benchmarks/results/quantum_data")
    args = parser.parse_args()
    logging.getLogger("qeqprop.train").setLevel(logging.WARNING)
    results = []
    with threadpool_limits(1):
        for task in args.tasks:
            start = time.perf_counter()
            result = copies_curve(task, args.copies, args.seeds, n_chain=args.chain, n_samples=args.samples,
                                  epochs=args.epochs, grid=args.grid, access=args.access)
            result["command"] = "python benchmarks/quantum_data.py " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items())
            results.append(result)
            print(f"{task}: {time.perf_counter() - start:.0f} s, load {result['load']}", flush=True)
            print(result["copies_for_target"], flush=True)
            write_copies_report(results, args.out)  # after every task: a killed run keeps what finished
    for path in write_copies_report(results, args.out).values():
        print("wrote", path)


if __name__ == "__main__":
    main()
