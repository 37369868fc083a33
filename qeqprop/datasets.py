"""Small datasets with no download: synthetic XOR and parity, scikit-learn's bundled iris
and digits (classification) and diabetes (regression). Features (and regression targets)
are standardized with training-set statistics; classification splits are stratified; all
splits are seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("xor", "parity", "iris", "digits", "diabetes")


@dataclass
class Dataset:
    """Train/test split. ``y_*`` are integer class labels (``n_classes`` classes), or
    standardized real targets for regression (``n_classes == 0``)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _xor(rng: np.random.Generator, n_samples: int = 200, noise: float = 0.15):
    corners = rng.integers(0, 2, size=(n_samples, 2))
    labels = corners[:, 0] ^ corners[:, 1]
    return 2.0 * corners - 1.0 + noise * rng.standard_normal((n_samples, 2)), labels


def _parity(rng: np.random.Generator, n_bits: int = 3, repeats: int = 24, noise: float = 0.1):
    patterns = (np.arange(1 << n_bits)[:, None] >> np.arange(n_bits)[None, ::-1]) & 1
    bits = np.repeat(patterns, repeats, axis=0)
    return 2.0 * bits - 1.0 + noise * rng.standard_normal(bits.shape), bits.sum(axis=1) % 2


def load_dataset(
    name: str,
    test_size: float = 0.3,
    seed: int = 0,
    n_features: int | None = None,
    n_bits: int = 3,
) -> Dataset:
    """Load ``name`` (one of DATASETS), split ``test_size`` off (stratified) and standardize.

        x -> (x - mean_train) / std_train                       (per feature, training statistics)
        x -> (V_k^T x) / sqrt(lambda_k)                         (``n_features``: whitened PCA scores)
        y -> (y - mean_train) / std_train                       (regression targets, diabetes)

    with V_k, lambda_k the leading principal axes and variances of the standardized training
    split. ``n_features`` reduces the features by PCA (digits: 64). ``n_bits`` sets the parity width.

    Returns:
        Dataset with x_train, y_train, x_test, y_test (labels for classification, standardized
        targets for regression) and n_classes (0 for regression).

    Example:
        >>> from qeqprop import load_dataset
        >>> data = load_dataset("iris", seed=0)
        >>> data.n_features, data.n_classes, len(data.x_train) + len(data.x_test)
        (4, 3, 150)
    """
    from sklearn.datasets import load_diabetes, load_digits, load_iris
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    if name == "xor":
        x, y = _xor(rng)
    elif name == "parity":
        x, y = _parity(rng, n_bits)
    elif name == "iris":
        x, y = load_iris(return_X_y=True)
    elif name == "digits":
        x, y = load_digits(return_X_y=True)
    else:
        x, y = load_diabetes(return_X_y=True)
    regression = name == "diabetes"
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=None if regression else y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if n_features is not None:
        if not 0 < n_features <= x_train.shape[1]:
            raise ValueError(f"n_features must be in 1..{x_train.shape[1]} for {name}, got {n_features}")
        pca = PCA(n_components=n_features, random_state=seed).fit(x_train)
        scale = np.sqrt(pca.explained_variance_)
        x_train, x_test = pca.transform(x_train) / scale, pca.transform(x_test) / scale
    if regression:
        mean, std = y_train.mean(), y_train.std()
        return Dataset(name, x_train, (y_train - mean) / std, x_test, (y_test - mean) / std, 0)
    return Dataset(name, x_train, y_train.astype(int), x_test, y_test.astype(int), int(y.max()) + 1)


def encode_targets(labels: np.ndarray, n_outputs: int, n_classes: int, cost_name: str) -> np.ndarray:
    """Per-output targets for class labels.

    One output and two classes: y = +1 / -1 (class 1 / class 0). Otherwise one output per
    class: one-hot for cross-entropy, +1 on the class output and -1 elsewhere for squared
    errors on <Z> in [-1, 1].
    """
    labels = np.asarray(labels, dtype=int)
    if n_outputs == 1 and n_classes == 2:
        return (2.0 * labels - 1.0)[:, None]
    if n_outputs != n_classes:
        raise ValueError(f"n_outputs must equal n_classes ({n_classes}) or be 1 for two classes, got {n_outputs}")
    onehot = np.eye(n_classes)[labels]
    return onehot if cost_name == "cross_entropy" else 2.0 * onehot - 1.0


def decode_outputs(outputs: np.ndarray) -> np.ndarray:
    """Class predictions from output expectations: sign for one output, argmax otherwise."""
    outputs = np.atleast_2d(outputs)
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0).astype(int)
    return np.argmax(outputs, axis=1)
