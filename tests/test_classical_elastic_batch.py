"""The elastic network's batched equilibrium (one eigendecomposition for a minibatch) against
the per-sample Gaussian solver and an independent linear solve, through qeqprop.ep."""

import numpy as np
import pytest

from classical.elastic import ElasticNetwork, elastic_network
from qeqprop.ep import ep_gradient, reference_gradient, relative_error
from qeqprop.serialization import system_from_spec, system_spec


@pytest.mark.parametrize("options", [{"input_mode": "weights"}, {"input_mode": "clamped", "train_anchors": True},
                                     {"temperature": 0.3}])
def test_batched_equilibria_and_ep_equal_per_sample_ones(options):
    rng = np.random.default_rng(1)
    net = elastic_network(6, "complete", n_inputs=2, output_nodes=[4, 5], anchors=0.5, **options)
    params = net.init_params(rng)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    view = net.batch_view(5)
    states = view.equilibrate(params, X, nudge=Y, beta=0.3)
    for b in range(5):
        stiffness, force = net.potential(params, X[b])
        stiffness[[4, 5], [4, 5]] += 0.3
        force[[4, 5]] += 0.3 * Y[b]
        np.testing.assert_allclose(states.mean[b], np.linalg.solve(stiffness, force), atol=1e-12)
        one = net.equilibrate(params, X[b], nudge=Y[b], beta=0.3)
        np.testing.assert_allclose(states.mean[b], one.mean, atol=1e-12)
        np.testing.assert_allclose(states.covariance, one.covariance, atol=1e-12)
        assert states.energy[b] == pytest.approx(one.energy, abs=1e-10)
        assert states.free_energy[b] == pytest.approx(one.free_energy, abs=1e-10)
    batched = ep_gradient(net, params, X, Y, beta=1e-3)
    for b in range(5):
        single = ep_gradient(net, params, X[b], Y[b], beta=1e-3)
        for k, v in single.grad.items():
            np.testing.assert_allclose(batched.grad[k][b], v, atol=1e-10)
        np.testing.assert_allclose(batched.loss[b], single.loss, atol=1e-12)
    assert relative_error({k: v.mean(0) for k, v in batched.grad.items()},
                          {k: v.mean(0) for k, v in reference_gradient(net, params, X, Y).items()}) < 1e-5


def test_elastic_network_saves_and_refuses_hbar_and_floppy_springs():
    net = elastic_network(4, "chain", n_inputs=1, anchors=0.2)
    rebuilt = system_from_spec(system_spec(net))
    assert isinstance(rebuilt, ElasticNetwork) and rebuilt.hbar == 0.0 and rebuilt.anchors.tolist() == [0.2] * 4
    with pytest.raises(ValueError, match="fixes hbar = 0"):
        ElasticNetwork(3, hbar=1.0)
    floppy = elastic_network(3, "chain", n_inputs=1, anchors=0.0)
    with pytest.raises(ValueError, match="not positive definite"):
        floppy.batch_view(2).equilibrate(floppy.init_params(0), np.ones((2, 1)))
