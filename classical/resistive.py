"""Nonlinear resistive networks (Kendall et al. 2020; Scellier 2024) trained by EP.

Layers of nodes: layer 0 holds the input voltage sources v_0 = gain * (x, -x) (each input
duplicated with both signs, so positive conductances can weigh it either way); layers
1 ... L are hidden nodes whose voltages ideal diodes confine to [lo_i, hi_i]; layer L + 1
holds the output nodes (no diodes). Conductances G_k >= 0 join layer k to layer k + 1;
optionally Gb_k >= 0 join bias voltage sources V_b to every free layer k >= 1, and current
sources I_k inject into every free node. The equilibrium minimizes the co-content (half the
dissipated power, less the work of the current sources)

    E(v) = 1/2 sum_k sum_ij G_k[i, j] (v_k[i] - v_(k+1)[j])^2 + 1/2 sum_k sum_bj Gb_k[b, j] (V_b - v_k[j])^2
           - sum_k I_k . v_k

over the free voltages, subject to lo <= v_k <= hi on hidden layers: a convex QP with box
constraints. Given its neighbours, node i's optimum is the conductance-weighted mean of its
neighbours' voltages plus injected current I_i, clipped by its diodes,

    v_i <- clip( (sum_j g_ij v_j + I_i) / (sum_j g_ij + a_i), lo_i, hi_i ),

exact per layer (nodes of one layer do not touch), so alternating odd and even layers is
exact block-coordinate descent (classical._common.LayeredQuadratic; for a minibatch at once,
one matrix product per layer: classical.layered_batch, Scellier 2024's algorithm). Targets y
(the trainer's +-1 class codes) are the output voltages a y, a = ``target_voltage``; the cost
is C(v, y) = 1/2 ||v_out - a y||^2, so a nudged phase gives output nodes I = beta a y and
a_i = beta (a current source). Predictions are v_out / a, in the units of y.

Defaults follow Scellier 2024's deep resistive networks (and the energy-based-learning code):
``hidden_bounds="signed"`` makes the first half of each hidden layer excitatory (one diode to
ground, v >= 0: a ReLU) and the second half inhibitory (v <= 0); ``current_sources`` are the
layer biases (either sign, dE/dI = -v); no bias voltage sources; ``input_gain`` 4 (Scellier
uses 480 on MNIST pixels in [0, 1] with 1024 hidden nodes) offsets the shrinking of weighted
means. With signed diodes and zero currents the network is positively homogeneous: scaling the
input gain scales every voltage. The earlier default (diodes at [-1, 1] on both sides,
conductances to +-1 V bias sources, gain 1) keeps every hidden and output voltage a weighted
mean inside [-1, 1], short of the +-1 targets, and scored chance level on iris.

Conductances are kept positive by the parametrization g = softplus(g_raw) = log(1 + e^g_raw)
(params "g{k}_raw", "gb{k}_raw"; currents "i{k}"); ``masks`` removes edges (g = 0) for sparse
wiring. Local gradient: dE/dg_ij = 1/2 (v_i - v_j)^2, so dE/dg_raw = 1/2 (v_i - v_j)^2 sigmoid(g_raw).
Reference gradient: implicit differentiation of the JAX co-content over the free voltages
strictly inside their bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np
from scipy.special import expit

from qeqprop.systems.oscillators import softplus, softplus_inverse
from qeqprop.validation import as_finite_array

from ._common import (
    Equilibrium,
    ImplicitGradient,
    LayeredQuadratic,
    LayeredSystem,
    check_connected,
    check_int,
    check_positive_float,
    check_targets,
    split_layers,
)
from .layered_batch import LayeredBatch


def resistive_energy(conductances: Mapping, layers, bias_voltages, xnp=np, currents: Mapping | None = None):
    """The co-content E of the module docstring from conductances {"g{k}", "gb{k}"}, node
    voltages [v_0, ..., v_out] and current sources {"i{k}"} (numpy or jax.numpy via ``xnp``)."""
    total = 0.0
    for k in range(len(layers) - 1):
        total += 0.5 * xnp.sum(conductances[f"g{k}"] * (layers[k][:, None] - layers[k + 1][None, :]) ** 2)
    for k in range(1, len(layers)):
        if f"gb{k}" in conductances:
            total += 0.5 * xnp.sum(conductances[f"gb{k}"] * (bias_voltages[:, None] - layers[k][None, :]) ** 2)
        if currents:
            total -= xnp.dot(currents[f"i{k}"], layers[k])
    return total


class ResistiveNetwork(LayeredSystem):
    """A layered nonlinear resistive learner implementing the EnergySystem protocol.

    Parameters
    ----------
    n_inputs, hidden (sizes of the hidden layers), n_outputs.
    input_gain : source voltages are gain * (x, -x).
    bias_voltages : voltages of the bias sources wired to every free layer (default: none).
    target_voltage : a > 0, the output voltage that stands for y = 1 (scale of the targets).
    hidden_bounds : (lo, hi) diode limits of hidden voltages (None for no limit on that side), or
        "signed": first half of each hidden layer v >= 0, second half v <= 0 (Scellier 2024).
    current_sources : a trainable current source at every hidden and output node (params "i{k}").
    masks : {"g{k}" or "gb{k}": 0/1 array} removing edges; every output and hidden node must
        still reach a voltage source (else ValueError).
    conductance_init, init_std : g_raw ~ softplus^-1(conductance_init) + init_std N(0, 1).
    tol, max_iter : the solver stops when no voltage moves more than ``tol`` in a sweep;
        ValueError (with the KKT residual) after ``max_iter`` sweeps.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int] = (32,),
        n_outputs: int = 1,
        input_gain: float = 4.0,
        bias_voltages: Sequence[float] = (),
        target_voltage: float = 1.0,
        hidden_bounds: tuple[float | None, float | None] | str = "signed",
        current_sources: bool = True,
        masks: Mapping[str, np.ndarray] | None = None,
        conductance_init: float = 0.1,
        init_std: float = 0.5,
        tol: float = 1e-12,
        max_iter: int = 100_000,
    ):
        self.n_inputs = check_int("n_inputs", n_inputs)
        self.n_outputs = check_int("n_outputs", n_outputs)
        self.hidden = [check_int("hidden layer size", h) for h in hidden]
        self.sizes = [2 * self.n_inputs, *self.hidden, self.n_outputs]
        self.input_gain = check_positive_float("input_gain", input_gain)
        self.bias_voltages = as_finite_array("bias_voltages", bias_voltages).reshape(-1)
        self.target_voltage = check_positive_float("target_voltage", target_voltage)
        self.hidden_bounds = _check_bounds(hidden_bounds)
        self.current_sources = bool(current_sources)
        self.conductance_init = check_positive_float("conductance_init", conductance_init)
        self.init_std = float(init_std)
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)
        self.masks = {}
        for name, mask in (masks or {}).items():
            if name not in self.conductance_shapes:
                raise ValueError(f"masks: unknown conductance block {name!r}; blocks are {sorted(self.conductance_shapes)}")
            mask = as_finite_array(f"masks[{name!r}]", mask, self.conductance_shapes[name])
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError(f"masks[{name!r}] must hold only 0 (no edge) and 1 (edge)")
            self.masks[name] = mask
        self._check_wiring()

    @property
    def conductance_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {f"g{k}": (self.sizes[k], self.sizes[k + 1]) for k in range(self.depth)}
        if self.bias_voltages.size:
            shapes.update({f"gb{k}": (self.bias_voltages.size, self.sizes[k]) for k in range(1, self.depth + 1)})
        return shapes

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {f"{name}_raw": shape for name, shape in self.conductance_shapes.items()}
        if self.current_sources:
            shapes.update({f"i{k}": (self.sizes[k],) for k in range(1, self.depth + 1)})
        return shapes

    @property
    def bounds(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(lower, upper): per-layer arrays of every node's voltage limits (+-inf: no diode)."""
        lower, upper = [np.full(n, -np.inf) for n in self.sizes], [np.full(n, np.inf) for n in self.sizes]
        for k in range(1, self.depth):
            if self.hidden_bounds == "signed":
                half = self.sizes[k] // 2
                lower[k][:half], upper[k][half:] = 0.0, 0.0
            else:
                lower[k][:], upper[k][:] = self.hidden_bounds
        return lower, upper

    def _mask(self, name: str) -> np.ndarray | float:
        return self.masks.get(name, 1.0)

    def _check_wiring(self) -> None:
        """Every hidden and output node must reach an input or bias source through edges."""
        offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        n_free_end, edges = offsets[-1], []
        for name, shape in self.conductance_shapes.items():
            on = np.argwhere(np.broadcast_to(self._mask(name), shape) != 0)
            k = int(name[2:] if name.startswith("gb") else name[1:])
            if name.startswith("gb"):
                edges.append(np.column_stack([n_free_end + on[:, 0], offsets[k] + on[:, 1]]))
            else:
                edges.append(np.column_stack([offsets[k] + on[:, 0], offsets[k + 1] + on[:, 1]]))
        anchors = list(range(self.sizes[0])) + list(range(n_free_end, n_free_end + self.bias_voltages.size))
        n_nodes, edges = n_free_end + self.bias_voltages.size, np.concatenate(edges)
        check_connected(n_nodes, edges, anchors, range(offsets[-2], offsets[-1]), "output", "voltage source")
        check_connected(n_nodes, edges, anchors, range(self.sizes[0], offsets[-2]), "hidden", "voltage source")

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        centre = softplus_inverse(self.conductance_init)
        return {name: centre + self.init_std * rng.standard_normal(shape) if name.endswith("_raw") else np.zeros(shape)
                for name, shape in self.param_shapes.items()}

    def conductances(self, params) -> dict[str, np.ndarray]:
        """Physical conductances {"g{k}", "gb{k}"} = softplus(raw) * mask (>= 0)."""
        params = self.check_params(params)
        return {name: softplus(params[f"{name}_raw"]) * self._mask(name) for name in self.conductance_shapes}

    def with_conductances(self, params, conductances: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy of ``params`` with some conductance blocks given physically (g > 0 on edges)."""
        new = {k: np.array(v, dtype=float) for k, v in self.check_params(params).items()}
        for name, values in conductances.items():
            if name not in self.conductance_shapes:
                raise ValueError(f"conductances: unknown block {name!r}; blocks are {sorted(self.conductance_shapes)}")
            values = as_finite_array(f"conductances[{name!r}]", values, self.conductance_shapes[name])
            on = np.broadcast_to(self._mask(name), values.shape) != 0
            if np.any(values < 0):
                bad = np.argwhere(values < 0)[:3].tolist()
                raise ValueError(f"conductances[{name!r}] has negative entries (first at {bad}); "
                                 "physical conductances are >= 0")
            if np.any(values[on] == 0):
                raise ValueError(f"conductances[{name!r}] has zero entries on edges; remove those edges with masks "
                                 "(g = softplus(g_raw) is always > 0)")
            new[f"{name}_raw"] = np.where(on, softplus_inverse(np.where(on, values, 1.0)), 0.0)
        return new

    def sources(self, x) -> np.ndarray:
        """Input source voltages gain * (x, -x) of one sample x (n_inputs,) or a batch (B, n_inputs)."""
        x = np.asarray(x, dtype=float)
        x = as_finite_array("x", x, (self.n_inputs,) if x.ndim <= 1 else (len(x), self.n_inputs))
        return self.input_gain * np.concatenate([x, -x], axis=-1)

    _input_layer = sources

    def quadratic(self, params, targets: np.ndarray | None = None, beta=0.0, clamped: bool = False) -> LayeredQuadratic:
        """The co-content E + beta C the solver minimizes, as a LayeredQuadratic (``targets``:
        output target voltages of a nudged phase, (n_out,) or per sample (B, n_out) with ``beta``
        a number or per sample (B,); ``clamped``: the output voltages are held)."""
        params = self.check_params(params)
        g = self.conductances(params)
        bias, last = self.bias_voltages, self.depth
        couplings = [g[f"g{k}"] for k in range(last)]
        diagonal = [couplings[0].sum(axis=1)]
        linear = [np.zeros(self.sizes[0])]
        constant = 0.0
        for k in range(1, last + 1):
            degree = couplings[k - 1].sum(axis=0) + (couplings[k].sum(axis=1) if k < last else 0.0)
            current = params[f"i{k}"].copy() if self.current_sources else np.zeros(self.sizes[k])
            if bias.size:
                degree = degree + g[f"gb{k}"].sum(axis=0)
                current = current + bias @ g[f"gb{k}"]
                constant += 0.5 * float(bias**2 @ g[f"gb{k}"].sum(axis=1))
            diagonal.append(degree)
            linear.append(current)
        if targets is not None:
            targets = np.asarray(targets, dtype=float)
            beta = np.asarray(beta, dtype=float)
            per_sample = beta[..., None] if beta.ndim else beta
            if np.any(diagonal[-1] + per_sample <= 0):
                raise ValueError(f"nudged phase beta={beta}: an output node's total conductance "
                                 f"{float(diagonal[-1].min()):.3g} + beta is not positive; use a smaller |beta|")
            diagonal[-1] = diagonal[-1] + per_sample
            linear[-1] = linear[-1] + per_sample * targets
            constant = constant + 0.5 * beta * np.sum(targets**2, axis=-1)
        lower, upper = self.bounds
        fixed = frozenset({0, last} if clamped else {0})
        return LayeredQuadratic(couplings, linear, diagonal, lower, upper, fixed, constant)

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E + beta C(v, y) with ``nudge`` = y, warm-started from ``init``."""
        nudged = nudge is not None and beta != 0.0
        targets = self.target_voltage * check_targets(nudge, self.n_outputs, "nudge") if nudged else None
        beta = float(beta) if nudged else 0.0
        return self._solve(params, x, targets, beta, init, None, "resistive coordinate descent")

    def clamp(self, params, x, outputs, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E with the output voltages held at a * ``outputs`` (output voltage sources)."""
        outputs = self.target_voltage * check_targets(outputs, self.n_outputs, "outputs")
        return self._solve(params, x, None, 0.0, init, outputs, "resistive clamped phase")

    def predict(self, state: Equilibrium) -> np.ndarray:
        """v_out / a."""
        return self.layers(state)[-1] / self.target_voltage

    def cost(self, state: Equilibrium, y) -> float:
        """C = 1/2 ||v_out - a y||^2."""
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((self.layers(state)[-1] - self.target_voltage * y) ** 2))

    def energy_grad(self, params, x, state: Equilibrium) -> dict[str, np.ndarray]:
        """dE/dg_raw = 1/2 (v_i - v_j)^2 sigmoid(g_raw) (times the mask) and dE/dI_k = -v_k at
        ``state`` (an Equilibrium, or a BatchEquilibrium: a leading batch axis on every leaf)."""
        params = self.check_params(params)
        layers, bias = self.layers(state), self.bias_voltages
        grads = {}
        for name in self.conductance_shapes:
            if name.startswith("gb"):
                drop = np.subtract(bias[:, None], layers[int(name[2:])][..., None, :])
            else:
                k = int(name[1:])
                drop = np.subtract(layers[k][..., :, None], layers[k + 1][..., None, :])
            np.square(drop, out=drop)  # in place: a batch's (B, n_k, n_(k+1)) blocks are the step's largest arrays
            drop *= 0.5 * expit(params[f"{name}_raw"]) * self._mask(name)
            grads[f"{name}_raw"] = drop
        if self.current_sources:
            grads.update({f"i{k}": -layers[k] for k in range(1, self.depth + 1)})
        return grads

    def energy_grad_mean(self, params, x, states) -> dict[str, np.ndarray]:
        """The batch mean of ``energy_grad`` without per-sample (B, n_k, n_(k+1)) blocks:
        mean_b 1/2 (v_i - v_j)^2 = 1/2 (mean v_i^2 + mean v_j^2) - (V_k^T V_(k+1))_ij / B."""
        params = self.check_params(params)
        layers, bias, batch = self.layers(states), self.bias_voltages, len(states)
        squares = [np.mean(v**2, axis=0) for v in layers]
        grads = {}
        for name in self.conductance_shapes:
            if name.startswith("gb"):
                k = int(name[2:])
                mean = 0.5 * (bias[:, None] ** 2 + squares[k][None, :]) - bias[:, None] * np.mean(layers[k], axis=0)[None, :]
            else:
                k = int(name[1:])
                mean = 0.5 * (squares[k][:, None] + squares[k + 1][None, :]) - layers[k].T @ layers[k + 1] / batch
            grads[f"{name}_raw"] = mean * expit(params[f"{name}_raw"]) * self._mask(name)
        if self.current_sources:
            grads.update({f"i{k}": -np.mean(layers[k], axis=0) for k in range(1, self.depth + 1)})
        return grads

    solver_name = "resistive coordinate descent"
    input_layers = sources

    def output_targets(self, Y: np.ndarray) -> np.ndarray:
        """Output target voltages a y."""
        return self.target_voltage * np.asarray(Y, dtype=float)

    def batch_view(self, batch_size: int) -> LayeredBatch:
        """All samples of a minibatch, and all nudged phases, solved together (classical.layered_batch)."""
        return LayeredBatch(self)

    @cached_property
    def _implicit(self) -> ImplicitGradient:
        import jax
        import jax.numpy as jnp

        sizes, bias, n_out = self.sizes, jnp.asarray(self.bias_voltages), self.n_outputs
        masks = {name: jnp.asarray(self._mask(name)) for name in self.conductance_shapes}

        def energy(p, flat):
            g = {name: jax.nn.softplus(p[f"{name}_raw"]) * masks[name] for name in masks}
            return resistive_energy(g, split_layers(flat, sizes), bias, jnp, p if self.current_sources else None)

        return ImplicitGradient(energy, lambda flat, target: 0.5 * jnp.sum((flat[-n_out:] - target) ** 2))

    def reference_grad(self, params, x, y, free: Equilibrium | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta by implicit differentiation (JAX) at the free equilibrium, over the
        free voltages strictly inside their diode bounds."""
        y = check_targets(y, self.n_outputs)
        state = free if free is not None else self.equilibrate(params, x)
        lower, upper = (np.concatenate(b) for b in self.bounds)
        v = state.state
        inside = (v > lower) & (v < upper)
        inside[: self.sizes[0]] = False
        inside = np.flatnonzero(inside)
        return self._implicit(self.check_params(params), v, self.target_voltage * y, inside)


def _check_bounds(bounds) -> tuple[float, float] | str:
    """hidden_bounds as (lo, hi) floats (+-inf for None) or "signed"."""
    if isinstance(bounds, str):
        if bounds != "signed":
            raise ValueError(f'hidden_bounds must be (lo, hi) or "signed", got {bounds!r}')
        return bounds
    lo, hi = (-np.inf if bounds[0] is None else float(bounds[0]), np.inf if bounds[1] is None else float(bounds[1]))
    if not lo < hi:
        raise ValueError(f"hidden_bounds must satisfy lo < hi, got {bounds}")
    return lo, hi
