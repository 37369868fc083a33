"""The long-chain learner (qeqprop.systems.long_chain, registry "tfim_chain"), its chain-sign data
set (qeqprop.datasets.chain_sign_data) and its preset chain48-mps: data, builder, MPS against exact
states on the same chain, and the command line with --solver mps and --solver dense."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qeqprop as qp
from qeqprop import cli
from qeqprop.cli import main
from qeqprop.cli_config import read_preset, settings_for
from qeqprop.datasets import Dataset, chain_sign_data, load_dataset
from qeqprop.solvers import MPS
from qeqprop.systems.long_chain import CHI_MAX, EXACT_MAX_QUBITS, J_INIT, TFIMChain
from qeqprop.systems.registry import build

# MPS (DMRG) against dense eigh on one 8-qubit chain: the MPS is exact there (bond dimension
# 2^4 = 16 = chi_max; the discarded weight is ~1e-21), so the two differ only by the DMRG
# convergence stop (energy change < 1e-12 relative per sweep, entropies < 1e-7). Measured: energies
# 7e-15 apart, EP gradients (beta = 1e-2) 2.5e-13 / 4.4e-13 relative apart at two samples. The
# tolerance 1e-9 sits well above that and far below the O(beta^2) ~ 1e-4 EP bias the solvers share.
SAME_PHYSICS = 1e-9


# -- the chain-sign data set --------------------------------------------------------------------

def test_chain_sign_is_balanced_stratified_signed_and_seeded():
    data = load_dataset("chain-sign", seed=0)
    assert data.x_train.shape == (32, 1) and data.x_test.shape == (32, 1) and data.n_classes == 2
    assert np.bincount(data.y_train).tolist() == [16, 16] and np.bincount(data.y_test).tolist() == [16, 16]
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):  # standardized, the sign is the class
        assert np.array_equal(x[:, 0] > 0, y == 1)
    assert abs(data.x_train.mean()) < 1e-12 and abs(data.x_train.std() - 1.0) < 1e-12
    again, other = load_dataset("chain-sign", seed=0), load_dataset("chain-sign", seed=1)
    assert np.array_equal(again.x_train, data.x_train) and np.array_equal(again.y_test, data.y_test)
    assert not np.array_equal(other.x_train, data.x_train)


def test_chain_sign_data_draws_and_errors():
    x, labels = chain_sign_data(1000, np.random.default_rng(3))
    signs = np.where(labels == 1, 1.0, -1.0)
    u = x[:, 0] * signs
    assert labels.sum() == 500 and u.min() >= 0.5 and u.max() <= 1.5
    assert abs(u.mean() - 1.0) < 0.03  # U(0.5, 1.5): mean 1, standard error 0.29 / sqrt(1000) = 0.009
    for bad in (3, 0, 2.0, True):
        with pytest.raises(ValueError, match="n_samples must be an even integer"):
            chain_sign_data(bad, np.random.default_rng(0))


# -- the system and its registry builder ---------------------------------------------------------

def test_registry_builds_a_48_qubit_mps_chain():
    net = build("tfim_chain", 1, 1, 46)
    assert net.n_qubits == 48 and net.edges == [(i, i + 1) for i in range(47)]
    assert net.input_qubits == [0] and net.output_qubits == [47] and net.input_mode == "fields"
    assert isinstance(net.solver, MPS) and net.solver.chi_max == CHI_MAX and not net.solver.gap
    params = net.init_params(np.random.default_rng(0))
    J = params["J"]
    assert J.shape == (47,) and 0.02 < params["b"].std() < 0.08  # fields 0.05 N(0, 1) (long_chain docstring)
    assert abs(J.mean() - J_INIT) < 3 * 0.05 / np.sqrt(47) and 0.03 < J.std() < 0.07  # 0.9 + 0.05 N(0, 1)
    assert build("tfim_chain", 1, 1, 46, chi_max=8, j_init=0.7).solver.chi_max == 8


def test_inputs_at_one_end_outputs_at_the_other_exact_below_17_qubits():
    net = build("tfim_chain", 2, 2, 3, solver="dense")
    assert (net.n_qubits, net.input_qubits, net.output_qubits) == (7, [0, 1], [5, 6])
    text = str(net.hamiltonian)
    assert "-1.0 * x[0] * (Z0)" in text and "-1.0 * x[1] * (Z1)" in text and "Z2 Z3" in text and "Z0 Z2" not in text
    assert TFIMChain(EXACT_MAX_QUBITS).solver == "auto" and isinstance(TFIMChain(EXACT_MAX_QUBITS + 1).solver, MPS)
    J = TFIMChain(6, j_init=0.5, j_std=0.0).init_params(0)["J"]
    assert np.array_equal(J, np.full(5, 0.5))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_qubits": 2, "n_inputs": 2}, "n_qubits must be an integer >= n_inputs \\+ n_outputs = 3"),
    ({"n_qubits": 6, "n_outputs": 0}, "n_outputs must be an integer >= 1"),
    ({"n_qubits": 6, "chi_max": 8, "solver": "dense"}, "chi_max sets the MPS bond dimension: add solver='mps'"),
    ({"n_qubits": 6, "j_init": float("nan")}, "j_init must be a finite number"),
    ({"n_qubits": 6, "j_std": -0.1}, "j_std must be a finite number >= 0"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TFIMChain(**kwargs)


def test_mps_and_dense_states_give_the_same_ep_gradient():
    """Same chain, same parameters: MPS (DMRG) and dense eigh agree to SAME_PHYSICS (module top)."""
    mps, dense = TFIMChain(8, solver="mps"), TFIMChain(8, solver="dense")
    params = mps.init_params(np.random.default_rng(0))
    x, y = np.array([1.2]), np.array([1.0])
    by_mps, by_dense = qp.ep_gradient(mps, params, x, y, 1e-2), qp.ep_gradient(dense, params, x, y, 1e-2)
    assert abs(by_mps.free.energy - by_dense.free.energy) < SAME_PHYSICS
    assert qp.relative_error(by_mps.grad, by_dense.grad) < SAME_PHYSICS
    # and the EP estimate is the gradient: against the exact linear-response gradient, to its O(beta^2) bias
    assert qp.relative_error(by_dense.grad, dense.reference_grad(params, x, y)) < 1e-3


# -- the preset and the command line ----------------------------------------------------------

def test_preset_is_a_48_qubit_mps_run_with_a_meaningful_test_set():
    settings = settings_for(cli.parser().subcommands["train"], read_preset("chain48-mps"), "preset")
    assert settings["system"] == "tfim_chain" and settings["dataset"] == "chain-sign" and settings["solver"] == "mps"
    assert 1 + settings["hidden"] + 1 >= 48 and settings["estimator"] == "centered"
    assert len(load_dataset(settings["dataset"]).x_test) >= 16


def few_samples(monkeypatch, n: int) -> None:
    """The CLI's data cut to n training and n test samples of each sign's first n / 2 (an MPS epoch on
    the full 64 samples takes ~60 s even at 8 qubits: TeNPy spends ~0.3 s per ground state)."""
    load = cli.load_training_data

    def cut(args):
        data = load(args)
        keep = [np.concatenate([np.flatnonzero(y == 0)[: n // 2], np.flatnonzero(y == 1)[: n // 2]]) for y in (data.y_train, data.y_test)]
        return Dataset(data.name, data.x_train[keep[0]], data.y_train[keep[0]], data.x_test[keep[1]], data.y_test[keep[1]], 2)

    monkeypatch.setattr(cli, "load_training_data", cut)


def test_cli_preset_trains_with_mps_and_dense_alike(monkeypatch, capsys):
    """The preset at 6 qubits, 1 epoch of one minibatch of 2 samples, by --solver mps and --solver dense:
    the first step's loss and gradient norm (the epoch's record: before any update) agree to
    SAME_PHYSICS; the JSON names the qubits."""
    few_samples(monkeypatch, 2)
    runs = {}
    for solver in ("mps", "dense"):
        argv = ["train", "--preset", "chain48-mps", "--hidden", "4", "--epochs", "1", "--batch-size", "2", "--solver", solver, "--json"]
        assert main(argv) == 0
        runs[solver] = final = json.loads(capsys.readouterr().out)
        assert final["n_qubits"] == 6 and final["system"] == "tfim_chain" and final["step"] == 1
        assert 0.0 <= final["test_accuracy"] <= 1.0
    for key in ("batch_loss", "grad_norm"):
        assert runs["mps"][key] == pytest.approx(runs["dense"][key], rel=SAME_PHYSICS), key
