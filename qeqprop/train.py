"""Training by EP on any EnergySystem: data in, minibatch gradients, optax, metrics, logs, checkpoints.

Each step averages per-sample gradients over a minibatch,

    g = 1/|B| sum_{(x, y) in B} grad_theta L(x, y)     (EP estimate, or the reference gradient),

and applies an optax update (Adam by default). Epoch e of a fixed dataset shuffles with the seed
sequence (seed, e); minibatch k of epoch e measures shots with (seed, e, k), so a run resumed from
its checkpoint (written at every evaluation) continues bit for bit as if never stopped.

Data: a Dataset (``load_dataset``), arrays ``(X, y)``, or a stream of minibatches (a callable
``stream(step) -> (X_batch, y_batch)`` or an iterator of them). Targets ``y`` are read by
``datasets.labels_from_targets`` (class labels 0..K-1, +-1, one-hot rows, or regression targets)
and turned into what the system's cost compares outputs with by ``cost_targets``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optax
from tqdm.auto import tqdm

from . import _jax  # noqa: F401  (float64 before optax makes arrays)
from .checkpoint import load_checkpoint, save_checkpoint, to_numpy
from .costs import COSTS
from .datasets import Dataset, Targets, decode_outputs, labels_from_targets
from .ep import ep_gradient, flatten_grad
from .estimators import check_estimator
from .inference import EVAL_CHUNK, check_inputs, equilibrate_chunks
from .readout import Shots
from .rules import EP, RULES, GradientRule, make_rule
from .solvers.batched_lanczos import SETTLED_FALLBACK, SETTLED_RETRY, SETTLED_USABLE
from .systems.protocol import EnergySystem
from .validation import check_beta, check_int, check_positive_float

if TYPE_CHECKING:
    from .estimators import LinearEstimator

GRADIENTS = tuple(RULES)
BUILTIN_METRICS = ("loss", "accuracy", "min_gap")
# per minibatch (info) and summed per record (history): sample phases a batched solve retried, of
# them those settled by the single-state fallback or later, and those accepted above tolerance
SOLVER_COUNTS = ("solver_retries", "solver_fallbacks", "solver_usable")
# per minibatch and summed per record with device=...: what the quantum device spent (qeqprop.device.budget)
BUDGET_COUNTS = ("gradients", "shots", "circuits", "variational_steps")
logger = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass
class FitResult:
    """Trained parameters, the evaluation records (``history``: one dict per evaluation, at every
    epoch end and every ``eval_every`` minibatches), the training seconds, and ``final`` (the last
    record; ``{}`` when nothing was trained)."""

    params: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def _cost(system: EnergySystem):
    """The system's Cost object where it has one (spin systems, Ising machines), else None."""
    return getattr(system, "cost_fn", None)


def cost_targets(system: EnergySystem, targets: Targets) -> np.ndarray:
    """What the system's cost compares its outputs with, (n, n_outputs), from read targets, by kind::

        regression targets        unchanged (one column per output)
        class labels (0..K-1, +-1) system.encode_targets(labels, K): +-1 for one output and two
                                  classes; one-hot (cross-entropy) or +-1 one-hot (other costs)
        one-hot rows              unchanged for a custom cost (not in costs.COSTS) with one output
                                  per class; otherwise encoded from their labels like integer labels

    so a custom cost receives regression and one-hot targets exactly as given, and one data set
    written as 0/1, +-1 or one-hot trains identically under the built-in costs.
    """
    if targets.labels is None:
        values = np.asarray(targets.given, dtype=np.float64)
        if values.size != len(values) * system.n_outputs:
            raise ValueError(f"y has shape {values.shape} but the system has n_outputs={system.n_outputs}: regression "
                             f"targets need one column per output")
        return values.reshape(len(values), system.n_outputs)
    k, m = targets.n_classes, system.n_outputs
    if not (k == m or (m == 1 and k == 2)):
        raise ValueError(f"y holds {k} classes but the system has n_outputs={m}: classification needs one output per "
                         f"class (or one output for two classes); for numeric targets pass task='regression'")
    cost = _cost(system)
    if targets.form == "onehot" and cost is not None and getattr(cost, "name", None) not in COSTS and k == m:
        return np.asarray(targets.given, dtype=np.float64)
    return np.asarray(system.encode_targets(targets.labels, k), dtype=np.float64)


def targets_for(system: EnergySystem, data: Dataset, labels: np.ndarray) -> np.ndarray:
    """Cost targets for labels (or regression targets) of a Dataset's split: ``cost_targets``."""
    task = "classification" if data.n_classes else "regression"
    return cost_targets(system, labels_from_targets(labels, task=task, n_classes=data.n_classes or None))


def _classes_of(system: EnergySystem) -> int:
    """Classes the outputs tell apart: two for one output (its sign), else one per output."""
    return 2 if system.n_outputs == 1 else system.n_outputs


def _check_rows(X: np.ndarray, targets: Targets, name: str) -> None:
    if len(targets) != len(X):
        raise ValueError(f"{name} has {len(targets)} rows but X has {len(X)}: one target per sample")


def check_metrics(metrics: Mapping[str, Metric] | None) -> dict[str, Metric]:
    """``metrics``: {name: fn(outputs, targets) -> float}, names not clashing with loss/accuracy/min_gap."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a dict {{name: fn(outputs, targets) -> float}}, got {type(metrics).__name__}")  # noqa: TRY004
    for name, fn in metrics.items():
        if not isinstance(name, str) or name in BUILTIN_METRICS or not callable(fn):
            raise ValueError(f"metrics[{name!r}] must map a str name other than {BUILTIN_METRICS} to a callable "
                             f"fn(outputs, targets) -> float")
    return dict(metrics)


def evaluate(system: EnergySystem, params, X, y, *, metrics: Mapping[str, Metric] | None = None,
             task: str | None = None, n_classes: int | None = None, batch_size: int = EVAL_CHUNK) -> dict[str, float]:
    """Metrics of ``params`` on a data set, from free phases equilibrated in chunks (``inference``):

        loss      1/n sum_i C(s_0(x_i), y_i)                       (the system's cost)
        accuracy  1/n sum_i [decode(o(x_i)) == label_i]            (classification targets only)
        min_gap   min_i gap(s_0(x_i))                              (where the system reports gaps)
        NAME      metrics[NAME](outputs, targets)                  (each custom metric)

    Custom metrics get ``outputs``, the predictions (n, n_outputs) (``inference.predict``), and
    ``targets``, ``y`` exactly as given (np.asarray(y): labels, +-1, one-hot rows or regression
    values; a Dataset's split: its integer labels or standardized targets).

    Args:
        X, y: inputs (n, n_inputs) and targets in any form ``datasets.labels_from_targets`` reads
            (``task``, ``n_classes`` as there; ``n_classes`` defaults to what the outputs tell apart).
        metrics: {name: fn(outputs, targets) -> float}.
        batch_size: samples equilibrated together.
    """
    X = check_inputs(system, X)
    if not len(X):
        raise ValueError("X is empty: evaluation needs at least one sample")
    targets = labels_from_targets(y, task=task, n_classes=n_classes if n_classes is not None else _classes_of(system))
    _check_rows(X, targets, "y")
    Y = cost_targets(system, targets)
    losses, outputs, gaps = [], [], []
    for view, states, chunk in equilibrate_chunks(system, params, X, batch_size):
        losses.append(view.cost(states, Y[chunk]))
        outputs.append(view.predict(states))
        gaps.append(view.diagnostics(states).get("gap", np.full(chunk.stop - chunk.start, np.nan)))
    outputs = np.concatenate(outputs)
    result = {"loss": float(np.mean(np.concatenate(losses)))}
    if targets.labels is not None:
        result["accuracy"] = float(np.mean(decode_outputs(outputs) == targets.labels))
    gaps = np.asarray(np.concatenate(gaps), dtype=float)
    if np.any(np.isfinite(gaps)):
        result["min_gap"] = float(np.nanmin(gaps))
    for name, fn in check_metrics(metrics).items():
        try:
            result[name] = float(fn(outputs, targets.given))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metrics[{name!r}] must return one number from fn(outputs, targets): {exc}") from exc
    return result


def _readout(rule: GradientRule, system: EnergySystem, shots: int | Shots | None) -> Shots | None:
    """The shot readout of ``shots``: a count (Shots(count)) or a Shots with its options (sampler,
    grouping, allocation, nudge_from; its seed is replaced by fit's per-step generator)."""
    if shots is None:
        return None
    if rule.name != "ep" or system.pauli_measurement() is None:
        raise ValueError("shots needs gradient='ep' on a quantum spin system")
    return shots if isinstance(shots, Shots) else Shots(shots)


def _shots_spec(shots: int | Shots | None):
    """How the run spec records ``shots``: the count, or a Shots' options without its seed."""
    if isinstance(shots, Shots):
        return {k: v for k, v in asdict(shots).items() if k != "seed"}
    return None if shots is None else int(shots)


def minibatch_gradient(
    system: EnergySystem,
    params,
    X,
    y,
    *,
    gradient: str | GradientRule | Callable = "ep",
    beta: float = 1e-2,
    estimator: str | LinearEstimator = "centered",
    shots: int | Shots | None = None,
    rng: np.random.Generator | int | None = None,
    task: str | None = None,
    device=None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The minibatch gradient g = 1/|B| sum_b g_b of a gradient rule's per-sample estimates g_b: the
    step ``fit`` takes, for a training loop of your own.

    Args:
        system, params: the EnergySystem and its parameter pytree.
        X, y: the minibatch (B, n_inputs) and its targets in any form ``datasets.labels_from_targets``
            reads (class labels 0..K-1, +-1, one-hot rows, regression targets; ``task`` forces one),
            turned into cost targets by ``cost_targets``; ``task="regression"`` passes y to the cost
            unchanged (e.g. targets already encoded by ``targets_for``).
        gradient: "ep" (``estimator`` at ``beta``), "reference", "contrastive", "coupled", a
            GradientRule or a per-sample callable (qeqprop.rules).
        shots: measure every EP phase with this many shots per sample (readout.Shots), drawn from ``rng``;
            or a ``Shots(...)`` with its options (sampler="gaussian", grouping, nudge_from="exact", ...).
        device: prepare and measure the phases of a variational learner on a quantum device (a
            PennyLane device with shots, a Qiskit backend or a ``qeqprop.device.DeviceLoop``); info
            then also holds BUDGET_COUNTS (qeqprop.device.DeviceLoop.minibatch).

    Returns:
        (grad, info): ``grad`` a dict like params; ``info`` with "grad_norm" (||g||), and for EP the
        minibatch's mean free-phase "loss", smallest free-phase "min_gap" and the number of free
        phases whose gap that minimum covers, "gap_checks" (where gaps are known: every sample with an
        exact solver, the ``gap_check`` subset with MPS ground states: qeqprop.systems.gap_checks) and,
        where the phases were solved by batched Lanczos, "solver_retries" (sample phases that missed
        the tolerance in the first batched run and were retried), "solver_fallbacks" (of them, those
        that went on to the single-state fallback solver) and "solver_usable" (those accepted above
        the tolerance, within the solver's usable bound): ``solver_counts``.

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> from qeqprop.train import minibatch_gradient
        >>> net = qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
        >>> grad, info = minibatch_gradient(net, net.init_params(0), np.ones((4, 2)), [0, 1, 1, 0], beta=0.05)
        >>> grad["J"].shape == net.init_params(0)["J"].shape, sorted(info)
        (True, ['gap_checks', 'grad_norm', 'loss', 'min_gap'])
    """
    rule = make_rule(gradient, estimator=check_estimator(estimator), beta=check_beta(beta))
    readout = _readout(rule, system, shots)
    X = check_inputs(system, X)
    targets = labels_from_targets(y, task=task, n_classes=_classes_of(system))
    _check_rows(X, targets, "y")
    Y = cost_targets(system, targets)
    if device is not None:  # the phases prepared and measured on a quantum device (qeqprop.device)
        from .device import as_loop

        if not isinstance(rule, EP) or readout is not None:
            raise ValueError("device needs gradient='ep' and shots=None (the device's shots count)")
        return as_loop(device).minibatch(system, params, X, Y, rule.estimator, rng)
    info: dict[str, float] = {}
    if isinstance(rule, EP):  # the EP rule itself, keeping the free phases it solved for loss and gap
        result = ep_gradient(system, params, X, Y, estimator=rule.estimator, readout=readout, rng=rng, mean=readout is None)
        per_sample = result.grad  # exact readouts: the batch mean already (a batch axis of 1)
        info["loss"] = float(np.mean(result.loss))
        view = system.batch_view(len(X))
        gaps = np.asarray(view.diagnostics(result.free).get("gap", np.nan), dtype=float)
        if np.any(np.isfinite(gaps)):
            info["min_gap"] = float(np.nanmin(gaps))
            info["gap_checks"] = int(np.sum(np.isfinite(gaps)))
        info.update(solver_counts([view.diagnostics(s) for s in (result.free, *result.nudged.values())]))
    else:
        per_sample = rule.gradients(system, params, X, Y, readout=readout, rng=rng)
    grad = {k: np.asarray(v).mean(axis=0) for k, v in per_sample.items()}
    info["grad_norm"] = float(np.linalg.norm(flatten_grad(grad)))
    return grad, info


def solver_counts(diagnostics: list[Mapping[str, np.ndarray]]) -> dict[str, int]:
    """SOLVER_COUNTS from the "retries" diagnostics (BatchedSolve.retries) of a step's phases: the
    sample phases with retries >= SETTLED_RETRY, >= SETTLED_FALLBACK and == SETTLED_USABLE; {} when
    no phase reports them (per-sample solvers raise instead of retrying)."""
    reported = [np.asarray(d["retries"]) for d in diagnostics if d.get("retries") is not None]
    if not reported:
        return {}
    retries = np.concatenate(reported)
    counts = (retries >= SETTLED_RETRY, retries >= SETTLED_FALLBACK, retries == SETTLED_USABLE)
    return {name: int(np.sum(count)) for name, count in zip(SOLVER_COUNTS, counts)}


def _with_solver_options(system: EnergySystem, solver_options: Mapping[str, Any] | None) -> EnergySystem:
    """``system``, or with ``solver_options`` a copy whose batched solver takes them (``with_batched``)."""
    if solver_options is None:
        return system
    if not isinstance(solver_options, Mapping):
        raise ValueError(f"solver_options must be a dict of batched Lanczos options (e.g. {{'max_blocks': 12, "  # noqa: TRY004
                         f"'fallback': 'lanczos'}}), got {type(solver_options).__name__}")
    configure = getattr(system, "with_batched", None)
    if configure is None:
        raise ValueError(f"solver_options sets the batched Lanczos solver of a spin system; {type(system).__name__} "
                         "has none (pass its solver settings to the system instead)")
    try:
        return configure(**solver_options)
    except ValueError as exc:
        raise ValueError(f"solver_options: {exc}") from exc


def _fingerprint(*arrays) -> str:
    """sha256 over the shapes, dtypes and bytes of arrays: identifies a data set in a checkpoint."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class _Fixed:
    """Minibatches of a fixed training set: epoch e permutes with (seed, e); ceil(n / batch_size) steps."""

    def __init__(self, X: np.ndarray, targets: Targets, batch_size: int, seed: int):
        self.X, self.targets, self.batch_size, self.seed = X, targets, batch_size, int(seed)
        self.steps = -(-len(X) // batch_size)
        self._epoch, self._order = None, None

    def skip(self, done: int) -> None:
        """Nothing to skip: batches are a function of (epoch, k)."""

    def batch(self, epoch: int, k: int) -> tuple[np.ndarray, Targets]:
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.X))
        index = self._order[k * self.batch_size : (k + 1) * self.batch_size]
        return self.X[index], self.targets.take(index)


class _Stream:
    """Minibatches from ``stream(step)`` (step = global minibatch index) or from an iterator."""

    def __init__(self, system: EnergySystem, stream, steps: int, task: str | None):
        self.system, self.steps, self.task = system, steps, task
        self.call = stream if callable(stream) else None
        self.iterator = None if callable(stream) else stream

    def skip(self, done: int) -> None:
        """A resumed run skips the ``done`` minibatches an iterator yielded before (a callable is asked by step)."""
        for _ in range(done if self.iterator is not None else 0):
            next(self.iterator)

    def batch(self, epoch: int, k: int) -> tuple[np.ndarray, Targets]:
        step = epoch * self.steps + k
        try:
            pair = self.call(step) if self.call is not None else next(self.iterator)
        except StopIteration:
            raise ValueError(f"the data iterator ran out at minibatch {step}; fit needs epochs * steps_per_epoch "
                             f"= {step}+ minibatches") from None
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"a data stream must give (X_batch, y_batch) pairs, got {type(pair).__name__} at step {step}")
        X = check_inputs(self.system, pair[0], f"X of minibatch {step}")
        targets = labels_from_targets(pair[1], task=self.task, n_classes=_classes_of(self.system),
                                      name=f"y of minibatch {step}")
        _check_rows(X, targets, f"y of minibatch {step}")
        if not len(X):
            raise ValueError(f"minibatch {step} from the data stream is empty")
        self.task = self.task or ("classification" if targets.labels is not None else "regression")
        return X, targets


def _split(system: EnergySystem, X, y, name: str, task: str | None, n_classes: int | None) -> tuple[np.ndarray, Targets]:
    """A fixed data split (X, y) checked: non-empty, real, finite, one target per row."""
    X = check_inputs(system, X, f"{name} X")
    if not len(X):
        raise ValueError(f"the {name} set is empty: pass at least one sample")
    targets = labels_from_targets(y, task=task, n_classes=n_classes, name=f"{name} y")
    _check_rows(X, targets, f"{name} y")
    return X, targets


def _is_pair(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2


def _sources(system, data, validation, batch_size: int, steps_per_epoch, task, seed):
    """(training minibatches, evaluated splits [(prefix, X, Targets)], identity of the data for the run spec)."""
    splits = []
    if isinstance(data, Dataset) or _is_pair(data):
        if steps_per_epoch is not None:
            raise ValueError("steps_per_epoch is for data streams; an epoch of a fixed data set is one pass, "
                             "ceil(n / batch_size) minibatches")
        if isinstance(data, Dataset):
            if data.n_features != system.n_inputs:
                raise ValueError(f"data has {data.n_features} features but the system takes n_inputs={system.n_inputs}")
            task = "classification" if data.n_classes else "regression"
            X, targets = _split(system, data.x_train, data.y_train, "training", task, data.n_classes or None)
            test = _split(system, data.x_test, data.y_test, "test", task, data.n_classes or None)
            identity = {"dataset": data.name, "sha256": _fingerprint(data.x_train, data.y_train, data.x_test, data.y_test)}
        else:
            X, targets = _split(system, *data, "training", task, None)
            test, identity = None, {"shape": list(X.shape), "sha256": _fingerprint(X, targets.given)}
        splits.append(("train", X, targets))
        if test is not None:
            splits.append(("test", *test))
        n_classes = targets.n_classes or None
        task = "classification" if n_classes else "regression"
        source = _Fixed(X, targets, batch_size, seed)
    elif callable(data) or isinstance(data, Iterator):
        if steps_per_epoch is None:
            raise ValueError("a data stream needs steps_per_epoch (minibatches per epoch: how often fit evaluates, "
                             "checkpoints and calls back)")
        source = _Stream(system, data, check_int("steps_per_epoch", steps_per_epoch), task)
        n_classes = _classes_of(system)
        identity = {"stream": getattr(data, "__qualname__", type(data).__name__)}
    else:
        raise ValueError(f"data must be a Dataset (qeqprop.load_dataset), a pair (X, y), a callable stream(step) -> "
                         f"(X_batch, y_batch) or an iterator of such pairs; got {type(data).__name__}")
    if validation is not None:
        if not _is_pair(validation):
            raise ValueError(f"validation must be a pair (X_val, y_val), got {type(validation).__name__}")
        X_val, targets_val = _split(system, *validation, "validation", task, n_classes)
        splits.append(("val", X_val, targets_val))
        identity["validation_sha256"] = _fingerprint(X_val, targets_val.given)
    return source, splits, identity


LR_SCHEDULES = ("constant", "cosine")


def _learning_rate(learning_rate: float, lr_schedule: str, total_steps: int):
    """The rate the optimizer steps at: ``learning_rate`` ("constant"), or for "cosine" the optax
    cosine decay eta_k = learning_rate (1 + cos(pi k / K)) / 2 over the run's K = ``total_steps``
    minibatches (to 0 at the end: the last epochs settle instead of jumping between minima)."""
    if lr_schedule == "constant":
        return learning_rate
    return optax.cosine_decay_schedule(learning_rate, decay_steps=max(1, total_steps))


def _optimizer(optimizer, learning_rate) -> tuple[optax.GradientTransformation, str]:
    """(the optax transformation, its name in the run spec): Adam(learning_rate) by default, an optax
    name such as "adam" or "sgd" called with ``learning_rate``, or a GradientTransformation."""
    if optimizer is None or isinstance(optimizer, str):
        name = optimizer or "adam"
        factory = getattr(optax, name, None)
        if not callable(factory) or name.startswith("_"):
            raise ValueError(f"optimizer must be an optax optimizer name (e.g. 'adam', 'sgd', 'adamw') or an "
                             f"optax.GradientTransformation, got {optimizer!r}")
        return factory(learning_rate), name
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(f"optimizer must be an optax.GradientTransformation or an optax name, got {optimizer!r}")
    # a custom optimizer is identified by its type (its closures' addresses change per process)
    return optimizer, f"custom:{type(optimizer).__module__}.{type(optimizer).__qualname__}"


def _write_log(path: Path, records: list[dict], mode: str) -> None:
    """JSON lines: one evaluation record per line (``mode`` "w" rewrites, "a" appends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
        handle.flush()


def fit(
    system: EnergySystem,
    data: Dataset | tuple | Callable | Iterator,
    params: dict[str, np.ndarray] | None = None,
    *,
    validation: tuple | None = None,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 0.05,
    optimizer: optax.GradientTransformation | str | None = None,
    lr_schedule: str = "constant",
    beta: float = 1e-2,
    estimator: str | LinearEstimator = "centered",
    gradient: str | GradientRule | Callable = "ep",
    seed: int = 0,
    shots: int | Shots | None = None,
    task: str | None = None,
    metrics: Mapping[str, Metric] | None = None,
    eval_every: int | None = None,
    steps_per_epoch: int | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    log: str | Path | None = None,
    progress: bool = True,
    callback: Callable[[int, dict[str, float], dict[str, np.ndarray]], Any] | None = None,
    solver_options: Mapping[str, Any] | None = None,
    device=None,
) -> FitResult:
    """Train ``system`` on ``data`` by EP (or another gradient rule); returns parameters and metrics.

    Data:
        * a Dataset (``load_dataset``): its train split trains, train and test splits are evaluated
          ("train_*", "test_*" metrics);
        * ``(X, y)`` arrays: train only ("train_*"), plus ``validation=(X_val, y_val)`` ("val_*");
        * a stream: a callable ``stream(step) -> (X_batch, y_batch)`` (step = 0, 1, ... the global
          minibatch index) or an iterator of such pairs, with ``steps_per_epoch`` minibatches per
          epoch; only ``validation`` is evaluated. A resumed run asks a callable from the next step
          and skips the iterator's first ``step`` pairs.

        Targets y: class labels 0..K-1, +-1 labels, one-hot rows or regression targets
        (``datasets.labels_from_targets``; ``task`` "classification"/"regression" forces one;
        anything ambiguous is refused). Built-in costs train identically on one data set's 0/1, +-1
        and one-hot labels; a custom cost receives one-hot and regression targets as given
        (``cost_targets``).

    Each record in ``history`` (at every epoch end and every ``eval_every`` minibatches) holds
    "epoch" (the epoch it belongs to, 1-based; at an epoch end the epochs done), "step" (minibatches
    done), "grad_norm" (mean ||g|| since the last record), "batch_loss"/"batch_min_gap" (mean loss and
    smallest gap of the minibatches' free phases since the last record, EP only), "batch_gap_checks"
    (how many free phases since the last record had their gap computed: all with exact solvers, a
    subset with MPS ground states, the system's ``gap_check``), "solver_retries",
    "solver_fallbacks", "solver_usable" (sample phases since the last record that missed the batched
    solver's tolerance and were retried, settled by the fallback solver, accepted above tolerance:
    ``minibatch_gradient``; with a WARNING log line when any were retried), per evaluated split
    "<split>_loss", "<split>_accuracy" (classification), "<split>_min_gap" and each custom metric
    "<split>_<name>" (``evaluate``), and "seconds" (training time so far).

    Progress: a tqdm bar over minibatches (loss and min gap of the last one); every record is
    logged at INFO on the "qeqprop.train" logger and, with ``log=PATH``, appended to a JSON-lines
    file as it is made (a killed run keeps its curve; a fresh run starts the file anew, a resumed run
    rewrites it to the checkpoint's history).

    Checkpoints: ``checkpoint=PATH`` (qeqprop.checkpoint: .npz + JSON, no pickle) is written
    atomically at every record with params, optimizer state, history, epochs done, minibatches done
    in the current epoch, the run spec (every setting that shapes the run, and
    ``serialization.run_identity(system)``) and the system's run counters (``fit_state``, e.g. a spin
    system's EP free phases, which ``gap_check`` k counts from 0 in each fresh run); ``resume=True``
    continues from it, refusing a missing file or a checkpoint whose run spec differs (naming the
    setting). ``callback(epoch, record, params)`` runs after each epoch's record.

    Args:
        system: any EnergySystem; params: a start (default ``init_params(seed)``).
        epochs, batch_size, learning_rate, optimizer: the optax loop: Adam(learning_rate) unless
            ``optimizer`` is an optax name ("sgd", "adamw", ... called with learning_rate) or an
            optax GradientTransformation. ``epochs`` may be 0 (nothing trained, empty history).
        lr_schedule: "constant", or "cosine": the rate decays as learning_rate (1 + cos(pi k / K)) / 2
            over the run's K minibatches (optax.cosine_decay_schedule; only with an optimizer name).
        beta, estimator, gradient, shots: the gradient rule (``minibatch_gradient``).
        seed: init, shuffling (epoch e permutes with (seed, e)) and shots (step k of epoch e: (seed, e, k)).
        metrics: {name: fn(outputs, targets) -> float} evaluated on every split (``evaluate``).
        eval_every: also evaluate (and checkpoint) every this many minibatches.
        solver_options: limits of the batched Lanczos solver for this run, on top of the system's
            ``batched`` options (``SpinSystem.with_batched``; the system itself is not changed):
            free_steps, nudged_steps, gap_steps, max_steps (block lengths), max_blocks, retry_blocks,
            fallback ("lanczos", "jax", "dense" or None), usable (accepted residual / asked), workers
            (solvers.batched_lanczos.BatchedLanczos, "Missed tolerances").
        device: train a variational learner through a quantum device (``qeqprop.device.DeviceLoop``, or
            a PennyLane device with shots / a Qiskit backend wrapped in one): records then also hold
            BUDGET_COUNTS summed since the last record ("gradients", "shots", "circuits",
            "variational_steps"); evaluation stays on the simulated free phases.

    Returns:
        FitResult: final ``params``, ``history``, ``seconds`` and ``final`` (the last record, or {}).

    Example:
        >>> import qeqprop as qp
        >>> net = qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
        >>> result = qp.fit(net, qp.load_dataset("xor"), epochs=2, beta=0.05, progress=False)
        >>> result.final["epoch"], 0.0 <= result.final["test_accuracy"] <= 1.0
        (2, True)
    """
    from .serialization import run_identity

    system = _with_solver_options(system, solver_options)
    epochs, batch_size = check_int("epochs", epochs, 0), check_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    eval_every = None if eval_every is None else check_int("eval_every", eval_every)
    check_estimator(estimator)
    beta = check_beta(beta)
    rule = make_rule(gradient, estimator=estimator, beta=beta)
    _readout(rule, system, shots)
    if device is not None:
        from .device import as_loop

        device = as_loop(device)
    metrics = check_metrics(metrics)
    source, splits, identity = _sources(system, data, validation, batch_size, steps_per_epoch, task, seed)
    if lr_schedule != "constant" and not (optimizer is None or isinstance(optimizer, str)):
        raise ValueError("lr_schedule applies to an optimizer given by name ('adam', 'sgd', ...); build the schedule "
                         "into a custom optax optimizer instead")
    optimizer, optimizer_name = _optimizer(optimizer, _learning_rate(learning_rate, lr_schedule, epochs * source.steps))
    cost = _cost(system)
    run = {
        "data": identity, "task": task, "batch_size": batch_size, "beta": beta,
        "estimator": estimator if isinstance(estimator, str) else repr(estimator), "gradient": rule.name,
        "seed": int(seed), "learning_rate": learning_rate, "optimizer": optimizer_name,
        "shots": _shots_spec(shots), "cost": None if cost is None else getattr(cost, "name", type(cost).__name__),
        "metrics": sorted(metrics), "eval_every": eval_every, "steps_per_epoch": steps_per_epoch,
        "system": run_identity(system),
    }
    if device is not None:
        run["device"] = device.describe()
    if lr_schedule != "constant":  # (absent otherwise: checkpoints written before the option still resume)
        run["lr_schedule"] = {"name": lr_schedule, "decay_steps": epochs * source.steps}
    if solver_options:  # (absent otherwise: checkpoints written before the option still resume)
        run["solver_options"] = {k: v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
                                 for k, v in sorted(solver_options.items())}
    params = to_numpy(params if params is not None else system.init_params(np.random.default_rng(seed)))
    opt_state = optimizer.init(params)
    history: list[dict[str, float]] = []
    # a batched spin system trains with its solver's learned block lengths carried from minibatch to
    # minibatch (SpinSystem.with_kept_block_lengths; the user's system is not changed) and checkpointed
    kept = getattr(system, "with_kept_block_lengths", None)
    system = system if kept is None else kept()
    # a system's run counters (SpinSystem.fit_state: EP free phases, which gap_check k counts) start a
    # fresh run at 0 on the copy trained here and are checkpointed, so a resumed run equals a straight one
    restore_state = getattr(system, "restore_fit_state", None) if kept is not None else None
    if restore_state is not None:
        restore_state({})
    done = 0
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH (the checkpoint to continue from)")
        # a missing, foreign or corrupt file, or another run's checkpoint: CheckpointError naming the path/setting
        saved = load_checkpoint(checkpoint, run=run, params_template=params, opt_state_template=opt_state)
        params, opt_state, history = saved["params"], saved["opt_state"], list(saved["history"])
        done = saved["epoch"] * source.steps + saved["step"]
        if kept is not None:
            system.restore_block_lengths(saved["solver_schedule"])
        if restore_state is not None:
            restore_state(saved["system_state"])
    log = Path(log) if log is not None else None
    if log is not None:
        _write_log(log, history, "w")

    steps, total = source.steps, epochs * source.steps
    source.skip(done)
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    since: dict[str, list[float]] = {"grad_norm": [], "loss": [], "min_gap": [], "gap_checks": [],
                                     **{key: [] for key in SOLVER_COUNTS + BUDGET_COUNTS}}
    with tqdm(total=total, initial=min(done, total), disable=not progress, desc="training", unit="batch") as bar:
        for step in range(done, total):
            epoch, k = divmod(step, steps)
            X, targets = source.batch(epoch, k)
            grad, info = minibatch_gradient(system, params, X, targets, gradient=rule, beta=beta, shots=shots,
                                            rng=np.random.default_rng([int(seed), epoch, k]), device=device)
            updates, opt_state = optimizer.update(grad, opt_state, params)
            params = to_numpy(optax.apply_updates(params, updates))
            for key, values in since.items():
                if key in info:
                    values.append(info[key])
            bar.update(1)
            bar.set_postfix({key: f"{info[key]:.4g}" for key in ("loss", "min_gap") if key in info}, refresh=False)
            end_of_epoch = k == steps - 1
            if not (end_of_epoch or (eval_every and (step + 1) % eval_every == 0)):
                continue
            record: dict[str, Any] = {"epoch": epoch + 1, "step": step + 1, "grad_norm": float(np.mean(since["grad_norm"]))}
            if since["loss"]:
                record["batch_loss"] = float(np.mean(since["loss"]))
            if since["min_gap"]:
                record["batch_min_gap"] = float(np.min(since["min_gap"]))
            if since["gap_checks"]:
                record["batch_gap_checks"] = int(np.sum(since["gap_checks"]))
            record.update({key: int(np.sum(since[key])) for key in SOLVER_COUNTS + BUDGET_COUNTS if since[key]})
            if record.get("solver_retries"):
                logger.warning("epoch %d, step %d: %d sample phases missed the batched solver's tolerance and were "
                               "retried (%d went on to the fallback solver, %d accepted above tolerance); if this "
                               "recurs, raise solver_options max_steps or max_blocks", epoch + 1, step + 1,
                               record["solver_retries"], record["solver_fallbacks"], record["solver_usable"])
            for values in since.values():
                values.clear()
            for prefix, X_split, targets_split in splits:
                scores = evaluate(system, params, X_split, targets_split, metrics=metrics)
                record.update({f"{prefix}_{name}": value for name, value in scores.items()})
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            logger.info("epoch %d, step %d: %s", epoch + 1, step + 1,
                        ", ".join(f"{key} {value:.4g}" for key, value in record.items() if key not in ("epoch", "step")))
            if checkpoint is not None:
                save_checkpoint(checkpoint, {"params": params, "opt_state": opt_state, "history": history,
                                             "epoch": (step + 1) // steps, "step": (step + 1) % steps, "run": run,
                                             "solver_schedule": system.block_lengths() if kept is not None else {},
                                             "system_state": system.fit_state() if restore_state is not None else {}})
            if log is not None:
                _write_log(log, [record], "a")
            if end_of_epoch and callback is not None:
                callback(epoch + 1, record, params)
    return FitResult(params, history, history[-1]["seconds"] if history else 0.0)
