"""A readout (qeqprop.readout's interface) that measures each phase's prepared circuits on a device.

For every sample of a phase batch, the state is the variational circuit U(phi*) the learner
prepared (``VariationalState.circuit_params``); the measurement plan (readout.plan: qubit-wise
commuting groups of the Pauli strings the gradient and the outputs need) gives the bases. The
client runs one circuit per (sample, basis[, folding scale]) (qeqprop.device.circuits) and every
planned string is estimated from the records (readout.records):

    <P_s>^ = (1/M) sum_c n_c (-1)^{|c & m_s|},   Cov = block-diagonal sample covariance / M

or, from an analytic client (probabilities p_c), the exact <P_s> = sum_c p_c (-1)^{|c & m_s|}
with zero covariance. With zero-noise extrapolation the per-scale estimates are combined
(qeqprop.device.mitigation). ``ep_gradient(..., readout=DeviceReadout(loop))`` then runs the one
EP phase loop of qeqprop.ep with the nudge computed from these MEASURED free outputs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..readout.plan import MeasurementPlan
from ..readout.records import TermEstimates, estimate_terms, parity_values, parse_counts
from ..readout.shots import ShotMeasurement, batch_plan, jacobians_of
from .bit_order import check_bit_order
from .budget import Budget
from .circuits import phase_circuits


def analytic_terms(strings, plan: MeasurementPlan, probabilities: dict[str, np.ndarray]) -> TermEstimates:
    """Exact <P_s> = sum_c p_c (-1)^{|c & m_s|} of every planned string from per-basis
    probabilities, with zero covariance (no shots)."""
    index, means = [], []
    for basis, members in zip(plan.bases, plan.members):
        p = probabilities[basis]
        means.append(p @ parity_values(np.arange(len(p)), strings, members, plan.n_qubits))
        index.append(members)
    index = np.concatenate(index)
    return TermEstimates(index, np.concatenate(means), np.zeros((len(index), len(index))))


def device_plan(hamiltonian, jacobians: np.ndarray, shots: int | None, grouping: str) -> MeasurementPlan:
    """The bases of the batch (readout.shots.batch_plan), each measured with the client's ``shots``
    per circuit (0 for an analytic client)."""
    plan = batch_plan(hamiltonian, jacobians, hamiltonian.n_qubits * len(hamiltonian.table), "uniform", None, grouping)
    return replace(plan, shots=np.full(len(plan.bases), shots or 0, dtype=np.int64))


class DeviceMeasurement(ShotMeasurement):
    """A device readout bound to one EP call: ``measure`` runs the circuits of a phase batch and
    adds what it spent to ``budget``; covariances as ShotMeasurement's."""

    def __init__(self, system, jacobians, plan, loop, rng):
        super().__init__(system.pauli_measurement(), jacobians, plan, rng=rng, nudge_from="measured")
        self.system, self.loop = system, loop
        self.budget = Budget()

    def measure(self, states):
        members = states.members
        if members is None or any(getattr(m, "circuit_params", None) is None for m in members):
            raise ValueError("a device readout measures variationally prepared states (VariationalState with "
                             "circuit_params): use a variational learner such as qeqprop.variational_tfim(...)")
        client, mitigation, plan = self.loop.client, self.loop.mitigation, self.plan
        analytic = client.shots is None
        circuits = phase_circuits([self.system.variational.ops(m.circuit_params) for m in members], plan.bases,
                                  None if analytic else plan.shots, "probs" if analytic else "counts")
        scales = 1 if mitigation is None else len(mitigation.scale_factors)
        run = circuits if mitigation is None else [c for circuit in circuits for c in mitigation.fold(circuit)]
        records = client.run(run, self.rng)
        self.budget.circuits += len(run)
        self.budget.shots += 0 if analytic else len(run) * int(client.shots)
        strings, n, size = self.hamiltonian.table.strings, plan.n_qubits, len(self.hamiltonian.table)
        K = len(plan.bases)
        means = np.zeros((len(members), scales, size))
        covariance = np.zeros((len(members), scales, size, size))
        frequencies = []
        for b in range(len(members)):
            for z in range(scales):
                mine = {basis: records[(b * K + k) * scales + z] for k, basis in enumerate(plan.bases)}
                if analytic:
                    estimates = analytic_terms(strings, plan, mine)
                else:
                    parsed = {basis: parse_counts(r, n, where=f"{client.name} record of basis {basis!r}") for basis, r in mine.items()}
                    estimates = estimate_terms(strings, plan, parsed)
                    if z == 0:
                        for basis in plan.bases:
                            index, counts = parsed[basis]
                            freq = np.zeros(2**n)
                            np.add.at(freq, index, counts / counts.sum())
                            frequencies.append(freq)
                means[b, z], covariance[b, z] = estimates.full(size)
        if not analytic and self.loop.check_bit_order and states.vectors is not None:
            vectors = [v for v in np.asarray(states.vectors) for _ in plan.bases]
            check_bit_order(frequencies, vectors, list(plan.bases) * len(members), [int(s) for s in plan.shots] * len(members))
        if mitigation is None:
            return states.measured(means[:, 0], covariance[:, 0])
        return states.measured(*mitigation.combine(np.moveaxis(means, 1, 0), np.moveaxis(covariance, 1, 0)))


class DeviceReadout:
    """The Readout of a DeviceLoop (its client, mitigation and bit-order check); ``last`` is the
    DeviceMeasurement of the latest EP call (its ``budget``)."""

    def __init__(self, loop):
        self.loop = loop
        self.last: DeviceMeasurement | None = None

    def start(self, system, X, free, rng) -> DeviceMeasurement:
        hamiltonian = system.pauli_measurement()
        if hamiltonian is None or not hasattr(system, "variational"):
            raise ValueError("a device readout needs a variational spin learner (e.g. qeqprop.variational_tfim(...))")
        jacobians = jacobians_of(hamiltonian, X)
        plan = device_plan(hamiltonian, jacobians, self.loop.client.shots, self.loop.grouping)
        self.last = DeviceMeasurement(system, jacobians, plan, self.loop, np.random.default_rng(rng))
        return self.last
