"""Flow networks with tunable conductances (Stern, Hexner, Rocks & Liu 2021, "Supervised learning
in physical networks: from machine learning to learning machines", PRX 11, 021045), trained by
coupled learning (classical.learning_rules.coupled_gradient) or EP.

Nodes carry pressures p; edge e = (a, b) has conductance k_e > 0 and carries the flow
k_e (p_a - p_b). Source nodes hold pressures: the input nodes gain * x (inputs duplicated with
both signs, ``signed_inputs``, so that positive conductances can weigh them either way) and the
fixed nodes their set pressures (a ground at 0, a bias source at 1, ...). The other nodes settle
where the dissipated power is least (Kirchhoff's current law, zero net flow at every free node),

    P(p) = 1/2 sum_e k_e (p_a - p_b)^2,    p_F = argmin P = -L_FF^-1 L_FS p_S,

with L the weighted graph Laplacian. Outputs are the pressures at the target nodes, the cost
C = 1/2 ||p_T - a y||^2 (a = ``target_pressure``), and predictions p_T / a. The nudged phase
minimizes P + beta C (target nodes leak to a y through a conductance beta); the clamped phase
(coupled learning) holds p_T as extra sources. Every phase is one linear solve: a batch shares one
Cholesky factorization of L_FF (+ beta at the targets), so B samples cost one factorization and
a triangular solve with B right-hand sides.

Conductances are k = softplus(k_raw) (param "k_raw", one per edge); the local rule is
dP/dk_e = 1/2 (p_a - p_b)^2, so coupled learning's update of Stern et al.,
k_e <- k_e - (alpha / eta) [ 1/2 dp_e(clamped)^2 - 1/2 dp_e(free)^2 ], is the descent direction
of ``coupled_gradient`` (times sigmoid(k_raw) for the raw parameter).

``random_flow_network`` builds the disordered networks of the paper's kind: a connected random
graph with mean degree about ``degree`` whose first nodes are sources, then targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import networkx as nx
import numpy as np
import scipy.linalg
from scipy.special import expit

from qeqprop.systems.oscillators import softplus, softplus_inverse
from qeqprop.validation import as_finite_array

from ._common import (
    ClassicalSystemMixin,
    Equilibrium,
    ImplicitGradient,
    check_connected,
    check_int,
    check_positive_float,
    check_targets,
)
from .layered_batch import BatchEquilibrium


class FlowNetwork(ClassicalSystemMixin):
    """A flow (or resistor) network on any graph, implementing the EnergySystem protocol.

    Parameters
    ----------
    n_nodes : number of nodes.
    edges : (m, 2) node pairs (no self-loops, no repeats).
    input_nodes : the nodes holding the input pressures: n_inputs of them, or 2 n_inputs with
        ``signed_inputs`` (x first, then -x).
    output_nodes : the target nodes whose pressures are the outputs.
    fixed_nodes, fixed_pressures : the other source nodes and their pressures (default: node
        ``n_nodes - 1`` grounded at 0).
    signed_inputs : inputs enter as (x, -x).
    input_gain : input pressures are gain * x.
    target_pressure : a > 0, the pressure that stands for y = 1.
    conductance_init, init_std : k_raw ~ softplus^-1(conductance_init) + init_std N(0, 1).
    """

    unit = "nodes"

    def __init__(
        self,
        n_nodes: int,
        edges,
        input_nodes: Sequence[int],
        output_nodes: Sequence[int],
        fixed_nodes: Sequence[int] | None = None,
        fixed_pressures: Sequence[float] | None = None,
        signed_inputs: bool = True,
        input_gain: float = 1.0,
        target_pressure: float = 1.0,
        conductance_init: float = 1.0,
        init_std: float = 0.1,
    ):
        self.n_nodes = check_int("n_nodes", n_nodes, 2)
        self.edges = np.asarray(edges, dtype=int).reshape(-1, 2)
        if self.edges.size == 0 or self.edges.min() < 0 or self.edges.max() >= self.n_nodes:
            raise ValueError(f"edges must be node pairs in 0..{self.n_nodes - 1}, got {len(self.edges)} edges "
                             f"spanning {self.edges.min(initial=0)}..{self.edges.max(initial=0)}")
        if np.any(self.edges[:, 0] == self.edges[:, 1]) or len({tuple(sorted(e)) for e in self.edges.tolist()}) < len(self.edges):
            raise ValueError("edges must not hold self-loops or repeated pairs")
        self.signed_inputs = bool(signed_inputs)
        self.input_nodes = np.asarray(input_nodes, dtype=int).reshape(-1)
        if self.signed_inputs and self.input_nodes.size % 2:
            raise ValueError(f"signed_inputs needs an even number of input_nodes (x, then -x), got {self.input_nodes.size}")
        self.n_inputs = self.input_nodes.size // 2 if self.signed_inputs else self.input_nodes.size
        self.output_nodes = np.asarray(output_nodes, dtype=int).reshape(-1)
        self.n_outputs = check_int("number of output_nodes", self.output_nodes.size)
        self.fixed_nodes = np.asarray([self.n_nodes - 1] if fixed_nodes is None else fixed_nodes, dtype=int).reshape(-1)
        self.fixed_values = as_finite_array("fixed_pressures", [0.0] if fixed_pressures is None else fixed_pressures,
                                            (self.fixed_nodes.size,))
        roles = np.concatenate([self.input_nodes, self.output_nodes, self.fixed_nodes])
        if roles.size and (roles.min() < 0 or roles.max() >= self.n_nodes or len(set(roles.tolist())) < roles.size):
            raise ValueError("input_nodes, output_nodes and fixed_nodes must name distinct nodes in 0..n_nodes-1")
        self.sources = np.concatenate([self.input_nodes, self.fixed_nodes])
        self.free = np.setdiff1d(np.arange(self.n_nodes), self.sources)
        self.input_gain = check_positive_float("input_gain", input_gain)
        self.target_pressure = check_positive_float("target_pressure", target_pressure)
        self.conductance_init = check_positive_float("conductance_init", conductance_init)
        self.init_std = float(init_std)
        check_connected(self.n_nodes, self.edges, self.sources.tolist(), self.free.tolist(), "free", "source node")

    @property
    def n_units(self) -> int:
        return self.n_nodes

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"k_raw": (len(self.edges),)}

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        return {"k_raw": softplus_inverse(self.conductance_init) + self.init_std * rng.standard_normal(len(self.edges))}

    def conductances(self, params) -> np.ndarray:
        """k = softplus(k_raw), one per edge."""
        return softplus(self.check_params(params)["k_raw"])

    def laplacian(self, params) -> np.ndarray:
        """L = sum_e k_e (u_a - u_b)(u_a - u_b)^T (dense, n_nodes x n_nodes)."""
        k, (a, b) = self.conductances(params), self.edges.T
        L = np.zeros((self.n_nodes, self.n_nodes))
        np.add.at(L, (a, b), -k)
        np.add.at(L, (b, a), -k)
        np.add.at(L, (a, a), k)
        np.add.at(L, (b, b), k)
        return L

    def source_pressures(self, X) -> np.ndarray:
        """Pressures of the source nodes (B, n_sources): gain * (x, -x) or gain * x, then the fixed values."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        X = as_finite_array("x", X, (len(X), self.n_inputs))
        inputs = self.input_gain * (np.concatenate([X, -X], axis=1) if self.signed_inputs else X)
        return np.concatenate([inputs, np.broadcast_to(self.fixed_values, (len(X), self.fixed_values.size))], axis=1)

    def solve(self, params, X, targets=None, beta: float = 0.0, clamped=None) -> BatchEquilibrium:
        """Pressures of every node for a batch X (B, n_inputs): free (``targets`` None), nudged
        (targets (B, n_out) pulled with conductance ``beta``) or with the outputs held at
        ``clamped`` (B, n_out). One Cholesky factorization serves the whole batch."""
        L, S = self.laplacian(params), self.source_pressures(X)
        held, values = self.sources, S
        if clamped is not None:
            held, values = np.concatenate([self.sources, self.output_nodes]), np.concatenate([S, clamped], axis=1)
        free = np.setdiff1d(np.arange(self.n_nodes), held)
        L_ff, rhs = L[np.ix_(free, free)].copy(), -values @ L[np.ix_(held, free)]
        out = np.searchsorted(free, self.output_nodes) if clamped is None else None
        if targets is not None and beta != 0.0:
            L_ff[out, out] += beta
            rhs[:, out] += beta * targets
        try:
            factor = scipy.linalg.cho_factor(L_ff)
        except np.linalg.LinAlgError:
            raise ValueError(f"nudged phase beta={beta}: the conductance matrix is not positive definite; use a smaller |beta|") from None
        p = np.zeros((len(S), self.n_nodes))
        p[:, held] = values
        p[:, free] = scipy.linalg.cho_solve(factor, rhs.T).T
        grad = p @ L[:, free]  # dP/dp_F: the net flow out of each free node (Kirchhoff's current law: 0)
        energy = 0.5 * np.einsum("bi,ij,bj->b", p, L, p)
        if targets is not None and beta != 0.0:
            grad[:, out] += beta * (p[:, self.output_nodes] - targets)
            energy += 0.5 * beta * np.sum((p[:, self.output_nodes] - targets) ** 2, axis=1)
        residual = np.max(np.abs(grad), axis=1, initial=0.0)
        return BatchEquilibrium(p, energy, np.ones(len(p), dtype=int), residual, np.full(len(p), float(beta)))

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init=None) -> Equilibrium:
        """Pressures minimizing P + beta C(p, y) for one sample (``nudge`` = y)."""
        nudged = nudge is not None and beta != 0.0
        targets = self.target_pressure * check_targets(nudge, self.n_outputs, "nudge")[None] if nudged else None
        return self.solve(params, np.asarray(x)[None], targets, float(beta) if nudged else 0.0).take(0)

    def clamp(self, params, x, outputs, init=None) -> Equilibrium:
        """Pressures with the target nodes held at a * ``outputs`` (the clamped state of coupled learning)."""
        outputs = self.target_pressure * check_targets(outputs, self.n_outputs, "outputs")
        return self.solve(params, np.asarray(x)[None], clamped=outputs[None]).take(0)

    def predict(self, state) -> np.ndarray:
        """p_T / a (one state or a batch)."""
        return np.asarray(state.state)[..., self.output_nodes] / self.target_pressure

    def cost(self, state, y) -> float:
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((state.state[self.output_nodes] - self.target_pressure * y) ** 2))

    def energy_grad(self, params, x, state) -> dict[str, np.ndarray]:
        """dP/dk_raw = 1/2 (p_a - p_b)^2 sigmoid(k_raw) (one state or a batch: leading axis B)."""
        p, (a, b) = np.asarray(state.state), self.edges.T
        return {"k_raw": 0.5 * (p[..., a] - p[..., b]) ** 2 * expit(self.check_params(params)["k_raw"])}

    @cached_property
    def _implicit(self) -> ImplicitGradient:
        import jax
        import jax.numpy as jnp

        a, b, out = jnp.asarray(self.edges[:, 0]), jnp.asarray(self.edges[:, 1]), jnp.asarray(self.output_nodes)

        def power(params, p):
            return 0.5 * jnp.sum(jax.nn.softplus(params["k_raw"]) * (p[a] - p[b]) ** 2)

        return ImplicitGradient(power, lambda p, target: 0.5 * jnp.sum((p[out] - target) ** 2))

    def reference_grad(self, params, x, y, free: Equilibrium | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dk_raw by implicit differentiation (JAX) over the free nodes."""
        y = check_targets(y, self.n_outputs)
        state = free if free is not None else self.equilibrate(params, x)
        return self._implicit(self.check_params(params), state.state, self.target_pressure * y, self.free)

    def batch_view(self, batch_size: int) -> FlowBatch:
        return FlowBatch(self)


class FlowBatch:
    """Batch-first view of a FlowNetwork: every phase of a minibatch is one factorization and one
    multi-right-hand-side solve; states are BatchEquilibrium."""

    joint_phases = False

    def __init__(self, system: FlowNetwork):
        self.system = system

    def equilibrate(self, params, X, nudge=None, beta=0.0, init=None) -> BatchEquilibrium:
        system = self.system
        nudged = nudge is not None and beta != 0.0
        targets = system.target_pressure * as_finite_array("nudge", nudge, (len(X), system.n_outputs)) if nudged else None
        return system.solve(params, X, targets, float(beta) if nudged else 0.0)

    def reflect(self, free, nudged):
        return

    def nudge(self, states, Y) -> np.ndarray:
        return as_finite_array("y", Y, (len(states), self.system.n_outputs))

    def predict(self, states) -> np.ndarray:
        return self.system.predict(states)

    def cost(self, states, Y) -> np.ndarray:
        Y = as_finite_array("y", Y, (len(states), self.system.n_outputs))
        return 0.5 * np.sum((states.state[:, self.system.output_nodes] - self.system.target_pressure * Y) ** 2, axis=1)

    def energy_grad(self, params, X, states) -> dict[str, np.ndarray]:
        return self.system.energy_grad(params, X, states)

    def diagnostics(self, states) -> dict[str, np.ndarray]:
        return {"iterations": states.iterations.astype(float), "residual": states.residual}

    def take(self, states, index: int) -> Equilibrium:
        return states.take(index)

    def stack(self, states) -> BatchEquilibrium:
        return BatchEquilibrium.stack(states)


def random_flow_network(n_inputs: int, n_outputs: int, hidden: int, degree: float = 4.0, seed: int = 0,
                        bias_pressure: float | None = 1.0, target_pressure: float = 0.3, **options) -> FlowNetwork:
    """A FlowNetwork on a connected random graph (Watts-Strogatz: a ring lattice of ``degree``
    neighbours rewired with probability 1/2, so disordered like the paper's networks, with the
    roles placed at random) of 2 n_inputs (signed) input nodes, n_outputs target nodes, ``hidden``
    interior nodes, a ground node at 0 and (unless ``bias_pressure`` is None) a bias node held at
    ``bias_pressure``; ``options`` go to FlowNetwork. ``target_pressure`` 0.3: class targets +-1
    become pressures +-0.3, within reach of weighted means of the sources (the registry's "flow")."""
    n_in = (2 if options.get("signed_inputs", True) else 1) * check_int("n_inputs", n_inputs)
    n_fixed = 1 if bias_pressure is None else 2
    n_nodes = n_in + check_int("n_outputs", n_outputs) + check_int("hidden", hidden, 0) + n_fixed
    neighbours = min(max(2, round(degree)), n_nodes - 1)
    graph = nx.connected_watts_strogatz_graph(n_nodes, neighbours, 0.5, tries=1000, seed=seed)
    order = np.random.default_rng(seed).permutation(n_nodes)
    edges = order[np.array(graph.edges(), dtype=int)]
    fixed = [n_nodes - 1] if bias_pressure is None else [n_nodes - 2, n_nodes - 1]
    pressures = [0.0] if bias_pressure is None else [float(bias_pressure), 0.0]
    return FlowNetwork(n_nodes, edges.tolist(), list(range(n_in)), list(range(n_in, n_in + n_outputs)), fixed, pressures,
                       target_pressure=target_pressure, **options)


def allosteric_task(hidden: int = 40, n_sources: int = 1, n_targets: int = 3, degree: float = 4.0,
                    seed: int = 0) -> tuple[FlowNetwork, np.ndarray, np.ndarray]:
    """The target-pressure (allosteric) task of Stern et al. 2021: a random flow network whose
    ``n_sources`` source nodes are held at pressure 1 (against a ground at 0) must set its
    ``n_targets`` target nodes to prescribed pressures, drawn uniformly in [0.2, 0.8] (reachable:
    every free pressure is a weighted mean of 1 and 0). Returns (network, X (1, n_sources) of
    ones, Y (1, n_targets) the prescribed pressures); train it as regression, e.g.
    ``fit(net, (X, Y), task="regression", gradient=Coupled(eta), batch_size=1)``."""
    network = random_flow_network(n_sources, n_targets, hidden, degree, seed, bias_pressure=None, target_pressure=1.0,
                                  signed_inputs=False)
    targets = np.random.default_rng([seed, 1]).uniform(0.2, 0.8, (1, n_targets))
    return network, np.ones((1, n_sources)), targets
