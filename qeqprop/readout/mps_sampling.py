"""Shots from matrix-product states: the shot readout of a batch solved by the MPS solver.

A batch solved by DMRG holds no 2^n vectors (``SpinStates.vectors`` is None); its per-sample
states are ``MPSGroundState``s. In each basis b of the plan the M_b shots of every sample are drawn
by perfect sampling from its MPS (solvers.mps.sample_bitstrings: +-1 eigenvalues e_q per qubit),
each served string reads as the product of its qubits' outcomes, p_s = prod_{q in s} e_q, and the
estimates and their covariance are the shot moments (records.shot_moments) of the state-vector
path: the same statistics, at any number of qubits (no integer bitstrings).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..hamiltonians.pauli import PauliString
from ..solvers.mps import MPSGroundState, sample_bitstrings
from .plan import MeasurementPlan
from .records import shot_moments


def mps_members(states) -> list[MPSGroundState] | None:
    """The per-sample MPS ground states of a batch (``states.members``), or None when the batch is
    not one of MPS states."""
    members = getattr(states, "members", None)
    if getattr(states, "vectors", None) is None and members and all(isinstance(m, MPSGroundState) for m in members):
        return list(members)
    return None


def mps_estimates(strings: Sequence[PauliString], plan: MeasurementPlan, states: Sequence[MPSGroundState],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates of every planned string for a batch of MPS states: means (B, S) and
    covariances (B, S, S) over the whole table (zeros for unplanned strings; block diagonal), as
    ``shots.multinomial_estimates`` returns them for state vectors.

    Example:
        >>> import numpy as np
        >>> from qeqprop.readout.plan import build_plan
        >>> from qeqprop.solvers import MPS, PauliSum
        >>> terms = PauliSum.parse(3, {"Z0 Z1": -1.0, "Z1 Z2": -1.0, "X0": -0.4, "X1": -0.4, "X2": -0.4})
        >>> state = MPS(gap=False).solve(terms)
        >>> plan = build_plan(list(terms.strings), np.arange(5), 3, 2000)
        >>> means, covariance = mps_estimates(terms.strings, plan, [state], np.random.default_rng(0))
        >>> bool(np.all(np.abs(means[0] - state.expectations) < 5 * np.sqrt(np.diagonal(covariance[0]))))
        True
    """
    size, batch = len(strings), len(states)
    means = np.zeros((batch, size))
    covariance = np.zeros((batch, size, size))
    for basis, members, shots in zip(plan.bases, plan.members, plan.shots):
        supports = [list(strings[s].qubits) for s in members]
        for b, state in enumerate(states):
            outcomes = sample_bitstrings(state, int(shots), basis, rng)
            values = np.stack([np.prod(outcomes[:, q], axis=1, dtype=np.float64) for q in supports], axis=1)
            mean, block = shot_moments(values)
            means[b, members] = mean
            covariance[b, members[:, None], members[None, :]] = block
    return means, covariance
