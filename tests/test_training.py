"""Training: iris accuracy, exact resume from checkpoints, datasets and the CLI."""

import json
import os
import time

import numpy as np
import optax
import pytest

from qeqprop import TFIMNetwork, fit, load_dataset
from qeqprop.checkpoint import CheckpointMismatchError, load_checkpoint
from qeqprop.cli import main
from qeqprop.datasets import DATASETS, decode_outputs, encode_targets
from qeqprop.solvers.batched_lanczos import STEP_QUANTUM


def iris_learner(hidden=3):
    return TFIMNetwork(hidden + 3, "complete", n_inputs=4, output_qubits=[hidden, hidden + 1, hidden + 2])


@pytest.mark.slow
def test_iris_centered_ep_reaches_93_percent():
    data = load_dataset("iris", seed=0)
    assert len(data.x_test) == 45  # 30% held out
    start = time.perf_counter()
    result = fit(iris_learner(), data, epochs=20, learning_rate=0.03, beta=1e-2, estimator="centered", seed=0, progress=False)
    seconds = time.perf_counter() - start
    final = result.final
    print(f"iris: test accuracy {final['test_accuracy']:.3f} in {seconds:.1f} s")
    assert final["test_accuracy"] >= 0.93
    assert final["train_loss"] < result.history[0]["train_loss"] / 3
    assert final["train_min_gap"] > 0.05
    assert set(final) >= {"train_loss", "test_loss", "train_accuracy", "test_accuracy", "grad_norm", "train_min_gap"}


def test_resume_from_checkpoint_is_exact(tmp_path):
    data = load_dataset("xor", seed=1)
    system = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
    options = {"epochs": 4, "batch_size": 32, "learning_rate": 0.05, "seed": 3, "progress": False}
    straight = fit(system, data, **options)
    path = tmp_path / "run" / "checkpoint.pkl"
    fit(system, data, checkpoint=path, **{**options, "epochs": 2})
    assert load_checkpoint(path)["epoch"] == 2
    resumed = fit(system, data, checkpoint=path, resume=True, **options)
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])
    assert [h["test_loss"] for h in resumed.history] == [h["test_loss"] for h in straight.history]
    assert not [f for f in os.listdir(path.parent) if f.endswith(".tmp")]
    with pytest.raises(CheckpointMismatchError, match="learning_rate: saved 0.05, now 0.1"):
        fit(system, data, checkpoint=path, resume=True, **{**options, "learning_rate": 0.1})


def test_batched_training_keeps_and_checkpoints_its_block_lengths(tmp_path):
    """fit trains a kept copy of a batched (solver "jax") spin system: the block lengths learned on one
    minibatch serve the next, the user's system keeps none, the checkpoint holds them, and the run
    resumed from it is bitwise the straight one."""
    data = load_dataset("xor", seed=1)
    system = TFIMNetwork(6, "complete", n_inputs=2, output_qubits=[5], solver="jax")
    options = {"epochs": 2, "batch_size": 40, "learning_rate": 0.05, "seed": 3, "progress": False, "beta": 0.05}
    straight = fit(system, data, **options)
    assert system.block_lengths() == {}
    path = tmp_path / "checkpoint.npz"
    fit(system, data, checkpoint=path, **{**options, "epochs": 1})
    schedule = load_checkpoint(path)["solver_schedule"]
    assert {key.split("@")[0] for key in schedule} == {"free", "gap", "nudged"}
    assert all(steps % STEP_QUANTUM == 0 for steps in schedule.values())
    resumed = fit(system, data, checkpoint=path, resume=True, **options)
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])
    assert [h["test_loss"] for h in resumed.history] == [h["test_loss"] for h in straight.history]


def test_cosine_schedule_decays_the_steps_and_resumes_exactly(tmp_path):
    """lr_schedule="cosine": the last epoch's parameter change is a few percent of the constant rate's
    (Adam's step scales with the rate: (1 + cos(pi k / K)) / 2 averages 0.04 over the last quarter);
    an interrupted run resumes bit-equal, and a resume with another length (another schedule) is refused."""
    data = load_dataset("xor", seed=1)
    system = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
    options = {"epochs": 4, "batch_size": 32, "learning_rate": 0.05, "seed": 3, "progress": False}
    moves = {}
    for schedule in ("constant", "cosine"):
        params = []
        fit(system, data, lr_schedule=schedule, callback=lambda epoch, record, p, kept=params: kept.append(p), **options)
        moves[schedule] = sum(np.linalg.norm(params[-1][k] - params[-2][k]) for k in params[-1])
    assert moves["cosine"] < 0.15 * moves["constant"], moves
    options["lr_schedule"] = "cosine"
    straight = fit(system, data, **options)
    path = tmp_path / "run" / "checkpoint.npz"

    def interrupt(epoch, record, params):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(system, data, checkpoint=path, callback=interrupt, **options)
    assert load_checkpoint(path)["epoch"] == 2
    resumed = fit(system, data, checkpoint=path, resume=True, **options)
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])
    with pytest.raises(CheckpointMismatchError, match="lr_schedule"):
        fit(system, data, checkpoint=path, resume=True, **{**options, "epochs": 5})
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        fit(system, data, **{**options, "lr_schedule": "linear"})
    with pytest.raises(ValueError, match="optimizer given by name"):
        fit(system, data, optimizer=optax.sgd(0.1), **options)


def test_reference_gradient_training_baseline():
    data = load_dataset("xor", seed=0)
    system = TFIMNetwork(4, "complete", n_inputs=2, output_qubits=[3])
    ep = fit(system, data, epochs=3, learning_rate=0.05, seed=0, progress=False)
    ref = fit(system, data, epochs=3, learning_rate=0.05, seed=0, progress=False, gradient="reference")
    for key in ep.params:  # centered EP at beta=1e-2 follows the exact gradient closely
        np.testing.assert_allclose(ep.params[key], ref.params[key], atol=1e-3)


@pytest.mark.parametrize("name", [d for d in DATASETS if d not in ("diabetes", "mnist")])  # mnist: pixels in [0, 1] (test_datasets)
def test_datasets_standardized_and_stratified(name):
    data = load_dataset(name, seed=0)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-10)
    assert set(np.unique(data.y_test)) == set(range(data.n_classes))
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    assert np.abs(train_share - test_share).max() < 0.1


def test_regression_dataset_targets_standardized():
    data = load_dataset("diabetes", seed=0)
    assert data.n_classes == 0 and data.n_features == 10
    assert abs(data.y_train.mean()) < 1e-12 and abs(data.y_train.std() - 1.0) < 1e-12
    assert len(data.y_test) == round(0.3 * 442)


def test_cli_trains_oscillator_network_on_regression(capsys):
    assert main(["train", "--system", "qho", "--dataset", "diabetes", "--hidden", "3", "--epochs", "4", "--lr", "0.05", "--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["system"] == "qho" and "test_accuracy" not in final
    assert final["test_loss"] < 0.45  # <C> = 1/2 MSE + 1/2 Var(x_o); the untrained net (seed 0) has 0.60


def test_digits_pca_features():
    data = load_dataset("digits", n_features=8)
    assert data.n_features == 8 and data.n_classes == 10
    np.testing.assert_allclose(data.x_train.std(axis=0, ddof=1), 1.0, rtol=1e-6)


def test_target_encoding_round_trip():
    labels = np.array([0, 2, 1])
    assert (decode_outputs(encode_targets(labels, 3, 3, "mse")) == labels).all()
    assert (encode_targets(labels, 3, 3, "cross_entropy").sum(axis=1) == 1).all()
    assert (decode_outputs(encode_targets(np.array([1, 0]), 1, 2, "mse")) == [1, 0]).all()


def test_cli_gradcheck_json(capsys):
    assert main(["gradcheck", "--qubits", "5", "--seed", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert abs(report["slopes"]["centered"] - 2.0) < 0.15
    assert abs(report["slopes"]["positive"] - 1.0) < 0.15
    assert report["reference_vs_finite_difference"] < 1e-6


def test_cli_train_writes_outputs(tmp_path, capsys):
    out = tmp_path / "xor"
    assert main(["train", "--dataset", "xor", "--hidden", "2", "--epochs", "3", "--shots", "200", "--beta", "0.2", "--out", str(out), "--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["n_qubits"] == 3 and final["shots"] == 200 and 0.0 <= final["test_accuracy"] <= 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 3
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert (out / "checkpoint.npz").exists()


def test_cli_reports_bad_input(capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, naming the flag
        main(["train", "--beta", "0", "--epochs", "1", "--json"])
    assert exit_info.value.code == 2 and "argument --beta: must be a finite number > 0" in capsys.readouterr().err


def test_cli_trains_with_variational_ground_states(capsys):
    args = ["train", "--dataset", "xor", "--hidden", "1", "--solver", "vqe", "--per-term", "--depth", "2", "--epochs", "2", "--json"]
    assert main(args) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["n_qubits"] == 2 and final["test_accuracy"] > 0.5


def test_fit_accepts_a_learning_rule_callable():
    """A callable gradient plugs in any rule; here the exact gradient, which must reproduce
    gradient='reference' step for step."""
    data = load_dataset("xor", seed=0)
    system = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])

    def exact(system, params, x, y):
        return system.reference_grad(params, x, y)

    by_name = fit(system, data, epochs=2, learning_rate=0.05, seed=0, progress=False, gradient="reference")
    by_callable = fit(system, data, epochs=2, learning_rate=0.05, seed=0, progress=False, gradient=exact)
    for key in by_name.params:
        np.testing.assert_allclose(by_callable.params[key], by_name.params[key], rtol=1e-12, atol=1e-14)
