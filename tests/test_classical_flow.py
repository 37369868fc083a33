"""Flow networks (classical.flow): pressures against an independent Laplacian solve (networkx),
batched = per-sample, the exact gradient against finite differences, EP slopes, coupled
learning's direction (Stern et al. 2021), the clamped phase, the allosteric task and (slow) iris."""

import networkx as nx
import numpy as np
import pytest

from classical.flow import FlowNetwork, allosteric_task, random_flow_network
from classical.learning_rules import Coupled, coupled_gradient
from qeqprop.datasets import load_dataset
from qeqprop.ep import ep_gradient, finite_difference_gradient, relative_error
from qeqprop.gradcheck import log_slope
from qeqprop.train import fit

BETAS = (1e-1, 1e-2, 1e-3)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    net = random_flow_network(3, 2, 20, degree=4, seed=0, target_pressure=0.5)
    params = net.init_params(rng)
    params["k_raw"] += rng.normal(size=params["k_raw"].shape)
    x, y = rng.normal(size=3), rng.uniform(-1, 1, 2)
    return net, params, x, y, net.reference_grad(params, x, y)


def test_pressures_solve_kirchhoff_with_networkx_laplacian(case):
    net, params, x, _, _ = case
    graph = nx.Graph()
    graph.add_nodes_from(range(net.n_nodes))
    graph.add_weighted_edges_from((int(a), int(b), k) for (a, b), k in zip(net.edges, net.conductances(params)))
    laplacian = nx.laplacian_matrix(graph, nodelist=range(net.n_nodes)).toarray()
    fixed, free = net.sources, net.free
    expected = np.linalg.solve(laplacian[np.ix_(free, free)], -laplacian[np.ix_(free, fixed)] @ net.source_pressures(x)[0])
    state = net.equilibrate(params, x)
    np.testing.assert_allclose(state.state[free], expected, atol=1e-12)
    assert state.residual < 1e-12


def test_batched_equals_per_sample(case):
    net, params, _, _, _ = case
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 3)), rng.uniform(-1, 1, (6, 2))
    batch = ep_gradient(net, params, X, Y, beta=0.05)
    for b in range(6):
        single = ep_gradient(net, params, X[b], Y[b], beta=0.05)
        np.testing.assert_allclose(batch.free.state[b], single.free.state, atol=1e-10)
        np.testing.assert_allclose(batch.grad["k_raw"][b], single.grad["k_raw"], atol=1e-10)


def test_reference_gradient_equals_finite_differences(case):
    net, params, x, y, reference = case
    assert np.linalg.norm(reference["k_raw"]) > 1e-3
    assert relative_error(reference, finite_difference_gradient(net, params, x, y, step=1e-5)) < 1e-6


@pytest.mark.parametrize(("estimator", "slope"), [("positive", 1.0), ("negative", 1.0), ("centered", 2.0)])
def test_ep_converges_at_expected_rate(case, estimator, slope):
    net, params, x, y, reference = case
    errors = [relative_error(ep_gradient(net, params, x, y, b, estimator).grad, reference) for b in BETAS]
    assert abs(log_slope(BETAS, errors) - slope) < 0.15, errors
    assert errors[-1] < (1e-5 if estimator == "centered" else 1e-2)


def test_coupled_learning_follows_the_gradient_for_one_output():
    """As eta -> 0 coupled learning tends to the gradient times a positive factor (one output:
    classical.learning_rules); at eta = 1e-4 the directions agree to 1e-6."""
    rng = np.random.default_rng(2)
    net = random_flow_network(2, 1, 15, seed=2)
    params, x, y = net.init_params(rng), rng.normal(size=2), np.array([0.7])
    reference = net.reference_grad(params, x, y)["k_raw"]
    coupled = coupled_gradient(net, params, x, y, eta=1e-4)["k_raw"]
    assert coupled @ reference / np.linalg.norm(coupled) / np.linalg.norm(reference) > 1 - 1e-6


def test_clamped_phase_holds_the_outputs(case):
    net, params, x, _, _ = case
    clamped = net.clamp(params, x, np.array([0.4, -0.2]))
    np.testing.assert_allclose(net.predict(clamped), [0.4, -0.2], atol=1e-15)
    assert clamped.residual < 1e-12


def test_allosteric_task_reaches_the_target_pressures():
    net, X, Y = allosteric_task(hidden=40, n_targets=3, seed=0)
    before = net.predict(net.equilibrate(net.init_params(0), X[0]))
    result = fit(net, (X, Y), task="regression", gradient=Coupled(0.1), batch_size=1, epochs=300,
                 learning_rate=0.05, progress=False, seed=0)
    after = net.predict(net.equilibrate(result.params, X[0]))
    assert np.max(np.abs(before - Y[0])) > 0.1
    assert np.max(np.abs(after - Y[0])) < 1e-5


def test_bad_networks_are_rejected():
    with pytest.raises(ValueError, match="self-loops or repeated pairs"):
        FlowNetwork(3, [[0, 1], [1, 0]], [0], [1], signed_inputs=False)
    with pytest.raises(ValueError, match=r"free node\(s\) \[2\] are not connected to any source node"):
        FlowNetwork(4, [[0, 1], [1, 3]], [0], [1], [3], [0.0], signed_inputs=False)
    with pytest.raises(ValueError, match="even number of input_nodes"):
        FlowNetwork(4, [[0, 1], [1, 2], [2, 3]], [0], [2])
    with pytest.raises(ValueError, match="fixed_nodes must name distinct nodes"):
        FlowNetwork(4, [[0, 1], [1, 2], [2, 3]], [0], [0], signed_inputs=False)


@pytest.mark.slow
def test_iris_by_coupled_learning():
    """A linear network: the least-squares linear classifier on this split scores 0.80."""
    data = load_dataset("iris", seed=0)
    net = random_flow_network(4, 3, 30, seed=0, target_pressure=0.3)
    result = fit(net, data, epochs=30, learning_rate=0.03, gradient=Coupled(0.5), seed=0, progress=False)
    assert result.final["test_accuracy"] >= 0.8
