"""Coupled phase oscillators (XY / Kuramoto-type energy) trained by EP.

Nodes: input oscillators 0 .. n_in - 1 with phases clamped to phi_i = input_scale * x_i, then
hidden and output oscillators with free phases. Energy on a coupling graph E (no edges
between two inputs: those would be constants):

    E(theta, x, phi) = -sum_((i,j) in E) W_ij cos(phi_i - phi_j) - sum_(i free) h_i cos(phi_i - psi_i),

parameters W (one per edge), h and psi (one per free oscillator). Outputs sin(phi_o) in
[-1, 1]; cost C(phi, y) = 1/2 sum_o (sin phi_o - y_o)^2, added as beta C in nudged phases.
(sin, not cos: an output oscillator in a field Z = sum_i W_i e^(i phi_i) + h e^(i psi) sits at
phi = arg Z, and sin(arg Z) = Im Z / |Z| is odd in the input phases, a normalized linear
readout near phi = 0, where sin also has its largest slope; cos(arg Z) would be even in the
inputs and flat at phi = 0.)

Equilibrium: Newton's method on the free phases with the analytic gradient and Hessian,
eigenvalue-modified (steps along -|H|^-1 g, negative-curvature escape from saddles) and
backtracking on E; converged when max |dE/dphi| <= tol (1 + sum |W| + sum |h|) (relative to
the scale of the forces, so rounding cannot stall it) at a point with positive-definite
Hessian (a strict local minimum). The free phase starts from phi = 0 plus ``restarts``
random starts (fixed seed: the same minimum every call) and keeps the lowest energy; nudged
phases are warm-started from the free minimum so they stay in its basin.

Local gradient: dE/dW_ij = -cos(phi_i - phi_j), dE/dh_i = -cos(phi_i - psi_i),
dE/dpsi_i = -h_i sin(phi_i - psi_i). Reference gradient: implicit differentiation of the JAX
energy over the free phases.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from qeqprop.systems.tfim import coupling_edges
from qeqprop.validation import as_finite_array

from ._common import (
    ClassicalSystemMixin,
    Equilibrium,
    check_connected,
    check_positive_float,
    check_int,
    check_targets,
    ImplicitGradient,
    raise_not_converged,
)


def oscillator_energy(params, phases, edges: np.ndarray, free: np.ndarray, xnp=np):
    """E of the module docstring at node phases ``phases`` (numpy or jax.numpy via ``xnp``)."""
    pair = xnp.sum(params["W"] * xnp.cos(phases[edges[:, 0]] - phases[edges[:, 1]]))
    return -pair - xnp.sum(params["h"] * xnp.cos(phases[free] - params["psi"]))


class PhaseOscillatorNetwork(ClassicalSystemMixin):
    """A phase-oscillator learner implementing the EnergySystem protocol (module docstring).

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : node counts (nodes are ordered inputs, hidden, outputs).
    graph : "layered" (inputs-hidden-outputs, inputs-outputs without hidden), "complete"
        (all pairs but input-input), a networkx graph, an edge list or a coupling pattern.
    input_scale : input phases are input_scale * x.
    restarts : extra random starts of the free phase (the lowest-energy minimum wins).
    seed : seed of those random starts.
    init_std : init_params draws W ~ init_std N(0, 1), h ~ 0.1 init_std N(0, 1), psi = 0.
    tol, max_iter : Newton stops at max |dE/dphi| <= tol (1 + sum |W| + sum |h|); ValueError
        after ``max_iter`` steps.
    """

    unit = "oscillators"

    def __init__(
        self,
        n_inputs: int,
        n_hidden: int = 8,
        n_outputs: int = 1,
        graph="layered",
        input_scale: float = 0.5,
        restarts: int = 0,
        seed: int = 0,
        init_std: float = 0.5,
        tol: float = 1e-12,
        max_iter: int = 200,
    ):
        self.n_inputs = check_int("n_inputs", n_inputs)
        self.n_hidden = check_int("n_hidden", n_hidden, minimum=0)
        self.n_outputs = check_int("n_outputs", n_outputs)
        n = self.n_nodes = self.n_units = self.n_inputs + self.n_hidden + self.n_outputs
        inputs = np.arange(self.n_inputs)
        hidden = np.arange(self.n_inputs, self.n_inputs + self.n_hidden)
        outputs = np.arange(n - self.n_outputs, n)
        if isinstance(graph, str) and graph == "layered":
            layers = [inputs, hidden, outputs] if self.n_hidden else [inputs, outputs]
            pairs = [(int(i), int(j)) for a, b in zip(layers, layers[1:]) for i in a for j in b]
        elif isinstance(graph, str) and graph == "complete":
            pairs = [(i, j) for i in range(n) for j in range(max(i + 1, self.n_inputs), n)]
        else:
            pairs = coupling_edges(graph, n)
        self.edges = np.array(pairs, dtype=int).reshape(-1, 2)
        if np.any((self.edges[:, 0] < self.n_inputs) & (self.edges[:, 1] < self.n_inputs)):
            raise ValueError("graph has an edge between two input oscillators; their phases are clamped, so the "
                             "edge only adds a constant: remove it")
        self.free = np.arange(self.n_inputs, n)
        self.outputs = outputs
        check_connected(n, self.edges, inputs, outputs, "output", "input oscillator")
        self.input_scale = check_positive_float("input_scale", input_scale)
        self.restarts = check_int("restarts", restarts, minimum=0)
        self.seed = int(seed)
        self.init_std = float(init_std)
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (len(self.edges),), "h": (self.free.size,), "psi": (self.free.size,)}

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        return {
            "W": self.init_std * rng.standard_normal(len(self.edges)),
            "h": 0.1 * self.init_std * rng.standard_normal(self.free.size),
            "psi": np.zeros(self.free.size),
        }

    def _terms(self, params, phases: np.ndarray, targets, beta: float) -> tuple[float, np.ndarray, np.ndarray]:
        """E + beta C, its gradient and Hessian over all nodes (rows of inputs unused)."""
        n, (i, j), free = self.n_nodes, self.edges.T, self.free
        delta = phases[i] - phases[j]
        coupling, bias = params["W"] * np.cos(delta), params["h"] * np.cos(phases[free] - params["psi"])
        energy = -float(np.sum(coupling) + np.sum(bias))
        force = params["W"] * np.sin(delta)
        grad = np.bincount(i, force, n) - np.bincount(j, force, n)
        grad[free] += params["h"] * np.sin(phases[free] - params["psi"])
        hess = np.zeros((n, n))
        np.add.at(hess, (i, j), -coupling)
        hess += hess.T
        hess[np.diag_indices(n)] = np.bincount(i, coupling, n) + np.bincount(j, coupling, n)
        hess[free, free] += bias
        if targets is not None:
            out = self.outputs
            cos, sin = np.cos(phases[out]), np.sin(phases[out])
            energy += 0.5 * beta * float(np.sum((sin - targets) ** 2))
            grad[out] += beta * (sin - targets) * cos
            hess[out, out] += beta * (cos**2 - (sin - targets) * sin)
        return energy, grad, hess

    def _newton(self, params, phases: np.ndarray, move: np.ndarray, targets, beta: float, what: str) -> Equilibrium:
        """Minimize over the phases at indices ``move`` (the others stay fixed)."""
        phases = phases.copy()
        sub = np.ix_(move, move)
        tol = self.tol * (1.0 + np.sum(np.abs(params["W"])) + np.sum(np.abs(params["h"])))
        for step in range(self.max_iter + 1):
            energy, grad, hess = self._terms(params, phases, targets, beta)
            g, h = grad[move], hess[sub]
            values, vectors = np.linalg.eigh(h)
            residual = float(np.max(np.abs(g), initial=0.0))
            smallest = float(values[0]) if values.size else np.inf
            if residual <= tol and smallest > 0:
                wrapped = np.angle(np.exp(1j * phases))
                return Equilibrium(wrapped, energy, step, residual, beta, {"min_hessian_eigenvalue": smallest})
            if step == self.max_iter:
                break
            if residual <= tol:  # a saddle: leave along the most negative curvature
                direction, slope = vectors[:, 0], 0.0
            else:
                floor = 1e-8 * max(1.0, float(np.max(np.abs(values))))
                direction = -vectors @ ((vectors.T @ g) / np.maximum(np.abs(values), floor))
                slope = float(g @ direction)
            size = 1.0
            if smallest <= 0 or residual > 1e-6:  # backtracking on E; plain Newton steps near a minimum
                while size > 1e-12:
                    trial = phases.copy()
                    trial[move] += size * direction
                    new = self._terms(params, trial, targets, beta)[0]
                    if new <= energy + 1e-4 * size * slope and (slope < 0 or new < energy):
                        break
                    size *= 0.5
            phases = phases.copy()
            phases[move] += size * direction
        raise_not_converged(what, self.max_iter, residual, f"max |dE/dphi| > tol {tol:.1e} or not a minimum",
                            "raise max_iter, or use restarts / a warm start (init) nearer a minimum")

    def input_phases(self, x) -> np.ndarray:
        return self.input_scale * as_finite_array("x", x, (self.n_inputs,))

    def _start(self, x, init: Equilibrium | None) -> np.ndarray:
        phases = np.zeros(self.n_nodes) if init is None else init.state.copy()
        phases[: self.n_inputs] = self.input_phases(x)
        return phases

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        """Local minimum of E + beta C(phi, y) (``nudge`` = y): from ``init`` if given, else the
        lowest of the minima reached from phi = 0 and the ``restarts`` random starts."""
        params = self.check_params(params)
        nudged = nudge is not None and beta != 0.0
        targets = check_targets(nudge, self.n_outputs, "nudge") if nudged else None
        beta = float(beta) if nudged else 0.0
        start = self._start(x, init)
        if init is not None:
            return self._newton(params, start, self.free, targets, beta, "phase-oscillator Newton")
        starts = [start]
        rng = np.random.default_rng(self.seed)
        for _ in range(self.restarts):
            trial = start.copy()
            trial[self.free] = rng.uniform(-np.pi, np.pi, self.free.size)
            starts.append(trial)
        minima = [self._newton(params, s, self.free, targets, beta, "phase-oscillator Newton") for s in starts]
        best = min(minima, key=lambda m: m.energy)
        best.info["restart_energies"] = [m.energy for m in minima]
        return best

    def clamp(self, params, x, outputs, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E with sin(phi_o) held at ``outputs`` (in [-1, 1]); phi_o = arcsin(outputs)
        where cos(phi_o) >= 0 in ``init`` (or without one), else pi - arcsin(outputs)."""
        params = self.check_params(params)
        outputs = check_targets(outputs, self.n_outputs, "outputs")
        if np.any(np.abs(outputs) > 1.0):
            raise ValueError(f"outputs must lie in [-1, 1] (they are sin(phi_o)), got {outputs.tolist()}")
        phases = self._start(x, init)
        angle = np.arcsin(outputs)
        phases[self.outputs] = np.where(np.cos(phases[self.outputs]) < 0, np.pi - angle, angle)
        hidden = self.free[: self.n_hidden]
        return self._newton(params, phases, hidden, None, 0.0, "phase-oscillator clamped phase")

    def predict(self, state: Equilibrium) -> np.ndarray:
        """sin(phi_o)."""
        return np.sin(state.state[self.outputs])

    def cost(self, state: Equilibrium, y) -> float:
        """C = 1/2 sum_o (sin phi_o - y_o)^2."""
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((self.predict(state) - y) ** 2))

    def energy_grad(self, params, x, state: Equilibrium) -> dict[str, np.ndarray]:
        """dE/dtheta at ``state`` (module docstring)."""
        params = self.check_params(params)
        phases, (i, j), free = state.state, self.edges.T, self.free
        offset = phases[free] - params["psi"]
        return {"W": -np.cos(phases[i] - phases[j]), "h": -np.cos(offset), "psi": -params["h"] * np.sin(offset)}

    @cached_property
    def _implicit(self) -> ImplicitGradient:
        import jax.numpy as jnp

        edges, nodes, outputs = self.edges, self.free, self.outputs
        return ImplicitGradient(lambda p, phases: oscillator_energy(p, phases, edges, nodes, jnp),
                                lambda phases, y: 0.5 * jnp.sum((jnp.sin(phases[outputs]) - y) ** 2))

    def reference_grad(self, params, x, y, free: Equilibrium | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta by implicit differentiation (JAX) at the free equilibrium."""
        y = check_targets(y, self.n_outputs)
        state = free if free is not None else self.equilibrate(params, x)
        return self._implicit(self.check_params(params), state.state, y, self.free)
