"""The long-chain quantum sensor (qeqprop.comparison.sensor.chain_sensor with a finite ``reach``,
registry "sensor" with solver "mps"): its terms, MPS against dense eigh on the same sensor, the
command line's quantum-data datasets (--dataset phases/annni/xxz_field, --samples) and the
sensor48-mps preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qeqprop as qp
from qeqprop import cli
from qeqprop.cli import main
from qeqprop.cli_config import read_preset, settings_for
from qeqprop.comparison.sensor import chain_sensor
from qeqprop.hamiltonians.pauli import PauliString
from qeqprop.solvers import MPS
from qeqprop.systems.long_chain import CHI_MAX
from qeqprop.systems.registry import build

# MPS (DMRG) against dense eigh on a 7-qubit sensor: bond dimension 2^3 = 8 < chi_max = 16, so the
# MPS is exact and the two differ by the DMRG stop only (as in test_long_chain: SAME_PHYSICS there).
SAME_PHYSICS = 1e-9


def test_reach_couples_each_sensor_to_the_chain_end_only():
    near = chain_sensor("phases", n_chain=10, n_sensors=2, reach=3)
    coupled = [PauliString.coerce(t.string) for t in near.hamiltonian.terms if t.param in ("K", "L")]
    assert len(coupled) == 2 * 2 * 3  # (ZZ, XX) x 2 sensors x 3 sites
    assert sorted({q for s in coupled for q in s.qubits if q < 10}) == [7, 8, 9]
    assert near.init_params(0)["K"].shape == (2, 3)
    # reach = n_chain is the default sensor (every site), term for term
    full, default = chain_sensor("annni", n_chain=6, reach=6), chain_sensor("annni", n_chain=6)
    assert str(full.hamiltonian) == str(default.hamiltonian)
    assert all(np.array_equal(a, b) for a, b in zip(full.init_params(1).values(), default.init_params(1).values()))


@pytest.mark.parametrize("reach", [0, 11, 2.0, True])
def test_bad_reach_is_refused_by_name(reach):
    with pytest.raises(ValueError, match="reach must be an integer in \\[1, n_chain = 10\\]"):
        chain_sensor("phases", n_chain=10, reach=reach)


def test_registry_sensor_with_mps_is_the_long_chain_solver():
    net = build("sensor", 2, 1, 47, solver="mps", reach=2)
    assert net.n_qubits == 48 and isinstance(net.solver, MPS) and net.solver.chi_max == CHI_MAX and not net.solver.gap
    assert build("sensor", 2, 1, 47, solver="mps", reach=2, chi_max=8).solver.chi_max == 8
    with pytest.raises(ValueError, match="chi_max sets the MPS bond dimension"):
        build("sensor", 2, 1, 4, chi_max=8)


def test_mps_and_dense_sensors_give_the_same_ep_gradient():
    """A 6-site TFIM chain read by one sensor at reach 2, in the ferromagnet and the paramagnet:
    MPS and dense eigh agree to SAME_PHYSICS, and the dense EP gradient is the exact one."""
    mps, dense = build("sensor", 2, 1, 6, solver="mps", reach=2), build("sensor", 2, 1, 6, solver="dense", reach=2)
    params = mps.init_params(np.random.default_rng(0))
    for x, y in ((np.array([1.6, 0.4]), np.array([1.0])), (np.array([0.4, 1.6]), np.array([-1.0]))):
        by_mps, by_dense = qp.ep_gradient(mps, params, x, y, 2e-3), qp.ep_gradient(dense, params, x, y, 2e-3)
        assert abs(by_mps.free.energy - by_dense.free.energy) < SAME_PHYSICS
        assert qp.relative_error(by_mps.grad, by_dense.grad) < SAME_PHYSICS
        assert qp.relative_error(by_dense.grad, dense.reference_grad(params, x, y)) < 1e-3


# -- the command line --------------------------------------------------------------------------

def args_for(*argv: str):
    return cli.parser().parse_args(["train", *argv])


def test_samples_sizes_the_quantum_data_tasks_only():
    for name in ("phases", "annni", "xxz_field"):
        data = cli.load_training_data(args_for("--dataset", name, "--samples", "40"))
        assert (len(data.x_train), len(data.x_test)) == (28, 12) and data.x_train.shape[1] == 2
    assert len(cli.load_training_data(args_for("--dataset", "annni")).x_train) == 210  # default 300 chains
    with pytest.raises(ValueError, match="--samples sets the size of the quantum-data tasks"):
        cli.load_training_data(args_for("--dataset", "iris", "--samples", "40"))
    with pytest.raises(ValueError, match="--features and --scaling do not apply to --dataset annni"):
        cli.load_training_data(args_for("--dataset", "annni", "--features", "2"))


def test_the_sensor_reads_the_chain_of_its_dataset():
    net = cli.build_system(args_for("--system", "sensor", "--dataset", "annni", "--hidden", "4"), 2, 3)
    assert "Z0 Z2" in str(net.hamiltonian)  # the ANNNI chain's next-nearest-neighbour term
    with pytest.raises(ValueError, match="option chain='phases' is not the chain of --dataset annni"):
        cli.build_system(args_for("--system", "sensor", "--dataset", "annni", "--option", "chain=phases"), 2, 3)


def test_preset_is_a_48_qubit_mps_sensor():
    settings = settings_for(cli.parser().subcommands["train"], read_preset("sensor48-mps"), "preset")
    assert settings["system"] == "sensor" and settings["dataset"] == "phases" and settings["solver"] == "mps"
    assert settings["hidden"] + 1 >= 48 and settings["estimator"] == "centered"


def test_cli_preset_trains_with_mps_and_dense_alike(monkeypatch, capsys):
    """The preset on a 5-site chain (6 qubits), 1 epoch, 10 chains, by --solver mps and --solver
    dense: the epoch's loss and gradient norm agree to SAME_PHYSICS; the JSON names the qubits."""
    runs = {}
    for solver in ("mps", "dense"):
        argv = ["train", "--preset", "sensor48-mps", "--hidden", "5", "--samples", "10", "--epochs", "1", "--beta", "0.002", "--solver", solver, "--json"]
        assert main(argv) == 0
        runs[solver] = final = json.loads(capsys.readouterr().out)
        assert final["n_qubits"] == 6 and final["system"] == "sensor" and 0.0 <= final["test_accuracy"] <= 1.0
    for key in ("batch_loss", "grad_norm", "test_loss"):
        assert runs["mps"][key] == pytest.approx(runs["dense"][key], rel=SAME_PHYSICS), key
