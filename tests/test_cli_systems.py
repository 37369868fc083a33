"""``qeqprop train --system NAME`` for every registered system (qeqprop.systems.registry)."""

from __future__ import annotations

import json

import pytest

from qeqprop.checkpoint import load_checkpoint
from qeqprop.cli import main
from qeqprop.systems.registry import REGISTRY

ON_XOR = [name for name, spec in REGISTRY.items() if spec.takes("xor")]


def train(capsys, *args: str) -> dict:
    assert main(["train", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ON_XOR)
def test_every_system_that_takes_xor_trains_from_the_cli(name, capsys):
    final = train(capsys, "--system", name, "--dataset", "xor", "--hidden", "1", "--epochs", "1")
    assert final["system"] == name and final["kind"] == REGISTRY[name].kind
    assert isinstance(final["units"], int) and final["units"] > 0 and isinstance(final["unit"], str) and final["unit"]
    assert ("n_qubits" in final) == (final["unit"] == "qubits")
    assert 0.0 <= final["test_accuracy"] <= 1.0 and final["epoch"] == 1


def test_every_registered_system_except_the_sensor_takes_xor():
    assert set(REGISTRY) - set(ON_XOR) == {"sensor"}


def test_sensor_trains_on_the_phase_task_and_refuses_xor(capsys):
    final = train(capsys, "--system", "sensor", "--dataset", "phases", "--hidden", "2", "--epochs", "1")
    assert final["units"] == 3 and final["unit"] == "qubits" and final["dataset"] == "phases"
    assert main(["train", "--system", "sensor", "--dataset", "xor", "--epochs", "1"]) == 2
    assert "learns from quantum data only" in capsys.readouterr().err


def test_xxz_learns_xor_from_the_cli(capsys):
    """3 qubits (2 hidden, 1 output), Heisenberg exchange, centered EP at beta = 1e-2, Adam 0.05, batch 16:
    measured test accuracy 1.0 from epoch 6 on (seeds 0, 1, 2 reach 1.0 by epochs 6, 7, 4)."""
    final = train(capsys, "--system", "xxz", "--dataset", "xor", "--hidden", "2", "--epochs", "8", "--lr", "0.05")
    assert final["model"] == "XXZNetwork" and final["n_qubits"] == 3
    assert final["test_accuracy"] >= 0.9, final


def test_system_options_reach_the_builder(tmp_path, capsys):
    out = tmp_path / "xxz"
    train(capsys, "--system", "xxz", "--dataset", "xor", "--hidden", "1", "--epochs", "1", "--gamma", "0.7",
          "--option", "train_delta=true", "--option", "delta=0.5", "--out", str(out))
    params = load_checkpoint(out / "checkpoint.npz")["params"]
    assert set(params) == {"J", "Jz", "b", "W"}


def test_bad_system_and_inapplicable_options_are_clear_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--system", "spring", "--dataset", "xor"])
    assert exit_info.value.code == 2
    assert "argument --system: invalid choice: 'spring'" in capsys.readouterr().err
    assert main(["train", "--system", "hopfield", "--dataset", "xor", "--gamma", "0.5", "--epochs", "1"]) == 2
    assert "system 'hopfield' does not use option(s) ['gamma']" in capsys.readouterr().err
    assert main(["train", "--system", "xxz", "--dataset", "xor", "--option", "gama=0.5", "--epochs", "1"]) == 2
    assert "--option gama: unknown option" in capsys.readouterr().err
    assert main(["train", "--system", "xxz", "--dataset", "xor", "--option", "delta", "--epochs", "1"]) == 2
    assert "--option takes KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--system", "xxz", "--dataset", "xor", "--gamma", "1", "--option", "gamma=2", "--epochs", "1"]) == 2
    assert "option 'gamma' is given twice" in capsys.readouterr().err


def test_classical_learning_rules_only_where_a_system_can_clamp(capsys):
    assert main(["train", "--system", "tfim", "--dataset", "xor", "--gradient", "contrastive", "--epochs", "1"]) == 2
    assert "only classical systems do" in capsys.readouterr().err
    assert main(["train", "--system", "elastic", "--dataset", "xor", "--gradient", "coupled", "--epochs", "1"]) == 2
    assert "it supports ep, reference" in capsys.readouterr().err
    final = train(capsys, "--system", "hopfield", "--dataset", "xor", "--hidden", "4", "--gradient", "contrastive", "--epochs", "1")
    assert final["gradient"] == "contrastive" and final["unit"] == "neurons"
