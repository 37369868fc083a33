"""The ``qeqprop`` command line: ``train``, ``gradcheck`` and ``compare``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from .costs import COSTS
from .datasets import DATASETS, load_dataset
from .ep import ESTIMATORS
from .gradcheck import DEFAULT_BETAS, gradcheck, random_tfim_instance
from .rules import RULES
from .solvers import SOLVERS
from .systems.registry import OPTIONS, REGISTRY, get_spec
from .train import fit

SYSTEMS = tuple(REGISTRY)
TRAIN_DATASETS = DATASETS + ("phases",)  # phases: the comparison's quantum-data task (comparison.phases)
SOLVER_CHOICES = SOLVERS + ("vqe", "gaussian", "fock")
# flags that set a registry option; None (not given) leaves the system's default
OPTION_FLAGS = ("graph", "gamma", "train_gamma", "temperature", "hbar", "cost", "solver", "ansatz", "depth", "per_term")


def parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE of ``--option``: VALUE as JSON (numbers, true/false, lists), else as a string."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ValueError(f"--option takes KEY=VALUE (e.g. --option delta=0.5), got {text!r}")
    if key not in OPTIONS:
        raise ValueError(f"--option {key}: unknown option; options are {sorted(OPTIONS)}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def system_options(args) -> dict:
    """The registry options given on the command line (flags and ``--option KEY=VALUE``)."""
    given = vars(args)
    options = {name: given[name] for name in OPTION_FLAGS}
    options = {k: v for k, v in options.items() if v is not None and v is not False}  # store_true flags: only when set
    for text in args.option or ():
        key, value = parse_option(text)
        if key in options:
            raise ValueError(f"option {key!r} is given twice (a flag and --option, or --option twice); give it once")
        options[key] = value
    return options


def load_training_data(args):
    """The ``--dataset`` split (``--features`` PCA features); "phases" is the TFIM-phase task."""
    if args.dataset == "phases":
        from .comparison.phases import load_phases

        if args.features is not None:
            raise ValueError("--features does not apply to --dataset phases (its 2 features are the chain's J and g)")
        return load_phases(seed=args.seed)
    return load_dataset(args.dataset, seed=args.seed, n_features=args.features)


def build_system(args, n_inputs: int, n_classes: int):
    """The learner named by ``--system`` (qeqprop.systems.registry) sized for the dataset: ``--hidden``
    hidden units, ``--outputs`` outputs (default one per class, one for two classes or regression)."""
    spec = get_spec(args.system)
    n_outputs = args.outputs or (1 if n_classes in (0, 2) else n_classes)
    return spec.build(n_inputs, n_outputs, args.hidden, **system_options(args))


def cmd_train(args) -> int:
    spec = get_spec(args.system)
    if args.gradient not in spec.rules:
        raise ValueError(f"--gradient {args.gradient} does not apply to system {args.system!r} ({spec.kind}); "
                         f"it supports {', '.join(spec.rules)}"
                         + ("; contrastive and coupled learning clamp outputs, which only classical systems do"
                            if args.gradient in ("contrastive", "coupled") else ""))
    if not spec.takes(args.dataset):
        raise ValueError(f"--system {args.system} {spec.needs}: use --dataset {' or '.join(spec.tasks)}")
    data = load_training_data(args)
    system = build_system(args, data.n_features, data.n_classes)
    out = Path(args.out) if args.out else None
    result = fit(
        system, data, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, beta=args.beta,
        estimator=args.estimator, gradient=args.gradient, seed=args.seed, shots=args.shots,
        checkpoint=out / "checkpoint.pkl" if out else None, resume=args.resume, progress=not args.json,
    )
    final = dict(result.final)
    size = system.describe()
    final.update({"system": args.system, "kind": spec.kind, "model": size["name"], "dataset": args.dataset,
                  "units": size["units"], "unit": size["unit"], "gradient": args.gradient, "estimator": args.estimator,
                  "beta": args.beta, "shots": args.shots})
    if size["unit"] == "qubits":
        final["n_qubits"] = size["units"]
    rule = f"{args.estimator} EP" if args.gradient == "ep" else f"{args.gradient} gradient"
    if out:
        from .plots import plot_history

        (out / "metrics.json").write_text(json.dumps({"final": final, "history": result.history}, indent=2))
        plot_history(result.history, out / "learning_curve.png",
                     f"{args.system} ({size['units']} {size['unit']}) on {args.dataset}, {rule}")
    if args.json:
        print(json.dumps(final))
    else:
        accuracy = f"test accuracy {final['test_accuracy']:.3f}, " if "test_accuracy" in final else ""
        print(f"{args.system} ({size['name']}, {size['units']} {size['unit']}) on "
              f"{args.dataset} by {rule}: {accuracy}test loss {final['test_loss']:.4f} after {len(result.history)} epochs "
              f"({final['seconds']:.1f} s)")
        if out:
            print(f"wrote {out / 'metrics.json'}, {out / 'learning_curve.png'}, {out / 'checkpoint.pkl'}")
    return 0


def cmd_gradcheck(args) -> int:
    system, params, x, y = random_tfim_instance(args.qubits, seed=args.seed, solver=args.solver)
    report = gradcheck(system, params, x, y, betas=args.betas)
    report.update({"n_qubits": args.qubits, "seed": args.seed})
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"random TFIM, {args.qubits} qubits, seed {args.seed}, gap {report['gap']:.4f}")
    print(f"reference vs central finite differences: {report['reference_vs_finite_difference']:.2e}")
    print("estimator  " + "  ".join(f"beta={b:<8.0e}" for b in report["betas"]) + "  slope")
    for name, errors in report["errors"].items():
        print(f"{name:<10} " + "  ".join(f"{e:<13.3e}" for e in errors) + f"  {report['slopes'][name]:.3f}")
    return 0


QUICK = {"seeds": 2, "epochs": 6, "tasks": ("xor", "phases")}


def cmd_compare(args) -> int:
    from .comparison import compare
    from .comparison.report import readme_block, update_readme, write_report
    from .comparison.systems import SYSTEMS as COMPARE_SYSTEMS
    from .comparison.tasks import TASKS

    def chosen(value, quick, default):  # None: not given (0 is passed on and refused by compare)
        return value if value is not None else (quick if args.quick else default)

    tasks = chosen(args.tasks, QUICK["tasks"], TASKS)
    seeds = chosen(args.seeds, QUICK["seeds"], 3)
    epochs = chosen(args.epochs, QUICK["epochs"], 15)
    report = compare(args.systems or COMPARE_SYSTEMS, tasks, seeds, epochs=epochs, beta=args.beta, estimator=args.estimator,
                     learning_rate=args.lr, batch_size=args.batch_size, progress=not args.json)
    paths = write_report(report, args.out)
    if args.readme:
        update_readme(args.readme, readme_block(report, "qeqprop " + " ".join(args.argv)))
        paths["readme"] = Path(args.readme)
    if args.json:
        print(json.dumps({"summary": report.summary(), "skipped": report.skipped, "files": {k: str(v) for k, v in paths.items()}}))
    else:
        print(paths["markdown"].read_text())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="qeqprop", description="Quantum equilibrium propagation.")
    sub = top.add_subparsers(dest="command", required=True)

    systems = "; ".join(f"{name}: {spec.description} ({spec.kind}; --hidden counts {spec.unit}s)" for name, spec in REGISTRY.items())
    train = sub.add_parser("train", help="train a learner by EP and print test accuracy")
    train.add_argument("--system", choices=SYSTEMS, default="tfim", help=systems)
    train.add_argument("--dataset", choices=TRAIN_DATASETS, default="iris")
    train.add_argument("--features", type=int, default=None, help="PCA features (default: all)")
    train.add_argument("--hidden", type=int, default=3, help="hidden units (see --system for what they are)")
    train.add_argument("--outputs", type=int, default=None, help="outputs (default: one per class, 1 for 2 classes)")
    # system options: None (not given) keeps the system's default; given to a system that cannot use it, an error
    train.add_argument("--graph", default=None, choices=("complete", "chain", "layered"),
                       help="coupling graph (default: complete; phase_oscillators: layered)")
    train.add_argument("--gamma", type=float, default=None, help="transverse field (default 1.0)")
    train.add_argument("--train-gamma", action="store_true", help="make transverse fields trainable")
    train.add_argument("--temperature", type=float, default=None, help="0: ground states; T > 0: Gibbs states (default 0; ising: 1)")
    train.add_argument("--hbar", type=float, default=None, help="qho: Planck constant (default 1; 0 = classical spring network)")
    train.add_argument("--cost", choices=sorted(COSTS), default=None, help="cost on the outputs (default: mse)")
    train.add_argument("--solver", choices=SOLVER_CHOICES, default=None,
                       help="equilibrium solver (default: auto); tfim: 'vqe' for variational circuits (PennyLane)")
    train.add_argument("--ansatz", choices=("hva", "hardware_efficient"), default=None, help="vqe ansatz (default: hva)")
    train.add_argument("--depth", type=int, default=None, help="vqe circuit layers (default 2)")
    train.add_argument("--per-term", action="store_true", help="vqe HVA: one angle per Hamiltonian term")
    train.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                       help="any other system option, repeatable (e.g. --option delta=1.0 --option train_delta=true for xxz); "
                            "options: " + ", ".join(sorted(OPTIONS)))
    train.add_argument("--beta", type=float, default=1e-2)
    train.add_argument("--estimator", choices=ESTIMATORS, default="centered")
    train.add_argument("--gradient", choices=tuple(RULES), default="ep",
                       help="'reference' trains with the exact gradient; 'contrastive' and 'coupled' are classical learning rules")
    train.add_argument("--shots", type=int, default=None, help="simulated shots per EP phase (default: exact expectations)")
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=0.03)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="folder for metrics.json, learning_curve.png, checkpoint.pkl")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pkl")
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    train.set_defaults(func=cmd_train)

    check = sub.add_parser("gradcheck", help="EP estimators vs the exact gradient on a random instance")
    check.add_argument("--qubits", type=int, default=6)
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--solver", choices=SOLVERS, default="auto")
    check.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS))
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_gradcheck)

    from .comparison.systems import AVAILABLE
    from .comparison.tasks import TASKS

    comp = sub.add_parser("compare", help="quantum vs classical EP: every system on every task, same rule and budget")
    comp.add_argument("--systems", nargs="+", choices=AVAILABLE, default=None,
                      help="default: the standard line-up (comparison.systems.SYSTEMS); any registered system")
    comp.add_argument("--tasks", nargs="+", choices=TASKS, default=None, help="default: all (quick: xor phases)")
    comp.add_argument("--seeds", type=int, default=None, help="seeds 0..K-1 (default 3; quick 2)")
    comp.add_argument("--epochs", type=int, default=None, help="default 15 (quick 6)")
    comp.add_argument("--beta", type=float, default=0.05)
    comp.add_argument("--estimator", choices=ESTIMATORS, default="centered")
    comp.add_argument("--lr", type=float, default=0.05)
    comp.add_argument("--batch-size", type=int, default=16)
    comp.add_argument("--quick", action="store_true", help="CI settings: xor and phases, 2 seeds, 6 epochs (< 2 min)")
    comp.add_argument("--out", default="benchmarks/results/compare", help="folder for compare.json, compare.md, PNGs")
    comp.add_argument("--readme", default=None, help="rewrite this README's compare block with the table")
    comp.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    comp.set_defaults(func=cmd_compare)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # compare --readme records the command
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"qeqprop: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
