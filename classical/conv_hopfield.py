"""A convolutional Hopfield network (one conv layer with max-pooling, one dense output layer)
trained by EP: the conv DHN of Laborieux et al. 2021 ("Scaling equilibrium propagation to deep
ConvNets by drastically reducing its gradient estimator bias", Front. Neurosci. 15:633674) at the
depth of one conv layer, with hard-sigmoid units.

Input x: one image (H, W) given flat (H W,), clamped. Hidden layer s_1: the pooled feature maps,
(P, Q, C) flattened channel last (n_1 = P Q C units); output o (n_out units); every unit in [0, 1].
With the pooled convolution of the input

    h(theta, x) = P( K * x + c ),      K: (k_h, k_w, C) filters, c: (C,) biases ("valid" convolution),
                                        P: max over non-overlapping p_h x p_w windows (floor),

their primitive function Phi = s_1 . h + o . (W^T s_1 + b) (Laborieux et al.'s conv-net Phi:
s_(l+1) . P(conv(s_l)) plus the dense term) gives the Hopfield energy

    E(theta, x, s) = 1/2 ||s_1||^2 + 1/2 ||o||^2 - Phi
                   = 1/2 ||s_1||^2 + 1/2 ||o||^2 - s_1 . h(theta, x) - s_1^T W o - b . o,

whose minimizer over the box [0, 1] is the fixed point s = clip(dPhi/ds, 0, 1) of their dynamics
(the hard sigmoid sigma(u) = clip(u, 0, 1) of their code). With one conv layer the max-pooling acts
on the clamped input only, so E is a layered box-constrained quadratic in the free units (h is a
per-sample linear term) and exact block coordinate descent (classical._common.LayeredQuadratic;
a minibatch at once by classical.layered_batch.solve_batch, each sample stopping by its own rule)
finds the equilibrium:

    o   <- clip((W^T s_1 + b + beta t) / (1 + beta), 0, 1),      s_1 <- clip(h + W o, 0, 1).

Nudge: C(s, y) = 1/2 ||o - t||^2 with unit targets t = (1 + y) / 2 (as classical.hopfield); EP with
the centered (symmetric, +-beta) estimator is the "third phase" nudging that Laborieux et al. show
removes the O(beta) bias of the one-sided estimate. Local gradients:

    dE/dK, dE/dc = -(dh/d(K, c))^T s_1      (the max-pool routes s_1 to each window's argmax),
    dE/dW = -s_1 o^T,   dE/db = -o,

computed in JAX (float64, jit) as a vector-Jacobian product of h, for a whole batch at once
(``energy_grad_mean``). Reference gradient: implicit differentiation of the JAX energy over the
units strictly inside (0, 1). The backprop twin of the same architecture (``backprop_reference``)
is the feedforward net logits = rho(h(x)) W + b, trained with softmax cross-entropy.

Example:
    >>> import numpy as np
    >>> from classical.conv_hopfield import ConvHopfieldNetwork
    >>> net = ConvHopfieldNetwork(36, channels=2, n_outputs=3, kernel=3, pool=2)   # 6x6 images
    >>> net.hidden_shape, net.n_hidden
    ((2, 2, 2), 8)
    >>> state = net.equilibrate(net.init_params(0), np.linspace(0, 1, 36))
    >>> state.state.shape, bool(state.residual < 1e-10)
    ((11,), True)
"""

from __future__ import annotations

from functools import cached_property
from math import isqrt

import numpy as np

from qeqprop._blas import one_blas_thread
from qeqprop.backprop import BackpropMLP
from qeqprop.validation import as_finite_array

from ._common import (
    ClassicalSystemMixin,
    Equilibrium,
    ImplicitGradient,
    LayeredQuadratic,
    check_int,
    check_positive_float,
    check_targets,
    split_layers,
)
from .hopfield import HopfieldBatchIO, unit_targets
from .layered_batch import BatchEquilibrium, LayeredBatch, solve_batch


def _pair(name: str, value) -> tuple[int, int]:
    """An int or an (int, int) pair as a pair of integers >= 1."""
    pair = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
    return check_int(f"{name}[0]", pair[0]), check_int(f"{name}[1]", pair[1])


def pooled_features(params, X, image_shape: tuple[int, int], pool: tuple[int, int]):
    """h = P(K * x + c) of the module docstring for a batch X (B, H W) as (B, P Q C) (JAX)."""
    import jax.numpy as jnp
    from jax import lax

    kernel = params["W0"][:, :, None, :]  # (k_h, k_w, 1 input channel, C): HWIO
    images = X.reshape(X.shape[0], *image_shape, 1)
    maps = lax.conv_general_dilated(images, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    maps = maps + params["b1"]
    pooled = lax.reduce_window(maps, -jnp.inf, lax.max, (1, *pool, 1), (1, *pool, 1), "VALID")
    return pooled.reshape(X.shape[0], -1)


class ConvHopfieldNetwork(HopfieldBatchIO, ClassicalSystemMixin):
    """The conv Hopfield learner of the module docstring (EnergySystem protocol).

    Parameters
    ----------
    n_inputs : pixels of one image (H W); ``image_shape`` (H, W), default the square side sqrt(n_inputs).
    channels : C, the feature maps of the conv layer.
    n_outputs : output units (one per class).
    kernel, pool : filter size k and pooling window p (an int or an (h, w) pair; default 5x5 filters,
        2x2 max-pooling). Map rows and columns that do not fill a whole pooling window at the right or
        bottom edge are dropped (floor).
    init_scale : W0 ~ U(-a, a), a = init_scale sqrt(6 / (k_h k_w + C)); W ~ U(-a, a),
        a = init_scale sqrt(6 / (n_1 + n_out)) (Glorot); biases 0.
    tol, max_iter : block coordinate descent stops when no unit moves more than ``tol`` in a sweep;
        ValueError (with the KKT residual) after ``max_iter`` sweeps.
    """

    unit = "units"
    solver_name = "conv Hopfield block-coordinate descent"

    def __init__(self, n_inputs: int, channels: int = 32, n_outputs: int = 10, image_shape=None, kernel=5, pool=2,
                 init_scale: float = 0.3, tol: float = 1e-12, max_iter: int = 100_000):
        self.n_inputs = check_int("n_inputs", n_inputs)
        if image_shape is None:
            side = isqrt(self.n_inputs)
            if side * side != self.n_inputs:
                raise ValueError(f"n_inputs={n_inputs} is not a square image; pass image_shape=(H, W) with H W = n_inputs")
            image_shape = (side, side)
        self.image_shape = _pair("image_shape", image_shape)
        if self.image_shape[0] * self.image_shape[1] != self.n_inputs:
            raise ValueError(f"image_shape {self.image_shape} must hold n_inputs={n_inputs} pixels")
        self.channels = check_int("channels", channels)
        self.n_outputs = check_int("n_outputs", n_outputs)
        self.kernel, self.pool = _pair("kernel", kernel), _pair("pool", pool)
        maps = tuple(n - k + 1 for n, k in zip(self.image_shape, self.kernel))
        pooled = tuple(m // p for m, p in zip(maps, self.pool))
        if min(pooled) < 1:
            raise ValueError(f"kernel {self.kernel} and pool {self.pool} leave no pooled unit on a {self.image_shape} "
                             "image; use a smaller kernel or pool")
        self.hidden_shape = (*pooled, self.channels)
        self.n_hidden = int(np.prod(self.hidden_shape))
        self.init_scale = check_positive_float("init_scale", init_scale)
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)

    @property
    def state_sizes(self) -> list[int]:
        """The free layers of a state: [n_1 (pooled maps), n_out]; the clamped image is not stored."""
        return [self.n_hidden, self.n_outputs]

    @property
    def n_units(self) -> int:
        return self.n_inputs + self.n_hidden + self.n_outputs

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W0": (*self.kernel, self.channels), "b1": (self.channels,), "W1": (self.n_hidden, self.n_outputs),
                "b2": (self.n_outputs,)}

    def init_params(self, rng: np.random.Generator | int | None = None, init_scale: float | None = None) -> dict[str, np.ndarray]:
        """Glorot-uniform weights (class docstring) times ``init_scale`` (default: the system's), zero biases."""
        rng = np.random.default_rng(rng)
        scale = self.init_scale if init_scale is None else check_positive_float("init_scale", init_scale)
        fans = {"W0": self.kernel[0] * self.kernel[1] + self.channels, "W1": self.n_hidden + self.n_outputs}
        return {name: rng.uniform(-1.0, 1.0, shape) * scale * np.sqrt(6.0 / fans[name]) if name in fans else np.zeros(shape)
                for name, shape in self.param_shapes.items()}

    def layers(self, state) -> list[np.ndarray]:
        """[s_1, o] of an Equilibrium or a BatchEquilibrium (a leading batch axis)."""
        return split_layers(state.state, self.state_sizes)

    @cached_property
    def _jitted(self) -> dict:
        import jax

        def features(params, X):
            return pooled_features(params, X, self.image_shape, self.pool)

        def pull(params, X, cotangent):  # (dh/d(W0, b1))^T cotangent, summed over the batch
            return jax.vjp(lambda p: features(p, X), params)[1](cotangent)[0]

        def single(params, x, cotangent):
            return pull(params, x[None], cotangent[None])

        return {"features": jax.jit(features), "pull": jax.jit(pull), "per_sample": jax.jit(jax.vmap(single, (None, 0, 0)))}

    @staticmethod
    def _conv(params) -> dict[str, np.ndarray]:
        return {"W0": np.asarray(params["W0"], dtype=float), "b1": np.asarray(params["b1"], dtype=float)}

    def features(self, params, X) -> np.ndarray:
        """h(theta, x) per sample, (B, n_1), for a batch X (B, n_inputs)."""
        return np.asarray(self._jitted["features"](self._conv(params), np.asarray(X, dtype=float)))

    def quadratic(self, params, h: np.ndarray, targets: np.ndarray | None = None, beta=0.0) -> LayeredQuadratic:
        """E + beta C over the free layers [s_1, o] as a LayeredQuadratic with no clamped layer:
        ``h`` (n_1,) or per sample (B, n_1) is s_1's linear term; ``targets`` (unit targets, (n_out,)
        or (B, n_out)) and ``beta`` (a number or (B,)) nudge the output layer."""
        params = self.check_params(params)
        linear, diagonal, constant = [h, params["b2"].copy()], [np.ones(self.n_hidden), np.ones(self.n_outputs)], 0.0
        if targets is not None:
            beta = np.asarray(beta, dtype=float)
            if not np.all(beta > -1.0):
                raise ValueError(f"beta must be > -1 for a conv Hopfield network (the nudged output curvature is 1 + beta), got {beta}")
            per_sample = beta[..., None] if beta.ndim else beta
            diagonal[1] = diagonal[1] + per_sample
            linear[1] = linear[1] + per_sample * targets
            constant = 0.5 * beta * np.sum(targets**2, axis=-1)
        return LayeredQuadratic([params["W1"]], linear, diagonal, [0.0, 0.0], [1.0, 1.0], frozenset(), constant)

    @one_blas_thread  # small products: threaded BLAS only contends (qeqprop._blas; 7x slower measured here)
    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E + beta C(s, y) for one image x with ``nudge`` = y, warm-started from ``init``
        (one sample's solve, classical._common.LayeredQuadratic.solve)."""
        params, x = self.check_params(params), as_finite_array("x", x, (self.n_inputs,))
        nudged = nudge is not None and beta != 0.0
        targets = unit_targets(check_targets(nudge, self.n_outputs, "nudge")) if nudged else None
        beta = float(beta) if nudged else 0.0
        quadratic = self.quadratic(params, self.features(params, x[None])[0], targets, beta)
        layers = [np.zeros(n) for n in self.state_sizes] if init is None else [v.copy() for v in self.layers(init)]
        state = quadratic.solve(layers, self.tol, self.max_iter, self.solver_name)
        state.beta = beta
        return state

    def batch_view(self, batch_size: int) -> ConvBatch:
        """A minibatch, and all its nudged phases, solved at once (``ConvBatch``)."""
        return ConvBatch(self)

    def predict(self, state) -> np.ndarray:
        """2 o - 1: output units mapped to [-1, 1]."""
        return 2.0 * self.layers(state)[-1] - 1.0

    def cost(self, state: Equilibrium, y) -> float:
        """C = 1/2 ||o - (1 + y) / 2||^2."""
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((self.layers(state)[-1] - unit_targets(y)) ** 2))

    def energy_grad(self, params, x, state) -> dict[str, np.ndarray]:
        """dE/dtheta (module docstring) at one sample's Equilibrium (x (n_inputs,)) or per sample
        of a BatchEquilibrium (X (B, n_inputs); leaves with a leading batch axis)."""
        self.check_params(params)
        s1, o = self.layers(state)
        single = s1.ndim == 1
        X, S1, O = (np.atleast_2d(np.asarray(v, dtype=float)) for v in (x, s1, o))
        conv = self._jitted["per_sample"](self._conv(params), X, S1)
        grads = {"W0": -np.asarray(conv["W0"]), "b1": -np.asarray(conv["b1"]), "W1": -(S1[:, :, None] * O[:, None, :]), "b2": -O}
        return {k: v[0] for k, v in grads.items()} if single else grads

    def energy_grad_mean(self, params, X, states: BatchEquilibrium) -> dict[str, np.ndarray]:
        """The batch mean of energy_grad: one vjp of h with cotangent -S_1 / B and -S_1^T O / B."""
        self.check_params(params)
        s1, o = self.layers(states)
        scale = -1.0 / len(s1)
        conv = self._jitted["pull"](self._conv(params), np.asarray(X, dtype=float), s1 * scale)
        return {"W0": np.asarray(conv["W0"]), "b1": np.asarray(conv["b1"]), "W1": s1.T @ (o * scale), "b2": o.mean(axis=0) * -1.0}

    def energy(self, params, x, state: Equilibrium) -> float:
        """E(theta, x, s) of the module docstring for one sample (nudge term excluded)."""
        return float(self._energy(self._with_input(params, x), np.asarray(state.state, dtype=float)))

    def _with_input(self, params, x) -> dict[str, np.ndarray]:
        return {**{k: np.asarray(v, dtype=float) for k, v in self.check_params(params).items()},
                "x": as_finite_array("x", x, (self.n_inputs,))}

    def _energy(self, params, flat):
        """E of the module docstring in JAX: params with the image under "x", flat = [s_1, o]."""
        import jax.numpy as jnp

        s1, o = split_layers(flat, self.state_sizes)
        h = pooled_features(params, params["x"][None], self.image_shape, self.pool)[0]
        return 0.5 * jnp.sum(s1**2) + 0.5 * jnp.sum(o**2) - s1 @ h - s1 @ params["W1"] @ o - params["b2"] @ o

    @cached_property
    def _implicit(self) -> ImplicitGradient:
        import jax.numpy as jnp

        n_out = self.n_outputs
        return ImplicitGradient(self._energy, lambda flat, t: 0.5 * jnp.sum((flat[-n_out:] - t) ** 2))

    def reference_grad(self, params, x, y, free: Equilibrium | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta by implicit differentiation (JAX) at the free equilibrium, over the
        units strictly inside (0, 1) (the image enters the energy as a parameter "x" whose
        gradient is dropped)."""
        y = check_targets(y, self.n_outputs)
        state = free if free is not None else self.equilibrate(params, x)
        s = np.asarray(state.state, dtype=float)
        inside = np.flatnonzero((s > 0.0) & (s < 1.0))
        grads = self._implicit(self._with_input(params, x), s, unit_targets(y), inside)
        return {k: v for k, v in grads.items() if k != "x"}

    def backprop_reference(self):
        """The feedforward twin of this architecture for qeqprop.backprop.bp_reference (``ConvBackprop``)."""
        return ConvBackprop(self)


class ConvBatch(LayeredBatch):
    """The batch-first view of a ConvHopfieldNetwork: classical.layered_batch.LayeredBatch with the
    per-sample pooled features h as s_1's linear term (computed once per call for the batch); all
    nudged phases of an EP step stacked along the batch axis and solved in one ``solve_batch``."""

    @one_blas_thread  # (B, n_1) x (n_1, n_out) products: threaded BLAS only contends (7x slower measured here)
    def equilibrate(self, params, X, nudge=None, beta=0.0, init: BatchEquilibrium | None = None):
        system = self.system
        params, X = system.check_params(params), system.input_layers(X)
        betas = tuple(float(b) for b in beta) if isinstance(beta, tuple) else (float(beta),)
        nudged = nudge is not None and any(b != 0.0 for b in betas)
        phases, batch, width = len(betas), len(X), sum(system.state_sizes)
        if not nudged:
            betas = (0.0,) * phases
        start = np.zeros((batch, width)) if init is None else np.asarray(init.state, dtype=float)
        if start.shape != (batch, width):
            raise ValueError(f"init must hold {batch} states of {width} free units, got shape {start.shape}")
        beta_rows = np.repeat(betas, batch)
        targets = None
        if nudged:
            targets = np.tile(system.output_targets(as_finite_array("nudge", nudge, (batch, system.n_outputs))), (phases, 1))
        h = np.tile(system.features(params, X), (phases, 1))
        quadratic = system.quadratic(params, h, targets, beta_rows if nudged else 0.0)
        states = solve_batch(quadratic, split_layers(np.tile(start, (phases, 1)), system.state_sizes), system.tol,
                             system.max_iter, f"{system.solver_name} (batch)", beta_rows)
        return tuple(states.split(phases)) if isinstance(beta, tuple) else states


def conv_hopfield(n_inputs: int, n_outputs: int, hidden: int, **options) -> ConvHopfieldNetwork:
    """The registry's builder (qeqprop.systems.registry): ``hidden`` conv channels with 5x5 filters
    and 2x2 max-pooling on square images of n_inputs pixels (other inputs, e.g. a few features, are
    one image row); on images smaller than that the filter and window shrink to fit."""
    side = isqrt(n_inputs)
    shape = (side, side) if side * side == n_inputs else (1, n_inputs)
    kernel = tuple(min(5, n) for n in shape)
    pool = tuple(min(2, n - k + 1) for n, k in zip(shape, kernel))
    return ConvHopfieldNetwork(n_inputs, hidden, n_outputs, image_shape=shape, kernel=kernel, pool=pool, **options)


class ConvBackprop(BackpropMLP):
    """Backprop twin of a ConvHopfieldNetwork (qeqprop.backprop.BackpropMLP with the conv layer):
    logits = rho(h(theta, x)) W1 + b2, rho = clip(., 0, 1), h the pooled convolution; softmax
    cross-entropy; params initialised like the EP net's at init_scale 1 (BackpropMLP's Glorot)."""

    def __init__(self, system: ConvHopfieldNetwork):
        super().__init__([system.n_inputs, system.n_hidden, system.n_outputs])
        self.system = system
        k_h, k_w = system.kernel
        self.architecture = (f"conv net ({k_h}x{k_w} conv, {system.channels} channels, "
                             f"{system.pool[0]}x{system.pool[1]} max-pool, dense)")

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        return self.system.init_params(seed, init_scale=self.init_scale)

    def _logits(self, params, X):
        h = pooled_features(params, X, self.system.image_shape, self.system.pool)
        return self._rho(h) @ params["W1"] + params["b2"]
