"""Quantum-data tasks measured fairly (comparison.chains, snapshots, quantum_data, copies_report):
labels at known phase points, ED order parameters deep in each phase, the 1/sqrt(M) convergence
of the snapshot features, the copy ledger, and the whole copies pipeline on a tiny instance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import kron_pauli

from qeqprop.comparison.chains import (
    ANNNI,
    XXZ_FIELD,
    annni_antiphase_line,
    annni_ising_line,
    get_model,
    xxz_neel_field,
    xxz_saturation_field,
)
from qeqprop.comparison.copies_report import markdown_table, write_copies_report
from qeqprop.comparison.quantum_data import (
    chain_sensor,
    copies_curve,
    load_chain_task,
    sensor_readout,
)
from qeqprop.comparison.snapshots import (
    CopyLedger,
    basis_copies,
    chain_hamiltonian,
    exact_features,
    feature_names,
    ground_states,
    snapshot_features,
)
from qeqprop.hamiltonians.pauli import PauliTable


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Ground states are cached under QEQPROP_CACHE_DIR: a fresh folder per test."""
    monkeypatch.setenv("QEQPROP_CACHE_DIR", str(tmp_path / "cache"))


def test_annni_boundaries_reduce_to_known_points():
    # kappa = 0 is the TFIM: critical field g = J = 1; the lines meet at the multiphase point (1/2, 0)
    assert annni_ising_line(0.0) == pytest.approx(1.0, abs=1e-15)
    assert annni_ising_line(0.5) == pytest.approx(0.0, abs=1e-15)
    assert annni_antiphase_line(0.5) == 0.0
    # the 0/0-free form equals the published form away from kappa = 0
    kappa = np.array([0.1, 0.25, 0.4])
    published = (1 - kappa) / kappa * (1 - np.sqrt((1 - 3 * kappa + 4 * kappa**2) / (1 - kappa)))
    np.testing.assert_allclose(annni_ising_line(kappa), published, rtol=1e-12)
    assert list(ANNNI.labels([[0.0, 0.95], [0.0, 1.05], [0.9, 0.1], [0.9, 1.1]])) == [0, 2, 1, 2]


def test_xxz_boundaries_known_limits():
    # Heisenberg point: gapless (h_c1 = 0); Ising limit: Neel gap 2 (Delta - 2) + O(1/Delta) in Pauli units
    assert xxz_neel_field(1.0) == 0.0
    assert xxz_neel_field(40.0) == pytest.approx(2 * (40.0 - 2), rel=2e-3)
    assert np.all(np.diff(xxz_neel_field(np.linspace(1.0, 4.0, 20))) > 0)
    assert xxz_saturation_field(0.0) == 2.0 and xxz_saturation_field(-1.5) == 0.0
    assert list(XXZ_FIELD.labels([[0.0, 1.9], [0.0, 2.1], [3.0, 0.3], [-1.2, 0.1]])) == [0, 2, 1, 2]


def test_annni_at_kappa_zero_is_the_tfim_chain():
    from qeqprop.comparison.chains import tfim_terms
    from qeqprop.hamiltonians.parametrized import ParametrizedHamiltonian
    from qeqprop.solvers import ground_state

    tfim = ParametrizedHamiltonian(6, tfim_terms(6), {}, n_inputs=2)
    annni = chain_hamiltonian(ANNNI, 6)
    for g in (0.5, 1.3):
        e_tfim = ground_state(tfim.operator({}, np.array([1.0, g])), "dense").energy
        e_annni = ground_state(annni.operator({}, np.array([0.0, g])), "dense").energy
        assert e_annni == pytest.approx(e_tfim, abs=1e-12)


def test_exact_features_match_pauli_expectations_and_order_parameters():
    n = 8
    for model in (ANNNI, XXZ_FIELD):
        x = np.array([model.points[c] for c in range(3)])
        states = ground_states(model, x, n)
        features = exact_features(states)
        names = feature_names(n)
        # independent path: Pauli-table expectations of the same strings
        strings = [f"{p}{i} {p}{i + r}" for p in "ZX" for r in range(1, n) for i in range(n - r)]
        strings += [f"{p}{i}" for p in "ZX" for i in range(n)]
        table = PauliTable(n, strings)
        values = table.expectations(states)
        for basis in "ZX":
            m = np.mean([values[:, strings.index(f"{basis}{i}")] for i in range(n)], axis=0)
            np.testing.assert_allclose(features[:, names.index(f"m{basis}")], m, atol=1e-12)
            for r in (1, 2, n - 1):
                c = np.mean([values[:, strings.index(f"{basis}{i} {basis}{i + r}")] for i in range(n - r)], axis=0)
                np.testing.assert_allclose(features[:, names.index(f"C{basis}_{r}")], c, atol=1e-12)
        f = {name: features[:, k] for k, name in enumerate(names)}
        if model is ANNNI:  # ferro: long-range ZZ order; antiphase: up-up-down-down; para: polarized along X
            assert f["CZ_7"][0] > 0.9 and f["CZ_2"][1] < -0.9 and f["CZ_4"][1] > 0.9
            assert f["mX"][2] > 0.8 and abs(f["CZ_4"][2]) < 0.3
        else:  # XY: antiferro XY correlations; Neel: staggered ZZ; polarized: m_Z = 1
            assert f["CX_1"][0] < -0.4 and abs(f["mZ"][0]) < 0.5
            assert f["CZ_1"][1] < -0.85 and abs(f["mZ"][1]) < 1e-6
            assert f["mZ"][2] > 0.999


def test_ground_states_are_cached(tmp_path):
    x = ANNNI.sample(5, 3)
    first = ground_states(ANNNI, x, 6)
    stored = list((tmp_path / "cache" / "quantum_data").glob("annni-L6-*.npz"))
    assert len(stored) == 1
    np.testing.assert_array_equal(ground_states(ANNNI, x, 6), first)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-12)


def test_snapshot_features_converge_at_inverse_sqrt_rate():
    state = ground_states(XXZ_FIELD, np.array([XXZ_FIELD.points[0]]), 8)
    exact = exact_features(state)[0]
    repeats = 100
    rng = np.random.default_rng(0)
    budgets = np.array([16, 64, 256, 1024])
    rms = [np.sqrt(np.mean((snapshot_features(np.repeat(state, repeats, 0), int(m), rng) - exact) ** 2)) for m in budgets]
    slope = np.polyfit(np.log(budgets), np.log(rms), 1)[0]
    assert -0.55 < slope < -0.45, (slope, rms)
    # unbiased: the mean over repeats at the largest M sits within 4 standard errors of the exact value
    many = snapshot_features(np.repeat(state, repeats, 0), 1024, rng)
    assert np.all(np.abs(many.mean(axis=0) - exact) <= 4 * many.std(axis=0) / np.sqrt(repeats) + 1e-12)


def test_copy_ledger_enforces_one_budget():
    states = ground_states(ANNNI, ANNNI.sample(3, 0), 6)
    ledger = CopyLedger(3, 30)
    snapshot_features(states, 30, np.random.default_rng(0), ledger)
    assert ledger.spent_exactly() and basis_copies(30) == (15, 15) and basis_copies(31) == (16, 15)
    with pytest.raises(ValueError, match="budget of 30"):
        snapshot_features(states, 2, np.random.default_rng(0), ledger)
    assert ledger.spent_exactly()  # the refused request recorded nothing
    with pytest.raises(ValueError, match="budget"):
        CopyLedger(3, 0)
    # the sensor pays one copy per shot, through the same ledger
    system = chain_sensor(ANNNI, n_chain=4, n_sensors=3, solver="dense")
    params = system.init_params(0)
    sensors = CopyLedger(2, 50)
    outputs = sensor_readout(system, params, ANNNI.sample(2, 1), 50, np.random.default_rng(1), sensors)
    assert outputs.shape == (2, 3) and sensors.spent_exactly()
    assert np.all(np.abs(outputs) <= 1) and np.allclose(outputs * 50, np.round(outputs * 50))
    with pytest.raises(ValueError, match="budget"):
        sensor_readout(system, params, ANNNI.sample(2, 1), 1, np.random.default_rng(1), sensors)


def test_sensor_readout_converges_to_exact_outputs():
    system = chain_sensor(XXZ_FIELD, n_chain=4, n_sensors=3, solver="dense")
    params = system.init_params(2)
    x = XXZ_FIELD.sample(2, 4)
    exact = np.array([system.predict(system.equilibrate(params, row)) for row in x])
    measured = sensor_readout(system, params, x, 200_000, np.random.default_rng(3))
    np.testing.assert_allclose(measured, exact, atol=5 / np.sqrt(200_000))


def test_one_sensor_builder_for_every_chain_task():
    """The registry's "sensor" reads the chain its ``chain`` option names (the TFIM "phases" chain by
    default, ANNNI, XXZ in a field: one builder, comparison.sensor.chain_sensor); the comparison harness
    gives it the task's chain, N_CHAIN sites and cross-entropy on the three-phase tasks, and its
    outputs are the exact <X_s> of the joint ground state."""
    from qeqprop.comparison.phases import phase_sensor
    from qeqprop.comparison.sensor import N_CHAIN, SENSOR_COST
    from qeqprop.comparison.systems import build
    from qeqprop.systems.registry import build as registry_build

    for chain, model in (("phases", None), ("annni", ANNNI), ("xxz_field", XXZ_FIELD)):
        built = registry_build("sensor", 2, 3, 4, chain=chain, solver="dense")
        direct = phase_sensor(4, 3, solver="dense") if model is None else chain_sensor(model, 4, 3, solver="dense")
        assert str(built.hamiltonian) == str(direct.hamiltonian)
        params = built.init_params(1)
        x = model.sample(1, 2)[0] if model else np.array([1.2, 0.6])
        vector = np.linalg.eigh(built.hamiltonian.table.operator(built.hamiltonian.coefficients(params, x)).to_dense())[1][:, 0]
        expected = [np.vdot(vector, kron_pauli(f"X{s}", 7) @ vector).real for s in (4, 5, 6)]
        np.testing.assert_allclose(built.predict(built.equilibrate(params, x)), expected, atol=1e-10)
    for task, n_classes in (("annni", 3), ("xxz_field", 3), ("phases", 2)):
        system, _ = build("sensor", task, 2, n_classes)
        assert system.n_qubits == (N_CHAIN + 3 if n_classes == 3 else 4 + 1)
        assert (type(system.cost_fn).__name__ == "SoftmaxCrossEntropy") == (n_classes == 3)
    assert SENSOR_COST == "cross_entropy"
    with pytest.raises(ValueError, match="chain must be one of"):
        chain_sensor("tfim")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="model must be one of"):
        get_model("tfim")
    with pytest.raises(ValueError, match="shape"):
        ANNNI.labels(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="n_chain"):
        chain_hamiltonian(ANNNI, 2)
    with pytest.raises(ValueError, match="copies"):
        snapshot_features(np.ones((1, 16)) / 4, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="access"):
        copies_curve("annni", access=("oracle",))


def test_tasks_are_registered_in_the_harness():
    from qeqprop.comparison.tasks import TASKS, load_task

    for name in ("annni", "xxz_field"):
        assert name in TASKS
        data = load_task(name)
        assert data.n_classes == 3 and data.x_train.shape[1] == 2
        np.testing.assert_array_equal(data.x_train, load_chain_task(name).x_train)  # seeded: the same points
        assert set(np.unique(data.y_train)) == {0, 1, 2}


def test_copies_pipeline_on_a_tiny_instance(tmp_path):
    result = copies_curve("annni", copies=(4, 64), seeds=2, n_chain=4, n_samples=48, epochs=1, grid=4,
                          solver="dense")
    assert set(result["curves"]) == {"sensor", "snapshots", "snapshots_exact_train", "parameters"}
    for rows in result["curves"].values():
        assert [r["copies"] for r in rows] == [4, 64]
        assert all(0.0 <= v <= 1.0 for r in rows for v in r["values"])
    assert len(result["grid"]["predicted"]["sensor"]) == 16
    # the sensor keeps the epoch of best validation accuracy (a split of the training states, never the test)
    assert all(record["kept_epoch"] == 1 and "val_accuracy" in record and "test_accuracy" not in record
               for history in result["sensor_history"] for record in history)
    assert result["curves"]["parameters"][0]["values"] == result["curves"]["parameters"][1]["values"]  # no copies used
    classical = [copies_curve("annni", copies=(4, 64), seeds=2, n_chain=4, n_samples=48, grid=4,
                              access=("snapshots", "parameters"))["curves"] for _ in range(2)]
    assert classical[0] == classical[1]  # seeded: a rerun is identical
    paths = write_copies_report([result], tmp_path)
    assert json.loads(paths["json"].read_text())[0]["task"] == "annni"
    assert paths["annni_png"].stat().st_size > 0 and paths["annni_pdf"].stat().st_size > 0
    assert "M = 64" in markdown_table(result)


def test_classifier_ignores_features_constant_in_training():
    # the exact m_Z of a Z2-symmetric ground state is zero up to rounding; shot noise at test time
    # must not be blown up by standardisation into the decision
    from qeqprop.comparison.quantum_data import classifier

    rng = np.random.default_rng(0)
    signal = rng.uniform(-1, 1, 200)
    train = np.column_stack([1e-14 * rng.standard_normal(200), signal])
    learner = classifier(0).fit(train, (signal > 0).astype(int))
    test = np.column_stack([0.3 * rng.standard_normal(200), signal])
    assert learner.score(test, (signal > 0).astype(int)) > 0.97
