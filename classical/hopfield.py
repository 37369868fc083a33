"""Layered continuous Hopfield networks (Scellier & Bengio 2017) trained by EP.

Layers s_0 = x (clamped input), s_1 ... s_L (hidden), s_(L+1) = o (output); every unit of
s_1 ... s_(L+1) lies in [0, 1] (hard-sigmoid units: the box constraint replaces rho). Energy

    E(theta, x, s) = 1/2 sum_(k>=1) ||s_k||^2 - sum_(k=0..L) s_k^T W_k s_(k+1) - sum_(k>=1) b_k . s_k.

Nudge: C(s, y) = 1/2 ||o - t||^2 with t = (1 + y) / 2 in [0, 1], so the trainer's +-1 class
targets become the unit values 1 / 0; predictions are 2 o - 1 in [-1, 1] (sign / argmax
decoding works unchanged). Equilibrium: exact block-coordinate descent (classical._common),

    s_k <- clip(W_(k-1)^T s_(k-1) + W_k s_(k+1) + b_k, 0, 1),
    o   <- clip((W_L^T s_L + b_(L+1) + beta t) / (1 + beta), 0, 1)         (nudged output),

alternating odd and even layers until no unit moves by more than ``tol``. A minibatch
equilibrates at once through ``batch_view`` (classical.layered_batch.LayeredBatch: the same
sweeps as matrix products over the batch, every sample stopping by its own rule, and all nudged
phases of an EP step solved jointly).
Local gradient: dE/dW_k = -s_k s_(k+1)^T, dE/db_k = -s_k. Reference gradient: implicit
differentiation of the JAX energy over the units strictly inside (0, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from qeqprop.validation import as_finite_array

from ._common import (
    Equilibrium,
    ImplicitGradient,
    LayeredQuadratic,
    LayeredSystem,
    check_int,
    check_positive_float,
    check_targets,
    split_layers,
)
from .layered_batch import LayeredBatch


def hopfield_energy(params, layers, xnp=np):
    """E of the module docstring for layers [x, s_1, ..., o] (numpy or jax.numpy via ``xnp``)."""
    depth = len(layers) - 1
    total = 0.5 * sum(xnp.sum(s**2) for s in layers[1:])
    total -= sum(layers[k] @ params[f"W{k}"] @ layers[k + 1] for k in range(depth))
    return total - sum(params[f"b{k}"] @ layers[k] for k in range(1, depth + 1))


def unit_targets(y: np.ndarray) -> np.ndarray:
    """t = (1 + y) / 2: targets y in [-1, 1] as output-unit values in [0, 1]."""
    return 0.5 * (1.0 + y)


class HopfieldBatchIO:
    """What the batch views of the Hopfield networks (dense and convolutional) read from a system:
    the clamped inputs of a batch, checked, and the unit targets of the nudge."""

    n_inputs: int

    def input_layers(self, X) -> np.ndarray:
        """The clamped input layers of a batch X (B, n_inputs)."""
        X = np.asarray(X)
        return as_finite_array("x", X, (len(X) if X.ndim == 2 else -1, self.n_inputs))

    @staticmethod
    def output_targets(Y: np.ndarray) -> np.ndarray:
        """Unit targets t = (1 + y) / 2 the nudge pulls the outputs towards."""
        return unit_targets(Y)


class HopfieldNetwork(HopfieldBatchIO, LayeredSystem):
    """A layered Hopfield learner implementing the EnergySystem protocol (module docstring).

    Parameters
    ----------
    n_inputs, hidden (sizes of the hidden layers), n_outputs.
    init_scale : init_params draws W_k ~ U(-a, a), a = init_scale sqrt(6 / (n_k + n_(k+1)))
        (Glorot), and b_k = 0. The default 0.3 starts most units inside (0, 1) on standardized
        inputs; at 1 most sit at 0 or 1, where dE/ds has no slope, and digits training stalls
        near 73%.
    tol, max_iter : block-coordinate descent stops when no unit moves more than ``tol`` in a
        sweep; ValueError (with the KKT residual) after ``max_iter`` sweeps.
    """

    unit = "neurons"
    solver_name = "Hopfield block-coordinate descent"

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int] = (32,),
        n_outputs: int = 1,
        init_scale: float = 0.3,
        tol: float = 1e-12,
        max_iter: int = 100_000,
    ):
        self.n_inputs = check_int("n_inputs", n_inputs)
        self.n_outputs = check_int("n_outputs", n_outputs)
        self.hidden = [check_int("hidden layer size", h) for h in hidden]
        self.sizes = [self.n_inputs, *self.hidden, self.n_outputs]
        self.init_scale = check_positive_float("init_scale", init_scale)
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {f"W{k}": (self.sizes[k], self.sizes[k + 1]) for k in range(self.depth)}
        shapes.update({f"b{k}": (self.sizes[k],) for k in range(1, self.depth + 1)})
        return shapes

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        params = {}
        for name, shape in self.param_shapes.items():
            if name.startswith("W"):
                bound = self.init_scale * np.sqrt(6.0 / sum(shape))
                params[name] = rng.uniform(-bound, bound, shape)
            else:
                params[name] = np.zeros(shape)
        return params

    def _input_layer(self, x) -> np.ndarray:
        return as_finite_array("x", x, (self.n_inputs,))

    def batch_view(self, batch_size: int) -> LayeredBatch:
        """A minibatch solved at once (classical.layered_batch.LayeredBatch)."""
        return LayeredBatch(self)

    def quadratic(self, params, targets: np.ndarray | None = None, beta=0.0, clamped: bool = False) -> LayeredQuadratic:
        """The energy E + beta C the solver minimizes, as a LayeredQuadratic (``targets``: unit
        targets t of a nudged phase, (n_out,) or per sample (B, n_out) with ``beta`` a number or
        per sample (B,); ``clamped``: the output layer is held)."""
        params = self.check_params(params)
        linear = [np.zeros(self.n_inputs)] + [params[f"b{k}"].copy() for k in range(1, self.depth + 1)]
        diagonal = [np.zeros(self.n_inputs)] + [np.ones(n) for n in self.sizes[1:]]
        constant = 0.0
        if targets is not None:
            beta = np.asarray(beta, dtype=float)
            if not np.all(beta > -1.0):
                raise ValueError(f"beta must be > -1 for a Hopfield network (the nudged output curvature is 1 + beta), got {beta}")
            per_sample = beta[..., None] if beta.ndim else beta
            diagonal[-1] = diagonal[-1] + per_sample
            linear[-1] = linear[-1] + per_sample * targets
            constant = 0.5 * beta * np.sum(targets**2, axis=-1)
        couplings = [params[f"W{k}"] for k in range(self.depth)]
        lower, upper = [-np.inf] + [0.0] * self.depth, [np.inf] + [1.0] * self.depth
        fixed = frozenset({0, self.depth} if clamped else {0})
        return LayeredQuadratic(couplings, linear, diagonal, lower, upper, fixed, constant)

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E + beta C(s, y) with ``nudge`` = y, warm-started from ``init``."""
        nudged = nudge is not None and beta != 0.0
        targets = unit_targets(check_targets(nudge, self.n_outputs, "nudge")) if nudged else None
        beta = float(beta) if nudged else 0.0
        return self._solve(params, x, targets, beta, init, None, "Hopfield block-coordinate descent")

    def clamp(self, params, x, outputs, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E with the output layer held at (1 + outputs) / 2 (outputs in [-1, 1])."""
        outputs = check_targets(outputs, self.n_outputs, "outputs")
        if np.any(np.abs(outputs) > 1.0):
            raise ValueError(f"outputs must lie in [-1, 1] (output units are in [0, 1]), got {outputs.tolist()}")
        return self._solve(params, x, None, 0.0, init, unit_targets(outputs), "Hopfield clamped phase")

    def predict(self, state: Equilibrium) -> np.ndarray:
        """2 o - 1: output units mapped to [-1, 1]."""
        return 2.0 * self.layers(state)[-1] - 1.0

    def cost(self, state: Equilibrium, y) -> float:
        """C = 1/2 ||o - (1 + y) / 2||^2."""
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((self.layers(state)[-1] - unit_targets(y)) ** 2))

    def energy_grad(self, params, x, state: Equilibrium) -> dict[str, np.ndarray]:
        """dE/dW_k = -s_k s_(k+1)^T, dE/db_k = -s_k at ``state`` (an Equilibrium, or a
        BatchEquilibrium: a leading batch axis on every leaf)."""
        self.check_params(params)
        layers = self.layers(state)
        grads = {f"W{k}": -(layers[k][..., :, None] * layers[k + 1][..., None, :]) for k in range(self.depth)}
        grads.update({f"b{k}": -layers[k].copy() for k in range(1, self.depth + 1)})
        return grads

    def energy_grad_mean(self, params, x, states) -> dict[str, np.ndarray]:
        """The batch mean of energy_grad for states (B, n): dE/dW_k = -S_k^T S_(k+1) / B (one matrix
        product), dE/db_k = -mean_i s_k^i."""
        self.check_params(params)
        layers = self.layers(states)
        batch = len(layers[0])
        grads = {f"W{k}": layers[k].T @ (layers[k + 1] * (-1.0 / batch)) for k in range(self.depth)}  # scale the small factor
        grads.update({f"b{k}": -layers[k].mean(axis=0) for k in range(1, self.depth + 1)})
        return grads

    @cached_property
    def _implicit(self) -> ImplicitGradient:
        import jax.numpy as jnp

        sizes, n_out = self.sizes, self.n_outputs
        return ImplicitGradient(lambda p, flat: hopfield_energy(p, split_layers(flat, sizes), jnp),
                                lambda flat, t: 0.5 * jnp.sum((flat[-n_out:] - t) ** 2))

    def reference_grad(self, params, x, y, free: Equilibrium | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta by implicit differentiation (JAX) at the free equilibrium, over the
        units strictly inside (0, 1)."""
        y = check_targets(y, self.n_outputs)
        state = free if free is not None else self.equilibrate(params, x)
        s = state.state
        inside = np.flatnonzero((s > 0.0) & (s < 1.0))
        inside = inside[inside >= self.n_inputs]
        return self._implicit(self.check_params(params), s, unit_targets(y), inside)


def layer_learning_rates(system: HopfieldNetwork, optimizer: str, learning_rate: float, scales: Sequence[float]):
    """An optax optimizer that trains each coupling layer at its own rate, as Scellier & Bengio 2017
    train their deep nets: W_k and b_(k+1) (the couplings into layer k+1 and its biases) step at
    ``learning_rate * scales[k]`` with the optax optimizer named ``optimizer`` (one state per layer,
    ``optax.multi_transform``). ``scales`` has one entry per coupling layer (``system.depth``)."""
    import optax

    factory = getattr(optax, optimizer, None)
    if not callable(factory) or optimizer.startswith("_"):
        raise ValueError(f"optimizer must be an optax optimizer name (e.g. 'adam', 'sgd'), got {optimizer!r}")
    if len(scales) != system.depth:
        raise ValueError(f"scales must give one learning-rate factor per coupling layer ({system.depth} for sizes "
                         f"{system.sizes}), got {len(scales)}: {list(scales)}")
    rates = [check_positive_float("learning_rate", learning_rate) * check_positive_float(f"scales[{k}]", s)
             for k, s in enumerate(scales)]
    labels = {name: int(name[1:]) - (name[0] == "b") for name in system.param_shapes}  # W_k, b_(k+1) -> layer k
    return optax.multi_transform({k: factory(rate) for k, rate in enumerate(rates)}, lambda params: {n: labels[n] for n in params})
