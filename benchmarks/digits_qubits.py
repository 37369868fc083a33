"""Test accuracy of TFIM networks on 10-class digits as the qubit count grows (issue 20, item 2).

The ``digits-tfim`` preset (10 output qubits, complete graph, the 64 pixels as trainable input
fields h_j(x) = b_j + sum_i W_ij x_i, centered EP, batched Lanczos ground states) with 0, 2, 4, 6
hidden qubits: 10, 12, 14 and 16 qubits. Fewer than 10 qubits cannot hold one output qubit per
class. Each size runs ``qeqprop train --preset digits-tfim --hidden H --json`` in its own process
(its wall time and CPU time its own); JSON + PNG to --out.

    python benchmarks/digits_qubits.py --hidden 0 2 4 6 --out benchmarks/results
    python benchmarks/digits_qubits.py --hidden 6 --merge     # add a size to the stored sweep
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, write_json  # noqa: E402


def run_size(hidden: int, epochs: int | None, seed: int) -> dict:
    """One ``qeqprop train --preset digits-tfim`` run: its JSON line plus wall and CPU seconds."""
    command = [sys.executable, "-c", "import sys; from qeqprop.cli import main; sys.exit(main())", "train", "--preset", "digits-tfim", "--hidden", str(hidden),
               "--seed", str(seed), "--json", "--quiet"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    keep = ("n_qubits", "test_accuracy", "train_accuracy", "test_loss", "epoch", "seconds")
    row = {k: result[k] for k in keep if k in result}
    row.update(hidden=hidden, wall_s=time.perf_counter() - start,
               cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
               load_average=os.getloadavg()[0])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[0, 2, 4, 6])
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--merge", action="store_true", help="keep the stored rows of other sizes (each row says its load)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    path = out / "digits_qubits.json"
    stored = json.loads(path.read_text())["rows"] if args.merge and path.exists() else []
    rows = [r for r in stored if r["hidden"] not in args.hidden]
    for hidden in args.hidden:
        rows.append(run_size(hidden, args.epochs, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: r["hidden"])
    write_json(path, {"machine": machine_info(), "rows": rows})
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["n_qubits"] for r in rows], [r["test_accuracy"] for r in rows], "o-", label="test")
    ax.plot([r["n_qubits"] for r in rows], [r["train_accuracy"] for r in rows], "s--", label="train")
    ax.axhline(0.9, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("qubits (10 outputs + hidden)")
    ax.set_ylabel("accuracy, digits (10 classes)")
    ax.set_title("TFIM networks trained by centered EP")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "digits_qubits.png", dpi=150)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
