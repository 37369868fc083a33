"""Summarise the latest benchmark JSON files as a Markdown table; --readme rewrites the block
between the results markers in README.md, so README numbers are never typed by hand.

    python benchmarks/summary.py --readme README.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qeqprop.markdown import replace_block

START, END = "<!-- results:start -->", "<!-- results:end -->"


def load(folder: Path, name: str):
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows(folder: Path) -> list[tuple[str, str, str]]:
    out = []
    for suffix, label in (("", "TFIM"), ("_xxz", "XXZ chain")):
        ground = load(folder, f"ground_state{suffix}")
        if ground:
            ours = ground["seconds"].get("qeqprop (JAX Lanczos)", {})
            for n, seconds in ours.items():
                others = ", ".join(f"{name} {ratio:.1f}x" for name, per in ground["speedup_vs"].items()
                                   if not name.startswith("qeqprop (JAX") and (ratio := per.get(n)) is not None)
                out.append(("ground_state.py" + (" --model xxz" if suffix else ""), f"{label} ground state N={n}: {seconds:.3f} s",
                            f"time of others / ours: {others}"))
        paired = load(folder, f"ground_state{suffix}_paired")
        if paired:
            for name, per in paired["ratio_to_jax"].items():
                if name.startswith("qeqprop (JAX"):
                    continue
                ratios = ", ".join(f"N={n}: {ratio:.1f}x" for n, ratio in per.items())
                out.append(("ground_state.py" + (" --model xxz" if suffix else "") + " --paired",
                            f"{label}: {name} / qeqprop, alternating, {paired['repeats']} rounds",
                            f"median per-round time ratio: {ratios}"))
    bandwidth = load(folder, "bandwidth")
    if bandwidth:
        out.append(("bandwidth.py", f"TFIM H psi against a triad of {bandwidth['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s",
                    ", ".join(f"N={n}: {row['apply_s'] * 1e3:.1f} ms ({row['apply_fraction']:.0%})"
                              for n, row in bandwidth["rows"].items())))
    ep = load(folder, "ep_gradient")
    if ep:
        for n, row in ep["rows"].items():
            certified = row.get("ratio_certified")
            with_gap = f" ({certified:.2f}x with its certified gap)" if certified is not None and certified == certified else ""
            out.append(("ep_gradient.py", f"centered EP N={n}: {row['centered_ep_s']:.3f} s",
                        f"{row['ratio']:.2f}x one cold ground state{with_gap}, peak RSS {row['peak_rss_gib']:.2f} GiB"))
    throughput = load(folder, "training_throughput")
    if throughput:
        for n, row in throughput["rows"]["tfim"].items():
            out.append(("training_throughput.py", f"TFIM N={n} EP gradients/s",
                        f"per sample {row['per_sample']:.0f}, batched {row['batched']:.0f} "
                        f"(block lengths kept across calls: {row['batched_kept']:.0f})"))
        general = throughput["rows"]["general_complex_10q"]
        out.append(("training_throughput.py", f"complex Pauli 10q, {general['n_params']} params",
                    f"exact: per sample {general['exact_per_sample']:.0f}/s, batched {general['exact_batched']:.0f}/s "
                    f"(kept {general['exact_batched_kept']:.0f}/s); {general['shots_per_phase']:.0f} shots/phase: per sample "
                    f"{general['shots_per_sample']:.0f}/s, batched {general['shots_batched']:.0f}/s "
                    f"(kept {general['shots_batched_kept']:.0f}/s)"))
    shots = load(folder, "shots_beta")
    if shots:
        slopes = ", ".join(f"{k} {v:+.2f}" for k, v in shots["slopes"].items())
        out.append(("shots_beta.py", "log-log slopes of gradient error vs beta", slopes))
    qho = load(folder, "qho_gradient")
    if qho:
        out.append(("qho_gradient.py", "Gaussian centered EP, oscillators",
                    ", ".join(f"N={r['n']}: {r['centered_ep_s']:.3g} s" for r in qho["results"])))
    return out


def table(folder: Path) -> str:
    lines = ["| script | measured | result |", "| --- | --- | --- |"]
    lines += [f"| `{a}` | {b} | {c} |" for a, b, c in rows(folder)]
    machine = (load(folder, "ground_state") or load(folder, "shots_beta") or {}).get("machine", {})
    if machine:
        lines.append(f"\nMeasured on {machine.get('cpu_count')} cores, {machine.get('platform')}, {machine.get('date')}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--readme", default=None)
    args = parser.parse_args(argv)
    text = table(Path(args.results))
    if args.readme:
        readme = Path(args.readme)
        if START not in readme.read_text():
            readme.write_text(readme.read_text() + f"\n{START}\n{END}\n")
        replace_block(readme, START, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
