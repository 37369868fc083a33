"""Batched EP gradients for spin systems: every sample's phases solved at once.

For a batch of inputs x_b the coefficients c(theta, x_b) are stacked, compiled to grouped
form (PauliTable.compile) and every ground state of a phase comes from fixed-length
batched Lanczos blocks (solvers.batched_lanczos: batch as the leading axis, one batched
tridiagonal eigenproblem, convergence checked once per block). The free phase also yields
the gaps from the same Krylov space; the nudged phases (+beta and -beta stacked into one
batch of 2B) are warm-started from the free states and need far fewer steps. Block lengths
follow the convergence rates measured on the previous batch. Local gradients
g_b = J(x_b)^T <P>_b and the estimator's phase weights give

    grad_b = sum_phase a_phase g_b(s_phase),

the same numbers as ``ep.ep_gradient`` per sample (tested), without per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ._blas import one_blas_thread
from .ep import PHASE_SIGNS, phase_weights
from .hamiltonians.jax_kernel import structure_of
from .solvers.batched_lanczos import STEP_QUANTUM, BatchedSolve, batched_ground_states
from .solvers.state import report_small_gap
from .systems.spin import SpinSystem
from .validation import as_finite_array, check_beta

# Blocks re-orthogonalise fully unless the register holds this many block lengths: runs far
# inside the space need only selective orthogonalisation against the ground Ritz vector for the
# gap (free phase) or none (nudged; the residual is still checked).
PLAIN_RATIO = 8


@dataclass
class BatchedEP:
    """Per-sample EP gradients (flat, shape (B, n_params)), losses, outputs and free gaps."""

    grads: np.ndarray
    losses: np.ndarray
    outputs: np.ndarray
    gaps: np.ndarray
    applications: int

    def mean_grad(self, system: SpinSystem) -> dict[str, np.ndarray]:
        return system.hamiltonian.unflatten(self.grads.mean(axis=0))


class BatchedGroundStates:
    """Batched Lanczos for one spin model; block lengths adapt to the measured convergence.

    ``free_steps`` / ``nudged_steps`` are the first block lengths (multiples of 8); after every
    solve the next length is extrapolated from the Ritz residual decay of its first block
    (solvers.batched_lanczos.steps_for: the need of the slowest sample and pair plus 10%, rounded up
    to a multiple of 8), capped at ``max_steps``. ``workers`` concurrent slices of the batch
    (None: the CPU cores; solvers.batched_lanczos.default_workers) do not change the numbers.
    """

    def __init__(self, system: SpinSystem, free_steps: int = 64, nudged_steps: int = 32, max_steps: int = 160,
                 max_blocks: int = 6, workers: int | None = None):
        if system.temperature > 0:
            raise ValueError("batched EP solves ground states; use temperature=0 (or the per-sample path)")
        for name, value in (("free_steps", free_steps), ("nudged_steps", nudged_steps), ("max_steps", max_steps)):
            if not isinstance(value, (int, np.integer)) or value < STEP_QUANTUM or value % STEP_QUANTUM:
                raise ValueError(f"{name} must be a positive multiple of {STEP_QUANTUM}, got {value!r}")
        self.system = system
        self.dtype = jnp.float64 if system.hamiltonian.table.is_real else jnp.complex128
        dim = system.hamiltonian.table.dim
        self.max_steps = min(int(max_steps), STEP_QUANTUM * -(-dim // STEP_QUANTUM))
        self.steps = {True: min(int(free_steps), self.max_steps), False: min(int(nudged_steps), self.max_steps)}
        self.max_blocks = int(max_blocks)
        self.workers = workers

    def solve(self, coeffs: np.ndarray, starts: np.ndarray, tol: float, with_gap: bool) -> BatchedSolve:
        """Ground states for stacked coefficient vectors (B, n_strings), warm-started from ``starts``."""
        table = self.system.hamiltonian.table
        diagonal, flips = table.compile(coeffs)
        structure = structure_of(self.system.n_qubits, [(x, f[0]) for x, f in flips])
        steps = self.steps[with_gap]
        # the free phase's gap needs a basis without ghost copies of theta_0
        orthogonalize = "full" if table.dim < PLAIN_RATIO * steps else ("ground" if with_gap else "none")
        result = batched_ground_states(
            structure, jnp.asarray(diagonal, self.dtype), tuple(jnp.asarray(f, self.dtype) for _, f in flips),
            jnp.asarray(starts, self.dtype), tol, steps, with_gap, orthogonalize, self.max_blocks,
            self.workers)
        # follow the measured need (each new length compiles once; the margin damps flapping)
        self.steps[with_gap] = min(self.max_steps, result.next_steps)
        return result


def free_states(system: SpinSystem, params, xs, solver: BatchedGroundStates | None = None):
    """Free-phase ground states of a batch: (coefficients (B, S), BatchedSolve, <P_s> (B, S))."""
    ham = system.hamiltonian
    solver = solver or BatchedGroundStates(system)
    coeffs = ham.coefficients_batch(params, xs)
    start = np.broadcast_to(np.random.default_rng(0).standard_normal(ham.table.dim), (len(coeffs), ham.table.dim))
    free = solver.solve(coeffs, start, system.tol, with_gap=True)
    report_small_gap(float(free.gaps.min()), system.gap_tol)
    return coeffs, free, ham.table.expectations(free.vectors)


def nudged_states(system: SpinSystem, coeffs, free: BatchedSolve, nudges, beta: float, phases,
                  solver: BatchedGroundStates | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Ground states of H + s beta sum_j nudge_{b,j} O_j for the nudged ``phases`` ("plus" s = 1,
    "minus" s = -1), stacked into one batched solve warm-started from the free states:
    ({phase: vectors (B, D)}, H applications per sample)."""
    ham = system.hamiltonian
    solver = solver or BatchedGroundStates(system)
    phases = [p for p in phases if p != "free"]
    shifted = np.concatenate([coeffs] * len(phases))
    signs = np.repeat([PHASE_SIGNS[p] for p in phases], len(coeffs))
    np.add.at(shifted, (slice(None), ham.observable_index), signs[:, None] * beta * np.concatenate([nudges] * len(phases)))
    tol = max(system.tol, system.nudge_tol * beta**2)
    states = solver.solve(shifted, np.concatenate([free.vectors] * len(phases)), tol, with_gap=False)
    return {p: states.vectors[k * len(coeffs) : (k + 1) * len(coeffs)] for k, p in enumerate(phases)}, states.applications


@one_blas_thread
def batched_ep_gradients(
    system: SpinSystem,
    params,
    xs,
    ys,
    beta: float = 1e-2,
    estimator: str = "centered",
    solver: BatchedGroundStates | None = None,
) -> BatchedEP:
    """EP gradients of every sample in a batch (see module docstring).

    Without ``solver`` a fresh BatchedGroundStates is used, so the result depends on the inputs
    only (exact resume of training); pass one to carry learned block lengths between calls.
    """
    ham = system.hamiltonian
    solver = solver or BatchedGroundStates(system)
    weights = phase_weights(estimator, beta)
    beta = check_beta(beta)
    xs = ham.check_inputs(xs)
    ys = as_finite_array("ys", ys, (xs.shape[0], system.n_outputs))
    coeffs, free, expectations = free_states(system, params, xs, solver)
    outputs = expectations[:, ham.observable_index]
    nudges = np.array([system.cost_fn.grad(o, y) for o, y in zip(outputs, ys)])
    losses = np.array([system.cost_fn.value(o, y) for o, y in zip(outputs, ys)])
    states, used = nudged_states(system, coeffs, free, nudges, beta, weights, solver)
    grads = np.zeros((len(xs), ham.n_params))
    for phase, a in weights.items():
        phase_expectations = expectations if phase == "free" else ham.table.expectations(states[phase])
        grads += a * ham.energy_grad_batch(xs, phase_expectations)
    return BatchedEP(grads, losses, outputs, free.gaps, free.applications + used)
