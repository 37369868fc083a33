"""Measured EP gradients for a whole batch of samples at once (simulated shots).

The batch's states (B, 2^n) come from the batched solver (qeqprop.batched). In every basis b
of one shared plan the readout rotation is applied to all states as axis operations, and
each sample's M_b shots are drawn at once from its probabilities (numpy Generator
multinomial with a (B, 2^n) array of probabilities). With counts n_{b,c} and parities
p_s(c) = (-1)^{|c & m_s|} of the strings the basis serves, per sample

    <P_s>^ = (1/M_b) sum_c n_c p_s(c),
    Cov_st = [ (1/M_b) sum_c n_c p_s(c) p_t(c) - <P_s>^ <P_t>^ ] / (M_b - 1),

(records.count_moments, shared with records.estimate_terms). The gradient and its covariance per sample are

    grad_b = sum_phase a_phase J(x_b)^T m_{phase,b},   Cov_b = sum_phase a_phase^2 J(x_b)^T C_{phase,b} J(x_b),

as in gradient.gradient_from_records; the nudge uses the measured free-phase outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._blas import one_blas_thread
from ..batched import BatchedGroundStates, free_states, nudged_states
from ..ep import phase_weights
from ..hamiltonians.parametrized import gradient_rows
from ..systems.spin import SpinSystem
from ..validation import as_finite_array, check_beta
from .plan import MeasurementPlan, build_plan
from .records import count_moments, parity_values
from .sampling import basis_probabilities


@dataclass
class BatchedMeasured:
    """Per-sample measured EP gradients (B, n_params) with standard errors, losses and outputs
    (from the measured free phase), and the shared measurement plan."""

    grads: np.ndarray
    stderr: np.ndarray
    losses: np.ndarray
    outputs: np.ndarray
    plan: MeasurementPlan

    def mean_grad(self, system: SpinSystem) -> dict[str, np.ndarray]:
        return system.hamiltonian.unflatten(self.grads.mean(axis=0))


def batched_plan(system: SpinSystem, xs: np.ndarray, shots: int) -> MeasurementPlan:
    """One plan (uniform allocation) for the batch: the strings any sample's gradient needs, plus the outputs."""
    ham = system.hamiltonian
    weight = sum(np.abs(ham.jacobian(x)) for x in xs)
    needed = np.union1d(gradient_rows(weight), ham.observable_index)
    return build_plan(ham.table.strings, needed, ham.n_qubits, shots)


def batched_term_estimates(system: SpinSystem, plan: MeasurementPlan, states: np.ndarray,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates of every planned string for a batch of states: means (B, S) and
    covariances (B, S, S) over the whole table (zeros for unplanned strings, block diagonal)."""
    size = len(system.hamiltonian.table)
    batch, dim = states.shape
    means = np.zeros((batch, size))
    covariance = np.zeros((batch, size, size))
    index = np.arange(dim)
    for basis, members, shots in zip(plan.bases, plan.members, plan.shots):
        counts = rng.multinomial(int(shots), basis_probabilities(states, basis)).astype(np.float64)  # (B, D)
        values = parity_values(index, system.hamiltonian.table.strings, members, plan.n_qubits)
        mean, block = count_moments(counts, values)
        means[:, members] = mean
        covariance[:, members[:, None], members[None, :]] = block
    return means, covariance


@one_blas_thread
def batched_measured_gradients(
    system: SpinSystem,
    params,
    xs,
    ys,
    beta: float,
    shots: int,
    estimator: str = "centered",
    rng: np.random.Generator | int | None = None,
    solver: BatchedGroundStates | None = None,
) -> BatchedMeasured:
    """Measured EP gradients of every sample in a batch from ``shots`` simulated shots per phase
    (split uniformly over the plan's bases); the batched analogue of measured_ep_gradient."""
    ham = system.hamiltonian
    weights = phase_weights(estimator, beta)
    beta = check_beta(beta)
    xs = ham.check_inputs(xs)
    ys = as_finite_array("ys", ys, (xs.shape[0], system.n_outputs))
    rng = np.random.default_rng(rng)
    solver = solver or BatchedGroundStates(system)  # fresh by default: results depend on the inputs only
    plan = batched_plan(system, xs, shots)
    coeffs, free, _ = free_states(system, params, xs, solver)
    estimates = {"free": batched_term_estimates(system, plan, free.vectors, rng)}
    outputs = estimates["free"][0][:, ham.observable_index]
    nudges = np.array([system.cost_fn.grad(o, y) for o, y in zip(outputs, ys)])
    losses = np.array([system.cost_fn.value(o, y) for o, y in zip(outputs, ys)])
    states, _ = nudged_states(system, coeffs, free, nudges, beta, weights, solver)
    for phase in weights:
        if phase != "free":
            estimates[phase] = batched_term_estimates(system, plan, states[phase], rng)
    jacobians = np.array([ham.jacobian(x) for x in xs])  # (B, S, P)
    grads = np.zeros((len(xs), ham.n_params))
    variance = np.zeros((len(xs), ham.n_params))
    for phase, a in weights.items():
        means, covariance = estimates[phase]
        grads += a * ham.energy_grad_batch(xs, means)
        variance += a**2 * np.einsum("bsp,bst,btp->bp", jacobians, covariance, jacobians)
    return BatchedMeasured(grads, np.sqrt(np.clip(variance, 0.0, None)), losses, outputs, plan)
