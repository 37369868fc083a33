"""Model files and checkpoints (qeqprop.serialization, qeqprop.checkpoint): identical predictions
after a save/load round trip for every registered system, bitwise checkpoints whose history stays
JSON (the resumed-run crash, issue 17 D1), clear errors for bad files and mismatching resumes."""

import doctest
import json
import pickle
import zipfile

import jax
import numpy as np
import optax
import pytest

import qeqprop as qp
from qeqprop import checkpoint, serialization
from qeqprop.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from qeqprop.costs import FunctionCost, SoftmaxCrossEntropy
from qeqprop.hamiltonians import learner
from qeqprop.hamiltonians.observables import projector
from qeqprop.hamiltonians.parametrized import ParamSpec, Term
from qeqprop.inference import predict
from qeqprop.serialization import (
    FileFormatError,
    load_model,
    run_identity,
    save_model,
    system_from_spec,
    system_spec,
)
from qeqprop.solvers import GroundStateSolver
from qeqprop.solvers.auto import Auto
from qeqprop.solvers.lanczos import Arpack
from qeqprop.systems.registry import REGISTRY, build
from qeqprop.systems.spin import pauli_system

# (n_inputs, n_outputs, hidden, options): small, with non-default options where the system has them
REGISTERED = {
    "tfim": (2, 1, 2, {"graph": "chain", "gamma": 0.8, "train_gamma": True}),
    "tfim_chain": (1, 1, 2, {"j_init": 0.8, "gamma": 0.9}),
    "tfim_sites": (3, 2, 4, {"j_init": 0.3, "gamma": 0.9}),
    "xxz": (2, 1, 2, {"delta": 0.5, "train_delta": True}),
    "variational_tfim": (1, 1, 1, {"depth": 1}),
    "qho": (2, 1, 2, {"hbar": 0.5, "temperature": 0.1}),
    "sensor": (2, 1, 2, {}),
    "hopfield": (2, 1, 3, {}),
    "conv_hopfield": (36, 2, 2, {"tol": 1e-11}),
    "resistive": (2, 1, 3, {}),
    "flow": (2, 1, 3, {}),
    "phase_oscillators": (2, 1, 2, {}),
    "ising": (2, 1, 2, {"temperature": 0.5}),
    "elastic": (2, 1, 2, {"graph": "chain"}),
}


def assert_round_trip(system, tmp_path, n_inputs):
    params = system.init_params(3)
    X = np.random.default_rng(1).uniform(0.2, 1.5, size=(3, n_inputs))
    expected = predict(system, params, X, batch_size=2)
    path = save_model(tmp_path / "model.npz", system, params, metadata={"epochs": 3, "loss": np.float64(0.25)})
    model = load_model(path)
    assert type(model.system) is type(system)
    assert system_spec(model.system) == system_spec(system)
    assert model.params.keys() == params.keys()
    assert all(np.array_equal(model.params[k], params[k]) and model.params[k].dtype == params[k].dtype for k in params)
    assert model.metadata == {"epochs": 3, "loss": 0.25} and type(model.metadata["loss"]) is float
    assert np.array_equal(model.predict(X, batch_size=2), expected)


def test_every_registered_system_is_covered():
    assert set(REGISTERED) == set(REGISTRY)


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == "variational_tfim" else name
                                  for name in sorted(REGISTERED)])  # variational: ~9 s PennyLane import + ~8 s jit per system
def test_model_round_trip_gives_identical_predictions(name, tmp_path):
    n_inputs, n_outputs, hidden, options = REGISTERED[name]
    assert_round_trip(build(name, n_inputs, n_outputs, hidden, **options), tmp_path, n_inputs)


def test_model_round_trip_pauli_system(tmp_path):
    terms = [Term("X0 X1", param="J", index=(0,)), Term("Y1 Y2", param="J", index=(1,)), Term({0: "Z", 2: "X"}, weight=0.5),
             Term("Z0", input=0), Term("Z2", -0.3, "W", (0, 1), input=1), Term("X0"), Term("X1", 0.7), Term("X2")]
    system = pauli_system(3, terms, {"J": ParamSpec((2,), std=0.5), "W": (1, 2)}, outputs=["Z2", projector("01", (0, 1))], n_inputs=2,
                          cost=SoftmaxCrossEntropy(scale=2.0), solver=Auto(dense_max_qubits=2, krylov=Arpack()), gap_tol=1e-7)
    spec = system_spec(system)
    assert spec["args"]["cost"] == {"__cost__": "cross_entropy", "args": {"scale": 2.0}}
    hamiltonian = spec["args"]["hamiltonian"]["__hamiltonian__"]
    assert hamiltonian["terms"][2]["fields"]["string"] == "Z0 X2"
    assert hamiltonian["observables"] == ["Z2", [[0.25, "I"], [0.25, "Z0"], [-0.25, "Z1"], [-0.25, "Z0 Z1"]]]
    assert_round_trip(system, tmp_path, 2)


def test_model_round_trip_hamiltonian_learner(tmp_path):
    H = {"Z0 Z1": -1.0, "Z1 Z2": -1.0, "X0": -0.8, "X1": -0.8, "X2": -0.7, "Z0": 0.3}
    system = learner(H, trainable={"J": ["Z0 Z1", "Z1 Z2"], "h": ["X0", "X1", "X2"]}, inputs={0: ["Z0"]},
                     outputs=["Z2", projector("10", (1, 2))], input_weights="w")
    assert_round_trip(system, tmp_path, 1)
    assert str(load_model(tmp_path / "model.npz").system.hamiltonian) == str(system.hamiltonian)


def test_model_round_trip_user_tfim_with_options(tmp_path):
    nx = pytest.importorskip("networkx")
    graph = nx.cycle_graph(4)
    system = qp.TFIMNetwork(4, graph, n_inputs=2, output_qubits=[1, 3], input_mode="fields", input_qubits=(0, 2),
                            input_scale=0.7, gamma=np.array([0.9, 1.1, 0.8, 1.2]), train_gamma=True, init_std=0.3,
                            cost=SoftmaxCrossEntropy(), solver="lanczos", tol=1e-13)
    args = system_spec(system)["args"]
    assert args["graph"] == [[0, 1], [0, 3], [1, 2], [2, 3]]
    assert args["gamma"] == {"__ndarray__": [0.9, 1.1, 0.8, 1.2], "dtype": "float64", "shape": [4]}
    assert args["input_qubits"] == {"__tuple__": [0, 2]} and args["cost"] == "cross_entropy"
    assert_round_trip(system, tmp_path, 2)


class MySolver(GroundStateSolver):
    name = "mine"

    def solve(self, operator, init=None, tol=1e-12, with_gap=True):
        return Arpack().solve(operator, init, tol, with_gap)

    def working_set(self, n_qubits, itemsize=8):
        return 20


def test_unsaveable_arguments_are_named(tmp_path):
    system = qp.TFIMNetwork(3, cost=FunctionCost(lambda o, y: ((o - y) ** 2).sum()))
    with pytest.raises(ValueError, match=r"cannot save argument 'cost' of TFIMNetwork = .*FunctionCost"):
        save_model(tmp_path / "m.npz", system, system.init_params(0))
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(ValueError, match=r"argument 'solver' of TFIMNetwork .*MySolver is not a class of the qeqprop"):
        system_spec(qp.TFIMNetwork(3, solver=MySolver()))
    with pytest.raises(ValueError, match=r"argument 'graph' of TFIMNetwork\[0\] = range"):
        system_spec(qp.TFIMNetwork(3, [range(2)]))

    class Mine(qp.TFIMNetwork):
        pass

    with pytest.raises(ValueError, match=r"class test_persistence:.*Mine cannot be saved"):
        system_spec(Mine(3))
    identity = run_identity(system)
    assert identity["class"] == "qeqprop.systems.tfim:TFIMNetwork" and "argument 'cost'" in identity["unsaved"]
    assert identity["describe"] == {"name": "TFIMNetwork", "units": 3, "unit": "qubits"}
    json.dumps(identity)
    with pytest.raises(ValueError, match="could not be saved"):
        system_from_spec(identity)
    net = qp.TFIMNetwork(3, n_inputs=1)
    with pytest.raises(ValueError, match=r"params have the wrong shape: W: \(2, 3\) \(system: \(1, 3\)\)"):
        save_model(tmp_path / "m.npz", net, {**net.init_params(0), "W": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"metadata.fn = .* is not JSON data"):
        save_model(tmp_path / "m.npz", net, net.init_params(0), metadata={"fn": print})


def test_spec_never_imports_other_code():
    spec = system_spec(qp.TFIMNetwork(2))
    for bad in ({"class": "subprocess:Popen", "args": {}}, {"class": "qeqprop.costs:SquaredError", "args": {}}):
        with pytest.raises(ValueError, match="refused|not an EP system"):
            system_from_spec(bad)
    spec["args"]["solver"] = {"__dataclass__": "os:stat_result", "fields": {}}
    with pytest.raises(ValueError, match="'os:stat_result', outside the qeqprop and classical packages: refused"):
        system_from_spec(spec)


def adam_state():
    params = {"J": np.array([0.5, -0.25, 1e-300]), "W": np.arange(6.0).reshape(2, 3) / 7}
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)
    for _ in range(3):  # a state with nonzero moments and count
        grads = {k: np.sin(v + 1.0) for k, v in params.items()}
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = checkpoint.to_numpy(optax.apply_updates(params, updates))
    run = {"system": run_identity(qp.TFIMNetwork(3, gamma=0.8)), "optimizer": "adam", "learning_rate": 0.05, "epochs": 4}
    history = [{"epoch": 1, "train_loss": np.float64(0.5), "test_accuracy": np.asarray(0.75), "gap": np.float32(0.125),
                "test_loss": None}]
    return {"params": params, "opt_state": opt_state, "history": history, "epoch": 1, "step": 2, "run": run}, optimizer


def test_checkpoint_round_trip_is_bitwise_and_history_is_json(tmp_path):
    state, optimizer = adam_state()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, state)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary file left
    template = optimizer.init(state["params"])
    saved = load_checkpoint(path, run=state["run"], params_template=state["params"], opt_state_template=template)
    assert set(saved) == {"params", "opt_state", "history", "epoch", "step", "run", "solver_schedule", "system_state"}
    assert saved["solver_schedule"] == {}  # none given (a file without one reads the same)
    save_checkpoint(path, {**state, "solver_schedule": {"free@1e-12": np.int64(40)}})
    assert load_checkpoint(path)["solver_schedule"] == {"free@1e-12": 40}
    with pytest.raises(ValueError, match="solver_schedule"):
        save_checkpoint(path, {**state, "solver_schedule": {"free@1e-12": -8}})
    assert saved["system_state"] == {}  # the system's run counters: none given (a file without them reads the same)
    save_checkpoint(path, {**state, "system_state": {"ep_free_phases": np.int64(12)}})
    assert load_checkpoint(path)["system_state"] == {"ep_free_phases": 12}
    with pytest.raises(ValueError, match="system_state"):
        save_checkpoint(path, {**state, "system_state": [12]})
    save_checkpoint(path, state)
    for k, v in state["params"].items():
        assert saved["params"][k].tobytes() == v.tobytes() and saved["params"][k].dtype == v.dtype
    assert jax.tree_util.tree_structure(saved["opt_state"]) == jax.tree_util.tree_structure(state["opt_state"])
    for a, b in zip(jax.tree_util.tree_leaves(saved["opt_state"]), jax.tree_util.tree_leaves(state["opt_state"])):
        assert np.asarray(a).dtype == np.asarray(b).dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    record = saved["history"][0]
    assert record == {"epoch": 1, "train_loss": 0.5, "test_accuracy": 0.75, "gap": 0.125, "test_loss": None}
    assert [type(record[k]) for k in ("epoch", "train_loss", "test_accuracy", "gap")] == [int, float, float, float]
    json.dumps(saved["history"])  # issue 17 D1: a resumed history crashed json.dumps
    assert (saved["epoch"], saved["step"]) == (1, 2) and saved["run"] == json.loads(json.dumps(state["run"]))
    # the optimizer continues exactly as from the original state
    grads = {k: np.cos(v) for k, v in state["params"].items()}
    a, _ = optimizer.update(grads, state["opt_state"], state["params"])
    b, _ = optimizer.update(grads, saved["opt_state"], saved["params"])
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(bytes(archive["meta.json"]))["format"] == "qeqprop-checkpoint"
        assert np.array_equal(archive["params/J"], state["params"]["J"])


def test_bad_checkpoint_files_name_the_path(tmp_path):
    state, _ = adam_state()
    good = tmp_path / "good.npz"
    save_checkpoint(good, state)
    data = good.read_bytes()
    files = {
        "random.npz": (np.random.default_rng(0).bytes(2000), "not an .npz"),
        "truncated.npz": (data[: len(data) // 2], "corrupt or truncated"),
        "text.npz": (b"epoch = 3\n", "not an .npz"),
    }
    for name, (content, why) in files.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    files["foreign.npz"] = (None, r"not a checkpoint \(no meta.json entry\)")
    files["missing.npz"] = (None, "no checkpoint at")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # a bit flip inside an array member: the zip CRC catches it
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    files["flipped.npz"] = (None, "corrupt or truncated")
    for name, (_, why) in files.items():
        with pytest.raises(CheckpointError, match=why) as info:
            load_checkpoint(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and info.value.path == tmp_path / name
        assert "resume=False" in str(info.value)


class Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('UNPICKLED').write_text('ran')",))


def test_pickle_file_is_refused_never_unpickled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoint.pkl").write_bytes(pickle.dumps({"payload": Boom()}, protocol=4))
    with pytest.raises(CheckpointError, match="is a pickle file.*never unpickles"):
        load_checkpoint(tmp_path / "checkpoint.pkl")
    with pytest.raises(FileFormatError, match="is a pickle file"):
        load_model(tmp_path / "checkpoint.pkl")
    assert not (tmp_path / "UNPICKLED").exists()


def test_model_and_checkpoint_formats_do_not_mix_and_newer_versions_are_refused(tmp_path):
    state, _ = adam_state()
    save_checkpoint(tmp_path / "c.npz", state)
    net = qp.TFIMNetwork(2)
    save_model(tmp_path / "m.npz", net, net.init_params(0))
    with pytest.raises(FileFormatError, match="is not a model file: its format is 'qeqprop-checkpoint'"):
        load_model(tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match="is not a checkpoint: its format is 'qeqprop-model'"):
        load_checkpoint(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as source, zipfile.ZipFile(tmp_path / "new.npz", "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "meta.json":
                content = json.dumps({**json.loads(content), "version": 2, "qeqprop_version": "9.0"}).encode()
            target.writestr(item, content)
    with pytest.raises(FileFormatError, match=r"new.npz was written in model file format version 2 \(qeqprop 9.0\); "
                                              r"this qeqprop reads versions up to 1"):
        load_model(tmp_path / "new.npz")


def test_mismatching_resume_names_every_differing_setting(tmp_path):
    state, _ = adam_state()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, state)
    run = {**state["run"], "system": run_identity(qp.TFIMNetwork(3, gamma=0.5)), "optimizer": "sgd", "learning_rate": 0.1}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(path, run=run)
    assert [key for key, _, _ in info.value.differences] == ["system.args.gamma", "optimizer", "learning_rate"]
    message = str(info.value)
    for line in ("system.args.gamma: saved 0.8, now 0.5", 'optimizer: saved "adam", now "sgd"', "learning_rate: saved 0.05, now 0.1",
                 "use another checkpoint path, or resume=False"):
        assert line in message
    assert str(path) in message
    with pytest.raises(CheckpointMismatchError, match=r"epochs: saved 4, now <not set>\n  seed: saved <not set>, now 1"):
        load_checkpoint(path, run={**{k: v for k, v in state["run"].items() if k != "epochs"}, "seed": 1})
    with pytest.raises(CheckpointMismatchError, match=r"params.W: saved float64\[2, 3\], now float64\[3, 3\]\n"):
        load_checkpoint(path, params_template={**state["params"], "W": np.zeros((3, 3))})
    with pytest.raises(CheckpointMismatchError, match=r"optimizer: saved 5 state arrays, now 2 state arrays"):
        load_checkpoint(path, opt_state_template=optax.sgd(0.1, momentum=0.9).init(state["params"]))
    with pytest.raises(CheckpointMismatchError, match=r"optimizer\[0\]: saved int32\[\], now float64\[\]"):
        load_checkpoint(path, opt_state_template=(np.float64(0.0), state["params"], state["params"]))


def test_a_checkpoint_written_before_an_argument_existed_resumes_at_its_default(tmp_path, caplog):
    """A plain SpinSystem's spec records every constructor argument, so one the class took later
    (gap_check) is missing from older checkpoints: at its default the run is the same (resumed, the
    argument logged); at another value, or for an argument without a default, it is a difference."""
    terms = [Term("Z0 Z1", param="J", index=(0,)), Term("Z0", input=0), Term("X0"), Term("X1")]
    system = pauli_system(2, terms, {"J": ParamSpec((1,), std=0.5)}, outputs=["Z1"], n_inputs=1)
    state, _ = adam_state()
    current = run_identity(system)
    old = {**current, "args": {k: v for k, v in current["args"].items() if k != "gap_check"}}
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {**state, "run": {**state["run"], "system": old}})
    with caplog.at_level("INFO", logger="qeqprop.checkpoint"):
        load_checkpoint(path, run={**state["run"], "system": current})
    assert "system.args.gap_check is not in the saved run" in caplog.text
    other = run_identity(pauli_system(2, terms, {"J": ParamSpec((1,), std=0.5)}, outputs=["Z1"], n_inputs=1, gap_check="none"))
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(path, run={**state["run"], "system": other})
    assert [key for key, _, _ in info.value.differences] == ["system.args.gap_check"]
    assert serialization.is_later_default(current["class"], "gap_check", "ep")
    assert not serialization.is_later_default(current["class"], "hamiltonian", current["args"]["hamiltonian"])  # no default
    assert not serialization.is_later_default(current["class"], "no_such_argument", 1)
    assert not serialization.is_later_default("os:path", "gap_check", "ep")  # outside the packages: refused


def test_checkpoint_state_is_checked(tmp_path):
    state, _ = adam_state()
    with pytest.raises(ValueError, match=r"state is missing \['step'\]"):
        save_checkpoint(tmp_path / "c.npz", {k: v for k, v in state.items() if k != "step"})
    with pytest.raises(ValueError, match=r"run.system_object = .* is not JSON data"):
        save_checkpoint(tmp_path / "c.npz", {**state, "run": {"system_object": qp.TFIMNetwork(2)}})
    assert not (tmp_path / "c.npz").exists()


@pytest.mark.parametrize("module", [checkpoint, serialization])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
