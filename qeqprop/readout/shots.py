"""The shot readout: Pauli expectations estimated from simulated measurement records.

One plan serves the whole batch of an EP call: the strings any sample's gradient needs (a
nonzero row of some J(x_b) = dc/dtheta) plus the outputs, grouped into qubit-wise commuting
bases, with ``shots`` per phase and sample split over the bases (readout.plan). In basis b
every state of the batch is rotated at once and each sample's M_b shots are drawn together from
its (2^n,) probabilities: the M_b outcomes themselves where M_b <= 2^n (sampling.basis_outcomes),
else the outcome counts (multinomial). With counts n_c and parities p_s(c) of the strings the
basis serves, per sample

    <P_s>^ = (1/M_b) sum_c n_c p_s(c),
    Cov_st = [ (1/M_b) sum_c n_c p_s(c) p_t(c) - <P_s>^ <P_t>^ ] / (M_b - 1)     (records.count_moments,
                                                                              records.shot_moments).

Phases are measured on independent shots, so the gradient sum_k a_k J(x_b)^T m_{k,b} has

    Cov_b = sum_k a_k^2 J(x_b)^T C_{k,b} J(x_b).

The nudge is computed from the *measured* free outputs by default, as on hardware
(``nudge_from="measured"``; qeqprop.ep nudges from the measured free states); ``nudge_from="exact"``
nudges from the exact free outputs instead, so the nudged phases are those of exact EP and only
the read-out of each phase is noisy (the covariance above is then the whole gradient covariance;
with a measured nudge, the nudge's own noise is not in it).

``sampler="gaussian"`` replaces the multinomial shots by one normal draw per planned string and
sample, N(<P_s>, (1 - <P_s>^2) / M_b) (readout.sampling.gaussian_estimates), for the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._blas import one_blas_thread
from ..hamiltonians.parametrized import gradient_rows
from ..validation import check_int
from .mps_sampling import mps_estimates, mps_members
from .plan import ALLOCATIONS, GROUPINGS, MeasurementPlan, build_plan
from .records import count_moments, parity_values, shot_moments
from .sampling import SAMPLERS, basis_outcomes, basis_probabilities, gaussian_estimates

NUDGE_SOURCES = ("measured", "exact")


def jacobians_of(hamiltonian, X: np.ndarray) -> np.ndarray:
    """J(x_b) = dc/dtheta per sample, (B, S, P)."""
    return np.array([hamiltonian.jacobian(x) for x in X])


def batch_plan(hamiltonian, jacobians: np.ndarray, shots: int, allocation: str = "uniform",
               expectations: np.ndarray | None = None, grouping: str = "colouring") -> MeasurementPlan:
    """The measurement plan of a batch (module docstring). Allocation "weights" scores a basis by
    sum_b sum_p J_b,sp^2 (summed over the batch of ``jacobians`` (B, S, P)), "variance" also
    weighs by the mean over the batch of Var(P_s) = 1 - <P_s>^2 from ``expectations`` (B, S); for
    one sample both are the per-sample Neyman scores. ``grouping``: readout.plan.qubitwise_groups."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    needed = np.union1d(gradient_rows(np.abs(jacobians).sum(axis=0)), hamiltonian.observable_index)
    variances = None
    if allocation == "variance":
        if expectations is None:
            raise ValueError("allocation='variance' needs the free states' expectations for the term variances")
        variances = np.mean(1.0 - np.asarray(expectations) ** 2, axis=0)
    weight = np.sqrt(np.sum(jacobians**2, axis=0))
    return build_plan(hamiltonian.table.strings, needed, hamiltonian.n_qubits, shots, allocation, weight, variances, grouping)


def multinomial_estimates(strings, plan: MeasurementPlan, vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates of every planned string for a batch of states (B, D): means (B, S) and
    covariances (B, S, S) over the whole table (zeros for unplanned strings; block diagonal)."""
    size = len(strings)
    batch, dim = vectors.shape
    means = np.zeros((batch, size))
    covariance = np.zeros((batch, size, size))
    index = np.arange(dim)
    for basis, members, shots in zip(plan.bases, plan.members, plan.shots):
        if shots <= dim:  # the shots themselves: O(B (D + M S^2)) rather than O(B D S^2)
            outcomes = basis_outcomes(vectors, basis, int(shots), rng)  # (B, M)
            mean, block = shot_moments(parity_values(outcomes, strings, members, plan.n_qubits))
        else:
            counts = rng.multinomial(int(shots), basis_probabilities(vectors, basis)).astype(np.float64)
            mean, block = count_moments(counts, parity_values(index, strings, members, plan.n_qubits))
        means[:, members] = mean
        covariance[:, members[:, None], members[None, :]] = block
    return means, covariance


class ShotMeasurement:
    """A shot readout bound to one EP call: the Pauli model, the inputs and the plan;
    ``nudge_from`` tells qeqprop.ep which free states the nudge is computed from."""

    def __init__(self, hamiltonian, jacobians: np.ndarray, plan: MeasurementPlan, sampler: str = "multinomial",
                 rng: np.random.Generator | None = None, nudge_from: str = "measured"):
        self.hamiltonian = hamiltonian
        self.jacobians = jacobians
        self.plan = plan
        self.sampler = sampler
        self.rng = rng
        self.nudge_from = nudge_from

    @one_blas_thread
    def measure(self, states):
        """The batch with every planned <P_s> replaced by its estimate (B, S) and the covariance
        (B, S, S) attached; multinomial shots need the state vectors or MPS states (readout.mps_sampling),
        the Gaussian model only the exact expectations."""
        if self.sampler == "gaussian":
            return states.measured(*gaussian_estimates(states.expectations, self.plan, self.rng))
        if (mps := mps_members(states)) is not None:  # no vectors: perfect sampling from each MPS
            return states.measured(*mps_estimates(self.hamiltonian.table.strings, self.plan, mps, self.rng))
        if states.vectors is None:
            raise ValueError("Shots samples pure states (state vectors); these states have none "
                             "(Gibbs states at temperature > 0): use readout=Exact() or Shots(..., sampler='gaussian')")
        return states.measured(*multinomial_estimates(self.hamiltonian.table.strings, self.plan,
                                                      np.asarray(states.vectors), self.rng))

    @one_blas_thread
    def gradient_covariance(self, weighted: Mapping[float, Any]) -> np.ndarray:
        """sum_k a_k^2 J(x_b)^T C_{k,b} J(x_b) per sample, (B, P, P), with the Jacobians bound at start."""
        covariance = sum(a**2 * measured.covariance for a, measured in weighted.items())
        return np.swapaxes(self.jacobians, 1, 2) @ covariance @ self.jacobians


@dataclass(frozen=True)
class Shots:
    """Simulated shots: ``shots`` per phase and sample, split over the plan's bases.

    Args:
        shots: total shots per phase and sample (at least one per basis).
        seed: seed of the sampler when ``ep_gradient`` gets no ``rng`` (None: fresh entropy).
        allocation: "uniform", "weights" or "variance" (readout.plan.build_plan).
        sampler: "multinomial" (exact shot statistics) or "gaussian" (per-term normal
            approximation N(<P_s>, (1 - <P_s>^2)/M_b), batched: it ignores covariances and can
            leave [-1, 1]).
        grouping: how strings are grouped into bases, "colouring" (fewest bases found) or
            "greedy" (readout.plan.qubitwise_groups).
        nudge_from: "measured" (the nudge from the measured free outputs, as on hardware) or
            "exact" (from the exact free outputs: only each phase's read-out is noisy).

    Example:
        >>> import qeqprop as qp
        >>> from qeqprop.readout import Shots
        >>> net, params, x, y = qp.random_tfim_instance(4)
        >>> r = qp.ep_gradient(net, params, x, y, beta=0.1, readout=Shots(1000, seed=0))
        >>> sorted(r.stderr) == sorted(r.grad)
        True
    """

    shots: int
    seed: int | None = None
    allocation: str = "uniform"
    sampler: str = "multinomial"
    grouping: str = "colouring"
    nudge_from: str = "measured"

    def __post_init__(self):
        check_int("shots", self.shots)
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {self.allocation!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.grouping not in GROUPINGS:
            raise ValueError(f"grouping must be one of {GROUPINGS}, got {self.grouping!r}")
        if self.nudge_from not in NUDGE_SOURCES:
            raise ValueError(f"nudge_from must be one of {NUDGE_SOURCES}, got {self.nudge_from!r}")

    def start(self, system, X, free, rng) -> ShotMeasurement:
        hamiltonian = system.pauli_measurement()
        if hamiltonian is None:
            raise ValueError(f"readout=Shots(...) measures Pauli strings; {system.describe()['name']} has no Pauli "
                             "measurement model (spin systems do): use readout=Exact()")
        rng = np.random.default_rng(self.seed if rng is None else rng)
        jacobians = jacobians_of(hamiltonian, X)
        expectations = free.expectations if self.allocation == "variance" else None
        plan = batch_plan(hamiltonian, jacobians, int(self.shots), self.allocation, expectations, self.grouping)
        return ShotMeasurement(hamiltonian, jacobians, plan, self.sampler, rng, self.nudge_from)
