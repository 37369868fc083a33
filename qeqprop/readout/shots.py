"""The shot readout: Pauli expectations estimated from simulated measurement records.

One plan serves the whole batch of an EP call: the strings any sample's gradient needs (a
nonzero row of some J(x_b) = dc/dtheta) plus the outputs, grouped into qubit-wise commuting
bases, with ``shots`` per phase and sample split over the bases (readout.plan). In basis b
every state of the batch is rotated at once and each sample's M_b shots are drawn together
(multinomial over (B, 2^n) probabilities). With counts n_c and parities p_s(c) of the strings
the basis serves, per sample

    <P_s>^ = (1/M_b) sum_c n_c p_s(c),
    Cov_st = [ (1/M_b) sum_c n_c p_s(c) p_t(c) - <P_s>^ <P_t>^ ] / (M_b - 1)     (records.count_moments).

Phases are measured on independent shots, so the gradient sum_k a_k J(x_b)^T m_{k,b} has

    Cov_b = sum_k a_k^2 J(x_b)^T C_{k,b} J(x_b).

The nudge is computed from the *measured* free outputs, as on hardware (qeqprop.ep does that by
nudging from the measured free states).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..hamiltonians.parametrized import gradient_rows
from ..validation import check_int
from .plan import ALLOCATIONS, MeasurementPlan, build_plan
from .records import count_moments, parity_values
from .sampling import SAMPLERS, basis_probabilities, gaussian_term_estimates


def jacobians_of(hamiltonian, X: np.ndarray) -> np.ndarray:
    """J(x_b) = dc/dtheta per sample, (B, S, P)."""
    return np.array([hamiltonian.jacobian(x) for x in X])


def batch_plan(hamiltonian, jacobians: np.ndarray, shots: int, allocation: str = "uniform",
               expectations: np.ndarray | None = None) -> MeasurementPlan:
    """The measurement plan of a batch (module docstring). Allocation "weights" scores a basis by
    sum_b sum_p J_b,sp^2 (summed over the batch of ``jacobians`` (B, S, P)), "variance" also
    weighs by the mean over the batch of Var(P_s) = 1 - <P_s>^2 from ``expectations`` (B, S); for
    one sample both are the per-sample Neyman scores."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    needed = np.union1d(gradient_rows(np.abs(jacobians).sum(axis=0)), hamiltonian.observable_index)
    variances = None
    if allocation == "variance":
        if expectations is None:
            raise ValueError("allocation='variance' needs the free states' expectations for the term variances")
        variances = np.mean(1.0 - np.asarray(expectations) ** 2, axis=0)
    weight = np.sqrt(np.sum(jacobians**2, axis=0))
    return build_plan(hamiltonian.table.strings, needed, hamiltonian.n_qubits, shots, allocation, weight, variances)


def multinomial_estimates(strings, plan: MeasurementPlan, vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates of every planned string for a batch of states (B, D): means (B, S) and
    covariances (B, S, S) over the whole table (zeros for unplanned strings; block diagonal)."""
    size = len(strings)
    batch, dim = vectors.shape
    means = np.zeros((batch, size))
    covariance = np.zeros((batch, size, size))
    index = np.arange(dim)
    for basis, members, shots in zip(plan.bases, plan.members, plan.shots):
        counts = rng.multinomial(int(shots), basis_probabilities(vectors, basis)).astype(np.float64)  # (B, D)
        mean, block = count_moments(counts, parity_values(index, strings, members, plan.n_qubits))
        means[:, members] = mean
        covariance[:, members[:, None], members[None, :]] = block
    return means, covariance


class ShotMeasurement:
    """A shot readout bound to one EP call: the Pauli model, the inputs and the plan."""

    def __init__(self, hamiltonian, jacobians: np.ndarray, plan: MeasurementPlan, sampler: str = "multinomial",
                 rng: np.random.Generator | None = None):
        self.hamiltonian = hamiltonian
        self.jacobians = jacobians
        self.plan = plan
        self.sampler = sampler
        self.rng = rng

    def estimates(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means (B, S) and covariances (B, S, S) of the planned strings from sampled shots."""
        strings = self.hamiltonian.table.strings
        if self.sampler == "multinomial":
            return multinomial_estimates(strings, self.plan, vectors, self.rng)
        full = [gaussian_term_estimates(v, strings, self.plan, self.rng).full(len(strings)) for v in vectors]
        return np.array([m for m, _ in full]), np.array([c for _, c in full])

    def measure(self, states):
        if states.vectors is None:
            raise ValueError("Shots samples pure states (state vectors); these states have none "
                             "(Gibbs states at temperature > 0): use readout=Exact()")
        return states.measured(*self.estimates(np.asarray(states.vectors)))

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
            approximation, for comparison only: it ignores covariances and can leave [-1, 1]).

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

    def __post_init__(self):
        check_int("shots", self.shots)
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {self.allocation!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")

    def start(self, system, X, free, rng) -> ShotMeasurement:
        hamiltonian = system.pauli_measurement()
        if hamiltonian is None:
            raise ValueError(f"readout=Shots(...) measures Pauli strings; {system.describe()['name']} has no Pauli "
                             "measurement model (spin systems do): use readout=Exact()")
        rng = np.random.default_rng(self.seed if rng is None else rng)
        jacobians = jacobians_of(hamiltonian, X)
        expectations = free.expectations if self.allocation == "variance" else None
        plan = batch_plan(hamiltonian, jacobians, int(self.shots), self.allocation, expectations)
        return ShotMeasurement(hamiltonian, jacobians, plan, self.sampler, rng)
