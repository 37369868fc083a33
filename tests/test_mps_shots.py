"""The shot readout (qeqprop.readout.Shots) on MPS states: perfect sampling from the MPS in each
measurement basis, no state vector.

Default run: the sampler's outcome histogram against the Born probabilities (Pearson chi-square),
and a shot EP gradient through the MPS: free-phase estimates and the gradient against their exact
values, Mahalanobis distances with the reported covariances against the chi-square law.
Slow: a centered EP learner with shots on the MPS solver trains (test loss falls).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import qeqprop as qp
from qeqprop.hamiltonians.pauli import PauliTable
from qeqprop.readout import Shots
from qeqprop.readout.sampling import basis_probabilities
from qeqprop.solvers import MPS, make_solver, sample_bitstrings
from qeqprop.systems.tfim import TFIMNetwork

# A seeded statistic below this p-value fails (deterministic: the seeds are fixed).
P_MIN = 1e-3


def mahalanobis_p_value(residual: np.ndarray, covariance: np.ndarray) -> float:
    """P(chi^2_k >= r^T C^+ r) with k = rank C: the p-value of a Gaussian residual with covariance C."""
    rank = np.linalg.matrix_rank(covariance, tol=1e-12 * np.max(np.abs(covariance)))
    return float(stats.chi2.sf(residual @ np.linalg.pinv(covariance, rcond=1e-10) @ residual, rank))


def test_perfect_sampling_follows_born_probabilities():
    """20000 shots in basis XZYZ of a complex 4-qubit chain: the 16-outcome histogram against
    |U psi|^2 (readout.sampling.basis_probabilities of the dense ground state), Pearson chi-square."""
    n = 4
    table = PauliTable(n, [f"Z{i} Z{i + 1}" for i in range(n - 1)] + [f"X{i}" for i in range(n)] + ["Z0", "X1 Y2"])
    op = table.operator(np.array([-1.0, -0.7, -1.2, -0.6, -0.8, -0.5, -0.9, -0.3, 0.4]))
    state = MPS(gap=False).solve(op)
    basis = "XZYZ"
    shots = sample_bitstrings(state, 20000, basis=basis, rng=5)
    index = ((1 - shots) // 2) @ (1 << np.arange(n - 1, -1, -1))  # outcome -1 is bit 1; qubit 0 most significant
    observed = np.bincount(index, minlength=2**n)
    expected = basis_probabilities(make_solver("dense").solve(op).vector, basis) * len(shots)
    rare = expected < 5.0  # Pearson's condition: outcomes expected fewer than 5 times are pooled in one cell
    observed = np.append(observed[~rare], observed[rare].sum())
    expected = np.append(expected[~rare], expected[rare].sum())
    statistic = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(statistic, len(observed) - 1) > P_MIN


def test_shot_ep_gradient_through_mps_matches_exact_within_its_covariance():
    """An 8-qubit TFIM chain learner on the MPS solver, Shots(20000, nudge_from="exact"): the free
    phase's planned estimates against the exact MPS expectations and the centered EP gradient against
    the exact-readout EP gradient (the same phases), each residual's Mahalanobis distance with the
    reported covariance against chi^2 of its rank."""
    net = TFIMNetwork(8, "chain", n_inputs=1, input_mode="fields", input_qubits=[0], output_qubits=[6, 7], gamma=1.2,
                      solver=MPS(gap=False))
    params, x, y = net.init_params(1), np.array([0.8]), np.array([0.4, -0.2])
    exact = qp.ep_gradient(net, params, x, y, beta=0.1)
    shot = qp.ep_gradient(net, params, x, y, beta=0.1, readout=Shots(20000, seed=3, nudge_from="exact"))
    measured = shot.measured[0.0]
    covariance = measured.covariance
    planned = np.flatnonzero(np.diagonal(covariance) > 0)
    assert len(planned) > 10 and exact.free.vector is None
    residual = measured.expectations[planned] - exact.free.expectations[planned]
    assert mahalanobis_p_value(residual, covariance[np.ix_(planned, planned)]) > P_MIN
    names = sorted(exact.grad)
    residual = np.concatenate([np.ravel(shot.grad[k] - exact.grad[k]) for k in names])
    assert mahalanobis_p_value(residual, shot.covariance) > P_MIN
    assert np.all(np.abs(residual) < 5 * np.concatenate([np.ravel(shot.stderr[k]) for k in names]))


@pytest.mark.slow
def test_centered_ep_with_shots_trains_on_mps():
    """A 4-qubit chain (Gamma = 0.8, J from init_params + 0.3) carries the sign of a boundary field to
    its far end (targets 0.5 sign(x)): centered EP (beta = 0.1) with 2000 shots per phase sampled from
    the MPS, 8 training samples, batch 4, Adam lr 0.1, 8 epochs: the exact test loss falls below half
    its start (measured: 0.086 -> 0.028)."""
    n = 4
    rng = np.random.default_rng(0)
    net = TFIMNetwork(n, "chain", n_inputs=1, input_mode="fields", input_qubits=[0], output_qubits=[n - 1], gamma=0.8,
                      solver=MPS(gap=False))

    def data(count):
        x = rng.choice([-1.0, 1.0], count) * rng.uniform(0.5, 1.5, count)
        return x[:, None], 0.5 * np.sign(x)[:, None]

    train, test = data(8), data(8)
    params = net.init_params(0)
    params["J"] = params["J"] + 0.3

    def test_loss(p):
        return float(np.mean([net.loss(p, xi, yi) for xi, yi in zip(*test)]))

    result = qp.fit(net, train, params, epochs=8, batch_size=4, learning_rate=0.1, beta=0.1, shots=2000, seed=0,
                    progress=False)
    assert test_loss(result.params) < 0.5 * test_loss(params)
