"""The backprop reference MLP (qeqprop.backprop): forward pass and gradient against numpy and
finite differences, training on iris, sizes of a layered system, and the CLI's bp_test_accuracy."""

import json

import jax
import numpy as np
import pytest

from classical import HopfieldNetwork
from qeqprop.backprop import BackpropMLP, reference_sizes
from qeqprop.cli import main
from qeqprop.datasets import load_dataset


def test_forward_and_gradient_match_numpy_and_finite_differences():
    mlp = BackpropMLP([3, 5, 4, 2], loss="mse")
    params = mlp.init_params(1)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    h = np.clip(X @ params["W0"] + params["b1"], 0, 1)
    h = np.clip(h @ params["W1"] + params["b2"], 0, 1)
    z = h @ params["W2"] + params["b3"]
    expected = 0.5 * np.mean(np.sum((np.clip(z, 0, 1) - T) ** 2, axis=1))
    assert float(mlp._loss(params, X, T)) == pytest.approx(expected, abs=1e-14)
    grad = jax.grad(mlp._loss)(params, X, T)
    step = 1e-6
    for key in ("W0", "b2"):
        index = (0,) * params[key].ndim
        up, down = ({k: v.copy() for k, v in params.items()} for _ in range(2))
        up[key][index] += step
        down[key][index] -= step
        fd = (float(mlp._loss(up, X, T)) - float(mlp._loss(down, X, T))) / (2 * step)
        assert float(grad[key][index]) == pytest.approx(fd, abs=1e-8)


def test_trains_iris_and_sizes_follow_the_layered_system():
    data = load_dataset("iris", seed=0)
    result = BackpropMLP([4, 16, 3]).train(data, epochs=30, batch_size=16, learning_rate=0.02, seed=0)
    assert result.test_accuracy >= 0.9 and len(result.history) == 30
    assert reference_sizes(HopfieldNetwork(4, (7, 5), 3), 4, 3, 3) == [4, 7, 5, 3]
    assert reference_sizes(HopfieldNetwork(4, (7,), 1), 4, 3, 2) == [4, 7, 2]  # one output, two classes
    assert reference_sizes(object(), 4, 6, 3) == [4, 6, 3]
    with pytest.raises(ValueError, match="must start with the 4 features"):
        BackpropMLP([5, 3]).train(data, epochs=1, batch_size=8, learning_rate=0.1)
    with pytest.raises(ValueError, match="activation must be one of"):
        BackpropMLP([4, 3], activation="tanh")


def test_cli_prints_bp_test_accuracy_next_to_test_accuracy(capsys):
    argv = ["train", "--system", "hopfield", "--dataset", "iris", "--option", "layers=[8, 4]", "--epochs", "2", "--lr", "0.02",
            "--beta", "0.2", "--bp-reference", "--bp-lr", "0.05", "--json"]
    assert main(argv) == 0
    final = json.loads(capsys.readouterr().out)
    assert 0.0 <= final["test_accuracy"] <= 1.0 and 0.5 <= final["bp_test_accuracy"] <= 1.0
    assert final["bp_model"].startswith("MLP 4-8-4-3") and final["units"] == 4 + 8 + 4 + 3
