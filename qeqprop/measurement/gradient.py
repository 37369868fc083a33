"""EP gradients from measured expectation values: simulated shots and hardware records.

Both go through the one phase loop of qeqprop.ep: simulated shots are ``ep_gradient(...,
readout=Shots(...))``; hardware records become measured states (expectations = record estimates,
covariance attached) that the same estimator combines, sum_phase a_phase J(x)^T m_phase, with

    Cov(grad) = sum_phase a_phase^2 J^T C_phase J

(phases are measured on independent shots; C_phase is block diagonal over bases).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ep import EPResult, as_batch, ep_gradient, stderr_of, unbatch
from ..estimators import PHASE_NAMES, as_estimator
from ..readout.plan import MeasurementPlan
from ..readout.records import estimate_terms, parse_counts
from ..readout.shots import ShotMeasurement, Shots, batch_plan, jacobians_of
from ..systems.spin_batch import SpinStates

# The EPResult of a measured gradient (``grad``, ``stderr``, ``covariance``, ``loss``, ``output``).
MeasuredGradient = EPResult


def measurement_plan(system, x, shots: int, allocation: str = "uniform", state=None,
                     grouping: str = "colouring") -> MeasurementPlan:
    """Bases and shots per phase for the EP gradient of ``system`` at input ``x`` (one sample).

    ``shots`` is the total per phase. "variance" allocation uses <P_s> from ``state``.
    ``grouping``: "colouring" (fewest bases found) or "greedy" (readout.plan.qubitwise_groups).
    """
    ham = system.pauli_measurement()
    if ham is None:
        raise ValueError(f"{system.describe()['name']} has no Pauli measurement model; measurement plans need a spin system")
    if allocation == "variance" and state is None:
        raise ValueError("allocation='variance' needs a state (e.g. the free phase) for the term variances")
    expectations = None if state is None else np.asarray(state.expectations)[None]
    return batch_plan(ham, jacobians_of(ham, ham.check_input(x)[None]), shots, allocation, expectations, grouping)


def gradient_from_counts(
    system,
    params,
    x,
    y,
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    plan: MeasurementPlan,
    beta: float,
    estimator: str = "centered",
    bit_order: str = "qubit0_first",
) -> EPResult:
    """EP gradient of one sample from hardware records, with standard errors.

    ``counts[phase][basis]`` is a dict bitstring -> count for phase "free", "plus" (+beta) or
    "minus" (-beta) and each basis of ``plan`` (e.g. ``"ZZXZ"``; measure qubit q in X by a
    Hadamard, in Y by S^dagger then Hadamard, before reading all qubits). The free phase is
    always needed (loss and outputs). PennyLane bitstrings list wire 0 first; pass
    ``bit_order="qubit0_last"`` for Qiskit.
    """
    ham = system.pauli_measurement()
    ham.check_params(params)
    rule = as_estimator(estimator, beta)
    X, Y, _ = as_batch(system, x, y)
    size = len(ham.table)
    estimates = {}
    for phase, per_basis in counts.items():
        if phase not in PHASE_NAMES.values():
            raise ValueError(f"counts phase {phase!r} must be one of {sorted(PHASE_NAMES.values())}")
        records = {basis: parse_counts(record, plan.n_qubits, bit_order, where=f"counts[{phase!r}][{basis!r}]")
                   for basis, record in per_basis.items()}
        estimates[phase] = estimate_terms(ham.table.strings, plan, records).full(size)
    names = {PHASE_NAMES[int(np.sign(b))]: b for b in (0.0, *rule.nudged_betas)}
    missing = sorted(set(names) - set(estimates))
    if missing:
        raise ValueError(f"estimator {rule.name!r} needs records for the phases {missing}; got {sorted(estimates)}")
    measured = {b: SpinStates(estimates[phase][0][None], covariance=estimates[phase][1][None]) for phase, b in names.items()}
    view = system.batch_view(1)
    grad = rule.combine({b: view.energy_grad(params, X, measured[b]) for b in rule.weights})
    covariance = ShotMeasurement(ham, jacobians_of(ham, X), plan).gradient_covariance({a: measured[b] for b, a in rule.weights.items()})
    result = EPResult(grad, view.cost(measured[0.0], Y), view.predict(measured[0.0]), measured[0.0],
                      {b: s for b, s in measured.items() if b != 0.0}, rule.name, rule.beta,
                      stderr_of(grad, covariance), covariance, measured)
    return unbatch(view, result)


def measured_ep_gradient(
    system,
    params,
    x,
    y,
    beta: float,
    shots: int,
    estimator: str = "centered",
    rng: np.random.Generator | int | None = None,
    allocation: str = "uniform",
    sampler: str = "multinomial",
    grouping: str = "colouring",
    nudge_from: str = "measured",
) -> EPResult:
    """Simulated measured EP gradient: ``shots`` per phase sampled from the exact states; the
    same as ``ep_gradient(..., readout=Shots(shots, allocation=..., sampler=..., grouping=...,
    nudge_from=...), rng=rng)``.

    The nudge is computed from the *measured* free-phase outputs, as on hardware, unless
    ``nudge_from="exact"``.
    """
    readout = Shots(shots, allocation=allocation, sampler=sampler, grouping=grouping, nudge_from=nudge_from)
    return ep_gradient(system, params, x, y, beta, estimator, readout=readout, rng=np.random.default_rng(rng))
