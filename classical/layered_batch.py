"""Batched exact block coordinate descent for layered box-constrained quadratic energies.

A minibatch of B samples shares the couplings C_k of ``classical._common.LayeredQuadratic``;
each sample b has its own clamped layers, linear terms c_k[b] and (for nudged output layers)
diagonal d_k[b]. Layer k's exact minimizer for every sample at once is one matrix product per
neighbour (BLAS level-3),

    S_k <- clip( (S_(k-1) C_(k-1) + S_(k+1) C_k^T + c_k) / d_k, lo_k, hi_k ),     S_k: (B, n_k),

updating odd free layers, then even ones (Scellier 2024, "A fast algorithm to simulate nonlinear
resistive networks": exact coordinate descent over the layers of a deep resistive network). The
fields from clamped neighbours are computed once per solve. Each sample keeps the per-sample
stopping rule of ``LayeredQuadratic.solve``: it stops (its rows are no longer written) after the
first sweep in which none of its units moves more than ``tol``, so a sample's batched result is
the one it gets alone, up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qeqprop.validation import as_finite_array

from ._common import Equilibrium, LayeredQuadratic, raise_not_converged, split_layers


@dataclass
class BatchEquilibrium:
    """The equilibria of a batch: ``state`` (B, n_units) with clamped nodes, and per sample
    ``energy``, ``iterations`` (sweeps), ``residual`` (KKT, as in ``Equilibrium``) and ``beta``."""

    state: np.ndarray
    energy: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    beta: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    def take(self, index: int) -> Equilibrium:
        """Sample ``index`` as a per-sample Equilibrium."""
        return Equilibrium(self.state[index].copy(), float(self.energy[index]), int(self.iterations[index]),
                           float(self.residual[index]), float(self.beta[index]))

    @classmethod
    def stack(cls, states: Sequence[Equilibrium]) -> BatchEquilibrium:
        """Per-sample equilibria as one batch."""
        return cls(np.stack([s.state for s in states]), np.array([s.energy for s in states], dtype=float),
                   np.array([s.iterations for s in states]), np.array([s.residual for s in states], dtype=float),
                   np.array([s.beta for s in states], dtype=float))

    def split(self, parts: int) -> list[BatchEquilibrium]:
        """Cut into ``parts`` equal consecutive batches (the phases of a joint solve)."""
        fields = (self.state, self.energy, self.iterations, self.residual, self.beta)
        return [BatchEquilibrium(*pieces) for pieces in zip(*(np.split(f, parts) for f in fields))]


def _rows(value, batch: int, size: int) -> np.ndarray:
    """A per-layer term given for all samples (n,) or per sample (B, n), as (B, n)."""
    return np.broadcast_to(np.asarray(value, dtype=float), (batch, size))


def clamped_fields(quadratic: LayeredQuadratic, layers: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    """{free k: c_k + the fields of k's clamped neighbours} (B, n_k): fixed while the free layers move,
    so a solve computes them (the input's matrix product, the largest) once."""
    batch, last, free = len(layers[0]), len(quadratic.couplings), quadratic.free_layers()
    base = {}
    for k in free:
        total = _rows(quadratic.linear[k], batch, layers[k].shape[1]).copy()
        if k > 0 and k - 1 not in free:
            total += layers[k - 1] @ quadratic.couplings[k - 1]
        if k < last and k + 1 not in free:
            total += layers[k + 1] @ quadratic.couplings[k].T
        base[k] = total
    return base


def batch_energy(quadratic: LayeredQuadratic, layers: Sequence[np.ndarray], base: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """E per sample for layers (B, n_k) (``LayeredQuadratic.energy`` row by row). With ``base``
    (``clamped_fields`` of these clamped layers) a coupling between a clamped and a free layer is
    read from it: E = e_0 + sum_clamped (1/2 d s^2 - c s) + sum_free (1/2 d s^2 - base . s)
    - sum_(both free or both clamped) s_k^T C_k s_(k+1)."""
    total = np.broadcast_to(np.asarray(quadratic.constant, dtype=float), (len(layers[0]),)).copy()
    base = base or {}
    for k, (d, c, s) in enumerate(zip(quadratic.diagonal, quadratic.linear, layers)):
        total += np.sum(0.5 * d * s**2 - base.get(k, c) * s, axis=1)
    for k, C in enumerate(quadratic.couplings):
        if not base or (k in base) == (k + 1 in base):
            total -= np.einsum("bi,bi->b", layers[k] @ C, layers[k + 1])
    return total


def batch_residual(quadratic: LayeredQuadratic, layers: Sequence[np.ndarray], base: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """KKT residual per sample: max over free units of |s - clip(s - dE/ds, lo, hi)| (``base`` as
    in ``batch_energy``)."""
    residual = np.zeros(len(layers[0]))
    last = len(quadratic.couplings)
    free = quadratic.free_layers()
    for k in free:
        if base:
            field = base[k] + (layers[k - 1] @ quadratic.couplings[k - 1] if k > 0 and k - 1 in free else 0.0)
            if k < last and k + 1 in free:
                field = field + layers[k + 1] @ quadratic.couplings[k].T
        else:
            field = quadratic.linear[k] + (layers[k - 1] @ quadratic.couplings[k - 1] if k > 0 else 0.0)
            if k < last:
                field = field + layers[k + 1] @ quadratic.couplings[k].T
        grad = quadratic.diagonal[k] * layers[k] - field
        gap = np.abs(layers[k] - np.clip(layers[k] - grad, quadratic.lower[k], quadratic.upper[k]))
        residual = np.maximum(residual, np.max(gap, axis=1, initial=0.0))
    return residual


def solve_batch(quadratic: LayeredQuadratic, layers: list[np.ndarray], tol: float, max_iter: int, what: str,
                beta: np.ndarray) -> BatchEquilibrium:
    """Exact block coordinate descent on a batch (module docstring) from ``layers`` (B, n_k)
    (clamped layers hold their values); ValueError naming the KKT residual when a sample needs
    more than ``max_iter`` sweeps."""
    layers = [np.array(s, dtype=float) for s in layers]
    batch, last = len(layers[0]), len(quadratic.couplings)
    free = quadratic.free_layers()
    diagonal = {k: _rows(quadratic.diagonal[k], batch, layers[k].shape[1]) for k in free}
    base = clamped_fields(quadratic, layers)
    groups = [[k for k in free if k % 2 == 1], [k for k in free if k % 2 == 0]]
    sweeps = np.zeros(batch, dtype=int)
    active = np.arange(batch)
    while active.size:
        if np.any(sweeps[active] == max_iter):
            raise_not_converged(what, max_iter, float(np.max(batch_residual(quadratic, layers, base))),
                                f"{active.size} sample(s) moved a unit by more than tol {tol:.1e} in the last sweep",
                                "raise max_iter, or shrink the weights (strong couplings converge slowly)")
        change = np.zeros(active.size)
        rows = slice(None) if active.size == batch else active  # all samples active: views, no row copies
        for group in groups:
            for k in group:
                field = base[k][rows]
                if k > 0 and k - 1 in free:
                    field = field + layers[k - 1][rows] @ quadratic.couplings[k - 1]
                if k < last and k + 1 in free:
                    field = field + layers[k + 1][rows] @ quadratic.couplings[k].T
                new = np.clip(field / diagonal[k][rows], quadratic.lower[k], quadratic.upper[k])
                change = np.maximum(change, np.max(np.abs(new - layers[k][rows]), axis=1, initial=0.0))
                layers[k][rows] = new
        sweeps[active] += 1
        active = active[change > tol]
    return BatchEquilibrium(np.concatenate(layers, axis=1), batch_energy(quadratic, layers, base), sweeps,
                            batch_residual(quadratic, layers, base), np.broadcast_to(np.asarray(beta, dtype=float), (batch,)).copy())


class LayeredBatch:
    """The batch-first view (qeqprop.systems.protocol.BatchSystem) of a layered system whose
    per-sample state is a flat vector of layers (``LayeredSystem``): a minibatch, and with
    ``joint_phases`` all its nudged phases (stacked along the batch axis), equilibrate in one
    ``solve_batch``; states are BatchEquilibrium. The system supplies

        input_layers(X) -> (B, n_0)          the clamped layer 0 of every sample
        output_targets(Y) -> (B, n_out)      the output values the nudge pulls towards
        quadratic(params, targets, beta)     with per-sample targets (B', n_out) and beta (B',)
        predict(states), energy_grad(params, X, states)   working on batched layers
        energy_grad_mean(params, X, states)  the batch mean of energy_grad
        solver_name                          what a non-convergence error names
    """

    joint_phases = True

    def __init__(self, system):
        self.system = system

    def equilibrate(self, params, X, nudge=None, beta=0.0, init: BatchEquilibrium | None = None):
        """Free (nudge None) or nudged equilibria of the batch X, warm-started from ``init``;
        ``beta`` a tuple solves every nudged phase in one call and returns one BatchEquilibrium
        per beta."""
        system = self.system
        inputs = system.input_layers(X)
        betas = tuple(float(b) for b in beta) if isinstance(beta, tuple) else (float(beta),)
        nudged = nudge is not None and any(b != 0.0 for b in betas)
        phases, batch = len(betas), len(inputs)
        if not nudged:
            betas = (0.0,) * phases
        start = np.zeros((batch, system.n_units)) if init is None else np.asarray(init.state, dtype=float)
        if start.shape != (batch, system.n_units):
            raise ValueError(f"init must hold {batch} states of {system.n_units} units, got shape {start.shape}")
        start = np.tile(start, (phases, 1))
        start[:, : system.sizes[0]] = np.tile(inputs, (phases, 1))
        beta_rows = np.repeat(betas, batch)
        targets = None
        if nudged:
            Y = as_finite_array("nudge", nudge, (batch, system.n_outputs))
            targets = np.tile(system.output_targets(Y), (phases, 1))
        quadratic = system.quadratic(params, targets, beta_rows if nudged else 0.0)
        states = solve_batch(quadratic, split_layers(start, system.sizes), system.tol, system.max_iter,
                             f"{system.solver_name} (batch)", beta_rows)
        return tuple(states.split(phases)) if isinstance(beta, tuple) else states

    def reflect(self, free, nudged):
        return

    def nudge(self, states: BatchEquilibrium, Y) -> np.ndarray:
        return as_finite_array("y", Y, (len(states), self.system.n_outputs))

    def predict(self, states: BatchEquilibrium) -> np.ndarray:
        return self.system.predict(states)

    def cost(self, states: BatchEquilibrium, Y) -> np.ndarray:
        """C = 1/2 ||o - output_targets(y)||^2 per sample."""
        Y = as_finite_array("y", Y, (len(states), self.system.n_outputs))
        return 0.5 * np.sum((self.system.layers(states)[-1] - self.system.output_targets(Y)) ** 2, axis=1)

    def energy_grad(self, params, X, states: BatchEquilibrium) -> dict[str, np.ndarray]:
        return self.system.energy_grad(params, X, states)

    def energy_grad_mean(self, params, X, states: BatchEquilibrium) -> dict[str, np.ndarray]:
        """The batch mean of energy_grad without the per-sample arrays (the system's
        ``energy_grad_mean``; qeqprop.ep.mean_energy_grad)."""
        return self.system.energy_grad_mean(params, X, states)

    def diagnostics(self, states: BatchEquilibrium) -> dict[str, np.ndarray]:
        return {"iterations": states.iterations.astype(float), "residual": states.residual}

    def take(self, states: BatchEquilibrium, index: int) -> Equilibrium:
        return states.take(index)

    def stack(self, states) -> BatchEquilibrium:
        return BatchEquilibrium.stack(states)
