"""Quantum data measured fairly: how many copies of a chain's ground state does a learner need?

Task (comparison.chains): the phase of the ANNNI chain or of the XXZ chain in a field at a point
x of its parameter window, from ``n_samples`` points sampled once with ``data_seed`` (a 70/30
train/test split). Three access models, each held to the same number M of copies of every
test state by a CopyLedger (comparison.snapshots):

    sensor      the chain's ground state coupled to trained sensor qubits (``chain_sensor``: one
                per class, couplings K Z_s Z_i + L X_s X_i, fields h Z_s + G X_s), trained by
                centered EP on exact expectations (cross-entropy on the outputs; the epoch kept is
                the one with the best accuracy on a validation split of the training states); at test time the sensors are read out in the X
                basis with M shots (one copy of the chain state per shot) and the class is the
                argmax of the estimated <X_s>.
    snapshots   M copies measured as bitstrings (ceil(M/2) in Z, floor(M/2) in X), reduced to the
                2L estimated magnetisations and translation-averaged correlators; a classifier
                on them. Two training regimes: ``snapshots`` (training states also give M copies
                each) and ``snapshots_exact_train`` (training features exact, M -> infinity, the
                regime the sensor is trained in).
    parameters  the same classifier on the Hamiltonian parameters x (today's access; no copies).

Classifier for the two classical access models: scikit-learn's MLPClassifier (one hidden layer
of ``HIDDEN`` tanh units, L-BFGS, standardised inputs, seeded). It is a fast, well-tested learner
of curved boundaries; the copies curve is meant to measure the information an access model gives,
not a training rule (EP vs backprop is the comparison harness's subject), so the classical side
uses a strong conventional learner.

Per retraining seed (initialisation, shot noise, MLP init) and per M, test accuracy; the
curve reports mean and 95% t-interval over seeds (comparison.stats), and per access model
the smallest M of the grid whose mean (and whose interval's lower end) reaches ``TARGET``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from ..datasets import Dataset, decode_outputs
from ..readout.sampling import basis_outcomes
from ..systems.spin import SpinSystem
from .chains import ChainModel, get_model
from .sensor import N_CHAIN, SENSOR_COST, chain_sensor
from .snapshots import (
    CopyLedger,
    exact_features,
    ground_states,
    snapshot_features,
    spins,
)
from .stats import CONFIDENCE, t_interval

TARGET = 0.9
COPIES = (10, 30, 100, 300, 1000)
ACCESS = ("sensor", "snapshots", "snapshots_exact_train", "parameters")
HIDDEN = 32
CONSTANT_FEATURE = 1e-10
N_SAMPLES = 300


def load_chain_task(name: str, n_samples: int = N_SAMPLES, test_size: float = 0.3, seed: int = 0) -> Dataset:
    """Dataset of task ``name`` ("annni" or "xxz_field"): rows x = the Hamiltonian parameters
    (features of the parameter access model and the sensor's coefficients), published phase
    labels; ``n_samples`` points from the model's seeded window sampling, the first
    round(test_size n_samples) the test split."""
    model = get_model(name)
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 10:
        raise ValueError(f"n_samples must be an integer >= 10, got {n_samples!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    x = model.sample(int(n_samples), seed)
    y = model.labels(x)
    n_test = round(test_size * len(x))
    return Dataset(name, x[n_test:], y[n_test:], x[:n_test], y[:n_test], len(model.classes))


def sensor_readout(system: SpinSystem, params: dict, x: np.ndarray, copies: int, rng: np.random.Generator,
                   ledger: CopyLedger | None = None) -> np.ndarray:
    """Estimated outputs <X_s> (B, n_sensors) from ``copies`` X-basis shots of the sensors in each
    joint ground state (one chain copy per shot; ``ledger`` records them)."""
    n_chain = system.n_qubits - system.n_outputs
    if ledger is not None:
        ledger.take(copies)
    basis = "Z" * n_chain + "X" * system.n_outputs
    estimates = []
    for row in np.atleast_2d(x):
        vector = system.equilibrate(params, row).vector
        outcomes = basis_outcomes(vector[None], basis, int(copies), rng)
        estimates.append(spins(outcomes[0], system.n_qubits)[:, n_chain:].mean(axis=0))
    return np.array(estimates)


def classifier(seed: int):
    """The classical access models' learner (module docstring): drop features that are constant
    over the training set (variance < CONSTANT_FEATURE; e.g. the exact m_Z of a Z2-symmetric ANNNI
    ground state, zero up to rounding, which standardising would blow up into noise), standardise,
    then an MLP."""
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(VarianceThreshold(CONSTANT_FEATURE), StandardScaler(),
                         MLPClassifier((HIDDEN,), activation="tanh", solver="lbfgs", max_iter=3000, random_state=seed))


def train_sensor(model: ChainModel, data: Dataset, seed: int, *, n_chain: int, epochs: int, learning_rate: float,
                 beta: float, batch_size: int = 16, solver: str = "jax", cost: str = SENSOR_COST):
    """(system, params, history) of the sensor trained by centered EP with ground states from
    ``solver`` (the batched JAX Lanczos by default; "dense" for tiny chains) and ``cost`` on its
    outputs, on the training split less a stratified validation fraction (tasks.validation_split,
    seeded with ``seed``); the params kept are those of the epoch with the best validation accuracy
    (the first such epoch; the test split is never looked at). ``history`` also records
    "kept_epoch"."""
    from ..train import fit
    from .tasks import validation_split

    system = chain_sensor(model, n_chain, len(model.classes), solver=solver, cost=cost)
    (x_fit, y_fit), validation = validation_split(data, seed=seed)
    best = {"val_accuracy": -1.0}

    def keep(epoch: int, record: dict, params: dict) -> None:
        if record["val_accuracy"] > best["val_accuracy"]:
            best.update(val_accuracy=record["val_accuracy"], epoch=epoch, params={k: np.array(v) for k, v in params.items()})

    result = fit(system, (x_fit, y_fit), system.init_params(np.random.default_rng(seed)), validation=validation, epochs=epochs,
                 batch_size=batch_size, learning_rate=learning_rate, beta=beta, estimator="centered", seed=seed,
                 progress=False, callback=keep)
    return system, best["params"], [{**record, "kept_epoch": best["epoch"]} for record in result.history]


def copies_needed(copies: Sequence[int], rows: list[dict], key: str = "accuracy") -> int | None:
    """The smallest M of the grid whose ``key`` ("accuracy": the mean, "low": the interval's lower
    end) reaches TARGET; None if none does."""
    for m, row in zip(copies, rows):
        if row[key] is not None and row[key] >= TARGET:
            return int(m)
    return None


def copies_curve(task: str = "annni", copies: Sequence[int] = COPIES, seeds: int | Sequence[int] = 5, *,
                 n_chain: int = N_CHAIN, n_samples: int = N_SAMPLES, data_seed: int = 0, epochs: int = 15,
                 learning_rate: float = 0.05, beta: float = 0.01, access: Sequence[str] = ACCESS,
                 grid: int = 21, solver: str = "jax", cost: str = SENSOR_COST) -> dict:
    """Test accuracy of every access model in ``access`` at every copy budget in ``copies`` for
    each seed (module docstring). Returns a JSON-able dict: settings, per access model the curve
    [{copies, accuracy, low, high, values}], ``copies_for_target`` {model: {"mean": M, "ci_low": M}},
    the sensor's exact-readout accuracy, the majority-class baseline, the phase-diagram grid
    predictions (``grid`` x ``grid``, M -> infinity) and wall seconds per part. ``solver``: the
    sensor's ground-state solver, ``cost`` its training cost (train_sensor)."""
    model = get_model(task)
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    copies = [int(m) for m in copies]
    if not seeds or not copies or min(copies) < 2:
        raise ValueError(f"need at least one seed and copy budgets >= 2; got seeds={seeds!r}, copies={copies!r}")
    unknown = sorted(set(access) - set(ACCESS))
    if unknown:
        raise ValueError(f"access: unknown model(s) {unknown}; choose from {ACCESS}")
    start = time.perf_counter()
    data = load_chain_task(task, n_samples, seed=data_seed)
    train_states = ground_states(model, data.x_train, n_chain)
    test_states = ground_states(model, data.x_test, n_chain)
    (k0, k1), (g0, g1) = model.window
    mesh = np.stack(np.meshgrid(np.linspace(k0, k1, grid), np.linspace(g0, g1, grid)), axis=-1).reshape(-1, 2)
    grid_states = ground_states(model, mesh, n_chain)
    seconds = {"ground_states": time.perf_counter() - start}
    values = {name: np.full((len(copies), len(seeds)), np.nan) for name in access}
    exact, grids, histories = {name: [] for name in access}, {}, []
    for j, seed in enumerate(seeds):
        rng = np.random.default_rng([seed, 1])
        if "sensor" in access:
            tick = time.perf_counter()
            system, params, history = train_sensor(model, data, seed, n_chain=n_chain, epochs=epochs,
                                                   learning_rate=learning_rate, beta=beta, solver=solver, cost=cost)
            histories.append(history)
            seconds["sensor_training"] = seconds.get("sensor_training", 0.0) + time.perf_counter() - tick
            from ..inference import predict

            exact["sensor"].append(float(np.mean(decode_outputs(predict(system, params, data.x_test)) == data.y_test)))
            for i, m in enumerate(copies):
                ledger = CopyLedger(len(data.x_test), m)
                outputs = sensor_readout(system, params, data.x_test, m, rng, ledger)
                assert ledger.spent_exactly()
                values["sensor"][i, j] = np.mean(decode_outputs(outputs) == data.y_test)
            if j == 0:
                grids["sensor"] = decode_outputs(predict(system, params, mesh)).tolist()
        for name in ("snapshots", "snapshots_exact_train"):
            if name not in access:
                continue
            if name == "snapshots_exact_train":
                learner = classifier(seed).fit(exact_features(train_states), data.y_train)
                exact[name].append(float(learner.score(exact_features(test_states), data.y_test)))
                if j == 0:
                    grids[name] = learner.predict(exact_features(grid_states)).tolist()
            for i, m in enumerate(copies):
                ledger = CopyLedger(len(data.x_test), m)
                test = snapshot_features(test_states, m, rng, ledger)
                assert ledger.spent_exactly()
                if name == "snapshots":
                    learner = classifier(seed).fit(snapshot_features(train_states, m, rng, CopyLedger(len(data.x_train), m)),
                                                   data.y_train)
                values[name][i, j] = learner.score(test, data.y_test)
        if "parameters" in access:
            learner = classifier(seed).fit(data.x_train, data.y_train)
            values["parameters"][:, j] = learner.score(data.x_test, data.y_test)
            exact["parameters"].append(float(values["parameters"][0, j]))
            if j == 0:
                grids["parameters"] = learner.predict(mesh).tolist()
    curves, needed = {}, {}
    for name in access:
        rows = []
        for m, row in zip(copies, values[name]):
            ci = t_interval(row, CONFIDENCE)
            rows.append({"copies": m, "accuracy": ci.mean, "low": ci.low, "high": ci.high, "values": row.tolist()})
        curves[name] = rows
        needed[name] = {"mean": copies_needed(copies, rows), "ci_low": copies_needed(copies, rows, "low")}
    counts = np.bincount(data.y_test, minlength=len(model.classes))
    return {
        "task": task, "model": {"inputs": list(model.inputs), "classes": list(model.classes), "window": model.window},
        "settings": {"copies": copies, "seeds": seeds, "n_chain": n_chain, "n_samples": n_samples, "data_seed": data_seed,
                     "n_train": len(data.x_train), "n_test": len(data.x_test), "epochs": epochs, "learning_rate": learning_rate,
                     "beta": beta, "estimator": "centered", "solver": solver, "sensor_cost": cost, "classifier": f"MLPClassifier(({HIDDEN},), tanh, lbfgs), standardised",
                     "target": TARGET, "confidence": CONFIDENCE},
        "curves": curves, "copies_for_target": needed,
        "exact_accuracy": {name: t_interval(v).to_dict() for name, v in exact.items() if v},
        "majority_baseline": float(counts.max() / counts.sum()),
        "sensor_history": histories,
        "grid": {"points": mesh.tolist(), "true": model.labels(mesh).tolist(), "predicted": grids},
        "seconds": {**seconds, "total": time.perf_counter() - start}, "load": list(os.getloadavg()),
    }
