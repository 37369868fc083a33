"""Shared pieces of the classical EP baselines: states, the layered box-constrained quadratic
energy (Hopfield and resistive networks), convergence errors, graph connectivity checks and
the implicit-differentiation reference gradient.

Layered quadratic energy over layers s_0 (clamped), s_1, ..., s_K:

    E(s) = sum_k [ 1/2 d_k . s_k^2 - c_k . s_k ] - sum_k s_k^T C_k s_(k+1) + e_0,   lo_k <= s_k <= hi_k,

with d_k > 0 on free layers. Layers only couple to their neighbours, so given the others, layer k's energy
is separable and its exact minimizer is

    s_k = clip( (C_(k-1)^T s_(k-1) + C_k s_(k+1) + c_k) / d_k, lo_k, hi_k ).

Updating all odd layers, then all even ones, is exact block-coordinate descent; E never
increases. KKT conditions at a solution: the projected gradient s - clip(s - dE/ds, lo, hi)
vanishes on every free layer.

Reference gradient (implicit differentiation): at a strict local minimum s* with free
(non-clamped, not at an active bound) coordinates F, dE/ds_F (theta, s*) = 0, so

    dL/dtheta = -lambda^T d^2E / (ds_F dtheta),    H_FF lambda = dC/ds_F,   H = d^2E/ds^2,

computed in JAX (float64) from an energy written independently of the solvers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from qeqprop import _jax  # noqa: F401  (float64 JAX before any array is made)
from qeqprop.errors import NotConvergedError
from qeqprop.systems.protocol import SystemBase
from qeqprop.validation import as_finite_array, check_int, check_params, check_positive_float  # noqa: F401  (re-exported for the systems)


@dataclass
class Equilibrium:
    """A classical equilibrium with its solver diagnostics.

    Fields::

        state : every node's value, clamped nodes included (a flat vector).
        energy : E at the state (nudge term included for nudged phases).
        iterations : solver sweeps / Newton steps.
        residual : KKT residual max |s - clip(s - dE/ds, lo, hi)| over free coordinates
            (the plain gradient norm where there are no bounds).
        beta : nudge strength the state was found with.
        info : solver-specific extras (minimum Hessian eigenvalue, restarts, ...).
    """

    state: np.ndarray
    energy: float
    iterations: int
    residual: float
    beta: float = 0.0
    info: dict = field(default_factory=dict)


def raise_not_converged(what: str, iterations: int, residual: float, criterion: str, hint: str) -> None:
    """NotConvergedError (a ValueError) for a solver that stopped before meeting ``criterion``
    (e.g. "residual > tol 1e-12")."""
    raise NotConvergedError(f"{what} did not converge in {iterations} iterations: residual {residual:.3e} ({criterion}); {hint}")


def check_targets(y, n_outputs: int, name: str = "y") -> np.ndarray:
    return as_finite_array(name, y, (n_outputs,))


def projected_residual(s: np.ndarray, grad: np.ndarray, lo, hi) -> float:
    """max |s - clip(s - grad, lo, hi)|: zero exactly at KKT points of a box-constrained minimum."""
    if s.size == 0:
        return 0.0
    return float(np.max(np.abs(s - np.clip(s - grad, lo, hi))))


def check_connected(n_nodes: int, edges: np.ndarray, anchors: Sequence[int], nodes: Sequence[int], kind: str, anchor_kind: str) -> None:
    """Every node in ``nodes`` must reach an anchor node through ``edges`` ((m, 2) int array)."""
    edges = np.asarray(edges, dtype=int).reshape(-1, 2)
    adjacency = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    _, labels = connected_components(adjacency, directed=False)
    anchored = set(labels[list(anchors)].tolist())
    lonely = [int(i) for i in nodes if labels[i] not in anchored]
    if lonely:
        raise ValueError(
            f"{kind} node(s) {lonely} are not connected to any {anchor_kind}: their state does not depend on "
            "the input and the equilibrium is not unique; add edges (or unmask conductances) to reach them"
        )


@dataclass
class LayeredQuadratic:
    """The layered box-constrained quadratic energy of the module docstring.

    couplings[k] = C_k (n_k, n_(k+1)); linear[k] = c_k; diagonal[k] = d_k > 0; lower/upper the
    bounds per layer (arrays or +-inf); ``fixed`` the indices of clamped layers (layer 0 always);
    ``constant`` = e_0.
    """

    couplings: list[np.ndarray]
    linear: list[np.ndarray]
    diagonal: list[np.ndarray]
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    fixed: frozenset[int] = frozenset({0})
    constant: float = 0.0

    def field(self, layers: Sequence[np.ndarray], k: int) -> np.ndarray:
        """C_(k-1)^T s_(k-1) + C_k s_(k+1) + c_k."""
        total = self.linear[k].copy()
        if k > 0:
            total += layers[k - 1] @ self.couplings[k - 1]
        if k < len(self.couplings):
            total += self.couplings[k] @ layers[k + 1]
        return total

    def gradient(self, layers: Sequence[np.ndarray]) -> list[np.ndarray]:
        """dE/ds_k = d_k s_k - field_k."""
        return [self.diagonal[k] * s - self.field(layers, k) for k, s in enumerate(layers)]

    def energy(self, layers: Sequence[np.ndarray]) -> float:
        total = self.constant + sum(float(0.5 * d @ s**2 - c @ s) for d, c, s in zip(self.diagonal, self.linear, layers))
        return total - sum(float(layers[k] @ C @ layers[k + 1]) for k, C in enumerate(self.couplings))

    def free_layers(self) -> list[int]:
        return [k for k in range(len(self.diagonal)) if k not in self.fixed]

    def residual(self, layers: Sequence[np.ndarray]) -> float:
        grads = self.gradient(layers)
        return max(
            (projected_residual(layers[k], grads[k], self.lower[k], self.upper[k]) for k in self.free_layers()),
            default=0.0,
        )

    def solve(self, layers: list[np.ndarray], tol: float, max_iter: int, what: str) -> Equilibrium:
        """Alternate exact updates of odd and even free layers until no entry moves more than
        ``tol`` in a sweep; ValueError (with the KKT residual) after ``max_iter`` sweeps."""
        layers = [np.array(s, dtype=float) for s in layers]
        free = self.free_layers()
        groups = [[k for k in free if k % 2 == 1], [k for k in free if k % 2 == 0]]
        change, sweeps = np.inf, 0
        while change > tol:
            if sweeps == max_iter:
                raise_not_converged(what, sweeps, self.residual(layers),
                                    f"the last sweep moved a unit by {change:.3e} > tol {tol:.1e}",
                                    "raise max_iter, or shrink the weights (strong couplings converge slowly)")
            change = 0.0
            for group in groups:
                for k in group:
                    new = np.clip(self.field(layers, k) / self.diagonal[k], self.lower[k], self.upper[k])
                    change = max(change, float(np.max(np.abs(new - layers[k]), initial=0.0)))
                    layers[k] = new
            sweeps += 1
        return Equilibrium(np.concatenate(layers), self.energy(layers), sweeps, self.residual(layers))


def split_layers(state: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """The flat state (numpy or JAX; a batch (B, n) along its last axis) cut into layers of the given sizes."""
    ends = np.cumsum(sizes)
    return [state[..., end - size : end] for size, end in zip(sizes, ends)]


class ImplicitGradient:
    """dL/dtheta for L = cost(s*(theta), y) at a minimum s* of energy(params, s) (module
    docstring), differentiating over the coordinates ``free`` only: clamped and active-bound
    coordinates stay put under small changes of theta. ``energy(params, s)`` and
    ``cost(s, y)`` are JAX functions of the full flat state; the Hessian, cost gradient and
    mixed term are jitted once per system (fixed shapes) and restricted to ``free`` in numpy.
    """

    def __init__(self, energy: Callable, cost: Callable):
        import jax
        import jax.numpy as jnp

        self._hessian = jax.jit(jax.hessian(energy, argnums=1))
        self._cost_grad = jax.jit(jax.grad(cost, argnums=0))
        self._mixed = jax.jit(jax.grad(lambda p, s, lam: -jnp.dot(lam, jax.grad(energy, argnums=1)(p, s))))

    def __call__(self, params: Mapping[str, np.ndarray], state: np.ndarray, y: np.ndarray, free: np.ndarray) -> dict[str, np.ndarray]:
        params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        if free.size == 0:
            return {k: np.zeros_like(v) for k, v in params.items()}
        hessian = np.asarray(self._hessian(params, state))[np.ix_(free, free)]
        smallest = float(np.linalg.eigvalsh(hessian)[0])
        if smallest <= 1e-10 * max(1.0, float(np.max(np.abs(hessian)))):
            raise ValueError(
                f"the equilibrium is not a strict minimum (smallest Hessian eigenvalue {smallest:.3e}); "
                "EP and the implicit gradient are undefined there: perturb the parameters or the input"
            )
        lam = np.zeros(state.size)
        lam[free] = np.linalg.solve(hessian, np.asarray(self._cost_grad(state, y))[free])
        return {k: np.asarray(v, dtype=np.float64) for k, v in self._mixed(params, state, lam).items()}


class ClassicalSystemMixin(SystemBase):
    """Protocol methods every classical system shares (EnergySystem, qeqprop.systems.protocol)."""

    n_outputs: int
    param_shapes: dict[str, tuple[int, ...]]
    unit = "nodes"
    n_units: int  # degrees of freedom: every node of the state, clamped inputs included

    def describe(self) -> dict:
        return {"name": type(self).__name__, "units": self.n_units, "unit": self.unit}

    def diagnostics(self, state) -> dict[str, float]:
        """Sweeps / Newton steps and the KKT residual of an Equilibrium (none for exact enumerations)."""
        if isinstance(state, Equilibrium):
            return {"iterations": state.iterations, "residual": state.residual}
        return {}

    def check_params(self, params) -> dict[str, np.ndarray]:
        return check_params(params, self.param_shapes)

    def nudge(self, state, y) -> np.ndarray:
        """The targets y themselves: the nudged energy is E + beta C(s, y) with the true cost."""
        return check_targets(y, self.n_outputs)


class LayeredSystem(ClassicalSystemMixin):
    """Plumbing shared by the layered systems (Hopfield, resistive): the state is the
    concatenation of layers ``sizes`` (layer 0 clamped by the input), solved by
    LayeredQuadratic.solve. Subclasses provide ``_input_layer(x)`` and
    ``quadratic(params, targets, beta, clamped)`` (targets: the nudge's output targets or None;
    clamped: the output layer is held fixed)."""

    sizes: list[int]
    tol: float
    max_iter: int
    quadratic: Callable[..., LayeredQuadratic]
    _input_layer: Callable[..., np.ndarray]

    @property
    def n_units(self) -> int:
        return int(sum(self.sizes))

    @property
    def depth(self) -> int:
        """Number of coupling blocks between consecutive layers (L + 1 for L hidden layers)."""
        return len(self.sizes) - 1

    def layers(self, state: Equilibrium) -> list[np.ndarray]:
        """The layers [s_0 (input), s_1, ..., s_out] of an equilibrium."""
        return split_layers(state.state, self.sizes)

    def _solve(self, params, x, targets, beta: float, init: Equilibrium | None, output, what: str) -> Equilibrium:
        """Minimum of the layered energy from ``init`` (zeros without one); ``output`` clamps the
        output layer to those values."""
        quadratic = self.quadratic(params, targets, beta, clamped=output is not None)
        layers = [np.zeros(n) for n in self.sizes] if init is None else [v.copy() for v in self.layers(init)]
        layers[0] = self._input_layer(x)
        if output is not None:
            layers[-1] = output
        state = quadratic.solve(layers, self.tol, self.max_iter, what)
        state.beta = beta
        return state
