"""The ``qeqprop`` command line: ``train``, ``presets``, ``predict``, ``gradcheck`` and ``compare``.

``qeqprop train`` writes into ``--out``::

    checkpoint.npz   params, optimizer state and history after every epoch (qeqprop.checkpoint)
    metrics.jsonl    one JSON object per epoch, appended as training goes (a killed run keeps its curve)
    metrics.json     {"qeqprop_version", "command", "config", "system", "final", "history"}
    config.toml      every setting the run used: ``qeqprop train --config OUT/config.toml`` reruns it
    learning_curve.png

Errors in the arguments, the config or the files end as ``qeqprop: error: ...`` with exit
status 2; Ctrl-C ends with one line saying what the checkpoint holds and exit status 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .checkpoint import CheckpointMismatchError, load_checkpoint
from .cli_config import (
    HelpFormatter,
    SlopeBetas,
    dump_toml,
    integer,
    number,
    presets,
    read_config,
    read_preset,
    settings_for,
)
from .costs import COSTS
from .datasets import DATASETS, SCALINGS, load_dataset
from .ep import ESTIMATORS
from .gradcheck import DEFAULT_BETAS, GRAPHS, gradcheck, random_tfim_instance
from .rules import RULES
from .solvers import SOLVERS
from .systems.registry import OPTIONS, REGISTRY, get_spec
from .train import LR_SCHEDULES, fit

SYSTEMS = tuple(REGISTRY)
QUANTUM_DATA = ("phases", "annni", "xxz_field")  # the comparison's quantum-data tasks (comparison.phases, .quantum_data)
TRAIN_DATASETS = DATASETS + QUANTUM_DATA
SOLVER_CHOICES = SOLVERS + ("vqe", "gaussian", "fock")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")  # optax optimizers by name, each at --lr
# flags that set a registry option; None (not given) leaves the system's default
OPTION_FLAGS = ("graph", "gamma", "train_gamma", "temperature", "hbar", "cost", "solver", "ansatz", "depth", "per_term")
# train flags that say where and how to run, not what: left out of the recorded config
NOT_RECORDED = ("config", "preset", "out", "resume", "overwrite", "json", "quiet", "save_model")
CHECKPOINT, LOG, METRICS, CONFIG, CURVE = "checkpoint.npz", "metrics.jsonl", "metrics.json", "config.toml", "learning_curve.png"
INTERRUPTED = 130  # the shell's status for a process ended by SIGINT (128 + 2)

log = logging.getLogger("qeqprop")


# ----------------------------------------------------------------------------- logging

class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(quiet: bool) -> None:
    """The "qeqprop" logger prints to stderr at INFO (WARNING with ``--quiet``); idempotent."""
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)


# ----------------------------------------------------------------------------- train

def option_key(text: str) -> str:
    """The KEY of an ``--option KEY=VALUE`` entry, with dashes as underscores."""
    return text.partition("=")[0].strip().replace("-", "_")


def parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE of ``--option``: VALUE as JSON (numbers, true/false, lists), else as a string."""
    _, sep, value = text.partition("=")
    key = option_key(text)
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
    options = {k: v for k, v in options.items() if v is not None and v is not False}  # boolean flags: only when set
    for text in args.option or ():
        key, value = parse_option(text)
        if key in options:
            raise ValueError(f"option {key!r} is given twice (a flag and --option, or --option twice); give it once")
        options[key] = value
    return options


def load_training_data(args):
    """The ``--dataset`` split (``--features`` PCA features, ``--scaling``); the quantum-data tasks
    (QUANTUM_DATA: "phases" the TFIM phase, "annni", "xxz_field") draw ``--samples`` chains."""
    if args.dataset in QUANTUM_DATA:
        from .comparison.phases import load_phases
        from .comparison.quantum_data import load_chain_task

        if args.features is not None or args.scaling is not None:
            raise ValueError(f"--features and --scaling do not apply to --dataset {args.dataset} (its 2 features are the chain's "
                             "Hamiltonian parameters)")
        sizes = {} if args.samples is None else {"n_samples": args.samples}
        if args.dataset == "phases":
            return load_phases(seed=args.seed, **sizes)
        return load_chain_task(args.dataset, seed=args.seed, **sizes)
    if args.samples is not None:
        raise ValueError(f"--samples sets the size of the quantum-data tasks {QUANTUM_DATA}; --dataset {args.dataset} has a fixed size")
    return load_dataset(args.dataset, seed=args.seed, n_features=args.features, scaling=args.scaling)


def build_system(args, n_inputs: int, n_classes: int):
    """The learner named by ``--system`` (qeqprop.systems.registry) sized for the dataset: ``--hidden``
    hidden units, ``--outputs`` outputs (default one per class, one for two classes or regression)."""
    spec = get_spec(args.system)
    n_outputs = args.outputs if args.outputs is not None else (1 if n_classes in (0, 2) else n_classes)
    options = system_options(args)
    reads_chain = "chain" in spec.options and args.dataset in QUANTUM_DATA  # the sensor reads the task's own data chain
    if reads_chain and options.setdefault("chain", args.dataset) != args.dataset:
        raise ValueError(f"option chain={options['chain']!r} is not the chain of --dataset {args.dataset}: drop the option "
                         f"or set chain={args.dataset}")
    return spec.build(n_inputs, n_outputs, args.hidden, **options)


def apply_config(top: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace) -> argparse.Namespace:
    """Reparse ``argv`` with the ``--preset`` then ``--config`` settings as defaults (flags given
    on the command line still win); qeqprop.cli_config describes the files."""
    if args.preset is None and args.config is None:
        return args
    train = top.subcommands["train"]
    merged: dict[str, Any] = {}
    options: list[str] = []  # --option KEY=VALUE entries: the config's replace the preset's of the same key
    for given, read, source in ((args.preset, read_preset, f"preset {args.preset!r}"),
                                (args.config, read_config, f"--config {args.config}")):
        if given is not None:
            settings = settings_for(train, read(given), source, ignore=("config", "preset"))
            options = overridden(options, settings.pop("option", None) or [])
            merged.update(settings)
    train.set_defaults(**merged, option=options or None)
    args = top.parse_args(argv)
    if options:  # argparse appended the command line's entries to the defaults: those win by key too
        args.option = overridden(options, args.option[len(options):])
    return args


def overridden(base: list[str], later: list[str]) -> list[str]:
    """``--option`` entries ``base`` without those whose key ``later`` sets, then ``later`` (a
    command line's repeated key stays repeated: ``system_options`` refuses it)."""
    keys = {option_key(text) for text in later}
    return [text for text in base if option_key(text) not in keys] + list(later)


def prepare_out(args) -> Path | None:
    """Check ``--out`` before anything trains: a writable folder (made if missing); ``--resume``
    needs its checkpoint, a fresh run refuses to replace one unless ``--overwrite``."""
    if args.out is None:
        if args.resume:
            raise ValueError("--resume needs --out: the folder whose checkpoint.npz to continue")
        return None
    out = Path(args.out)
    checkpoint = out / CHECKPOINT
    if args.resume and not checkpoint.exists():
        raise ValueError(f"--resume: there is no checkpoint at {checkpoint}; check --out, or leave out --resume to start afresh")
    if not args.resume and checkpoint.exists() and not args.overwrite:
        raise ValueError(f"{checkpoint} holds an earlier run: add --resume to continue it, --overwrite to start "
                         "afresh over it, or choose another --out")
    writable_folder(out, "--out")
    return out


def clear_run(out: Path) -> None:
    """Remove an earlier run's files from ``out`` (``--overwrite``, once every check has passed)."""
    for name in (CHECKPOINT, LOG, METRICS, CONFIG, CURVE):
        (out / name).unlink(missing_ok=True)


def writable_folder(out: Path, flag: str) -> None:
    """Make ``out`` (and parents) and prove a file can be written there (ValueError naming ``flag``)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".qeqprop-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{flag} {out}: cannot write there ({exc.strerror or exc}); choose a writable folder") from None


def recorded_config(args, train: argparse.ArgumentParser, n_outputs: int) -> dict[str, Any]:
    """Every train setting this run used (defaults, preset, config and flags merged), ``outputs``
    resolved; what metrics.json and config.toml record."""
    given = vars(args)
    config = {action.dest: given[action.dest] for action in train._actions
              if action.option_strings and action.dest not in NOT_RECORDED + ("help",)}
    config["outputs"] = n_outputs
    return config


def cmd_train(args) -> int:
    spec = get_spec(args.system)
    if args.gradient not in spec.rules:
        raise ValueError(f"--gradient {args.gradient} does not apply to system {args.system!r} ({spec.kind}); "
                         f"it supports {', '.join(spec.rules)}"
                         + ("; contrastive and coupled learning clamp outputs, which only classical systems do"
                            if args.gradient in ("contrastive", "coupled") else ""))
    if not spec.takes(args.dataset):
        raise ValueError(f"--system {args.system} {spec.needs}: use --dataset {' or '.join(spec.tasks)}")
    out = prepare_out(args)
    data = load_training_data(args)
    system = build_system(args, data.n_features, data.n_classes)
    config = recorded_config(args, args.subparser, system.n_outputs)
    if args.save_model:  # refuse a system without a saved form, or an unwritable path, before training
        from .serialization import system_spec

        system_spec(system)
        writable_folder(Path(args.save_model).parent, "--save-model's folder")
    checkpoint = out / CHECKPOINT if out else None
    if args.resume:
        log.info("resuming from %s", checkpoint)
    elif out and args.overwrite:
        clear_run(out)
    optimizer = args.optimizer
    if args.layer_lr is not None:  # per-layer rates of a layered Hopfield network (classical.hopfield.layer_learning_rates)
        from classical.hopfield import layer_learning_rates

        if args.system != "hopfield":
            raise ValueError(f"--layer-lr applies to --system hopfield (layered couplings W_k), not {args.system}")
        optimizer = layer_learning_rates(system, args.optimizer, args.lr, args.layer_lr)
    try:
        result = fit(
            system, data, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, optimizer=optimizer,
            lr_schedule=args.lr_schedule, beta=args.beta, estimator=args.estimator, gradient=args.gradient, seed=args.seed, shots=args.shots,
            checkpoint=checkpoint, resume=args.resume, log=out / LOG if out else None, progress=not (args.json or args.quiet),
        )
    except CheckpointMismatchError as exc:
        raise ValueError(f"{exc}\n(command line: resume with the settings the checkpoint names, or start afresh with "
                         "another --out or --overwrite)") from None
    except KeyboardInterrupt:
        print(f"qeqprop: {interrupt_message(checkpoint)}", file=sys.stderr)
        return INTERRUPTED
    size = system.describe()
    final = final_metrics(args, spec.kind, size, result.final)
    if args.bp_reference:
        final.update(bp_reference_metrics(args, system, data))
    rule = f"{args.estimator} EP" if args.gradient == "ep" else f"{args.gradient} gradient"
    if out:
        write_run(out, args, config, size, final, result.history, f"{args.system} ({size['units']} {size['unit']}) on {args.dataset}, {rule}")
    if args.save_model:
        from .serialization import save_model

        save_model(args.save_model, system, result.params, metadata={"config": config, "final": final})
        log.info("saved the model to %s", args.save_model)
    if args.json:
        print(json.dumps(final))
    elif not result.history:
        print(f"nothing trained (--epochs {args.epochs}): {args.system} ({size['name']}, {size['units']} {size['unit']}) "
              f"on {args.dataset} keeps its initial parameters")
    else:
        accuracy = f"test accuracy {final['test_accuracy']:.3f}, " if "test_accuracy" in final else ""
        print(f"{args.system} ({size['name']}, {size['units']} {size['unit']}) on "
              f"{args.dataset} by {rule}: {accuracy}test loss {final['test_loss']:.4f} after {len(result.history)} epochs "
              f"({final['seconds']:.1f} s)")
    return 0


def bp_reference_metrics(args, system, data) -> dict:
    """``--bp-reference``: the backprop MLP of the system's architecture on the same split, same
    epochs, batch size, optimizer and seed, learning rate ``--bp-lr`` (default ``--lr``);
    qeqprop.backprop.bp_reference gives its fields (bp_test_accuracy, ...)."""
    from .backprop import bp_reference

    if data.n_classes < 2:
        raise ValueError(f"--bp-reference needs a classification dataset; {args.dataset} is a regression task")
    log.info("training the backprop reference MLP")
    return bp_reference(system, data, args.hidden, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.bp_lr if args.bp_lr is not None else args.lr, optimizer=args.optimizer, seed=args.seed)


def final_metrics(args, kind: str, size: dict, metrics: dict) -> dict:
    """The last epoch's metrics and what ran: system, model, units, dataset, rule (``--json`` prints it)."""
    final = dict(metrics)
    final.update({"system": args.system, "kind": kind, "model": size["name"], "dataset": args.dataset,
                  "units": size["units"], "unit": size["unit"], "gradient": args.gradient, "estimator": args.estimator,
                  "beta": args.beta, "shots": args.shots})
    if size["unit"] == "qubits":
        final["n_qubits"] = size["units"]
    return final


def interrupt_message(checkpoint: Path | None) -> str:
    """The one line Ctrl-C prints: what the checkpoint holds and how to continue."""
    if checkpoint is None:
        return "interrupted; nothing was saved (no --out)"
    if not checkpoint.exists():
        return f"interrupted before the first checkpoint; nothing was written to {checkpoint}"
    saved = load_checkpoint(checkpoint)
    within = f" and {saved['step']} minibatches of epoch {saved['epoch'] + 1}" if saved["step"] else ""
    return f"interrupted; the checkpoint at {checkpoint} holds epoch {saved['epoch']}{within}; rerun with --resume"


def write_run(out: Path, args, config: dict, size: dict, final: dict, history: list[dict], title: str) -> None:
    """metrics.json (version, command, config, system, final, history), config.toml and the curve."""
    command = shlex.join(["qeqprop", *args.argv])
    record = {"qeqprop_version": __version__, "command": command, "config": config, "system": size,
              "final": final, "history": history}
    (out / METRICS).write_text(json.dumps(record, indent=2))
    (out / CONFIG).write_text(dump_toml(config, f"qeqprop {__version__}: {command}\nrerun: qeqprop train --config {out / CONFIG}"))
    written = [out / METRICS, out / CONFIG, out / CHECKPOINT, out / LOG]
    if history:
        from .plots import plot_history

        caption = (f"cost {config.get('cost') or 'mse'}, {config['optimizer']} lr {config['lr']}, batch {config['batch_size']}, "
                   f"beta {config['beta']}, seed {config['seed']}")
        written.append(plot_history(history, out / CURVE, title, caption=caption))
    log.info("wrote %s", ", ".join(str(p) for p in written))


# ----------------------------------------------------------------------------- other commands

def cmd_presets(args) -> int:
    for name, description in presets().items():
        print(f"{name:<16} {description}")
    return 0


def read_inputs(path: str) -> np.ndarray:
    """Samples from a .npy file or a comma-separated text file (one sample per row)."""
    try:
        x = np.load(path) if str(path).endswith(".npy") else np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--input {path}: cannot read samples ({exc}); give a .npy array or a CSV file, one sample per row") from None
    return np.atleast_2d(x)


def cmd_predict(args) -> int:
    from .serialization import load_model

    model = load_model(args.model)
    outputs = np.asarray(model.predict(read_inputs(args.input)))
    if args.out:
        if args.out.endswith(".npy"):
            np.save(args.out, outputs)
        else:
            np.savetxt(args.out, outputs.reshape(len(outputs), -1), delimiter=",")
        log.info("wrote %d predictions to %s", len(outputs), args.out)
    else:
        np.savetxt(sys.stdout, outputs.reshape(len(outputs), -1), delimiter=",")
    return 0


def cmd_gradcheck(args) -> int:
    system, params, x, y = random_tfim_instance(args.qubits, seed=args.seed, solver=args.solver, graph=args.graph)
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


# --quick: a tuned run of seconds per job (CI, a first look). Its tasks are the two small ones; digits64 is left
# out because one of its epochs trains networks of up to 19,210 parameters (12 qubits for the TFIM) on 1,257 images,
# seconds per epoch for each system, so its column alone would outlast the whole quick run's few minutes
QUICK = {"seeds": 3, "epochs": 4, "tasks": ("xor", "phases"), "trials": 3, "trial_epochs": 2}  # quick: tuned


def compare_out(args) -> Path:
    """``--out`` of compare (default: a fresh timestamped folder); an existing non-empty folder is
    refused unless ``--overwrite`` or ``--resume``, so tracked results are never replaced by accident."""
    out = Path(args.out or time.strftime("qeqprop-compare-%Y%m%d-%H%M%S"))
    if out.is_dir() and any(out.iterdir()) and not (args.overwrite or args.resume):
        raise ValueError(f"--out {out} is not empty; choose a new folder, add --resume to reuse its finished jobs "
                         "or --overwrite to replace its results")
    writable_folder(out, "--out")
    return out


def cmd_compare(args) -> int:
    from .comparison import compare
    from .comparison.report import readme_block, update_readme, write_report
    from .comparison.systems import SYSTEMS as COMPARE_SYSTEMS
    from .comparison.tasks import TASKS

    def chosen(value, quick, default):  # None: not given
        return value if value is not None else (quick if args.quick else default)

    out = compare_out(args)
    if args.overwrite and not args.resume:
        shutil.rmtree(out / "jobs", ignore_errors=True)  # --overwrite starts afresh; --resume reuses finished jobs
    tasks = chosen(args.tasks, QUICK["tasks"], TASKS)
    seeds = chosen(args.seeds, QUICK["seeds"], 5)
    epochs = chosen(args.epochs, QUICK["epochs"], 15)
    tune = args.tune or args.quick
    scheduler = None if args.scheduler == "none" else args.scheduler
    # compare shows one progress bar over its runs; the inner fits' per-record lines (dozens per
    # run) would bury it, so they log only warnings while it runs
    records = logging.getLogger("qeqprop.train")
    level = records.level
    records.setLevel(logging.WARNING)
    try:
        report = compare(args.systems or COMPARE_SYSTEMS, tasks, seeds, epochs=epochs, beta=args.beta,
                         estimator=args.estimator, learning_rate=args.lr, batch_size=args.batch_size, tune=tune,
                         trials=chosen(args.trials, QUICK["trials"], 20),
                         trial_epochs=chosen(args.trial_epochs, QUICK["trial_epochs"], None),
                         scheduler=scheduler, workers=args.workers, out=out, progress=not (args.json or args.quiet))
    finally:
        records.setLevel(level)
    paths = write_report(report, out)
    if args.readme:
        update_readme(args.readme, readme_block(report, "qeqprop " + " ".join(args.argv)))
        paths["readme"] = Path(args.readme)
    if args.json:
        print(json.dumps({"summary": report.summary(), "gaps": report.gaps(), "skipped": report.skipped,
                          "files": {k: str(v) for k, v in paths.items()}}))
    else:
        if not args.quiet:
            print(paths["markdown"].read_text())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# ----------------------------------------------------------------------------- parser

def add_output_flags(command: argparse.ArgumentParser, what: str) -> None:
    """--json and --quiet, shared by the commands that train."""
    command.add_argument("--json", action="store_true", help=f"print {what} as one JSON object (no progress bars)")
    command.add_argument("--quiet", action="store_true", help="no progress bars or log lines, only the final line")


def add_train_parser(sub) -> argparse.ArgumentParser:
    systems = "; ".join(f"{name}: {spec.description} ({spec.kind}; --hidden counts {spec.unit}s)" for name, spec in REGISTRY.items())
    train = sub.add_parser("train", help="train a learner by EP and print test accuracy", formatter_class=HelpFormatter,
                           description="Train a learner by EP. Settings merge in this order, later wins: flag defaults, "
                                       "--preset, --config, the flags given.")
    train.add_argument("--config", default=None, metavar="FILE",
                       help="TOML file of settings (keys: these flags without dashes), or a run's metrics.json")
    train.add_argument("--preset", default=None, metavar="NAME", help="a shipped preset (qeqprop presets lists them)")
    train.add_argument("--system", choices=SYSTEMS, default="tfim", help=systems)
    train.add_argument("--dataset", choices=TRAIN_DATASETS, default="iris", help="training data (phases, annni, xxz_field: quantum-data tasks, for --system sensor)")
    train.add_argument("--samples", type=integer(10), default=None,
                       help=f"chains drawn for a quantum-data task {QUANTUM_DATA}, 30%% of them the test split (default 240 phases, 300 else)")
    train.add_argument("--features", type=integer(1), default=None, help="PCA features (default: all)")
    train.add_argument("--scaling", choices=SCALINGS, default=None,
                       help="feature scaling: 'standard' (training mean and std) or 'unit' (image pixels / max pixel, "
                            "in [0, 1]); default: unit for mnist, standard otherwise")
    train.add_argument("--hidden", type=integer(0), default=3, help="hidden units (see --system for what they are)")
    train.add_argument("--outputs", type=integer(1), default=None, help="outputs (default: one per class, 1 for 2 classes)")
    # system options: None (not given) keeps the system's default; given to a system that cannot use it, an error
    train.add_argument("--graph", default=None, choices=("complete", "chain", "layered"),
                       help="coupling graph (default: complete; phase_oscillators: layered)")
    train.add_argument("--gamma", type=number(), default=None, help="transverse field (default 1.0)")
    train.add_argument("--train-gamma", action=argparse.BooleanOptionalAction, default=False,
                       help="make transverse fields trainable (default: fixed)")
    train.add_argument("--temperature", type=number(0.0), default=None,
                       help="0: ground states; T > 0: Gibbs states (default 0; ising: 1)")
    train.add_argument("--hbar", type=number(0.0), default=None, help="qho: Planck constant (default 1; 0 = classical spring network)")
    train.add_argument("--cost", choices=sorted(COSTS), default=None, help="cost on the outputs (default: mse)")
    train.add_argument("--solver", choices=SOLVER_CHOICES, default=None,
                       help="equilibrium solver (default: auto); tfim: 'vqe' for variational circuits (PennyLane)")
    train.add_argument("--ansatz", choices=("hva", "hardware_efficient"), default=None, help="vqe ansatz (default: hva)")
    train.add_argument("--depth", type=integer(1), default=None, help="vqe circuit layers (default 2)")
    train.add_argument("--per-term", action=argparse.BooleanOptionalAction, default=False,
                       help="vqe HVA: one angle per Hamiltonian term (default: one per layer)")
    train.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                       help="any other system option, repeatable (e.g. --option delta=1.0 --option train_delta=true for xxz); "
                            "options: " + ", ".join(sorted(OPTIONS)))
    train.add_argument("--beta", type=number(positive=True), default=1e-2, help="EP nudge strength")
    train.add_argument("--estimator", choices=ESTIMATORS, default="centered", help="EP estimator (centered: O(beta^2) bias)")
    train.add_argument("--gradient", choices=tuple(RULES), default="ep",
                       help="'reference' trains with the exact gradient; 'contrastive' and 'coupled' are classical learning rules")
    train.add_argument("--shots", type=integer(1), default=None, help="simulated shots per EP phase (default: exact expectations)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optax optimizer at learning rate --lr")
    train.add_argument("--epochs", type=integer(0), default=20, help="epochs in total (a resumed run counts the ones done)")
    train.add_argument("--batch-size", type=integer(1), default=16, help="samples per minibatch (one optimizer step)")
    train.add_argument("--lr", type=number(positive=True), default=0.03, help="learning rate")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                       help="constant, or cosine: --lr decays as (1 + cos(pi k / K)) / 2 over the run's K minibatches")
    train.add_argument("--layer-lr", type=number(positive=True), nargs="+", default=None, metavar="FACTOR",
                       help="hopfield: one factor of --lr per coupling layer, input side first (Scellier & Bengio 2017's "
                            "per-layer rates; default: one rate)")
    train.add_argument("--seed", type=integer(0), default=0, help="seed of the data split, init, shuffling and shots")
    train.add_argument("--bp-reference", action=argparse.BooleanOptionalAction, default=False,
                       help="also train the backprop MLP of the same architecture on the same split (qeqprop.backprop) "
                            "and report bp_test_accuracy (default: off)")
    train.add_argument("--bp-lr", type=number(positive=True), default=None, help="learning rate of --bp-reference (default: --lr)")
    train.add_argument("--out", default=None, metavar="FOLDER",
                       help="folder for checkpoint.npz, metrics.jsonl, metrics.json, config.toml, learning_curve.png")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz (its settings must match)")
    train.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds an earlier run")
    train.add_argument("--save-model", default=None, metavar="FILE", help="save the trained model there (qeqprop predict reads it)")
    add_output_flags(train, "the final metrics")
    train.set_defaults(func=cmd_train, subparser=train)
    return train


def parser() -> argparse.ArgumentParser:
    """The ``qeqprop`` parser; ``parser().subcommands[name]`` is each subcommand's."""
    top = argparse.ArgumentParser(prog="qeqprop", description="Quantum equilibrium propagation.", formatter_class=HelpFormatter)
    top.add_argument("--version", action="version", version=f"qeqprop {__version__}", help="print the version and exit")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    top.subcommands = {"train": add_train_parser(sub)}

    listing = sub.add_parser("presets", help="list the shipped presets (qeqprop train --preset NAME)", formatter_class=HelpFormatter)
    listing.set_defaults(func=cmd_presets)
    top.subcommands["presets"] = listing

    predict = sub.add_parser("predict", help="outputs of a saved model (train --save-model) on samples", formatter_class=HelpFormatter)
    predict.add_argument("--model", required=True, metavar="FILE", help="a model written by qeqprop train --save-model")
    predict.add_argument("--input", required=True, metavar="FILE", help="samples, one per row: a .npy array or a CSV file")
    predict.add_argument("--out", default=None, metavar="FILE", help="write the outputs there (.npy, else CSV); default: print CSV")
    predict.set_defaults(func=cmd_predict)
    top.subcommands["predict"] = predict

    check = sub.add_parser("gradcheck", help="EP estimators vs the exact gradient on a random instance", formatter_class=HelpFormatter)
    check.add_argument("--qubits", type=integer(2), default=6, help="qubits of the random TFIM instance")
    check.add_argument("--seed", type=integer(0), default=0, help="seed of the random instance")
    check.add_argument("--solver", choices=SOLVERS, default="auto", help="ground-state solver")
    check.add_argument("--graph", choices=GRAPHS, default="random",
                       help="coupling graph: 'random' (chain plus random longer edges) or 'chain' (nearest neighbours: --solver mps)")
    check.add_argument("--betas", type=number(positive=True), nargs="+", action=SlopeBetas, default=list(DEFAULT_BETAS),
                       help="nudge strengths (>= 2 distinct; the error-vs-beta slope is fitted over them)")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    check.set_defaults(func=cmd_gradcheck)
    top.subcommands["gradcheck"] = check

    from .comparison.systems import AVAILABLE
    from .comparison.tasks import TASKS

    comp = sub.add_parser("compare", help="quantum vs classical EP: every system on every task, same rule and budget",
                          formatter_class=HelpFormatter,
                          description="Train every system on every task with the same budget and report test accuracy "
                                      "with 95%% t-intervals over seeds. --tune: each (system, task) first gets the same "
                                      "Optuna search (--trials trials of --trial-epochs epochs, scored on a validation "
                                      "split of the training data), then its chosen setting is retrained on every seed. "
                                      "Jobs run on Dask (--scheduler) and are stored in OUT/jobs as they finish; "
                                      "--resume reuses them.")
    comp.add_argument("--systems", nargs="+", choices=AVAILABLE, default=None,
                      help="default: the standard line-up (comparison.systems.SYSTEMS); any registered system")
    comp.add_argument("--tasks", nargs="+", choices=TASKS, default=None, help="default: all (quick: xor phases)")
    comp.add_argument("--seeds", "--retrain-seeds", dest="seeds", type=integer(1), default=None,
                      help="training seeds 0..K-1 per (system, task), for the intervals (default 5; quick 3)")
    comp.add_argument("--epochs", type=integer(1), default=None, help="epochs per training run (default 15; quick 4)")
    comp.add_argument("--tune", action="store_true",
                      help="choose each (system, task)'s setting by an equal Optuna search on a validation split "
                           "(learning rate, beta, estimator, init scale, hidden size, physics knobs); "
                           "without it every system trains with --beta, --estimator, --lr")
    comp.add_argument("--trials", type=integer(1), default=None, help="search trials per (system, task) (default 20; quick 3)")
    comp.add_argument("--trial-epochs", type=integer(1), default=None, help="epochs per trial (default: --epochs; quick 2)")
    comp.add_argument("--beta", type=number(positive=True), default=0.05, help="EP nudge strength (without --tune)")
    comp.add_argument("--estimator", choices=ESTIMATORS, default="centered", help="EP estimator (without --tune)")
    comp.add_argument("--lr", type=number(positive=True), default=0.05, help="learning rate, Adam (without --tune)")
    comp.add_argument("--batch-size", type=integer(1), default=16, help="samples per minibatch")
    comp.add_argument("--scheduler", default="local", metavar="ADDRESS",
                      help="where jobs run: 'local' (a Dask LocalCluster of --workers processes, one thread each), "
                           "'none' (serially in this process) or a Dask scheduler address tcp://HOST:8786")
    comp.add_argument("--workers", type=integer(1), default=None, help="LocalCluster worker processes (default: CPU count)")
    comp.add_argument("--quick", action="store_true",
                      help="CI settings: xor and phases, tuned with 3 trials x 2 epochs, 3 seeds x 4 epochs")
    comp.add_argument("--out", default=None, metavar="FOLDER",
                      help="folder for compare.json, compare.md, PNGs (default: a new ./qeqprop-compare-<time>); "
                           "a non-empty folder needs --overwrite")
    comp.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its results")
    comp.add_argument("--resume", action="store_true",
                      help="continue the run stored in --out: finished jobs (OUT/jobs) are reused, the rest computed")
    comp.add_argument("--readme", default=None, metavar="FILE", help="rewrite this README's compare block with the table")
    add_output_flags(comp, "the summary")
    comp.set_defaults(func=cmd_compare)
    top.subcommands["compare"] = comp
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    args = top.parse_args(argv)
    try:
        if args.command == "train":
            args = apply_config(top, argv, args)
        args.argv = argv  # recorded in metrics.json; compare --readme quotes it
        configure_logging(getattr(args, "quiet", False))
        return args.func(args)
    except ValueError as exc:
        print(f"qeqprop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qeqprop: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
