"""What the MPS gap check costs a teacher48-mps training epoch (issue 22: EP on matrix-product states).

SiteChain with solver "mps" (qeqprop.systems.long_chain) checks the free-phase gap E_1 - E_0 by a
second DMRG orthogonal to the free state (``MPS.gap_of``) on the free phases its ``gap_check``
names: "ep" every EP free phase (one per training sample), "all" also every evaluation free phase,
"first" the first sample of each minibatch (= "ep" at the preset's batch size 1), "none" none.

Epochs: the preset's settings (centered EP, beta 0.01, Adam 0.1, batch 1, seed 0) at ``--hidden N``
with solver "mps", trained by ``qeqprop.fit`` on the first ``--train`` samples of chain-teacher and
evaluated on them and the first ``--test`` test samples (a full preset epoch is 128 steps and 192
evaluated free phases; the subset keeps that 2 : 1 ratio, so the relative overhead is the full
epoch's; a full 24-site epoch took 765 s CPU, benchmarks/results/mps_size_curve.json). Every (N,
mode) runs in a fresh process, one BLAS thread; CPU seconds of ``fit`` alone (no imports) are the
measure (the machine is shared: walls are recorded too, compare them only at similar load).

Phases: CPU seconds of one free (cold) DMRG, one nudged (warm, beta 0.01) DMRG and one gap DMRG per
sample, at the initial parameters and, where ``--models`` holds them (benchmarks/mps_size_curve.py),
at the trained ones: the gap's share along a whole run, not only at its start.

    python benchmarks/mps_gap_check.py                    # -> results/mps_gap_check.json
    python benchmarks/mps_gap_check.py --merge --modes none 4 --no-phases   # more runs into the same file
    python benchmarks/mps_gap_check.py --merge --sizes --cli-sizes 12 --modes none ep   # whole preset epochs

Whole epochs (``--cli-sizes``): the preset itself from the command line, 128 steps and 192 evaluated
free phases, ``qeqprop train --preset teacher48-mps --hidden N --solver mps --option gap_check=MODE``
under /usr/bin/time (CPU = user + system seconds of the whole process, imports included).

Modes are "none", "ep", "first", "all" or an integer k (every k-th EP free phase). The overhead
of a mode is the median CPU seconds of its epochs over the median of mode "none"'s, per size.

Measured here (2 shared cores, load 4-7 from other jobs; results/mps_gap_check.json): subset epochs,
CPU over "none" (45.5 / 46.9 s at 12 sites, 129.8 / 118.7 s at 24): "ep" +23% / +31% (2 runs each),
"all" +74% / +72%, every 4th free phase +4% / +9%; one gap DMRG costs 0.43 / 1.1-1.4 s CPU against
0.55-0.69 / 1.3 s for the free DMRG (12 / 24 sites, initial and trained parameters). The whole
12-site preset epoch from the command line: 315.0 s CPU without, 372.1 s with "ep" (+18%), its
128 checked gaps >= 0.4551 (the exact-state 12-site run in mps_size_curve.json, a trajectory of its
own: batch_min_gap 0.4552).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json

RESULTS = Path(__file__).parent / "results"
PRESET = {"beta": 0.01, "estimator": "centered", "learning_rate": 0.1, "batch_size": 1, "epochs": 1, "seed": 0}


def epoch(n: int, mode: str, n_train: int, n_test: int) -> dict:
    """One preset epoch on the subset (module docstring), in this process."""
    from threadpoolctl import threadpool_limits

    import qeqprop as qp
    from qeqprop.systems.registry import REGISTRY

    data = qp.load_dataset("chain-teacher", seed=0)
    system = REGISTRY["tfim_sites"].build(data.n_features, 1, n, solver="mps", gap_check=mode)
    with threadpool_limits(1):
        cpu, wall = time.process_time(), time.perf_counter()
        result = qp.fit(system, (data.x_train[:n_train], data.y_train[:n_train]),
                        validation=(data.x_test[:n_test], data.y_test[:n_test]), progress=False, **PRESET)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"qubits": n, "gap_check": mode, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "load": round(os.getloadavg()[0], 2), "final": result.final}


def phases(n: int, params_file: Path | None, samples: int) -> dict:
    """Mean CPU seconds of the free, nudged (+beta) and gap DMRG of ``samples`` training samples."""
    from threadpoolctl import threadpool_limits

    import qeqprop as qp
    from qeqprop.serialization import load_model
    from qeqprop.systems.long_chain import SiteChain

    data = qp.load_dataset("chain-teacher", seed=0)
    system = SiteChain(n, data.n_features, solver="mps", gap_check="none")
    params = system.init_params(np.random.default_rng(0)) if params_file is None else load_model(params_file).params
    times: dict[str, list[float]] = {"free": [], "nudged": [], "gap": []}
    gaps = []
    targets = qp.train.cost_targets(system, qp.datasets.labels_from_targets(data.y_train, n_classes=2))
    with threadpool_limits(1):
        for x, y in zip(data.x_train[:samples], targets[:samples]):
            start = time.process_time()
            free = system.equilibrate(params, x)
            times["free"].append(time.process_time() - start)
            nudge = system.nudge(free, y)
            start = time.process_time()
            system.equilibrate(params, x, nudge=nudge, beta=PRESET["beta"], init=free)
            times["nudged"].append(time.process_time() - start)
            start = time.process_time()
            gaps.append(system.solver.gap_of(free, system.tol))
            times["gap"].append(time.process_time() - start)
    mean = {k: round(float(np.mean(v)), 3) for k, v in times.items()}
    # one epoch: per step a free, two nudged (centered) and a gap DMRG; evaluation: 1.5 free per step
    base = mean["free"] + 2 * mean["nudged"] + 1.5 * mean["free"]
    return {"qubits": n, "params": "initial" if params_file is None else str(params_file), "samples": samples,
            "cpu_s_per_phase": mean, "gap_range": [round(min(gaps), 4), round(max(gaps), 4)],
            "epoch_overhead_ep": round(mean["gap"] / base, 3),
            "epoch_overhead_all": round(2.5 * mean["gap"] / base, 3)}


def cli_epoch(n: int, mode: str) -> dict:
    """The whole preset epoch at n sites from the command line (module docstring), timed by /usr/bin/time."""
    command = ["qeqprop", "train", "--preset", "teacher48-mps", "--hidden", str(n), "--solver", "mps",
               "--option", f"gap_check={mode}", "--json", "--quiet"]
    load = os.getloadavg()[0]
    done = subprocess.run(["/usr/bin/time", "-v", *command], check=True, capture_output=True, text=True)
    timing = dict(line.strip().rsplit(": ", 1) for line in done.stderr.splitlines() if line.startswith("\t") and ": " in line)
    return {"command": " ".join(command), "qubits": n, "gap_check": mode,
            "cpu_s": round(float(timing["User time (seconds)"]) + float(timing["System time (seconds)"]), 1),
            "wall": timing["Elapsed (wall clock) time (h:mm:ss or m:ss)"], "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "final": json.loads(done.stdout.strip().splitlines()[-1])}


def run_worker(args: list[str]) -> dict:
    """A measurement in a fresh process (imports and TeNPy's first-call costs outside the timing)."""
    done = subprocess.run([sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[12, 24])
    parser.add_argument("--cli-sizes", type=int, nargs="*", default=[], help="also time whole preset epochs (command line)")
    parser.add_argument("--modes", nargs="+", default=["none", "ep", "all"])
    parser.add_argument("--train", type=int, default=24, help="training samples (steps) of the epoch")
    parser.add_argument("--test", type=int, default=12, help="test samples evaluated at the epoch's end")
    parser.add_argument("--phase-samples", type=int, default=6)
    parser.add_argument("--models", type=Path, default=Path("runs/mps_size_curve"), help="trained siteN.model files")
    parser.add_argument("--out", type=Path, default=RESULTS / "mps_gap_check.json")
    parser.add_argument("--merge", action="store_true", help="add these runs to those stored in --out")
    parser.add_argument("--no-phases", action="store_true", help="time epochs only")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "epoch":
            result = epoch(int(rest[0]), int(rest[1]) if rest[1].isdigit() else rest[1], int(rest[2]), int(rest[3]))
        else:
            result = phases(int(rest[0]), None if rest[1] == "-" else Path(rest[1]), int(rest[2]))
        print(json.dumps(result), flush=True)
        return
    stored = json.loads(args.out.read_text()) if args.merge and args.out.exists() else {}
    epochs, phase_runs = list(stored.get("epochs", [])), list(stored.get("phases", []))
    cli_runs = list(stored.get("cli_epochs", []))
    for n in args.sizes:
        model = args.models / f"site{n}.model"
        for params in () if args.no_phases else ("-", str(model)) if model.exists() else ("-",):
            phase_runs.append(run_worker(["phases", str(n), params, str(args.phase_samples)]))
            print(json.dumps(phase_runs[-1]), flush=True)
        for mode in args.modes:
            epochs.append(run_worker(["epoch", str(n), mode, str(args.train), str(args.test)]))
            print(json.dumps({k: v for k, v in epochs[-1].items() if k != "final"}), flush=True)
    for n in args.cli_sizes:
        for mode in args.modes:
            cli_runs.append(cli_epoch(n, mode))
            print(json.dumps({k: v for k, v in cli_runs[-1].items() if k != "final"}), flush=True)
    write_json(args.out, {"machine": machine_info(), "preset": "teacher48-mps", "settings": PRESET,
                          "data": {"dataset": "chain-teacher", "train": args.train, "test": args.test},
                          "epoch_cpu_overhead": overheads(epochs), "cli_epoch_cpu_overhead": overheads(cli_runs),
                          "epochs": epochs, "phases": phase_runs, "cli_epochs": cli_runs})


def overheads(runs: list[dict]) -> dict:
    """Per size and mode: median CPU seconds over mode "none"'s median, minus 1, and the runs behind it."""
    overhead = {}
    for n in sorted({run["qubits"] for run in runs}):
        cpu: dict[str, list[float]] = {}
        for run in runs:
            if run["qubits"] == n:
                cpu.setdefault(str(run["gap_check"]), []).append(run["cpu_s"])
        if "none" in cpu:
            base = float(np.median(cpu["none"]))
            overhead[str(n)] = {mode: {"overhead": round(float(np.median(values)) / base - 1.0, 3), "runs": len(values)}
                                for mode, values in cpu.items() if mode != "none"}
    return overhead


if __name__ == "__main__":
    main()
