"""The size-dependent chain learner (qeqprop.systems.long_chain.SiteChain, registry "tfim_sites"), its
chain-teacher data set (qeqprop.datasets.chain_teacher_data) and its preset teacher48-mps: data,
layout, EP against the exact reference gradient and finite differences, MPS against exact states,
and the command line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import qeqprop as qp
from qeqprop import cli
from qeqprop.cli import main
from qeqprop.cli_config import read_preset, settings_for
from qeqprop.datasets import CHAIN_TEACHER, Dataset, chain_teacher_data, load_dataset
from qeqprop.ep import finite_difference_gradient
from qeqprop.errors import DegenerateGroundStateWarning
from qeqprop.solvers import MPS
from qeqprop.systems.long_chain import CHI_MAX, SITE_J_INIT, SiteChain
from qeqprop.systems.registry import build

# As in test_long_chain: on 8 qubits the MPS (chi_max 16 = 2^4) is exact, so MPS and dense states
# differ only by the DMRG stop; the EP gradients agree far below the O(beta^2) bias they share.
SAME_PHYSICS = 1e-9


# -- the chain-teacher data set -----------------------------------------------------------------

def test_chain_teacher_labels_are_one_fixed_teacher_with_a_margin():
    teacher = np.random.default_rng(0).choice([-1.0, 1.0], 48)
    for seed in (1, 2):  # the same teacher whatever the sample draw
        x, labels = chain_teacher_data(500, 48, np.random.default_rng(seed))
        field = x @ teacher
        assert x.shape == (500, 48) and set(np.unique(x)) == {-1.0, 1.0}
        assert np.array_equal(labels, (field > 0).astype(int)) and np.abs(field).min() >= 2  # 48 even: a . x even, != 0
        assert 0.4 < labels.mean() < 0.6
    odd, _ = chain_teacher_data(50, 7, np.random.default_rng(0))
    assert np.all(odd @ np.random.default_rng(0).choice([-1.0, 1.0], 7) != 0)


def test_chain_teacher_split_sizes_and_signs():
    data = load_dataset("chain-teacher", seed=0)
    n_features, n_samples = CHAIN_TEACHER
    assert data.x_train.shape == (128, n_features) and data.x_test.shape == (n_samples - 128, n_features) and data.n_classes == 2
    raw, _ = chain_teacher_data(n_samples, n_features, np.random.default_rng(0))
    spins = np.sign(np.concatenate([data.x_train, data.x_test]))  # standardized spins keep their signs
    assert {tuple(row) for row in spins} == {tuple(row) for row in raw}
    assert abs(data.x_train.mean(axis=0)).max() < 1e-12


def test_a_visible_subset_limits_the_best_linear_accuracy():
    """The docstring's bound 1 - arccos(sqrt(k / n)) / pi: the teacher restricted to k visible spins
    (the best a linear reader of those spins can do, up to finite-n corrections) on 20,000 samples."""
    x, labels = chain_teacher_data(20000, 48, np.random.default_rng(5))
    teacher = np.random.default_rng(0).choice([-1.0, 1.0], 48)
    for k, bound in ((12, 2 / 3), (24, 3 / 4)):
        visible = x[:, :k] @ teacher[:k]
        accuracy = np.mean((visible > 0) == labels)  # a tie says class 0: right half the time
        assert abs(accuracy - bound) < 0.03, (k, accuracy)


# -- the system -----------------------------------------------------------------------------------

def test_layout_inputs_per_site_outputs_block_means():
    net = SiteChain(6, n_inputs=4, n_outputs=2, solver="dense")
    text = str(net.hamiltonian)
    for i in range(4):
        assert f"w[{i}] * x[{i}] * (Z{i})" in text
    assert "x[4]" not in text and "Z0 Z2" not in text and "Z4 Z5" in text
    assert np.allclose(net.hamiltonian.output_matrix.sum(axis=1), 1.0)  # means: weights 1/3 per block
    short = SiteChain(3, n_inputs=5, solver="dense")  # sees features 0..2 only
    assert short.init_params(0)["w"].shape == (3,) and short.n_inputs == 5
    J = SiteChain(6, n_inputs=2, j_std=0.0).init_params(0)["J"]
    assert np.array_equal(J, np.full(5, SITE_J_INIT))


def test_the_nudge_adds_no_new_terms():
    """The nudged Hamiltonian of an MPS phase has exactly the free one's Pauli strings (one-site Z
    fields change): the same MPO, so the nudged DMRG warm-starts from the free MPS."""
    net = SiteChain(6, n_inputs=6, n_outputs=2, solver="mps")
    params, x = net.init_params(0), np.ones(6)
    free, _ = net.phase_operator(params, x)
    nudged, _ = net.phase_operator(params, x, nudge=np.array([0.3, -0.7]), beta=0.1)
    assert free.strings == nudged.strings
    changed = [str(free.strings[s]) for s in np.flatnonzero(~np.isclose(free.coeffs, nudged.coeffs))]
    assert changed == [f"Z{i}" for i in range(6)]
    assert np.allclose((nudged.coeffs - free.coeffs)[np.flatnonzero(~np.isclose(free.coeffs, nudged.coeffs))],
                       0.1 * np.repeat([0.3, -0.7], 3) / 3)


def test_ep_gradient_is_the_exact_gradient():
    """Centered EP against the linear-response reference gradient and central differences of the loss
    (7 qubits, two output blocks, dense states): bias O(beta^2), slope 2 in beta."""
    net = SiteChain(7, n_inputs=5, n_outputs=2, solver="dense", j_init=0.8)
    params = net.init_params(np.random.default_rng(1))
    x, y = np.array([1.0, -1.0, 1.0, 1.0, -1.0]), np.array([1.0, -1.0])
    reference = net.reference_grad(params, x, y)
    assert qp.relative_error(finite_difference_gradient(net, params, x, y, step=1e-5), reference) < 1e-7
    errors = [qp.relative_error(qp.ep_gradient(net, params, x, y, beta, estimator="centered").grad, reference) for beta in (0.04, 0.02)]
    assert errors[1] < 1e-3 and 3.6 < errors[0] / errors[1] < 4.4  # O(beta^2)


def test_mps_and_exact_states_give_the_same_ep_gradient_and_gap_warnings_stay():
    mps, dense = SiteChain(8, n_inputs=8, solver="mps"), SiteChain(8, n_inputs=8, solver="dense")
    params = mps.init_params(np.random.default_rng(2))
    x, y = np.random.default_rng(3).choice([-1.0, 1.0], 8), np.array([1.0])
    by_mps, by_dense = qp.ep_gradient(mps, params, x, y, 1e-2), qp.ep_gradient(dense, params, x, y, 1e-2)
    assert abs(by_mps.free.energy - by_dense.free.energy) < SAME_PHYSICS
    assert qp.relative_error(by_mps.grad, by_dense.grad) < SAME_PHYSICS
    # an ordered chain with no net field: two nearly degenerate ground states (gap 1.1e-4), reported
    # by the exact solver once below gap_tol
    ordered = {"J": np.full(7, 4.0), "b": np.zeros(8), "w": np.zeros(8)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = SiteChain(8, n_inputs=8, solver="dense", gap_tol=1e-3).equilibrate(ordered, x)
    assert state.gap < 1e-3 and any(issubclass(w.category, DegenerateGroundStateWarning) for w in caught)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_qubits": 0, "n_inputs": 1}, "n_qubits must be an integer >= 1"),
    ({"n_qubits": 4, "n_inputs": 0}, "n_inputs must be an integer >= 1"),
    ({"n_qubits": 3, "n_inputs": 2, "n_outputs": 4}, "n_qubits must be an integer >= 4"),
    ({"n_qubits": 4, "n_inputs": 2, "j_init": float("inf")}, "j_init must be a finite number"),
    ({"n_qubits": 4, "n_inputs": 2, "w_std": -1.0}, "w_std must be a finite number >= 0"),
    ({"n_qubits": 4, "n_inputs": 2, "chi_max": 8, "solver": "dense"}, "chi_max sets the MPS bond dimension"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SiteChain(**kwargs)


# -- registry, preset and command line -------------------------------------------------------------

def test_registry_builds_a_48_qubit_mps_learner_from_the_preset():
    settings = settings_for(cli.parser().subcommands["train"], read_preset("teacher48-mps"), "preset")
    assert settings["system"] == "tfim_sites" and settings["dataset"] == "chain-teacher" and settings["solver"] == "mps"
    assert settings["estimator"] == "centered"
    net = build("tfim_sites", CHAIN_TEACHER[0], 1, settings["hidden"], solver="mps")
    assert net.n_qubits == 48 and isinstance(net.solver, MPS) and net.solver.chi_max == CHI_MAX
    assert net.init_params(0)["w"].shape == (48,)
    assert build("tfim_sites", 48, 1, 12).n_qubits == 12 and build("tfim_sites", 48, 1, 12).solver == "auto"


def test_cli_preset_trains_with_mps_and_dense_alike(monkeypatch, capsys):
    """The preset at 6 qubits, one minibatch of 2 samples, by --solver mps and --solver dense: the
    first step's loss and gradient norm agree to SAME_PHYSICS, and both record the free phases' gap."""
    load = cli.load_training_data

    def cut(args):
        data = load(args)
        return Dataset(data.name, data.x_train[:2], data.y_train[:2], data.x_test[:2], data.y_test[:2], 2)

    monkeypatch.setattr(cli, "load_training_data", cut)
    runs = {}
    for solver in ("mps", "dense"):
        argv = ["train", "--preset", "teacher48-mps", "--hidden", "6", "--batch-size", "2", "--solver", solver, "--json",
                "--option", "gap_check=ep"]  # the preset checks every 4th free phase; here every one
        assert main(argv) == 0
        runs[solver] = final = json.loads(capsys.readouterr().out)
        assert final["n_qubits"] == 6 and final["system"] == "tfim_sites" and final["step"] == 1
    for key in ("batch_loss", "grad_norm"):
        assert runs["mps"][key] == pytest.approx(runs["dense"][key], rel=SAME_PHYSICS), key
    # the MPS run checks the gap of every EP free phase (gap_check "ep") and reports it like dense eigh
    assert runs["mps"]["batch_gap_checks"] == runs["dense"]["batch_gap_checks"] == 2
    assert runs["mps"]["batch_min_gap"] == pytest.approx(runs["dense"]["batch_min_gap"], abs=1e-6)
