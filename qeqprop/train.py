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
from typing import Any, Callable

import numpy as np
import optax
from tqdm.auto import tqdm

from . import _jax  # noqa: F401  (float64 before optax makes arrays)
from .checkpoint import load_checkpoint, save_checkpoint, to_numpy
from .datasets import Dataset, decode_outputs, encode_targets
from .ep import check_estimator, ep_gradient, flatten_grad
from .systems.protocol import EnergySystem
from .validation import check_beta

GRADIENTS = ("ep", "reference")


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
    """Targets per sample: encoded class labels, or regression targets as they are."""
    if data.n_classes == 0:
        return np.asarray(labels, dtype=float).reshape(len(labels), system.n_outputs)
    cost_name = getattr(getattr(system, "cost_fn", None), "name", "mse")
    return encode_targets(labels, system.n_outputs, data.n_classes, cost_name)


def evaluate(system: EnergySystem, params, x: np.ndarray, targets: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Mean loss L = 1/n sum_i C(s_0(x_i), y_i), accuracy (classification) and the smallest
    free-phase gap over a dataset."""
    losses, outputs, gaps = [], [], []
    for xi, yi in zip(x, targets):
        state = system.equilibrate(params, xi)
        losses.append(system.cost(state, yi))
        outputs.append(system.predict(state))
        gap = getattr(state, "gap", None)
        if gap is not None:
            gaps.append(gap)
    metrics = {"loss": float(np.mean(losses))}
    if labels is not None:
        metrics["accuracy"] = float(np.mean(decode_outputs(np.array(outputs)) == labels))
    if gaps:
        metrics["min_gap"] = float(np.min(gaps))
    return metrics


def batch_gradient(
    system: EnergySystem, params, x, y, gradient: str, beta: float, estimator: str,
    shots: int | None = None, rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Mean over a minibatch of per-sample EP (or reference) gradients; with ``shots``,
    each sample's EP gradient is estimated from that many simulated shots per phase.
    Spin systems with ``solver="jax"`` solve the whole minibatch at once (qeqprop.batched; with
    shots, measurement.batched samples the whole minibatch from one ``rng``)."""
    if callable(gradient):
        grads = [gradient(system, params, xi, yi) for xi, yi in zip(x, y)]
        return {k: sum(g[k] for g in grads) / len(grads) for k in grads[0]}
    if gradient == "ep" and getattr(system, "solver", None) == "jax" and system.temperature == 0:
        if shots is not None:
            from .measurement.batched import batched_measured_gradients

            return batched_measured_gradients(system, params, x, y, beta, shots, estimator, rng=rng).mean_grad(system)
        from .batched import batched_ep_gradients

        return batched_ep_gradients(system, params, x, y, beta, estimator).mean_grad(system)
    total = None
    for xi, yi in zip(x, y):
        if gradient == "reference":
            grad = system.reference_grad(params, xi, yi)
        elif shots is not None:
            from .measurement.gradient import measured_ep_gradient

            grad = measured_ep_gradient(system, params, xi, yi, beta, shots, estimator, rng=rng).grad
        else:
            grad = ep_gradient(system, params, xi, yi, beta=beta, estimator=estimator).grad
        total = grad if total is None else {k: total[k] + grad[k] for k in total}
    return {k: v / len(x) for k, v in total.items()}


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
    estimator: str = "centered",
    gradient: "str | Callable" = "ep",
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
    ``gradient="reference"`` trains with the exact linear-response gradient instead (baseline);
    a callable ``gradient(system, params, x, y) -> grad`` plugs in any other learning rule
    (e.g. classical.learning_rules: contrastive or coupled learning).
    ``shots`` (quantum systems) estimates every EP gradient from that many simulated shots per
    phase (measurement.measured_ep_gradient); step k of epoch e samples with seed (seed, e, k).
    """
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not callable(gradient) and gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS} or a callable (system, params, x, y) -> grad, got {gradient!r}")
    check_estimator(estimator)
    beta = check_beta(beta)
    if shots is not None and (gradient != "ep" or not hasattr(system, "hamiltonian")):
        raise ValueError("shots needs gradient='ep' on a quantum spin system")
    if data.n_features != system.n_inputs:
        raise ValueError(f"data has {data.n_features} features but the system takes n_inputs={system.n_inputs}")
    optimizer = optimizer if optimizer is not None else optax.adam(learning_rate)
    settings = {
        "dataset": data.name, "batch_size": int(batch_size), "beta": beta,
        "estimator": estimator, "gradient": gradient if isinstance(gradient, str) else getattr(gradient, "__name__", "callable"), "seed": int(seed), "learning_rate": float(learning_rate),
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
            grad = batch_gradient(system, params, data.x_train[idx], y_train[idx], gradient, beta, estimator, shots, rng)
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
