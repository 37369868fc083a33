"""The elastic spring network re-export: hbar = 0 oscillator network, minimum of
1/2 u^T K u - f^T u (K u = f), zero fluctuations, EP converging to the reference gradient."""

import numpy as np
import pytest

from classical.elastic import elastic_network
from qeqprop.ep import ep_gradient, relative_error


def test_elastic_network_is_the_classical_spring_minimum():
    rng = np.random.default_rng(0)
    net = elastic_network(5, "chain", n_inputs=2, output_nodes=[3, 4], anchors=0.5)
    params, x, y = net.init_params(rng), rng.normal(size=2), rng.normal(size=2)
    stiffness, force = net.potential(params, x)
    state = net.equilibrate(params, x)
    np.testing.assert_allclose(state.mean, np.linalg.solve(stiffness, force), atol=1e-12)
    assert np.all(state.covariance == 0)
    reference = net.reference_grad(params, x, y)
    assert relative_error(ep_gradient(net, params, x, y, 1e-3, "centered").grad, reference) < 1e-5


def test_elastic_network_fixes_hbar():
    with pytest.raises(ValueError, match="fixes hbar = 0"):
        elastic_network(3, hbar=1.0)
