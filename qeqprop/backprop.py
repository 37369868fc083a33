"""The backprop reference: a feedforward MLP of a layered EP network's architecture, trained by
backpropagation (JAX + optax, float64) on the same split, so an EP accuracy has a number to be
compared with.

For layer sizes [n_0, n_1, ..., n_(L+1)] (inputs, hidden layers, outputs) the MLP computes

    h_0 = x,    h_(k+1) = rho(h_k W_k + b_(k+1)),    o = h_(L+1),

with rho the hard sigmoid clip(., 0, 1) of the layered Hopfield network's units (Scellier & Bengio
2017, whose box-constrained units are hard-sigmoid neurons). The default loss is the standard
classifier's softmax cross-entropy on the last pre-activation (the strongest reference we measured:
on mnist, 784-500-10, 10 epochs, it reached 0.946 test accuracy); ``loss="mse"`` is the Hopfield
network's own cost 1/2 ||rho(z) - t||^2 on one-hot unit targets t, whose clipped outputs get no
gradient below 0 (0.65 on the same run: a weak reference, kept for comparison). Predictions:
argmax_j of the last pre-activation.
Weights start like the Hopfield network's (Glorot uniform, scale ``init_scale``; biases 0);
minibatches are drawn from a seeded permutation per epoch and each step is one jitted optax update
of the mean loss over the batch.

Example:
    >>> from qeqprop.backprop import BackpropMLP
    >>> from qeqprop.datasets import load_dataset
    >>> data = load_dataset("iris", seed=0)
    >>> result = BackpropMLP([4, 16, 3]).train(data, epochs=30, batch_size=16, learning_rate=0.02, seed=0)
    >>> result.test_accuracy > 0.8
    True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import optax

from . import _jax  # noqa: F401  (float64 JAX before any array is made)
from .datasets import Dataset
from .validation import check_int, check_positive_float

ACTIVATIONS = ("hard_sigmoid", "sigmoid", "relu")
LOSSES = ("mse", "cross_entropy")


@dataclass
class BPResult:
    """A trained reference MLP: its params, final accuracies and loss, wall time and per-epoch
    history ({"epoch", "train_loss", "seconds"})."""

    params: dict[str, np.ndarray]
    test_accuracy: float
    train_accuracy: float
    test_loss: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class BackpropMLP:
    """The MLP of the module docstring with layer ``sizes`` ``[n_inputs, *hidden, n_outputs]``."""

    architecture = "MLP"  # what bp_reference's bp_model names (a subclass with other layers says so)

    def __init__(self, sizes: Sequence[int], activation: str = "hard_sigmoid", loss: str = "cross_entropy", init_scale: float = 1.0):
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output layer, got {list(sizes)}")
        self.sizes = [check_int(f"sizes[{k}]", n) for k, n in enumerate(sizes)]
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.activation, self.loss_name = activation, loss
        self.init_scale = check_positive_float("init_scale", init_scale)

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """W_k ~ U(-a, a), a = init_scale sqrt(6 / (n_k + n_(k+1))); b_k = 0."""
        rng = np.random.default_rng(seed)
        params = {}
        for k in range(self.depth):
            bound = self.init_scale * np.sqrt(6.0 / (self.sizes[k] + self.sizes[k + 1]))
            params[f"W{k}"] = rng.uniform(-bound, bound, (self.sizes[k], self.sizes[k + 1]))
            params[f"b{k + 1}"] = np.zeros(self.sizes[k + 1])
        return params

    def _rho(self, z):
        import jax
        import jax.numpy as jnp

        if self.activation == "hard_sigmoid":
            return jnp.clip(z, 0.0, 1.0)
        return jax.nn.sigmoid(z) if self.activation == "sigmoid" else jax.nn.relu(z)

    def _logits(self, params, X):
        """The last layer's pre-activation (hidden layers through rho)."""
        h = X
        for k in range(self.depth - 1):
            h = self._rho(h @ params[f"W{k}"] + params[f"b{k + 1}"])
        return h @ params[f"W{self.depth - 1}"] + params[f"b{self.depth}"]

    def _loss(self, params, X, T):
        """Mean over the batch of 1/2 ||rho(logits) - T||^2 (mse) or softmax cross-entropy."""
        import jax.numpy as jnp

        logits = self._logits(params, X)
        if self.loss_name == "cross_entropy":
            return jnp.mean(optax.softmax_cross_entropy(logits, T))
        return 0.5 * jnp.mean(jnp.sum((self._rho(logits) - T) ** 2, axis=1))

    @cached_property
    def _jitted(self) -> dict[str, Any]:
        import jax

        return {"loss": jax.jit(self._loss), "logits": jax.jit(self._logits)}

    def predict(self, params, X: np.ndarray) -> np.ndarray:
        """Class predictions argmax_j o_j."""
        return np.argmax(np.asarray(self._jitted["logits"](params, np.asarray(X, dtype=float))), axis=1)

    def step_function(self, optimizer: optax.GradientTransformation):
        """The jitted update (params, opt_state, X, T) -> (params, opt_state, loss)."""
        import jax

        value_and_grad = jax.value_and_grad(self._loss)

        def step(params, opt_state, X, T):
            loss, grads = value_and_grad(params, X, T)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        return jax.jit(step)

    def epoch(self, step, params, opt_state, X: np.ndarray, T: np.ndarray, batch_size: int, rng: np.random.Generator):
        """One pass over (X, T) in minibatches of ``batch_size`` (seeded permutation; the last,
        smaller batch included); returns (params, opt_state, mean batch loss)."""
        order = rng.permutation(len(X))
        losses = []
        for start in range(0, len(X), batch_size):
            index = order[start : start + batch_size]
            params, opt_state, loss = step(params, opt_state, X[index], T[index])
            losses.append(float(loss))
        return params, opt_state, float(np.mean(losses))

    def train(self, data: Dataset, *, epochs: int, batch_size: int, learning_rate: float, optimizer: str = "adam",
              seed: int = 0) -> BPResult:
        """Backprop training on ``data`` (a classification Dataset) with ``optimizer`` (an optax
        name) at ``learning_rate``; params from ``init_params(seed)``, shuffling seeded by ``seed``."""
        if data.n_classes < 2:
            raise ValueError(f"data must be a classification dataset (n_classes >= 2), got {data.name!r} with n_classes={data.n_classes}")
        if data.n_features != self.sizes[0] or data.n_classes != self.sizes[-1]:
            raise ValueError(f"sizes {self.sizes} must start with the {data.n_features} features and end with the "
                             f"{data.n_classes} classes of {data.name!r}")
        epochs, batch_size = check_int("epochs", epochs, 0), check_int("batch_size", batch_size)
        factory = getattr(optax, optimizer, None)
        if not callable(factory) or optimizer.startswith("_"):
            raise ValueError(f"optimizer must be an optax optimizer name (e.g. 'adam', 'sgd'), got {optimizer!r}")
        transform = factory(check_positive_float("learning_rate", learning_rate))
        X, T = np.asarray(data.x_train, dtype=float), np.eye(data.n_classes)[data.y_train]
        params = self.init_params(seed)
        opt_state, step, rng = transform.init(params), self.step_function(transform), np.random.default_rng(seed)
        history, start = [], time.perf_counter()
        for k in range(epochs):
            params, opt_state, loss = self.epoch(step, params, opt_state, X, T, batch_size, rng)
            history.append({"epoch": k + 1, "train_loss": loss, "seconds": time.perf_counter() - start})
        seconds = time.perf_counter() - start
        params = {k: np.asarray(v) for k, v in params.items()}
        test_loss = float(self._jitted["loss"](params, data.x_test, np.eye(data.n_classes)[data.y_test]))
        return BPResult(params, float(np.mean(self.predict(params, data.x_test) == data.y_test)),
                        float(np.mean(self.predict(params, data.x_train) == data.y_train)), test_loss, seconds, history)


def reference_sizes(system: Any, n_inputs: int, hidden: int, n_classes: int) -> list[int]:
    """The reference MLP's layer sizes for an EP system: a layered network's inputs and hidden
    layers (its ``sizes`` but the last), then one output per class; any other system: one hidden
    layer of ``hidden`` units (none for ``hidden`` 0)."""
    sizes = getattr(system, "sizes", None)
    if isinstance(sizes, (list, tuple)) and len(sizes) >= 2 and sizes[0] == n_inputs:
        return [*(int(n) for n in sizes[:-1]), n_classes]
    return [n_inputs, hidden, n_classes] if hidden > 0 else [n_inputs, n_classes]


def bp_reference(system: Any, data: Dataset, hidden: int, *, epochs: int, batch_size: int, learning_rate: float,
                 optimizer: str = "adam", seed: int = 0) -> dict[str, Any]:
    """Train the reference MLP of ``system``'s architecture (``reference_sizes``) on ``data``'s split
    and report it as the CLI's JSON fields: bp_test_accuracy, bp_train_accuracy, bp_test_loss,
    bp_seconds, bp_model (a one-line description)."""
    twin = getattr(system, "backprop_reference", None)  # optional: a system whose BP twin is no MLP (conv nets)
    mlp = twin() if twin is not None else BackpropMLP(reference_sizes(system, data.n_features, hidden, data.n_classes))
    result = mlp.train(data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer, seed=seed)
    model = f"{mlp.architecture} {'-'.join(map(str, mlp.sizes))}, {mlp.activation} hidden units, {mlp.loss_name}, {optimizer} lr {learning_rate:g}, {epochs} epochs"
    return {"bp_test_accuracy": result.test_accuracy, "bp_train_accuracy": result.train_accuracy,
            "bp_test_loss": result.test_loss, "bp_seconds": result.seconds, "bp_model": model}
