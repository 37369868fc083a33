"""Training by EP on any EnergySystem: minibatches, optax optimizers, metrics, checkpoints.

Each step averages per-sample gradients over a minibatch,

    g = 1/|B| sum_{(x, y) in B} grad_theta L(x, y)     (EP estimate, or the reference gradient),

and applies an optax update (Adam by default). Epoch e shuffles with the seed sequence
(seed, e), so a run resumed from its checkpoint continues exactly as if never stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import optax
from tqdm.auto import tqdm

from . import _jax  # noqa: F401  (float64 before optax makes arrays)
from .checkpoint import load_checkpoint, save_checkpoint, to_numpy
from .datasets import Dataset, decode_outputs
from .ep import flatten_grad
from .estimators import check_estimator
from .readout import Shots
from .rules import RULES, GradientRule, make_rule
from .systems.protocol import EnergySystem
from .validation import check_beta, check_int

if TYPE_CHECKING:
    from .estimators import LinearEstimator

GRADIENTS = tuple(RULES)
EVAL_CHUNK = 128  # samples per batched equilibration in ``evaluate``


@dataclass
class FitResult:
    """Trained parameters, one metrics dict per epoch (train/test loss = mean C(s_0, y), accuracy,
    min gap, grad norm, seconds), and the final metrics."""

    params: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def targets_for(system: EnergySystem, data: Dataset, labels: np.ndarray) -> np.ndarray:
    """Targets per sample: the system's encoding of class labels, or regression targets as they are."""
    if data.n_classes == 0:
        return np.asarray(labels, dtype=float).reshape(len(labels), system.n_outputs)
    return system.encode_targets(labels, data.n_classes)


def evaluate(system: EnergySystem, params, x: np.ndarray, targets: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Mean loss L = 1/n sum_i C(s_0(x_i), y_i), accuracy (classification) and the smallest
    free-phase gap over a dataset, equilibrated in batches of up to EVAL_CHUNK samples."""
    losses, outputs, gaps = [], [], []
    for begin in range(0, len(x), EVAL_CHUNK):
        chunk = slice(begin, begin + EVAL_CHUNK)
        view = system.batch_view(len(x[chunk]))
        states = view.equilibrate(params, x[chunk])
        losses.append(view.cost(states, targets[chunk]))
        outputs.append(view.predict(states))
        gaps.append(view.diagnostics(states).get("gap", np.full(len(x[chunk]), np.nan)))
    metrics = {"loss": float(np.mean(np.concatenate(losses)))}
    if labels is not None:
        metrics["accuracy"] = float(np.mean(decode_outputs(np.concatenate(outputs)) == labels))
    gaps = np.concatenate(gaps)
    if np.any(np.isfinite(gaps)):
        metrics["min_gap"] = float(np.nanmin(gaps))
    return metrics


def batch_gradient(system: EnergySystem, params, x, y, rule: GradientRule, readout=None,
                   rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """The minibatch gradient 1/|B| sum_b g_b of a rule's per-sample estimates g_b (with
    ``readout`` Shots(...), EP phases are measured with shots drawn from ``rng``)."""
    return {k: np.asarray(v).mean(axis=0) for k, v in rule.gradients(system, params, x, y, readout=readout, rng=rng).items()}


def fit(
    system: EnergySystem,
    data: Dataset,
    params: dict[str, np.ndarray] | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 0.05,
    optimizer: optax.GradientTransformation | None = None,
    beta: float = 1e-2,
    estimator: "str | LinearEstimator" = "centered",
    gradient: "str | GradientRule | Callable" = "ep",
    seed: int = 0,
    shots: int | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, dict[str, float], dict[str, np.ndarray]], Any] | None = None,
) -> FitResult:
    """Train ``system`` on ``data`` by EP; returns parameters and per-epoch metrics.

    ``checkpoint`` is written atomically after every epoch; with ``resume=True`` an existing
    checkpoint is loaded (its run settings must match) and training continues exactly.
    ``gradient`` names the rule (qeqprop.rules): "ep" (``estimator`` at ``beta``), "reference"
    (the exact gradient, a baseline), "contrastive" or "coupled" (classical learning rules); a
    GradientRule object or a per-sample callable ``gradient(system, params, x, y) -> grad`` plugs
    in any other rule.
    ``shots`` (spin systems) estimates every EP gradient from that many simulated shots per
    phase and sample (readout.Shots); step k of epoch e samples with seed (seed, e, k).

    Args:
        system: any EnergySystem; ``data``: a Dataset (qeqprop.load_dataset) with as many
            features as ``system.n_inputs``; ``params``: a start (default ``init_params(seed)``).
        epochs, batch_size, learning_rate, optimizer: the optax loop (Adam(learning_rate) unless
            ``optimizer`` is given).
        beta, estimator, gradient, shots: the gradient rule (above).
        seed: shuffling (epoch e permutes with (seed, e)), init and shot sampling.
        checkpoint, resume: atomic checkpoint path; continue from it.
        progress: a tqdm bar over epochs; ``callback(epoch, metrics, params)`` after each epoch.

    Returns:
        FitResult: final ``params``, per-epoch ``history`` (train/test loss, accuracy, min gap,
        grad norm, seconds) and ``final`` (the last epoch's metrics).

    Example:
        >>> import qeqprop as qp
        >>> net = qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
        >>> result = qp.fit(net, qp.load_dataset("xor"), epochs=2, beta=0.05, progress=False)
        >>> result.final["epoch"], 0.0 <= result.final["test_accuracy"] <= 1.0
        (2, True)
    """
    epochs, batch_size = check_int("epochs", epochs, 0), check_int("batch_size", batch_size)
    check_estimator(estimator)
    beta = check_beta(beta)
    rule = make_rule(gradient, estimator=estimator, beta=beta)
    if shots is not None and (rule.name != "ep" or system.pauli_measurement() is None):
        raise ValueError("shots needs gradient='ep' on a quantum spin system")
    readout = Shots(shots) if shots is not None else None
    if data.n_features != system.n_inputs:
        raise ValueError(f"data has {data.n_features} features but the system takes n_inputs={system.n_inputs}")
    optimizer = optimizer if optimizer is not None else optax.adam(learning_rate)
    settings = {
        "dataset": data.name, "batch_size": int(batch_size), "beta": beta,
        "estimator": estimator if isinstance(estimator, str) else repr(estimator), "gradient": rule.name, "seed": int(seed), "learning_rate": float(learning_rate),
        "shots": None if shots is None else int(shots),
    }
    params = to_numpy(params if params is not None else system.init_params(np.random.default_rng(seed)))
    opt_state = optimizer.init(params)
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        if saved["settings"] != settings:
            raise ValueError(
                f"checkpoint {checkpoint} was written with settings {saved['settings']}, not {settings}; "
                "use another checkpoint path or resume=False"
            )
        params, opt_state, history, start = saved["params"], saved["opt_state"], saved["history"], saved["epoch"]

    y_train = targets_for(system, data, data.y_train)
    y_test = targets_for(system, data, data.y_test)
    labels = (data.y_train, data.y_test) if data.n_classes else (None, None)
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    bar = tqdm(range(start, epochs), disable=not progress, desc="epochs", initial=start, total=epochs)
    for epoch in bar:
        order = np.random.default_rng([int(seed), epoch]).permutation(len(data.x_train))
        norms = []
        for step, begin in enumerate(range(0, len(order), batch_size)):
            idx = order[begin : begin + batch_size]
            rng = np.random.default_rng([int(seed), epoch, step])
            grad = batch_gradient(system, params, data.x_train[idx], y_train[idx], rule, readout, rng)
            norms.append(float(np.linalg.norm(flatten_grad(grad))))
            updates, opt_state = optimizer.update(grad, opt_state, params)
            params = to_numpy(optax.apply_updates(params, updates))
        train = evaluate(system, params, data.x_train, y_train, labels[0])
        test = evaluate(system, params, data.x_test, y_test, labels[1])
        record = {"epoch": epoch + 1, "grad_norm": float(np.mean(norms)), "seconds": time.perf_counter() - t0}
        record.update({f"train_{k}": v for k, v in train.items()})
        record.update({f"test_{k}": v for k, v in test.items()})
        history.append(record)
        bar.set_postfix({k: round(record[k], 4) for k in ("train_loss", "test_accuracy") if k in record})
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"params": params, "opt_state": opt_state, "history": history,
                                         "epoch": epoch + 1, "settings": settings})
        if callback is not None:
            callback(epoch + 1, record, params)
    return FitResult(params, history, history[-1]["seconds"] if history else 0.0)
