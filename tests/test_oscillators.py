"""QHO networks: the Gaussian solver against QuTiP Fock-space ED and the closed form, the
reference gradient against finite differences, EP convergence rates, the classical limit
hbar = 0 against an independent elastic-network EP, the quantum correction against a
hand-derived formula, and bad input."""

import networkx as nx
import numpy as np
import pytest
import scipy.linalg

from conftest import assert_ep_rates
from qeqprop.ep import ESTIMATORS, ep_gradient, finite_difference_gradient, reference_gradient, relative_error
from qeqprop.solvers.fock import fock_ground_state
from qeqprop.solvers.gaussian import gaussian_ground_state
from qeqprop.systems.oscillators import OscillatorNetwork
from qeqprop.systems.protocol import EnergySystem



def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def random_spring_matrices(rng, n):
    """Masses, a positive-definite stiffness (springs on the complete graph plus anchors), forces."""
    springs = np.triu(rng.uniform(0.2, 1.2, (n, n)), 1)
    springs = springs + springs.T
    stiffness = np.diag(springs.sum(axis=1) + rng.uniform(0.3, 1.0, n)) - springs
    return rng.uniform(0.5, 2.0, n), stiffness, rng.normal(scale=0.7, size=n)


# --- Gaussian solver vs independent references ----------------------------------------------


@pytest.mark.parametrize("n,seed", [(2, 0), (2, 1), (3, 2), (3, 3)])
def test_gaussian_equals_fock_space_ed(n, seed):
    rng = np.random.default_rng(seed)
    masses, stiffness, force = random_spring_matrices(rng, n)
    hbar = rng.uniform(0.5, 1.5)
    gaussian = gaussian_ground_state(masses, stiffness, force, hbar)
    fock = fock_ground_state(masses, stiffness, force, hbar, tol=1e-10)
    assert abs(gaussian.energy - fock.energy) < 1e-6 * abs(gaussian.energy)
    np.testing.assert_allclose(gaussian.second_moment, fock.second_moment, rtol=0, atol=1e-5)
    assert abs(gaussian.gap - fock.gap) < 1e-6 * gaussian.gap


def test_gaussian_equals_matrix_square_root_formula():
    """Unit masses, hbar = 1: C = 1/2 K^-1/2 and E0 = 1/2 tr K^1/2 - 1/2 f^T K^-1 f."""
    rng = np.random.default_rng(5)
    _, stiffness, force = random_spring_matrices(rng, 8)
    state = gaussian_ground_state(np.ones(8), stiffness, force, hbar=1.0)
    root = scipy.linalg.sqrtm(stiffness).real
    np.testing.assert_allclose(state.covariance, 0.5 * np.linalg.inv(root), rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.mean, np.linalg.solve(stiffness, force), rtol=0, atol=1e-12)
    expected = 0.5 * np.trace(root) - 0.5 * force @ np.linalg.solve(stiffness, force)
    assert abs(state.energy - expected) < 1e-12
    assert abs(state.gap - np.sqrt(np.linalg.eigvalsh(stiffness)[0])) < 1e-12


# --- gradients on Gaussian networks ---------------------------------------------------------


def weights_network():
    system = OscillatorNetwork(5, "complete", n_inputs=2, output_nodes=[3, 4], masses=[1.0, 0.6, 1.7, 1.2, 0.9],
                               anchors=[0.8, 0.5, 1.0, 0.7, 0.6], train_anchors=True, hbar=0.8)
    return system, 10


def clamped_network():
    system = OscillatorNetwork(6, "chain", n_inputs=2, input_mode="clamped", input_nodes=[0, 1], output_nodes=[5],
                               anchors=0.0, clamp_stiffness=4.0, masses=1.3, hbar=1.3)
    return system, 11


def classical_graph_network():
    graph = nx.gnp_random_graph(6, 0.5, seed=3)
    graph.add_edges_from((i, i + 1) for i in range(5))
    system = OscillatorNetwork(6, graph, n_inputs=3, output_nodes=[4, 5], anchors=0.4, hbar=0.0)
    return system, 12


NETWORKS = [weights_network, clamped_network, classical_graph_network]


def instance(make):
    system, seed = make()
    rng = np.random.default_rng(seed)
    return system, system.init_params(rng), rng.normal(size=system.n_inputs), rng.normal(size=system.n_outputs)


@pytest.mark.parametrize("make", NETWORKS)
def test_reference_equals_finite_differences(make):
    system, params, x, y = instance(make)
    fd = finite_difference_gradient(system, params, x, y, step=1e-4)
    assert relative_error(reference_gradient(system, params, x, y), fd) < 1e-6


@pytest.mark.parametrize("make", NETWORKS)
def test_ep_convergence_slopes(make):
    system, params, x, y = instance(make)
    assert isinstance(system, EnergySystem)
    errors = assert_ep_rates(system, params, x, y)["centered"]
    assert errors[-1] < 1e-4


# --- Fock-space networks: harmonic (vs Gaussian) and anharmonic -------------------------------


def test_fock_network_gradients_equal_gaussian():
    kwargs = dict(n_inputs=1, output_nodes=[2], masses=[1.0, 1.5, 0.7], anchors=0.8, hbar=0.9)
    fock = OscillatorNetwork(3, "complete", solver="fock", **kwargs)
    gaussian = OscillatorNetwork(3, "complete", **kwargs)
    rng = np.random.default_rng(4)
    params, x, y = fock.init_params(rng), rng.normal(size=1), rng.normal(size=1)
    free = fock.equilibrate(params, x)
    exact = gaussian.reference_grad(params, x, y)
    assert free.solver == "fock"
    assert abs(fock.cost(free, y) - gaussian.loss(params, x, y)) < 1e-8
    assert relative_error(fock.reference_grad(params, x, y, free=free), exact) < 1e-6
    centered = ep_gradient(fock, params, x, y, beta=1e-3, free=free)
    assert relative_error(centered.grad, exact) < 1e-5


def test_anharmonic_network_reference_and_ep():
    system = OscillatorNetwork(2, "chain", n_inputs=1, output_nodes=[1], masses=[1.0, 0.8], anchors=0.6,
                               quartic=[0.3, 0.2], hbar=1.0, max_cutoff=40)
    rng = np.random.default_rng(8)
    params, x, y = system.init_params(rng), rng.normal(size=1), rng.normal(size=1)
    free = system.equilibrate(params, x)
    assert free.solver == "fock" and free.gap > 0.5
    reference = system.reference_grad(params, x, y, free=free)
    assert relative_error(reference, finite_difference_gradient(system, params, x, y, step=1e-4)) < 1e-6
    harmonic = OscillatorNetwork(2, "chain", n_inputs=1, output_nodes=[1], masses=[1.0, 0.8], anchors=0.6, hbar=1.0)
    assert relative_error(reference, harmonic.reference_grad(params, x, y)) > 1e-2  # the x^4 term matters
    assert_ep_rates(system, params, x, y)


# --- classical limit and the quantum correction -------------------------------------------


def classical_mean(edges, anchors, springs, force, nudge_nodes=(), beta=0.0, y=None):
    """Equilibrium of the elastic network: (K + beta P) mu = f + beta P y, K from the springs."""
    stiffness = np.diag(np.asarray(anchors, dtype=float))
    for (i, j), k in zip(edges, springs):
        stiffness[i, i] += k
        stiffness[j, j] += k
        stiffness[i, j] -= k
        stiffness[j, i] -= k
    force = np.array(force, dtype=float)
    for o, target in zip(nudge_nodes, np.zeros(len(nudge_nodes)) if y is None else y):
        stiffness[o, o] += beta
        force[o] += beta * target
    return np.linalg.solve(stiffness, force), stiffness


def test_classical_limit_is_the_elastic_network():
    """hbar = 0: E(mu) = 1/2 sum k_ij (mu_i - mu_j)^2 + 1/2 sum kappa_i mu_i^2 - f . mu, so
    dE/dk_ij = 1/2 (mu_i - mu_j)^2, dE/db_j = -mu_j, dE/dW_ij = -x_i mu_j (mean only), and the
    exact gradient of L = 1/2 |mu_o - y|^2 is, with lam = K^-1 P^T (mu_o - y),
    dL/dk_ij = -(lam_i - lam_j)(mu_i - mu_j), dL/db = lam, dL/dW = x lam^T."""
    system = OscillatorNetwork(7, "complete", n_inputs=2, output_nodes=[5, 6], anchors=0.3, hbar=0.0)
    rng = np.random.default_rng(21)
    params, x, y = system.init_params(rng), rng.normal(size=2), rng.normal(size=2)
    springs, force = np.log1p(np.exp(params["k_raw"])), params["b"] + x @ params["W"]
    i, j = np.array(system.edges).T
    out = system.output_nodes

    def local(mu):
        return {"k_raw": 0.5 * (mu[i] - mu[j]) ** 2 * sigmoid(params["k_raw"]), "b": -mu, "W": -np.outer(x, mu)}

    beta = 1e-3
    phases = {s: local(classical_mean(system.edges, system.anchors, springs, force, out, s * beta, y)[0]) for s in (-1, 0, 1)}
    expected = {
        "positive": {k: (phases[1][k] - phases[0][k]) / beta for k in phases[0]},
        "negative": {k: (phases[0][k] - phases[-1][k]) / beta for k in phases[0]},
        "centered": {k: (phases[1][k] - phases[-1][k]) / (2 * beta) for k in phases[0]},
    }
    for estimator in ESTIMATORS:
        assert relative_error(ep_gradient(system, params, x, y, beta, estimator).grad, expected[estimator]) < 1e-10

    mu, stiffness = classical_mean(system.edges, system.anchors, springs, force)
    residual = np.zeros(7)
    residual[out] = mu[out] - y
    lam = np.linalg.solve(stiffness, residual)
    exact = {"k_raw": -(lam[i] - lam[j]) * (mu[i] - mu[j]) * sigmoid(params["k_raw"]), "b": lam, "W": np.outer(x, lam)}
    assert relative_error(system.reference_grad(params, x, y), exact) < 1e-10
    assert abs(system.loss(params, x, y) - 0.5 * np.sum((mu[out] - y) ** 2)) < 1e-12
    assert system.equilibrate(params, x).gap == 0.0


@pytest.mark.parametrize("hbar", [0.25, 0.5, 1.0, 2.0])
def test_quantum_correction_matches_closed_form(hbar):
    """Two unit masses, equal anchors kappa, one spring k = softplus(k_raw), output node 1.

    K = [[kappa + k, -k], [-k, kappa + k]] has normal modes (1, 1)/sqrt2 with w+^2 = kappa and
    (1, -1)/sqrt2 with w-^2 = kappa + 2k. The ground state is Gaussian with mean K^-1 f (no
    hbar) and covariance hbar/2 K^-1/2, so

        Var(x_1) = hbar/2 [K^-1/2]_11 = hbar/4 (kappa^-1/2 + (kappa + 2k)^-1/2).

    L = <C> = 1/2 (mu_1 - y)^2 + 1/2 Var(x_1): the quantum correction to the loss is
    L(hbar) - L(0) = hbar/8 (kappa^-1/2 + (kappa + 2k)^-1/2), linear in hbar, and to the gradient

        dL/dk_raw (hbar) - dL/dk_raw (0) = 1/2 dVar(x_1)/dk sigmoid(k_raw)
                                         = -hbar/8 (kappa + 2k)^-3/2 sigmoid(k_raw),

    zero for b and W (forces move only the hbar-independent mean). Gap: hbar sqrt(kappa).
    """
    kappa = 0.7
    kwargs = dict(n_inputs=1, output_nodes=[1], anchors=kappa)
    quantum, classical = OscillatorNetwork(2, "chain", hbar=hbar, **kwargs), OscillatorNetwork(2, "chain", hbar=0.0, **kwargs)
    rng = np.random.default_rng(31)
    params, x, y = quantum.init_params(rng), rng.normal(size=1), rng.normal(size=1)
    k_raw = params["k_raw"][0]
    k = np.log1p(np.exp(k_raw))
    predicted = {"k_raw": np.array([-hbar / 8 * (kappa + 2 * k) ** -1.5 * sigmoid(k_raw)]),
                 "b": np.zeros(2), "W": np.zeros((1, 2))}

    reference = {n: quantum.reference_grad(params, x, y)[n] - classical.reference_grad(params, x, y)[n] for n in params}
    for name in params:
        np.testing.assert_allclose(reference[name], predicted[name], rtol=1e-10, atol=1e-14)
    centered = {n: ep_gradient(quantum, params, x, y, 1e-3).grad[n] - ep_gradient(classical, params, x, y, 1e-3).grad[n]
                for n in params}
    np.testing.assert_allclose(centered["k_raw"], predicted["k_raw"], rtol=1e-5)
    for name in ("b", "W"):
        np.testing.assert_allclose(centered[name], 0.0, atol=1e-10)
    loss_shift = quantum.loss(params, x, y) - classical.loss(params, x, y)
    assert abs(loss_shift - hbar / 8 * (kappa**-0.5 + (kappa + 2 * k) ** -0.5)) < 1e-12
    assert abs(quantum.equilibrate(params, x).gap - hbar * np.sqrt(kappa)) < 1e-12


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"masses must all be > 0"):
        OscillatorNetwork(3, masses=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match=r"masses must all be > 0"):
        gaussian_ground_state([1.0, -1.0], np.eye(2), np.zeros(2))
    system = OscillatorNetwork(3, "chain", n_inputs=1)
    params = system.init_params(0)
    for bad in ([1.0, 0.0], [1.0, -0.5]):
        with pytest.raises(ValueError, match=r"springs must be > 0.*remove the edge"):
            system.with_springs(params, bad)
    np.testing.assert_allclose(system.springs(system.with_springs(params, [0.3, 2.0])), [0.3, 2.0], rtol=1e-12)
    floppy = OscillatorNetwork(3, "chain", n_inputs=1, anchors=0.0)
    with pytest.raises(ValueError, match=r"not positive definite.*no ground state"):
        floppy.equilibrate(floppy.init_params(0), [0.5])
    with pytest.raises(ValueError, match=r"nudged phase beta=-50.0.*smaller \|beta\|"):
        system.equilibrate(params, [0.5], nudge=np.array([1.0]), beta=-50.0)
    with pytest.raises(ValueError, match=r"max_cutoff=6 is too small"):
        fock_ground_state([1.0, 1.0], [[1.0, -0.5], [-0.5, 1.0]], [3.0, -2.0], hbar=1.0, quartic=0.5, max_cutoff=6)
    with pytest.raises(ValueError, match=r"stiffness must be symmetric"):
        gaussian_ground_state([1.0, 1.0], [[1.0, 0.2], [0.1, 1.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"hbar must be a finite number >= 0"):
        OscillatorNetwork(3, hbar=-1.0)
    with pytest.raises(ValueError, match=r"use solver='fock'"):
        OscillatorNetwork(3, quartic=0.1, solver="gaussian")
    with pytest.raises(ValueError, match=r"anchors must be > 0.*softplus"):
        OscillatorNetwork(3, anchors=0.0, train_anchors=True)
