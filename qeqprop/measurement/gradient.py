"""EP gradients from measured expectation values, with standard errors.

For each phase the needed strings (those in some dH/dtheta, and the outputs) are estimated
from records; the local gradient is g_phase = J(x)^T m_phase and the estimator is the linear
combination sum_phase a_phase g_phase (ep.phase_weights). Phases are measured on
independent shots, so

    Cov(grad) = sum_phase a_phase^2 J^T C_phase J,

with C_phase the (block-diagonal) covariance of the term estimates. The simulated path
(sample shots from exact ground states) goes through the same ``gradient_from_records``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .._blas import one_blas_thread
from ..ep import PHASE_SIGNS, phase_weights
from ..hamiltonians.parametrized import gradient_rows
from ..systems.spin import SpinSystem
from .plan import MeasurementPlan, build_plan
from .records import TermEstimates, estimate_terms, parse_counts
from .sampling import SAMPLERS, gaussian_term_estimates, sample_records


@dataclass
class MeasuredGradient:
    """EP gradient estimated from shots: ``grad`` and ``stderr`` are dicts like params."""

    grad: dict[str, np.ndarray]
    stderr: dict[str, np.ndarray]
    covariance: np.ndarray
    loss: float
    output: np.ndarray
    estimates: dict[str, TermEstimates]
    plan: MeasurementPlan


def measurement_plan(system: SpinSystem, x, shots: int, allocation: str = "uniform", state=None) -> MeasurementPlan:
    """Bases and shots per phase for the EP gradient of ``system`` at input ``x``.

    ``shots`` is the total per phase. "variance" allocation uses <P_s> from ``state``.
    """
    ham = system.hamiltonian
    jacobian = ham.jacobian(x)
    # the strings a gradient needs: any with a nonzero dH/dtheta weight, plus the outputs
    needed = np.union1d(gradient_rows(jacobian), ham.observable_index)
    variances = None
    if allocation == "variance":
        if state is None:
            raise ValueError("allocation='variance' needs a state (e.g. the free phase) for the term variances")
        variances = 1.0 - state.expectations**2
    return build_plan(ham.table.strings, needed, ham.n_qubits, shots, allocation, jacobian, variances)


def gradient_from_records(
    system: SpinSystem,
    x,
    y,
    plan: MeasurementPlan,
    estimates: Mapping[str, TermEstimates],
    beta: float,
    estimator: str = "centered",
) -> MeasuredGradient:
    """Combine per-phase term estimates into the EP gradient and its covariance."""
    ham = system.hamiltonian
    weights = phase_weights(estimator, beta)
    missing = [phase for phase in weights if phase not in estimates]
    if "free" not in estimates:
        missing.append("free")
    if missing:
        raise ValueError(f"estimator {estimator!r} needs records for the phases {sorted(set(missing))}; got {sorted(estimates)}")
    jacobian = ham.jacobian(x)
    size = len(ham.table)
    flat = np.zeros(ham.n_params)
    covariance = np.zeros((ham.n_params, ham.n_params))
    for phase, a in weights.items():
        means, cov = estimates[phase].full(size)
        flat += a * (jacobian.T @ means)
        covariance += a**2 * (jacobian.T @ cov @ jacobian)
    free_means, _ = estimates["free"].full(size)
    outputs = free_means[ham.observable_index]
    return MeasuredGradient(
        grad=ham.unflatten(flat),
        stderr=ham.unflatten(np.sqrt(np.clip(np.diag(covariance), 0.0, None))),
        covariance=covariance,
        loss=system.cost_fn.value(outputs, y),
        output=outputs,
        estimates=dict(estimates),
        plan=plan,
    )


def gradient_from_counts(
    system: SpinSystem,
    params,
    x,
    y,
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    plan: MeasurementPlan,
    beta: float,
    estimator: str = "centered",
    bit_order: str = "qubit0_first",
) -> MeasuredGradient:
    """EP gradient from hardware records.

    ``counts[phase][basis]`` is a dict bitstring -> count for phase "free", "plus" (+beta) or
    "minus" (-beta) and each basis of ``plan`` (e.g. ``"ZZXZ"``; measure qubit q in X by a
    Hadamard, in Y by S^dagger then Hadamard, before reading all qubits).
    PennyLane bitstrings list wire 0 first; pass ``bit_order="qubit0_last"`` for Qiskit.
    """
    system.hamiltonian.check_params(params)
    estimates = {}
    for phase, per_basis in counts.items():
        if phase not in PHASE_SIGNS:
            raise ValueError(f"counts phase {phase!r} must be one of {sorted(PHASE_SIGNS)}")
        records = {
            basis: parse_counts(record, plan.n_qubits, bit_order, where=f"counts[{phase!r}][{basis!r}]")
            for basis, record in per_basis.items()
        }
        estimates[phase] = estimate_terms(system.hamiltonian.table.strings, plan, records)
    return gradient_from_records(system, x, y, plan, estimates, beta, estimator)


@one_blas_thread
def measured_ep_gradient(
    system: SpinSystem,
    params,
    x,
    y,
    beta: float,
    shots: int,
    estimator: str = "centered",
    rng: np.random.Generator | int | None = None,
    allocation: str = "uniform",
    sampler: str = "multinomial",
) -> MeasuredGradient:
    """Simulate the measured EP gradient: ``shots`` per phase sampled from exact ground states.

    The nudge is computed from the *measured* free-phase outputs, as on hardware.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    rng = np.random.default_rng(rng)
    strings = system.hamiltonian.table.strings
    free = system.equilibrate(params, x)
    plan = measurement_plan(system, x, shots, allocation, state=free)

    def measure(state) -> TermEstimates:
        if sampler == "gaussian":
            return gaussian_term_estimates(state.vector, strings, plan, rng)
        return estimate_terms(strings, plan, sample_records(state.vector, plan, rng))

    estimates = {"free": measure(free)}
    free_means, _ = estimates["free"].full(len(system.hamiltonian.table))
    nudge = system.cost_fn.grad(free_means[system.hamiltonian.observable_index], y)
    for phase in phase_weights(estimator, beta):
        if phase != "free":
            state = system.equilibrate(params, x, nudge=nudge, beta=PHASE_SIGNS[phase] * beta, init=free)
            estimates[phase] = measure(state)
    return gradient_from_records(system, x, y, plan, estimates, beta, estimator)
