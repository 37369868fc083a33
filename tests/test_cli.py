"""The ``qeqprop`` command line: resume (also after SIGKILL), refusals that name the flag, the
setting or the path, configs and presets, --version, help for every flag, compare's --out."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import qeqprop
from qeqprop import cli
from qeqprop.checkpoint import load_checkpoint
from qeqprop.cli import main
from qeqprop.cli_config import presets, tomllib

XOR = ["train", "--dataset", "xor", "--hidden", "1"]  # 2 qubits: about 0.5 s an epoch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def timeless(history: list[dict]) -> list[dict]:
    """A history without its wall-clock entries (the only part two equal runs may differ in)."""
    return [{k: v for k, v in record.items() if "second" not in k} for record in history]


def assert_same_run(a: Path, b: Path) -> None:
    """Two run folders hold bit-equal final parameters and histories (up to wall-clock times)."""
    pa, pb = load_checkpoint(a / "checkpoint.npz")["params"], load_checkpoint(b / "checkpoint.npz")["params"]
    assert sorted(pa) == sorted(pb)
    for name in pa:
        assert np.array_equal(pa[name], pb[name]), name
    assert timeless(metrics(a)["history"]) == timeless(metrics(b)["history"])


# ----------------------------------------------------------------------------- D1: resume

def test_resume_continues_and_writes_every_epoch(tmp_path, capsys):
    """D1: the resumed run used to die writing metrics.json (ndarray not JSON serializable)."""
    out = tmp_path / "r"
    assert run(capsys, *XOR, "--epochs", "1", "--out", str(out))[0] == 0
    (out / "learning_curve.png").unlink()
    code, stdout, _ = run(capsys, *XOR, "--epochs", "2", "--out", str(out), "--resume")
    assert code == 0 and "after 2 epochs" in stdout
    record = metrics(out)
    assert [r["epoch"] for r in record["history"]] == [1, 2] and record["final"]["epoch"] == 2
    assert (out / "learning_curve.png").stat().st_size > 0
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_resume_after_sigkill_mid_epoch_equals_an_uninterrupted_run(tmp_path, capsys):
    """Kill -9 right after the first checkpoint lands (inside epoch 2), resume, compare bit for bit."""
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    argv = [*XOR, "--epochs", "3", "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "qeqprop.cli", *argv, "--out", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(killed / "checkpoint.npz", process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(killed / "checkpoint.npz")["epoch"] < 3, "the run ended before the kill: nothing tested"
    assert run(capsys, *argv, "--out", str(killed), "--resume")[0] == 0
    assert [r["epoch"] for r in metrics(killed)["history"]] == [1, 2, 3]
    assert run(capsys, *argv, "--out", str(straight))[0] == 0
    assert_same_run(killed, straight)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll until ``path`` exists (the run's first checkpoint); fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended (status {process.returncode}) before {path} appeared: " \
                                       f"{process.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)


def test_sigint_in_process_prints_one_line_and_exits_130(tmp_path, capsys, monkeypatch):
    """D4: Ctrl-C used to print a traceback; a real SIGINT after epoch 1 now ends with one line."""
    train = cli.fit

    def fit_then_sigint(*args, **kwargs):
        return train(*args, **kwargs, callback=lambda epoch, *_: os.kill(os.getpid(), signal.SIGINT))

    monkeypatch.setattr(cli, "fit", fit_then_sigint)
    # Python's KeyboardInterrupt handler, as an interactive run has it: a process started as a background
    # job of a non-interactive shell inherits SIGINT ignored, and Python then installs no handler at all
    # (the test exited 0 in such a run)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        out = tmp_path / "run"
        code, stdout, err = run(capsys, *XOR, "--epochs", "5", "--quiet", "--out", str(out))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130 and stdout == ""
    assert err == f"qeqprop: interrupted; the checkpoint at {out / 'checkpoint.npz'} holds epoch 1; rerun with --resume\n"


@pytest.mark.slow
def test_sigint_prints_one_line_and_exits_130(tmp_path):
    """D4 in a real process (the shell's Ctrl-C): one line, status 130, no traceback."""
    out = tmp_path / "run"
    # the child starts with SIGINT at its default, as from an interactive shell: a caught handler here is
    # reset to the default by exec (a background job of a non-interactive shell, e.g. a CI script, would
    # otherwise hand it SIGINT ignored, and Python installs no KeyboardInterrupt handler then)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen([sys.executable, "-m", "qeqprop.cli", *XOR, "--epochs", "50", "--quiet", "--out", str(out)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        wait_for(out / "checkpoint.npz", process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    err = err.decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    saved, line = load_checkpoint(out / "checkpoint.npz"), err.strip().splitlines()[-1]
    assert line.startswith(f"qeqprop: interrupted; the checkpoint at {out / 'checkpoint.npz'} holds epoch {saved['epoch']}")
    assert line.endswith("; rerun with --resume") and saved["epoch"] >= 1


# ----------------------------------------------------------------------------- D3: refused resumes

@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """A one-epoch xor run to resume from."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main([*XOR, "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("change, setting", [
    (["--gamma", "0.5"], "gamma"), (["--temperature", "0.2"], "temperature"), (["--cost", "cross_entropy"], "cost"),
    (["--lr", "0.1"], "learning_rate"), (["--optimizer", "sgd"], "optimizer"), (["--beta", "0.05"], "beta"),
])
def test_resume_with_a_changed_setting_is_refused_naming_it(one_epoch, change, setting, capsys):
    before = one_epoch.joinpath("checkpoint.npz").read_bytes()
    code, _, err = run(capsys, *XOR, "--epochs", "2", "--out", str(one_epoch), "--resume", *change)
    assert code == 2 and "qeqprop: error: " in err, err
    assert re.search(rf"^  (system\.args\.)?{setting}: saved ", err, re.MULTILINE), err  # the setting, by name
    assert one_epoch.joinpath("checkpoint.npz").read_bytes() == before


def test_corrupt_checkpoint_is_a_clear_error_naming_the_path(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run(capsys, *XOR, "--epochs", "2", "--out", str(out), "--resume")
    assert code == 2 and str(out / "checkpoint.npz") in err and "Traceback" not in err


def test_resume_from_a_folder_without_checkpoint_names_the_path(tmp_path, capsys, monkeypatch):
    """A mistyped --out used to start from scratch silently."""
    monkeypatch.setattr(cli, "fit", refuse_to_train)
    code, _, err = run(capsys, *XOR, "--out", str(tmp_path / "typo"), "--resume")
    assert code == 2 and f"no checkpoint at {tmp_path / 'typo' / 'checkpoint.npz'}" in err
    assert run(capsys, *XOR, "--resume")[0] == 2  # no --out at all


def test_fresh_run_over_an_earlier_one_needs_overwrite(one_epoch, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "fit", refuse_to_train)
    code, _, err = run(capsys, *XOR, "--epochs", "1", "--out", str(one_epoch))
    assert code == 2 and "--resume" in err and "--overwrite" in err


def test_overwrite_starts_afresh_over_an_earlier_run(one_epoch, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(one_epoch, out)
    code, stdout, _ = run(capsys, *XOR, "--epochs", "0", "--out", str(out), "--overwrite")
    assert code == 0 and stdout.startswith("nothing trained")
    assert metrics(out)["history"] == [] and not (out / "checkpoint.npz").exists()


def refuse_to_train(*args, **kwargs):
    raise AssertionError("fit was called: the check did not come first")


# ----------------------------------------------------------------------------- D4

def test_zero_epochs_trains_nothing_and_writes_empty_metrics(tmp_path, capsys):
    out = tmp_path / "zero"
    code, stdout, _ = run(capsys, *XOR, "--epochs", "0", "--out", str(out))
    assert code == 0 and stdout.startswith("nothing trained (--epochs 0)")
    assert metrics(out)["history"] == [] and metrics(out)["config"]["epochs"] == 0


def test_out_that_is_a_file_or_unwritable_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "fit", refuse_to_train)
    afile = tmp_path / "file"
    afile.write_text("x")
    code, _, err = run(capsys, *XOR, "--out", str(afile))
    assert code == 2 and f"--out {afile} is a file" in err
    code, _, err = run(capsys, *XOR, "--out", str(afile / "run"))  # a folder that cannot be made, even by root
    assert code == 2 and f"--out {afile / 'run'}: cannot write there" in err
    code, _, err = run(capsys, *XOR, "--save-model", str(afile / "model.npz"))
    assert code == 2 and f"--save-model's folder {afile} is a file" in err


def test_read_only_out_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "fit", refuse_to_train)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: every folder is writable")
        code, _, err = run(capsys, *XOR, "--out", str(locked / "run"))
        assert code == 2 and f"--out {locked / 'run'}: cannot write there" in err
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------------------------- D8: flags

@pytest.mark.parametrize("argv, flag", [
    (["train", "--hidden", "-1"], "--hidden"), (["train", "--outputs", "0"], "--outputs"),
    (["train", "--outputs", "-2"], "--outputs"), (["train", "--seed", "-1"], "--seed"),
    (["train", "--epochs", "-1"], "--epochs"), (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--shots", "0"], "--shots"), (["train", "--features", "0"], "--features"),
    (["train", "--lr", "nan"], "--lr"), (["train", "--lr", "inf"], "--lr"), (["train", "--lr", "-0.1"], "--lr"),
    (["train", "--lr", "0"], "--lr"), (["train", "--beta", "nan"], "--beta"), (["train", "--beta", "-0.01"], "--beta"),
    (["train", "--temperature", "-1"], "--temperature"), (["train", "--hidden", "two"], "--hidden"),
    (["gradcheck", "--betas", "0.1"], "--betas"), (["gradcheck", "--betas", "0.1", "0.1"], "--betas"),
    (["gradcheck", "--betas"], "--betas"), (["gradcheck", "--betas", "0", "0.1"], "--betas"),
    (["gradcheck", "--betas", "0.1", "-0.01"], "--betas"), (["gradcheck", "--qubits", "1"], "--qubits"),
    (["compare", "--seeds", "0"], "--seeds"), (["compare", "--lr", "nan"], "--lr"),
])
def test_bad_values_are_refused_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(rf"argument {flag}(/--[\w-]+)*: ", capsys.readouterr().err)  # the flag and its aliases


# ----------------------------------------------------------------------------- CLI

def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"qeqprop {qeqprop.__version__}"


def test_every_flag_of_every_command_has_help_and_shows_its_default():
    top = cli.parser()
    for name, command in {"qeqprop": top, **top.subcommands}.items():
        text = " ".join(command.format_help().split())
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, argparse.SUPPRESS) and action.default is not False and "default" not in action.help:
                assert f"(default: {action.default})" in text, f"{name} {action.option_strings} hides its default"


def test_quiet_prints_only_the_final_line_and_logs_without_it(tmp_path, capsys):
    code, stdout, err = run(capsys, *XOR, "--epochs", "1", "--quiet", "--out", str(tmp_path / "q"))
    assert code == 0 and len(stdout.splitlines()) == 1 and "test accuracy" in stdout
    assert "it/s" not in err and "qeqprop: wrote" not in err
    code, stdout, err = run(capsys, *XOR, "--epochs", "1", "--out", str(tmp_path / "loud"))
    assert code == 0 and f"qeqprop: wrote {tmp_path / 'loud' / 'metrics.json'}" in err


def test_compare_never_writes_into_a_non_empty_folder_unless_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.parser().parse_args(["compare"])
    default = cli.compare_out(args)
    assert default.parent == Path(".") and default.name.startswith("qeqprop-compare-") and default.is_dir()
    results = tmp_path / "results"
    results.mkdir()
    (results / "compare.md").write_text("tracked table")
    monkeypatch.setattr("qeqprop.comparison.compare", refuse_to_train)
    code, _, err = run(capsys, "compare", "--quick", "--out", str(results))
    assert code == 2 and f"--out {results} is not empty" in err and "--overwrite" in err
    assert (results / "compare.md").read_text() == "tracked table"
    assert cli.compare_out(cli.parser().parse_args(["compare", "--out", str(results), "--overwrite"])) == results
    fresh = tmp_path / "fresh"  # .ci/run passes an empty mktemp -d folder
    fresh.mkdir()
    assert cli.compare_out(cli.parser().parse_args(["compare", "--out", str(fresh)])) == fresh


def test_compare_keeps_the_inner_fits_records_off_stderr(tmp_path, capsys, monkeypatch):
    """compare runs dozens of fits; their per-record INFO lines stay off stderr while it runs
    (warnings still show), and the train logger's level is restored afterwards."""
    import logging

    def compare_that_logs(*args, **kwargs):
        logging.getLogger("qeqprop.train").info("epoch 1, step 9: inner record")
        logging.getLogger("qeqprop.train").warning("inner warning")
        raise ValueError("stop here")

    monkeypatch.setattr("qeqprop.comparison.compare", compare_that_logs)
    before = logging.getLogger("qeqprop.train").level
    code, _, err = run(capsys, "compare", "--quick", "--out", str(tmp_path / "c"))
    assert code == 2 and "stop here" in err
    assert "inner warning" in err and "inner record" not in err
    assert logging.getLogger("qeqprop.train").level == before


# ----------------------------------------------------------------------------- configs and presets

def test_config_file_sets_the_run_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "xor"\nhidden = 1\nepochs = 3\nbatch-size = 8\nlr = 0.05\noption = {gamma = 0.8}\n')
    out = tmp_path / "run"
    assert run(capsys, "train", "--config", str(config), "--epochs", "1", "--quiet", "--out", str(out))[0] == 0
    recorded = metrics(out)["config"]
    assert (recorded["dataset"], recorded["hidden"], recorded["batch_size"], recorded["lr"]) == ("xor", 1, 8, 0.05)
    assert recorded["epochs"] == 1 and recorded["option"] == ["gamma=0.8"]
    assert len(metrics(out)["history"]) == 1


def test_command_line_options_replace_the_presets_and_the_configs_by_key(tmp_path):
    """--option KEY=VALUE: a config's entry replaces the preset's of the same key, the command line's
    replaces both (dashes or underscores), other keys are kept; a key repeated on the command line is
    still refused."""
    config = tmp_path / "run.toml"
    config.write_text('option = {gap_check = "first", chi_max = 8}\n')
    top = cli.parser()
    argv = ["train", "--preset", "teacher48-mps", "--config", str(config), "--option", "chi-max=12"]
    args = cli.apply_config(top, argv, top.parse_args(argv))
    assert args.option == ['gap_check="first"', "chi-max=12"]  # the preset's gap_check=4 replaced
    assert cli.system_options(args) == {"solver": "mps", "gap_check": "first", "chi_max": 12}
    argv = ["train", "--preset", "teacher48-mps"]
    assert cli.system_options(cli.apply_config(top, argv, top.parse_args(argv))) == {"solver": "mps", "gap_check": 4}
    argv = ["train", "--preset", "teacher48-mps", "--option", "chi_max=4", "--option", "chi_max=5"]
    with pytest.raises(ValueError, match="'chi_max' is given twice"):
        cli.system_options(cli.apply_config(top, argv, top.parse_args(argv)))


@pytest.mark.parametrize("text, message", [
    ("hiden = 1\n", "unknown setting(s) ['hiden']"),
    ("hidden = -1\n", "hidden: must be an integer >= 0"),
    ("lr = nan\n", "lr: must be a finite number > 0"),
    ('dataset = "cifar"\n', "dataset: 'cifar' is not one of"),
    ("resume = 1\n", "resume must be true or false"),
    ("hidden = 1.5\n", "hidden: must be an integer"),
    ("hidden = \n", "not valid TOML"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, text, message, capsys, monkeypatch):
    monkeypatch.setattr(cli, "fit", refuse_to_train)
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and f"--config {config}" in err and message in err, err


def test_metrics_record_the_run_and_its_config_reruns_it(tmp_path, capsys):
    """metrics.json holds version, command line and every setting; OUT/config.toml alone reruns the run."""
    first, again, from_json = tmp_path / "first", tmp_path / "again", tmp_path / "json"
    argv = ["train", "--dataset", "xor", "--hidden", "1", "--epochs", "1", "--lr", "0.07",
            "--gamma", "0.9", "--option", "train_gamma=true", "--quiet", "--out", str(first)]
    assert run(capsys, *argv)[0] == 0
    record = metrics(first)
    assert record["qeqprop_version"] == qeqprop.__version__ and record["command"] == "qeqprop " + " ".join(argv[:-1]) + f" {first}"
    config = tomllib.loads((first / "config.toml").read_text())
    assert config["gamma"] == 0.9 and config["option"] == ["train_gamma=true"] and config["outputs"] == 1
    assert {k.replace("-", "_"): v for k, v in config.items()} == {k: v for k, v in record["config"].items() if v is not None}
    assert run(capsys, "train", "--config", str(first / "config.toml"), "--quiet", "--out", str(again))[0] == 0
    assert run(capsys, "train", "--config", str(first / "metrics.json"), "--quiet", "--out", str(from_json))[0] == 0
    assert_same_run(first, again)
    assert_same_run(first, from_json)
    assert timeless([metrics(first)["final"]]) == timeless([metrics(again)["final"]])


def test_presets_are_listed_with_descriptions(capsys):
    code, stdout, _ = run(capsys, "presets")
    shipped = presets()
    assert code == 0 and set(shipped) >= {"iris", "xor-quick", "sensor-phases", "xor-shots"}
    for name, description in shipped.items():
        assert description and f"{name:<16} {description}" in stdout


def test_presets_on_mps_ground_states_check_every_4th_gap():
    """The 48-qubit MPS presets check the gap of every 4th EP free phase (gap_check=4: a few percent of
    CPU, where every one costs a quarter more; benchmarks/results/mps_gap_check.json)."""
    top = cli.parser()
    for name in ("chain48-mps", "sensor48-mps", "teacher48-mps"):
        argv = ["train", "--preset", name]
        options = cli.system_options(cli.apply_config(top, argv, top.parse_args(argv)))
        assert options["solver"] == "mps" and options["gap_check"] == 4, name


# small overrides keep the default run fast; test_every_preset_runs_as_shipped runs them unchanged (slow)
SMALL = {"iris": ["--features", "2", "--hidden", "1"], "sensor-phases": ["--hidden", "2"], "xor-shots": ["--shots", "100"]}
SMALL.update({name: ["--dataset", "iris", "--scaling", "standard", "--hidden", "4", "--no-bp-reference"]  # layered Hopfield presets
              for name in ("hopfield-mnist", "hopfield-digits", "hopfield-digits-2", "hopfield-digits-3")})
SMALL.update({name: ["--dataset", "iris", "--hidden", "4", "--beta", "0.05", "--no-bp-reference"]  # resistive, freqprop, flow
              for name in ("resistive-iris", "resistive-mnist", "freqprop-iris", "freqprop-digits", "flow-iris")})
SMALL["digits-tfim"] = ["--dataset", "iris", "--hidden", "1"]  # 4 qubits instead of 14
SMALL["chain48-mps"] = ["--hidden", "2", "--solver", "dense"]  # 4 qubits, exact states, instead of 48 by MPS
SMALL["sensor48-mps"] = ["--hidden", "3", "--samples", "10", "--solver", "dense"]  # 4 qubits, exact states, 10 chains
SMALL["teacher48-mps"] = ["--hidden", "4", "--solver", "dense"]  # 4 qubits, exact states, instead of 48 by MPS
SMALL["hopfield-conv-mnist"] = ["--dataset", "digits", "--hidden", "2", "--no-bp-reference"]  # 8x8 images: 5x5 conv, 2x2 pool


SLOW_PRESETS = {"ising-digits", "oscillators-digits"}  # 35 s each even small: with the slow tests


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_PRESETS else n for n in sorted(presets())])
def test_every_preset_runs(name, tmp_path, capsys):
    out = tmp_path / name
    code, _, err = run(capsys, "train", "--preset", name, "--epochs", "1", *SMALL.get(name, []), "--quiet", "--out", str(out))
    assert code == 0, err
    assert len(metrics(out)["history"]) == 1


# presets whose full run takes minutes: their accuracy claims are checked by the systems' own slow tests
# (oscillators-digits, ising-digits, hopfield-digits) or were measured by hand for the README table
# (the mnist and deep-network presets: 5-30 minutes each on 2 cores, beyond CI's budget as a set)
LONG = {"agnostic-digits", "chain48-mps", "sensor48-mps", "digits-tfim", "freqprop-digits", "hopfield-digits", "hopfield-digits-2", "hopfield-digits-3", "hopfield-conv-mnist", "hopfield-mnist",
        "ising-digits", "oscillators-digits", "resistive-mnist", "teacher48-mps"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(presets()) - LONG))
def test_every_preset_runs_as_shipped(name, tmp_path, capsys):
    code, stdout, err = run(capsys, "train", "--preset", name, "--quiet", "--out", str(tmp_path / name))
    assert code == 0 and "test accuracy" in stdout, err


def test_unknown_preset_lists_the_presets(capsys):
    code, _, err = run(capsys, "train", "--preset", "nope")
    assert code == 2 and "--preset nope: no such preset" in err and "xor-quick" in err


# ----------------------------------------------------------------------------- save and predict

def test_saved_model_predicts_from_the_command_line(tmp_path, capsys):
    from qeqprop.serialization import load_model

    model_path = tmp_path / "model.npz"
    assert run(capsys, *XOR, "--epochs", "1", "--quiet", "--save-model", str(model_path))[0] == 0
    x = np.array([[0.5, -1.0], [1.0, 1.0], [-1.0, 0.25]])
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    code, stdout, _ = run(capsys, "predict", "--model", str(model_path), "--input", str(tmp_path / "x.csv"))
    model = load_model(model_path)
    assert code == 0
    np.testing.assert_array_equal(np.loadtxt(stdout.splitlines(), delimiter=",", ndmin=2),
                                  np.asarray(model.predict(x)).reshape(len(x), -1))
    assert model.metadata["config"]["dataset"] == "xor" and model.metadata["final"]["epoch"] == 1
