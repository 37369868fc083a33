"""Spin systems past 63 qubits on the MPS solver (a Pauli table's int64 masks end at 63 qubits;
above, the table keeps its terms only and the exact solvers refuse with a ValueError).

Default run: a 64-qubit TFIM chain learner's DMRG energy equals the free-fermion ground energy.
Slow: at 64 qubits the EP gradient (centered, beta = 1e-3) equals central finite differences of the
MPS loss along the gradient and along a random direction.
"""

from __future__ import annotations

import numpy as np
import pytest

import qeqprop as qp
from qeqprop.gradcheck import random_tfim_instance
from qeqprop.hamiltonians.pauli import MASK_QUBITS
from qeqprop.solvers import MPS
from qeqprop.systems.tfim import TFIMNetwork

N = 64


def free_fermion_energy(J: np.ndarray, gamma: np.ndarray) -> float:
    """Ground energy of the open chain H = -sum_i J_i Z_i Z_(i+1) - sum_i Gamma_i X_i: minus the sum of
    the singular values of the bidiagonal matrix with Gamma_i on the diagonal and J_i above it (Jordan-
    Wigner free fermions; Pfeuty, Ann. Phys. 57, 79 (1970); single-particle energies 2 sigma_k)."""
    return -float(np.sum(np.linalg.svd(np.diag(gamma) + np.diag(J, 1), compute_uv=False)))


def test_64_qubit_learner_energy_equals_free_fermions_and_exact_solvers_refuse():
    rng = np.random.default_rng(0)
    gamma = rng.uniform(1.5, 2.0, N)
    net = TFIMNetwork(N, "chain", n_inputs=1, input_mode="fields", input_qubits=[0], output_qubits=[N - 1], gamma=gamma,
                      solver=MPS(gap=False, svd_min=1e-10))
    assert N > MASK_QUBITS
    params = net.init_params(0)
    params["J"] = rng.uniform(0.5, 1.0, N - 1)
    params["b"] = np.zeros(N)
    state = net.equilibrate(params, np.array([0.0]))
    assert abs(state.energy - free_fermion_energy(params["J"], gamma)) < 1e-9 * N
    assert state.vector is None and state.bond_dimension < 32 and abs(net.predict(state)[0]) < 1e-6  # Z2 symmetric
    with pytest.raises(ValueError, match="use fewer qubits"):
        TFIMNetwork(N, "chain", n_inputs=1, solver="jax")
    with pytest.raises(ValueError, match="use solver='mps'"):
        net.hamiltonian.table.operator(np.zeros(len(net.hamiltonian.table)))


@pytest.mark.slow
def test_64_qubit_ep_gradient_equals_finite_differences_of_the_mps_loss():
    """Random gapped chain learner (gradcheck.random_tfim_instance, seed 3, 64 qubits, 2 inputs, 2
    outputs): (L(theta + h d) - L(theta - h d)) / 2h = g_EP . d along d = g_EP / |g_EP| and a random
    unit d, to 1e-6 |g_EP| (h = 2e-4: FD error ~h^2; EP bias ~beta^2)."""
    beta, step = 1e-3, 2e-4
    net, params, x, y = random_tfim_instance(N, seed=3, solver=MPS(gap=False, svd_min=1e-10), graph="chain")
    grad = qp.ep_gradient(net, params, x, y, beta).grad
    norm = np.sqrt(sum(float(np.sum(g**2)) for g in grad.values()))
    rng = np.random.default_rng(0)
    for direction in ({k: g / norm for k, g in grad.items()}, {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}):
        length = np.sqrt(sum(float(np.sum(d**2)) for d in direction.values()))
        direction = {k: d / length for k, d in direction.items()}
        losses = [net.loss({k: params[k] + sign * step * direction[k] for k in params}, x, y) for sign in (1.0, -1.0)]
        slope = (losses[0] - losses[1]) / (2 * step)
        assert abs(slope - sum(float(np.sum(grad[k] * direction[k])) for k in params)) < 1e-6 * norm
