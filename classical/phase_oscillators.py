"""Coupled phase oscillators (XY / Kuramoto-type energy) trained by EP, after Wang, Wanjura and
Marquardt, "Training coupled phase oscillators as a neuromorphic platform using equilibrium
propagation" (Neuromorph. Comput. Eng. 4, 034014, 2024).

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

Batched forces (BLAS level): with A the symmetric (n, n) coupling matrix (A_ij = W_e on edge e),
c = cos phi and s = sin phi rows of a batch (B, n),

    dE/dphi_i      = s_i (c A)_i - c_i (s A)_i + h_i sin(phi_i - psi_i),
    d2E/dphi_i^2   = c_i (c A)_i + s_i (s A)_i + h_i cos(phi_i - psi_i),
    d2E/dphi_i dphi_j = -A_ij (c_i c_j + s_i s_j)      (i != j),

so a minibatch costs two (B, n) x (n, n) products and one (B, F, F) Hessian per Newton step.

Equilibrium (``minimize``), a globalised Newton method for a whole batch at once, each sample with
its own step and stopping point:

0. From a cold start (no ``init``): ``sweeps`` sweeps of exact block-coordinate descent. Each
   oscillator's own energy -|Z_i| cos(phi_i - arg Z_i), with its field Z_i = sum_j A_ij e^(i phi_j)
   + h_i e^(i psi_i), is minimal at phi_i = arg Z_i; oscillators of one colour class of the free
   graph (no edge between them; layered nets: hidden, then outputs) are updated together, so E
   never increases. This lands near a minimum, where Newton's Hessian is positive definite.
1. Newton steps along -H^-1 g where the Hessian is positive definite, else along the
   eigenvalue-modified -|H|^-1 g (a descent direction) or, at a saddle, along the most negative
   curvature; Armijo backtracking on E per sample (plain Newton steps once max |g| <= 1e-6 at a
   positive-definite Hessian, where E's rounding would stall a line search).
2. Samples still unconverged after ``max_iter`` steps (SETTLED_RETRY): damped gradient flow
   phi <- phi - eta g (eta by backtracking, ``max_iter`` steps) to leave the region that stalled
   Newton, then ``max_iter`` Newton steps again.
3. Samples still unconverged (SETTLED_USABLE) are kept at their lowest-energy iterate, counted in
   the diagnostics ("retries", read by qeqprop.train's solver counts) and logged as a WARNING:
   a rare, reported event, not a lost run. A single-sample ``equilibrate`` raises
   NotConvergedError instead.

Converged: max |dE/dphi| <= tol (1 + sum |W| + sum |h|) (relative to the scale of the forces, so
rounding cannot stall it) at a Hessian with smallest eigenvalue > 0 (a strict local minimum).
The free phase starts from phi = 0 plus ``restarts`` random starts (fixed seed: the same minimum
every call, the same starts for every sample) and keeps the lowest energy; nudged phases are
warm-started from the free minimum so they stay in its basin. One sample is a batch of one, so
per-sample and batched equilibria agree to rounding (tests: 1e-10).

Local gradient: dE/dW_ij = -cos(phi_i - phi_j), dE/dh_i = -cos(phi_i - psi_i),
dE/dpsi_i = -h_i sin(phi_i - psi_i). Reference gradient: implicit differentiation of the JAX
energy over the free phases.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np
import scipy.linalg

from qeqprop.errors import NotConvergedError
from qeqprop.solvers.batched_lanczos import SETTLED_FIRST, SETTLED_RETRY, SETTLED_USABLE
from qeqprop.systems.tfim import coupling_edges
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

logger = logging.getLogger(__name__)

PLAIN_NEWTON_BELOW = 1e-6  # max |g| under which positive-definite Newton steps skip the line search
ARMIJO = 1e-4
MIN_STEP = 1e-12


def positive_definite(H: np.ndarray) -> np.ndarray:
    """Which of a batch of symmetric matrices (B, F, F) are positive definite (a Cholesky
    factorization exists): one batched call when all are, else one call per matrix."""
    try:
        np.linalg.cholesky(H)
        return np.ones(len(H), bool)
    except np.linalg.LinAlgError:  # LAPACK's dpotrf per matrix: info > 0 where not positive definite
        return np.array([scipy.linalg.lapack.dpotrf(matrix, lower=True, clean=False)[1] == 0 for matrix in H])


def oscillator_energy(params, phases, edges: np.ndarray, free: np.ndarray, xnp=np):
    """E of the module docstring at node phases ``phases`` (numpy or jax.numpy via ``xnp``)."""
    pair = xnp.sum(params["W"] * xnp.cos(phases[edges[:, 0]] - phases[edges[:, 1]]))
    return -pair - xnp.sum(params["h"] * xnp.cos(phases[free] - params["psi"]))


@dataclass
class OscillatorBatch:
    """Equilibria of a batch of B samples (the batch view's states).

    Fields (leading axis B)::

        state : (B, n) node phases (inputs included), wrapped to (-pi, pi].
        energy : E + beta C at the state.
        iterations : Newton and gradient-flow steps taken.
        residual : max |dE/dphi| over the moving phases.
        beta : the nudge strength each sample was solved with.
        min_hessian_eigenvalue : smallest eigenvalue of the Hessian over the moving phases.
        retries : SETTLED_FIRST, SETTLED_RETRY or SETTLED_USABLE (module docstring, stages 1-3).
        restart_energies : (B, 1 + restarts) the minima's energies of a free phase with restarts.
    """

    state: np.ndarray
    energy: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    beta: np.ndarray
    min_hessian_eigenvalue: np.ndarray
    retries: np.ndarray
    restart_energies: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return len(self.state)

    def take(self, index: int) -> Equilibrium:
        """Sample ``index`` as an Equilibrium (its extras in ``info``)."""
        info = {"min_hessian_eigenvalue": float(self.min_hessian_eigenvalue[index]), "retries": int(self.retries[index])}
        if self.restart_energies is not None:
            info["restart_energies"] = self.restart_energies[index].tolist()
        return Equilibrium(self.state[index].copy(), float(self.energy[index]), int(self.iterations[index]),
                           float(self.residual[index]), float(self.beta[index]), info)

    @classmethod
    def stack(cls, states: Sequence[Equilibrium]) -> OscillatorBatch:
        """Per-sample Equilibrium objects as one batch (``take``'s inverse)."""
        def info(key, default):
            return np.array([s.info.get(key, default) for s in states])

        return cls(np.stack([s.state for s in states]), np.array([s.energy for s in states]),
                   np.array([s.iterations for s in states]), np.array([s.residual for s in states]),
                   np.array([s.beta for s in states]), info("min_hessian_eigenvalue", np.nan), info("retries", SETTLED_FIRST))

    @classmethod
    def concatenate(cls, batches: Sequence[OscillatorBatch]) -> OscillatorBatch:
        return cls(*(np.concatenate([getattr(b, name) for b in batches]) for name in
                     ("state", "energy", "iterations", "residual", "beta", "min_hessian_eigenvalue", "retries")))

    def rows(self, index) -> OscillatorBatch:
        """The samples at ``index`` (a slice or index array)."""
        return OscillatorBatch(self.state[index], self.energy[index], self.iterations[index], self.residual[index],
                               self.beta[index], self.min_hessian_eigenvalue[index], self.retries[index],
                               None if self.restart_energies is None else self.restart_energies[index])


class PhaseOscillatorNetwork(ClassicalSystemMixin):
    """A phase-oscillator learner implementing the EnergySystem protocol (module docstring).

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : node counts (nodes are ordered inputs, hidden, outputs).
    graph : "layered" (inputs-hidden-outputs, inputs-outputs without hidden), "complete"
        (all pairs but input-input), a networkx graph, an edge list or a coupling pattern.
    input_scale : input phases are input_scale * x.
    restarts : extra random starts of the free phase (the lowest-energy minimum wins).
    sweeps : exact coordinate sweeps before Newton from a cold start (module docstring, step 0).
    seed : seed of those random starts.
    init_std : init_params draws W ~ init_std N(0, 1) / sqrt(fan-in of the edge's second node)
        when ``scaled_init``, else W ~ init_std N(0, 1); h ~ 0.1 init_std N(0, 1), psi = 0.
    tol, max_iter : Newton stops at max |dE/dphi| <= tol (1 + sum |W| + sum |h|); stages 2 and 3
        of the module docstring after ``max_iter`` steps.
    scaled_init : divide the initial couplings by sqrt(fan-in) (keeps the fields O(init_std) for
        wide inputs such as 64 pixels).
    target_amplitude : class targets are +-target_amplitude (``encode_targets``): at sin phi_o =
        +-1 the nudge force beta (sin phi_o - y_o) cos phi_o vanishes, so targets inside (-1, 1)
        keep outputs away from the poles, where a wrong output would get no push.

    Example:
        >>> import numpy as np
        >>> net = PhaseOscillatorNetwork(2, 3, 1)
        >>> params, X = net.init_params(0), np.array([[0.1, -0.2], [0.3, 0.4]])
        >>> states = net.batch_view(2).equilibrate(params, X)
        >>> bool(np.allclose(states.state[1], net.equilibrate(params, X[1]).state, atol=1e-10))
        True
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
        scaled_init: bool = True,
        sweeps: int = 3,
        target_amplitude: float = 1.0,
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
            pairs = [(int(i), int(j)) for a, b in itertools.pairwise(layers) for i in a for j in b]
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
        self.scaled_init = bool(scaled_init)
        self.sweeps = check_int("sweeps", sweeps, minimum=0)
        self.target_amplitude = check_positive_float("target_amplitude", target_amplitude)
        if self.target_amplitude > 1.0:
            raise ValueError(f"target_amplitude must be in (0, 1] (outputs sin(phi_o) lie in [-1, 1]), got {target_amplitude}")
        graph = nx.Graph()
        graph.add_nodes_from(self.free.tolist())
        graph.add_edges_from(e for e in self.edges.tolist() if e[0] >= self.n_inputs and e[1] >= self.n_inputs)
        colours = nx.greedy_color(graph, strategy="largest_first")
        classes = [sorted(k for k, c in colours.items() if c == colour) for colour in set(colours.values())]
        self.colour_classes = [np.array(c) for c in sorted(classes)]  # the class nearest the inputs first

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (len(self.edges),), "h": (self.free.size,), "psi": (self.free.size,)}

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        W = self.init_std * rng.standard_normal(len(self.edges))
        if self.scaled_init:
            W /= np.sqrt(np.bincount(self.edges[:, 1], minlength=self.n_nodes)[self.edges[:, 1]])
        return {"W": W, "h": 0.1 * self.init_std * rng.standard_normal(self.free.size), "psi": np.zeros(self.free.size)}

    def encode_targets(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """The default targets (+-1, one-hot +-1) times ``target_amplitude``."""
        return self.target_amplitude * super().encode_targets(labels, n_classes)

    # -- the batched energy, forces and curvature -------------------------------------------------
    def coupling_matrix(self, params) -> np.ndarray:
        """The symmetric (n, n) matrix A with A_ij = A_ji = W on edge (i, j)."""
        A = np.zeros((self.n_nodes, self.n_nodes))
        np.add.at(A, (self.edges[:, 0], self.edges[:, 1]), params["W"])
        return A + A.T

    def _energy(self, params, A, phases, targets, betas) -> np.ndarray:
        """E + beta C per sample, phases (B, n)."""
        c, s = np.cos(phases), np.sin(phases)
        pair = 0.5 * np.sum(c * (c @ A) + s * (s @ A), axis=1)
        energy = -pair - np.cos(phases[:, self.free] - params["psi"]) @ params["h"]
        if targets is not None:
            energy = energy + 0.5 * betas * np.sum((s[:, self.outputs] - targets) ** 2, axis=1)
        return energy

    def _terms(self, params, A, phases, move, targets, betas, hessian: bool = True):
        """(E + beta C, gradient over ``move``, Hessian over ``move`` or None) per sample."""
        c, s = np.cos(phases), np.sin(phases)
        cA, sA = c @ A, s @ A
        offset = phases[:, self.free] - params["psi"]
        bias = params["h"] * np.cos(offset)
        energy = -0.5 * np.sum(c * cA + s * sA, axis=1) - np.sum(bias, axis=1)
        grad = s * cA - c * sA
        grad[:, self.free] += params["h"] * np.sin(offset)
        diag = c * cA + s * sA
        diag[:, self.free] += bias
        if targets is not None:
            out, b = self.outputs, betas[:, None]
            so, co = s[:, out], c[:, out]
            energy = energy + 0.5 * betas * np.sum((so - targets) ** 2, axis=1)
            grad[:, out] += b * (so - targets) * co
            diag[:, out] += b * (co**2 - (so - targets) * so)
        if not hessian:
            return energy, grad[:, move], None
        cm, sm = c[:, move], s[:, move]
        hess = -A[np.ix_(move, move)] * (cm[:, :, None] * cm[:, None, :] + sm[:, :, None] * sm[:, None, :])
        rows = np.arange(move.size)
        hess[:, rows, rows] = diag[:, move]
        return energy, grad[:, move], hess

    def relax(self, params, phases: np.ndarray, sweeps: int) -> np.ndarray:
        """Step 0 of the module docstring: ``sweeps`` exact block-coordinate sweeps over the
        colour classes of the free oscillators (phases (B, n); inputs stay clamped)."""
        phases, A = phases.copy(), self.coupling_matrix(params)
        bias = np.zeros(self.n_nodes, complex)
        bias[self.free] = params["h"] * np.exp(1j * params["psi"])
        for _ in range(sweeps):
            for nodes in self.colour_classes:
                field = np.exp(1j * phases) @ A[:, nodes] + bias[nodes]
                phases[:, nodes] = np.angle(field)
        return phases

    def _tolerance(self, params) -> float:
        return self.tol * (1.0 + np.sum(np.abs(params["W"])) + np.sum(np.abs(params["h"])))

    def _newton(self, params, A, phases, move, targets, betas, steps: int, tol: float):
        """Stage 1 of the module docstring on every sample; returns (phases, energy, residual,
        smallest Hessian eigenvalue, converged, steps taken) per sample."""
        B = len(phases)
        phases = phases.copy()
        done = np.zeros(B, bool)
        taken = np.zeros(B, int)
        energy, residual, smallest = np.zeros(B), np.full(B, np.inf), np.full(B, np.nan)
        for step in range(steps + 1):
            active = np.flatnonzero(~done)
            if active.size == 0:
                break
            sub = phases[active]
            t = None if targets is None else targets[active]
            b = betas[active]
            e, g, H = self._terms(params, A, sub, move, t, b)
            res = np.max(np.abs(g), axis=1, initial=0.0)
            energy[active], residual[active] = e, res
            positive = positive_definite(H)
            finished = positive & (res <= tol)
            if np.any(finished):
                smallest[active[finished]] = np.linalg.eigvalsh(H[finished])[:, 0]
                done[active[finished]] = True
            if step == steps:
                break
            go = ~finished
            if not np.any(go):
                continue
            direction, saddle = np.zeros_like(g), np.zeros(active.size, bool)
            newton = go & positive
            if np.any(newton):
                direction[newton] = np.linalg.solve(H[newton], -g[newton][..., None])[..., 0]
            modified = go & ~positive
            if np.any(modified):
                values, vectors = np.linalg.eigh(H[modified])
                floor = 1e-8 * np.maximum(1.0, np.max(np.abs(values), axis=1, keepdims=True))
                coeffs = np.einsum("bij,bi->bj", vectors, g[modified]) / np.maximum(np.abs(values), floor)
                steps_here = -np.einsum("bij,bj->bi", vectors, coeffs)
                stationary = res[modified] <= tol  # a saddle: leave along the most negative curvature
                steps_here[stationary] = vectors[stationary, :, 0]
                direction[modified], saddle[modified] = steps_here, stationary
            direction, saddle = direction[go], saddle[go]
            slope = np.einsum("bi,bi->b", g[go], direction)
            slope[saddle] = 0.0
            plain = positive[go] & (res[go] <= PLAIN_NEWTON_BELOW)
            size = self._line_search(params, A, sub[go], move, direction, e[go], slope,
                                     None if t is None else t[go], b[go], skip=plain)
            rows = active[go]
            phases[np.ix_(rows, move)] += size[:, None] * direction
            taken[rows] += 1
        return phases, energy, residual, smallest, done, taken

    def _line_search(self, params, A, phases, move, direction, energy, slope, targets, betas, skip=None):
        """Per-sample Armijo backtracking: the largest size in 1, 1/2, 1/4, ... with
        E(phi + size d) <= E(phi) + ARMIJO size slope (and a strict decrease where slope = 0);
        size 1 where ``skip``; MIN_STEP where nothing down to it decreases E."""
        size = np.ones(len(phases))
        pending = np.ones(len(phases), bool) if skip is None else ~skip
        while np.any(pending):
            rows = np.flatnonzero(pending)
            trial = phases[rows].copy()
            trial[:, move] += size[rows, None] * direction[rows]
            new = self._energy(params, A, trial, None if targets is None else targets[rows], betas[rows])
            accept = (new <= energy[rows] + ARMIJO * size[rows] * slope[rows]) & ((slope[rows] < 0) | (new < energy[rows]))
            pending[rows[accept]] = False
            size[rows[~accept]] *= 0.5
            small = size < MIN_STEP
            size[small & pending] = MIN_STEP
            pending &= ~small
        return size

    def _gradient_flow(self, params, A, phases, move, targets, betas, steps: int):
        """Stage 2: damped gradient flow phi <- phi - eta g (eta backtracked from the last one)."""
        phases = phases.copy()
        eta = np.ones(len(phases))
        for _ in range(steps):
            e, g, _ = self._terms(params, A, phases, move, targets, betas, hessian=False)
            eta = np.minimum(2.0 * eta, 1.0)
            size = self._line_search(params, A, phases, move, -eta[:, None] * g, e, -eta * np.sum(g * g, axis=1),
                                     targets, betas)
            eta = eta * size
            phases[:, move] -= eta[:, None] * g
        return phases

    def minimize(self, params, phases: np.ndarray, move: np.ndarray | None = None, targets=None, beta=0.0,
                 what: str = "phase-oscillator Newton") -> OscillatorBatch:
        """Local minima of E + beta C over the phases at indices ``move`` (default: every free
        oscillator) for a batch of starts ``phases`` (B, n), by stages 1-3 of the module docstring.
        ``targets`` (B, n_outputs) or None; ``beta`` a float or one per sample."""
        params = self.check_params(params)
        phases = np.array(phases, dtype=float, ndmin=2)
        move = self.free if move is None else np.asarray(move, dtype=int)
        B = len(phases)
        betas = np.broadcast_to(np.asarray(beta, dtype=float), (B,)).copy()
        A, tol = self.coupling_matrix(params), self._tolerance(params)
        out, energy, residual, smallest, done, taken = self._newton(params, A, phases, move, targets, betas, self.max_iter, tol)
        retries = np.full(B, SETTLED_FIRST)
        missed = np.flatnonzero(~done)
        if missed.size:
            t = None if targets is None else targets[missed]
            flowed = self._gradient_flow(params, A, out[missed], move, t, betas[missed], self.max_iter)
            again = self._newton(params, A, flowed, move, t, betas[missed], self.max_iter, tol)
            retries[missed] = SETTLED_RETRY
            taken[missed] += self.max_iter + again[5]
            # converged the second time, or not but lower in energy: the second attempt's iterate
            use = again[4] | (again[1] <= energy[missed])
            rows = missed[use]
            out[rows], energy[rows], residual[rows], smallest[rows] = (v[use] for v in again[:4])
            done[missed] = again[4]
            unsettled = missed[~again[4]]
            retries[unsettled] = SETTLED_USABLE
            if unsettled.size:
                _, _, H = self._terms(params, A, out[unsettled], move, None if targets is None else targets[unsettled],
                                      betas[unsettled])
                smallest[unsettled] = np.linalg.eigvalsh(H)[:, 0]
                logger.warning("%s: %d of %d samples did not converge (largest residual %.2e, tol %.1e) after Newton, "
                               "gradient flow and Newton again; kept at their lowest-energy iterate", what,
                               unsettled.size, B, float(np.max(residual[unsettled])), tol)
        energy = self._energy(params, A, out, targets, betas)
        wrapped = np.angle(np.exp(1j * out))
        return OscillatorBatch(wrapped, energy, taken, residual, np.where(targets is None, 0.0, betas), smallest, retries)

    # -- the protocol -------------------------------------------------------------------------------
    def input_phases(self, x) -> np.ndarray:
        return self.input_scale * as_finite_array("x", x, (self.n_inputs,))

    def _starts(self, X: np.ndarray, init: OscillatorBatch | None) -> np.ndarray:
        phases = np.zeros((len(X), self.n_nodes)) if init is None else init.state.copy()
        phases[:, : self.n_inputs] = self.input_scale * X
        return phases

    def solve_batch(self, params, X: np.ndarray, targets=None, beta=0.0, init: OscillatorBatch | None = None) -> OscillatorBatch:
        """Equilibria of a batch X (B, n_inputs): from ``init`` if given, else the lowest of the
        minima reached from phi = 0 and the ``restarts`` random starts (the same for every sample)."""
        start = self._starts(X, init)
        if init is not None:
            return self.minimize(params, start, None, targets, beta)
        start = self.relax(params, start, self.sweeps)
        if not self.restarts:
            return self.minimize(params, start, None, targets, beta)
        B, rng = len(X), np.random.default_rng(self.seed)
        starts = [start]
        for _ in range(self.restarts):
            trial = start.copy()
            trial[:, self.free] = rng.uniform(-np.pi, np.pi, self.free.size)
            starts.append(self.relax(params, trial, self.sweeps))
        stacked_targets = None if targets is None else np.concatenate([targets] * len(starts))
        stacked_beta = np.concatenate([np.broadcast_to(np.asarray(beta, float), (B,))] * len(starts))
        minima = self.minimize(params, np.concatenate(starts), None, stacked_targets, stacked_beta)
        energies = minima.energy.reshape(len(starts), B)
        best = np.argmin(energies, axis=0)
        result = minima.rows(best * B + np.arange(B))
        result.restart_energies = energies.T.copy()
        return result

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init: Equilibrium | None = None) -> Equilibrium:
        """Local minimum of E + beta C(phi, y) (``nudge`` = y): from ``init`` if given, else the
        lowest of the minima reached from phi = 0 and the ``restarts`` random starts. A batch of
        one through ``solve_batch``; NotConvergedError where stage 3 would keep the sample."""
        params = self.check_params(params)
        nudged = nudge is not None and beta != 0.0
        targets = check_targets(nudge, self.n_outputs, "nudge")[None] if nudged else None
        x = as_finite_array("x", x, (self.n_inputs,))[None]
        batch = self.solve_batch(params, x, targets, float(beta) if nudged else 0.0,
                                 None if init is None else OscillatorBatch.stack([init]))
        state = batch.take(0)
        if batch.retries[0] == SETTLED_USABLE:
            raise NotConvergedError(
                f"phase-oscillator Newton did not converge in {state.iterations} iterations: residual "
                f"{state.residual:.3e} (max |dE/dphi| > tol {self._tolerance(params):.1e} or not a minimum, after "
                "Newton, gradient flow and Newton again); raise max_iter, or use restarts / a warm start (init) "
                "nearer a minimum")
        return state

    def batch_view(self, batch_size: int) -> PhaseOscillatorBatch:
        """The batched view: every phase of a minibatch in one ``solve_batch`` (module docstring)."""
        return PhaseOscillatorBatch(self)

    def clamp(self, params, x, outputs, init: Equilibrium | None = None) -> Equilibrium:
        """Minimum of E with sin(phi_o) held at ``outputs`` (in [-1, 1]); phi_o = arcsin(outputs)
        where cos(phi_o) >= 0 in ``init`` (or without one), else pi - arcsin(outputs)."""
        params = self.check_params(params)
        outputs = check_targets(outputs, self.n_outputs, "outputs")
        if np.any(np.abs(outputs) > 1.0):
            raise ValueError(f"outputs must lie in [-1, 1] (they are sin(phi_o)), got {outputs.tolist()}")
        phases = self._starts(as_finite_array("x", x, (self.n_inputs,))[None], None if init is None else OscillatorBatch.stack([init]))
        angle = np.arcsin(outputs)
        phases[0, self.outputs] = np.where(np.cos(phases[0, self.outputs]) < 0, np.pi - angle, angle)
        batch = self.minimize(params, phases, self.free[: self.n_hidden], what="phase-oscillator clamped phase")
        if batch.retries[0] == SETTLED_USABLE:
            raise NotConvergedError(f"phase-oscillator clamped phase did not converge: residual {batch.residual[0]:.3e}")
        return batch.take(0)

    def predict(self, state: Equilibrium) -> np.ndarray:
        """sin(phi_o)."""
        return np.sin(state.state[self.outputs])

    def cost(self, state: Equilibrium, y) -> float:
        """C = 1/2 sum_o (sin phi_o - y_o)^2."""
        y = check_targets(y, self.n_outputs)
        return 0.5 * float(np.sum((self.predict(state) - y) ** 2))

    def energy_grad(self, params, x, state: Equilibrium) -> dict[str, np.ndarray]:
        """dE/dtheta at ``state`` (module docstring)."""
        return {k: v[0] for k, v in self.energy_grads(self.check_params(params), state.state[None]).items()}

    def energy_grads(self, params, phases: np.ndarray) -> dict[str, np.ndarray]:
        """dE/dtheta for a batch of phases (B, n): each leaf with a leading axis B."""
        (i, j), offset = self.edges.T, phases[:, self.free] - params["psi"]
        return {"W": -np.cos(phases[:, i] - phases[:, j]), "h": -np.cos(offset), "psi": -params["h"] * np.sin(offset)}

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


class PhaseOscillatorBatch:
    """The batch-first view (qeqprop.systems.protocol.BatchSystem) of a PhaseOscillatorNetwork:
    states are OscillatorBatch objects; all nudged phases of an EP step are solved in one call
    (``joint_phases``: the +beta and -beta phases stacked along the batch axis)."""

    joint_phases = True

    def __init__(self, system: PhaseOscillatorNetwork):
        self.system = system

    def _targets(self, Y) -> np.ndarray:
        return as_finite_array("nudge", Y, (len(Y), self.system.n_outputs))

    def equilibrate(self, params, X, nudge=None, beta=0.0, init=None):
        system = self.system
        params = system.check_params(params)
        X = as_finite_array("X", X, (len(X), system.n_inputs))
        if not isinstance(beta, tuple):
            nudged = nudge is not None and beta != 0.0
            return system.solve_batch(params, X, self._targets(nudge) if nudged else None,
                                      float(beta) if nudged else 0.0, init)
        B, k = len(X), len(beta)
        targets = np.concatenate([self._targets(nudge)] * k)
        betas = np.repeat(np.asarray(beta, dtype=float), B)
        start = None if init is None else OscillatorBatch.concatenate([init] * k)
        states = system.solve_batch(params, np.concatenate([X] * k), targets, betas, start)
        return tuple(states.rows(slice(m * B, (m + 1) * B)) for m in range(k))

    def reflect(self, free, nudged):
        return None

    def nudge(self, states, Y) -> np.ndarray:
        return self._targets(Y)

    def predict(self, states: OscillatorBatch) -> np.ndarray:
        return np.sin(states.state[:, self.system.outputs])

    def cost(self, states: OscillatorBatch, Y) -> np.ndarray:
        return 0.5 * np.sum((self.predict(states) - self._targets(Y)) ** 2, axis=1)

    def energy_grad(self, params, X, states: OscillatorBatch) -> dict[str, np.ndarray]:
        return self.system.energy_grads(self.system.check_params(params), states.state)

    def diagnostics(self, states: OscillatorBatch) -> dict[str, np.ndarray]:
        return {"iterations": states.iterations.astype(float), "residual": states.residual, "retries": states.retries}

    def take(self, states: OscillatorBatch, index: int) -> Equilibrium:
        return states.take(index)

    def stack(self, states) -> OscillatorBatch:
        return states if isinstance(states, OscillatorBatch) else OscillatorBatch.stack(list(states))


__all__ = ["OscillatorBatch", "PhaseOscillatorBatch", "PhaseOscillatorNetwork", "oscillator_energy"]
