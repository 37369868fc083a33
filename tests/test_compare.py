"""The comparison harness, its reports and CLI, and the quantum-data phase task."""

from __future__ import annotations

import json

import numpy as np
import optax
import pytest
from threadpoolctl import threadpool_limits

from conftest import assert_ep_rates
from qeqprop.cli import main
from qeqprop.comparison import compare, load_phases, order_parameter, phase_labels, phase_sensor
from qeqprop.comparison.harness import probe_metrics
from qeqprop.comparison.report import README_END, README_START, markdown_table, update_readme, write_report
from qeqprop.comparison.systems import SYSTEMS, build
from qeqprop.comparison.tasks import load_task
from qeqprop.ep import ep_gradient, finite_difference_gradient, flatten_grad, reference_gradient, relative_error
from qeqprop.train import fit, targets_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_report():
    """Every system on xor and phases, one seed, one epoch."""
    return compare(SYSTEMS, ["xor", "phases"], seeds=1, epochs=1, batch_size=32, probe_size=4, progress=False,
                   scheduler=None)


def test_report_files_cover_every_system(tiny_report, tmp_path):
    paths = write_report(tiny_report, tmp_path)
    data = json.loads(paths["json"].read_text())
    on_phases = {row["system"] for row in data["summary"] if row["task"] == "phases"}
    assert on_phases == set(SYSTEMS)
    assert {row["system"] for row in data["summary"] if row["task"] == "xor"} == set(SYSTEMS) - {"sensor"}
    assert data["skipped"] == [{"task": "xor", "system": "sensor", "reason": data["skipped"][0]["reason"]}]
    assert "quantum data" in data["skipped"][0]["reason"]
    table = paths["markdown"].read_text()
    for system in SYSTEMS:
        assert f"| phases | {system} |" in table or f"| phases | **{system}** |" in table
    for row in data["summary"]:
        assert row["n_params"] > 0 and 0.0 <= row["test_accuracy"] <= 1.0
        assert -1.0 <= row["cosine"] <= 1.0 and row["relative_error"] >= 0.0
        assert row["seconds_per_equilibrium"] > 0.0
    for key in ("learning_curves", "loss_curves", "fidelity", "accuracy", "accuracy_vs_params", "accuracy_vs_time",
                "phase_diagram"):
        assert paths[key].read_bytes()[:8] == PNG_MAGIC, key
        assert paths[key].with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", key
    assert all("params" not in run for run in data["runs"])


def test_parameter_counts_are_comparable(tiny_report):
    counts = {row["system"]: row["n_params"] for row in tiny_report.summary() if row["task"] == "xor"}
    assert max(counts.values()) <= 1.25 * min(counts.values()), counts


@pytest.mark.parametrize("system,task", [("tfim", "xor"), ("hopfield", "phases"), ("sensor", "phases")])
def test_fidelity_agrees_with_direct_ep_and_reference(tiny_report, system, task):
    """The recorded epoch-0 fidelity equals cos / relative error of the probe-mean EP gradient
    (ep.ep_gradient per sample) against the probe-mean reference gradient, recomputed here."""
    run = next(r for r in tiny_report.runs if r["system"] == system and r["task"] == task)
    data = load_task(task, seed=tiny_report.settings["data_seed"])
    model, _ = build(system, task, data.n_features, data.n_classes)
    params = model.init_params(np.random.default_rng(run["seed"]))
    size = tiny_report.settings["probe_size"]
    x, y = data.x_train[:size], targets_for(model, data, data.y_train[:size])
    beta = tiny_report.settings["beta"]
    ep = np.mean([flatten_grad(ep_gradient(model, params, xi, yi, beta, "centered").grad) for xi, yi in zip(x, y)], axis=0)
    exact = np.mean([flatten_grad(reference_gradient(model, params, xi, yi)) for xi, yi in zip(x, y)], axis=0)
    recorded = run["fidelity"][0]
    assert recorded["epoch"] == 0 and len(run["fidelity"]) == tiny_report.settings["epochs"] + 1
    assert recorded["cosine"] == pytest.approx(ep @ exact / np.linalg.norm(ep) / np.linalg.norm(exact), abs=1e-10)
    assert recorded["relative_error"] == pytest.approx(np.linalg.norm(ep - exact) / np.linalg.norm(exact), rel=1e-8)


def test_fidelity_falls_with_beta_at_the_centered_rate():
    """Relative error of the probe fidelity shrinks as beta^2 (centered estimator)."""
    data = load_task("phases")
    model, _ = build("sensor", "phases", data.n_features, data.n_classes)
    params = model.init_params(np.random.default_rng(0))
    x, y = data.x_train[:4], targets_for(model, data, data.y_train[:4])
    errors = [probe_metrics(model, params, x, y, beta, "centered")["relative_error"] for beta in (0.2, 0.1, 0.05)]
    slopes = np.diff(np.log(errors)) / np.diff(np.log([0.2, 0.1, 0.05]))
    assert np.all(np.abs(slopes - 2.0) < 0.2), (errors, slopes)


def test_phase_labels_follow_exact_boundary_and_order_parameter():
    data = load_phases(seed=3)
    x = np.vstack([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    np.testing.assert_array_equal(labels, (x[:, 1] < x[:, 0]).astype(int))
    np.testing.assert_array_equal(phase_labels(x), labels)
    assert 0.3 < labels.mean() < 0.7
    ratio = x[:, 1] / x[:, 0]
    # Independent check away from g = J: end-to-end <Z_0 Z_11> of a 12-site chain's ground state.
    ferro, para = x[ratio < 0.6][:3], x[ratio > 1.6][:3]
    assert len(ferro) == 3 and len(para) == 3
    assert all(order_parameter(J, g) > 0.7 for J, g in ferro)
    assert all(abs(order_parameter(J, g)) < 0.05 for J, g in para)


def test_sensor_gradients_match_reference_and_finite_differences(rng):
    sensor = phase_sensor(4, 1, solver="dense")
    params = sensor.init_params(rng)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    x, y = np.array([1.1, 0.7]), np.array([1.0])
    exact = reference_gradient(sensor, params, x, y)
    assert relative_error(finite_difference_gradient(sensor, params, x, y, step=1e-5), exact) < 1e-6
    assert_ep_rates(sensor, params, x, y)


@pytest.mark.slow
def test_sensor_reaches_90_percent_test_accuracy():
    """Exact expectations, 4 chain + 1 sensor qubits, centered EP at beta = 0.05, Adam 0.05,
    12 epochs of 168 training samples (batch 16), three seeds."""
    data = load_phases(seed=0)
    for seed in range(3):
        with threadpool_limits(1):  # 32 x 32 eigh: BLAS threads only contend
            result = fit(phase_sensor(4, 1, solver="dense"), data, epochs=12, optimizer=optax.adam(0.05), beta=0.05,
                         seed=seed, progress=False)
        assert result.final["test_accuracy"] >= 0.9, (seed, result.final)


@pytest.mark.slow
def test_sensor_reaches_90_percent_with_shots():
    """Gradients from 2000 simulated shots per phase (two measurement bases), beta = 0.2."""
    data = load_phases(seed=0)
    with threadpool_limits(1):
        result = fit(phase_sensor(4, 1, solver="dense"), data, epochs=15, optimizer=optax.adam(0.05), beta=0.2,
                     shots=2000, seed=0, progress=False)
    assert result.final["test_accuracy"] >= 0.9, result.final


def test_cli_quick_style_run_writes_files_and_readme_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    out = tmp_path / "compare"
    argv = ["compare", "--systems", "tfim", "ising", "sensor", "--tasks", "phases", "--seeds", "1", "--epochs", "1",
            "--scheduler", "none", "--out", str(out), "--readme", str(readme), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {row["system"] for row in printed["summary"]} == {"tfim", "ising", "sensor"}
    for name in ("compare.json", "compare.md", "learning_curves.png", "accuracy.png", "accuracy_vs_params.png",
                 "accuracy_vs_time.png", "gradient_fidelity.png", "phase_diagram.png", "jobs/train-phases-sensor-seed0.json"):
        assert (out / name).exists(), name
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith(f"{README_END}\n\nafter\n")
    assert "old table" not in text and "qeqprop " + " ".join(argv) in text and "| phases | **sensor** |" in text


def test_a_failing_run_is_recorded_and_the_others_go_on(monkeypatch):
    from qeqprop.comparison import harness

    original = harness.run_one

    def flaky(name, *args, **kwargs):
        if name == "ising":
            raise ValueError("Newton did not converge")
        return original(name, *args, **kwargs)

    monkeypatch.setattr(harness, "run_one", flaky)
    report = compare(["ising", "elastic"], ["phases"], seeds=1, epochs=1, batch_size=64, progress=False, scheduler=None)
    assert report.failed == [{"task": "phases", "system": "ising", "seed": 0, "error": "Newton did not converge"}]
    assert [row["system"] for row in report.summary()] == ["elastic"]
    assert "Failed (left out of the means): ising on phases, seed 0: Newton did not converge" in markdown_table(report)


def test_bad_input_names_the_argument(tmp_path, tiny_report):
    with pytest.raises(ValueError, match=r"systems: unknown name\(s\) \['spring'\]"):
        compare(["spring"], ["xor"])
    with pytest.raises(ValueError, match=r"tasks: unknown name\(s\) \['mnist'\]"):
        compare(["tfim"], ["mnist"])
    with pytest.raises(ValueError, match="systems must name at least one"):
        compare([], ["xor"])
    with pytest.raises(ValueError, match="seeds must be a positive count"):
        compare(["tfim"], ["xor"], seeds=0)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        compare(["tfim"], ["xor"], epochs=0)
    with pytest.raises(ValueError, match="beta"):
        compare(["tfim"], ["xor"], beta=float("nan"))
    with pytest.raises(ValueError, match="x must have two columns"):
        phase_labels(np.ones((3, 3)))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 10"):
        load_phases(5)
    with pytest.raises(ValueError, match="n_chain must be an integer >= 2"):
        phase_sensor(1)
    plain = tmp_path / "README.md"
    plain.write_text("no markers here\n")
    with pytest.raises(ValueError, match="readme: .* has no '<!-- compare:start -->'"):
        update_readme(plain, markdown_table(tiny_report))
    with pytest.raises(SystemExit):
        main(["compare", "--systems", "spring"])
    for flag in ("--seeds", "--epochs"):  # an explicit 0 is refused, not replaced by the default
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", "--quick", flag, "0", "--out", str(tmp_path / "zero")])
        assert exit_info.value.code == 2
