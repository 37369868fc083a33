"""Saving trained models and systems: the system spec, and the one file container that model files
and checkpoints (qeqprop.checkpoint) share. No pickle anywhere: a saved file holds data, never code.

File container (``write_archive`` / ``read_archive``): one ``.npz`` (zip) archive that
``np.load(path, allow_pickle=False)`` opens; every array is one ``<key>.npy`` member, and the member
``meta.json`` is a UTF-8 JSON document (read it with ``unzip -p FILE meta.json``) that starts with::

    {"format": "qeqprop-model" | "qeqprop-checkpoint", "version": 1, "qeqprop_version": "0.1.0", ...}

A reader refuses another format, a newer version, a pickle file, a corrupt or truncated archive and
a missing file with a ``FileFormatError`` (a ValueError) naming the path.

Model file (``save_model`` / ``load_model``), format "qeqprop-model", version 1::

    params/<name>.npy   one array per trained parameter (np.load key "params/<name>")
    meta.json           {"format", "version", "qeqprop_version",
                         "system": <system spec>, "params": {name: {"shape": [...], "dtype": "float64"}},
                         "metadata": {...}}   (free JSON: training settings, final metrics, ...)

System spec (``system_spec`` / ``system_from_spec``): the constructor call that rebuilds the system::

    {"class": "qeqprop.systems.tfim:TFIMNetwork", "args": {"n_qubits": 3, "graph": "chain", ...}}

Every system derives from ``SystemBase``, which records its constructor's arguments; the spec holds
all of them, with the defaults of the class's own signature filled in (so a file keeps its meaning
when such a default changes). Argument values are JSON, with these tagged objects for what JSON lacks::

    {"__tuple__": [...]}                                           a tuple
    {"__ndarray__": [...nested lists...], "dtype": "float64", "shape": [...]}
                                                                   a numpy array (exact: floats in
                                                                   shortest round-trip form)
    {"__dataclass__": "module:QualName", "fields": {...}}          a qeqprop dataclass (Term, ParamSpec,
                                                                   solver objects such as JaxLanczos)
    {"__hamiltonian__": {"n_qubits", "terms", "params", "n_inputs", "observables"}}
                                                                   a ParametrizedHamiltonian (pauli_system,
                                                                   phase_sensor, SpinSystem(H))
    {"__cost__": "cross_entropy", "args": {"scale": 2.0}}          a registered cost object (a cost equal
                                                                   to the default one is saved by name)

Pauli strings are saved as text ("Z0 X1"), an output observable as its word or its Pauli sum
[[coefficient, "word"], ...] (projectors and PennyLane operators included), graph objects
(networkx) as edge lists. What has no data form (a function or lambda cost, a user-defined class
or solver object) is refused with a ValueError naming the argument. Loading imports only classes of the ``qeqprop`` and ``classical`` packages
(systems must derive from SystemBase), so a file cannot make the loader run other code.

Example:
    >>> import numpy as np, qeqprop as qp, tempfile, pathlib
    >>> from qeqprop.serialization import load_model, save_model, system_spec
    >>> net = qp.TFIMNetwork(3, "chain", n_inputs=1, gamma=0.7)
    >>> system_spec(net)["args"]["gamma"]
    0.7
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> params = net.init_params(0)
    >>> model = load_model(save_model(path, net, params, metadata={"note": "demo"}))
    >>> sorted(np.load(path, allow_pickle=False).files)
    ['meta.json', 'params/J', 'params/W', 'params/b']
    >>> all(np.array_equal(model.params[k], params[k]) for k in params), model.metadata
    (True, {'note': 'demo'})
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1
MODEL_FORMAT = "qeqprop-model"
META = "meta.json"
PACKAGES = ("qeqprop", "classical")
_TAGS = ("__tuple__", "__ndarray__", "__dataclass__", "__hamiltonian__", "__cost__")


class FileFormatError(ValueError):
    """A saved qeqprop file (model or checkpoint) that cannot be read: missing, corrupt, truncated,
    foreign, pickled, or written by a newer qeqprop. ``path`` is the file."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)


# -- plain JSON (history, run settings, metadata) -----------------------------------------------
def plain_json(value: Any, name: str) -> Any:
    """``value`` as plain JSON data: numpy scalars and 0-d arrays become Python numbers, arrays and
    tuples lists; anything else that JSON cannot hold raises ValueError naming ``name`` and the key."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if type(value) in (int, float) else (int(value) if isinstance(value, int) else float(value))
    if isinstance(value, np.generic) or _is_array(value):
        return np.asarray(value).tolist()
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"{name} keys must be strings for JSON, got {bad[0]!r}; convert them with str()")
        return {k: plain_json(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{name}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{name} = {_short(value)} ({type(value).__name__}) is not JSON data (numbers, strings, "
                     "lists, dicts); store a number or string instead")


def _is_array(value: Any) -> bool:
    """numpy arrays and array-likes with a dtype (jax arrays), not lists."""
    return isinstance(value, np.ndarray) or (hasattr(value, "__array__") and hasattr(value, "dtype") and hasattr(value, "shape"))


def _short(value: Any, width: int = 60) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# -- the file container ----------------------------------------------------------------------------
def write_archive(path: str | os.PathLike, file_format: str, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write ``arrays`` and ``meta`` (JSON data) as the container of the module docstring.

    The archive goes to a temporary file in the same folder, is flushed and fsynced, then renamed
    over ``path`` (os.replace, then the folder is fsynced): a process killed at any moment leaves the
    old file or the new one, never half of one."""
    from . import __version__

    path = Path(path)
    header = {"format": file_format, "version": VERSION, "qeqprop_version": __version__}
    document = json.dumps({**header, **meta}, indent=1).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
                archive.writestr(META, document)
                for key, array in arrays.items():
                    with archive.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_archive(path: str | os.PathLike, file_format: str, what: str, fix: str,
                 error: type[FileFormatError] = FileFormatError) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a container written by ``write_archive`` with ``file_format``.

    Args:
        path: the file. what: its kind in messages ("checkpoint", "model file"). fix: what the user
            can do, appended to every message. error: the FileFormatError subclass to raise.

    Raises:
        ``error`` naming ``path`` for a missing, pickled, foreign, corrupt, truncated or newer file.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"no {what} at {path} ({'a folder' if path.exists() else 'no such file'}); {fix}", path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:1] == b"\x80":
        raise error(f"{path} is a pickle file (an old qeqprop checkpoint or another program's data), not a {what}; "
                    f"qeqprop never unpickles files (unpickling can run code); {fix}", path)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise error(f"{path} is not a {what}: not an .npz (zip) archive (it starts with {head!r}); {fix}", path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if META not in archive.files:
                raise error(f"{path} is an .npz archive but not a {what} (no {META} entry); {fix}", path)
            meta = json.loads(bytes(archive[META]).decode())
            if not isinstance(meta, dict):
                raise error(f"{what} {path} is corrupt: {META} holds a {type(meta).__name__}, not an object; {fix}", path)
            if meta.get("format") != file_format:
                raise error(f"{path} is not a {what}: its format is {meta.get('format')!r}, not {file_format!r}; {fix}", path)
            version = meta.get("version")
            if not isinstance(version, int) or version < 1:
                raise ValueError(f"bad format version {version!r}")
            if version > VERSION:
                raise error(f"{path} was written in {what} format version {version} (qeqprop {meta.get('qeqprop_version')}); "
                            f"this qeqprop reads versions up to {VERSION}: upgrade qeqprop to read it", path)
            arrays = {key: archive[key] for key in archive.files if key != META}
    except FileFormatError:
        raise
    except Exception as exc:  # any failure to parse the archive: BadZipFile, CRC, npy header, JSON, object arrays
        raise error(f"{what} {path} is corrupt or truncated ({type(exc).__name__}: {exc}); {fix}", path) from exc
    return meta, arrays


def named_arrays(params: Mapping[str, Any], name: str = "params") -> dict[str, np.ndarray]:
    """{parameter name: numpy array} of a params dict (ValueError naming ``name`` otherwise)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"{name} must be a dict of named arrays, got {type(params).__name__}")  # noqa: TRY004 (house rule)
    arrays = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{name} keys must be non-empty strings, got {key!r}")
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise ValueError(f"{name}[{key!r}] must be a numeric array, got dtype {array.dtype}")
        arrays[key] = array
    return arrays


def array_layout(arrays: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """{name: {"shape": [...], "dtype": "float64"}}: what meta.json says about each array."""
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}


# -- the system spec -------------------------------------------------------------------------------
def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _in_packages(path: str) -> bool:
    return path.partition(":")[0].split(".")[0] in PACKAGES


def _unsaveable(where: str, value: Any, why: str) -> ValueError:
    return ValueError(f"cannot save {where} = {_short(value)}: {why}. A saved file holds data, not code: pass a "
                      "registered name or plain values instead, or keep the code that builds this system and save "
                      "only the params (np.savez)")


def _encode(value: Any, where: str) -> Any:
    """``value`` in the tagged JSON of the module docstring (ValueError naming ``where`` otherwise)."""
    from .costs import COSTS
    from .hamiltonians.parametrized import ParametrizedHamiltonian
    from .hamiltonians.pauli import PauliString

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return plain_json(value, where)
    if _is_array(value):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise _unsaveable(where, value, f"arrays of dtype {array.dtype} are not saved (real numbers, integers, booleans only)")
        return {"__ndarray__": array.tolist(), "dtype": str(array.dtype), "shape": list(array.shape)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str) or k.startswith("__")]
        if bad:
            raise _unsaveable(where, value, f"dict key {bad[0]!r} is not a string (or starts with '__', kept for tags)")
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, PauliString):
        return str(value)
    if isinstance(value, ParametrizedHamiltonian):
        terms = [dataclasses.replace(t, string=PauliString.coerce(t.string)) for t in value.terms]
        observables = [str(pairs[0][0]) if len(pairs) == 1 and pairs[0][1] == 1.0 else [[a, str(p)] for p, a in pairs]
                       for pairs in value.output_sums]
        fields = {"n_qubits": value.n_qubits, "terms": terms, "params": value.param_specs, "n_inputs": value.n_inputs,
                  "observables": observables}
        return {"__hamiltonian__": {k: _encode(v, f"{where}.{k}") for k, v in fields.items()}}
    if type(value) in COSTS.values():
        return _encode_cost(value, where)
    if hasattr(value, "edges") and hasattr(value, "nodes") and not isinstance(value, type):  # a networkx graph
        return [[_encode(i, where), _encode(j, where)] for i, j in value.edges()]
    path = _class_path(type(value))
    if inspect.isroutine(value) or isinstance(value, type):
        raise _unsaveable(where, value, f"it is code ({path})")
    if not _in_packages(path):
        raise _unsaveable(where, value, f"{path} is not a class of the qeqprop or classical packages")
    if dataclasses.is_dataclass(value):
        fields = {f.name: _encode(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": path, "fields": fields}
    raise _unsaveable(where, value, f"no saved form for {path}")


def _encode_cost(cost: Any, where: str) -> Any:
    """A registered cost: its name if it equals the default one, else {"__cost__": name, "args": vars}
    (checked: the class rebuilt from those arguments has the same settings)."""
    settings = {k: _encode(v, f"{where}.{k}") for k, v in vars(cost).items()}
    if settings == {k: _encode(v, where) for k, v in vars(type(cost)()).items()}:
        return cost.name
    try:
        rebuilt = vars(type(cost)(**_decode(settings, where)))
    except TypeError:
        rebuilt = None
    if rebuilt is None or {k: _encode(v, where) for k, v in rebuilt.items()} != settings:
        raise _unsaveable(where, cost, f"{type(cost).__name__}'s settings are not its constructor arguments")
    return {"__cost__": cost.name, "args": settings}


def _import_class(path: Any, where: str) -> type:
    """The class named "module:QualName", only from the qeqprop and classical packages."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"{where} must name a class as 'module:QualName', got {path!r}")
    if not _in_packages(path):
        raise ValueError(f"{where} names {path!r}, outside the qeqprop and classical packages: refused (loading a file "
                         "never imports other code)")
    module, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{where} names {path!r}, which this qeqprop does not have ({exc}); use the qeqprop "
                         "version that wrote the file") from None
    if not isinstance(target, type):
        raise ValueError(f"{where} names {path!r}, which is not a class")  # noqa: TRY004 (a bad spec: ValueError, house rule)
    return target


def _decode(value: Any, where: str) -> Any:
    """The Python value of tagged JSON (inverse of ``_encode``)."""
    if isinstance(value, list):
        return [_decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    tags = [k for k in value if k in _TAGS]
    if not tags:
        return {k: _decode(v, f"{where}.{k}") for k, v in value.items()}
    tag = tags[0]
    if tag == "__tuple__":
        return tuple(_decode(value[tag], where))
    if tag == "__ndarray__":
        return np.array(value[tag], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if tag == "__dataclass__":
        cls = _import_class(value[tag], where)
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{where} names {value[tag]!r}, which is not a dataclass")
        return cls(**_decode(value.get("fields", {}), where))
    if tag == "__hamiltonian__":
        from .hamiltonians.parametrized import ParametrizedHamiltonian

        return ParametrizedHamiltonian(**_decode(value[tag], where))
    from .costs import COSTS

    if value[tag] not in COSTS:
        raise ValueError(f"{where} names cost {value[tag]!r}; this qeqprop has {sorted(COSTS)}")
    return COSTS[value[tag]](**_decode(value.get("args", {}), where))


def system_spec(system: Any) -> dict:
    """The JSON spec {"class": "module:QualName", "args": {...}} that rebuilds ``system`` (module
    docstring): its constructor's arguments as recorded by SystemBase, defaults included.

    Raises:
        ValueError: naming the argument that has no saved form (a lambda or function cost, a user
            class or solver object), or saying why the system itself cannot be saved.
    """
    from .systems.protocol import SystemBase

    cls = type(system)
    path = _class_path(cls)
    if not isinstance(system, SystemBase) or not _in_packages(path):
        raise ValueError(f"system of class {path} cannot be saved: only qeqprop and classical systems (built from their "
                         "classes or builders) have a saved form, and loading a file never runs your code; save the "
                         "params with np.savez and rebuild the system in your script")
    recorded = vars(system).get("_init_arguments")
    if recorded is None:
        raise ValueError(f"system {path} did not record its constructor arguments; build it by calling its class")
    args, kwargs = recorded
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(system, *args, **kwargs)
    except TypeError as exc:
        raise ValueError(f"system {path}: its recorded arguments do not fit its constructor ({exc})") from None
    bound.apply_defaults()
    arguments: dict[str, Any] = {}
    for name, parameter in list(signature.parameters.items())[1:]:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            if bound.arguments[name]:
                raise ValueError(f"system {path} takes *{name}, which a spec cannot name; pass keyword arguments")
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(bound.arguments[name])
        else:
            arguments[name] = bound.arguments[name]
    return {"class": path, "args": {k: _encode(v, f"argument {k!r} of {cls.__name__}") for k, v in arguments.items()}}


def is_later_default(class_path: Any, name: str, value: Any) -> bool:
    """Whether ``value`` (JSON, as a spec records it) is the default of constructor argument ``name``
    of the class ``class_path`` names: an argument the class took after a spec without it was
    written, at its default, describes the same system (a checkpoint written before still resumes).
    False for anything else (an unknown class or argument, one without a default, another value)."""
    try:
        parameter = inspect.signature(_import_class(class_path, "class").__init__).parameters[name]
        default = json.loads(json.dumps(_encode(parameter.default, name)))
    except (ValueError, KeyError, TypeError):
        return False
    return parameter.default is not inspect.Parameter.empty and default == value


def system_from_spec(spec: Mapping[str, Any]):
    """The system a ``system_spec`` describes: ``cls(**args)`` for a SystemBase class of the qeqprop or
    classical packages (any other class is refused, so a spec cannot run other code).

    Raises:
        ValueError: a malformed spec, a class outside those packages, a spec recorded by
            ``run_identity`` for a system that could not be saved.
    """
    from .systems.protocol import SystemBase

    if not isinstance(spec, Mapping) or "class" not in spec:
        raise ValueError(f"spec must be a dict with 'class' and 'args' (from system_spec), got {_short(spec)}")
    if "unsaved" in spec:
        raise ValueError(f"spec of {spec['class']} records a system that could not be saved: {spec['unsaved']}")
    cls = _import_class(spec["class"], "spec['class']")
    if not issubclass(cls, SystemBase):
        raise ValueError(f"spec['class'] names {spec['class']!r}, which is not an EP system (SystemBase subclass)")  # noqa: TRY004
    args = spec.get("args", {})
    if not isinstance(args, Mapping):
        raise ValueError(f"spec['args'] must be a dict of constructor arguments, got {_short(args)}")  # noqa: TRY004
    return cls(**_decode(dict(args), "spec['args']"))


def run_identity(system: Any) -> dict:
    """What a checkpoint records about ``system``: ``system_spec(system)`` where it has one, else
    {"class", "describe": system.describe(), "unsaved": why}. Never raises."""
    try:
        return system_spec(system)
    except Exception as exc:  # noqa: BLE001 (a record, not a check: the reason is kept)
        identity = {"class": _class_path(type(system)), "unsaved": str(exc)}
        try:
            identity["describe"] = plain_json(system.describe(), "describe")
        except Exception as describe_exc:  # noqa: BLE001
            identity["describe"] = f"describe() failed: {describe_exc}"
        return identity


# -- model files -----------------------------------------------------------------------------------
@dataclass
class Model:
    """A trained model read by ``load_model``: the rebuilt system, its parameters and the metadata
    saved with it."""

    system: Any
    params: dict[str, np.ndarray]
    metadata: dict

    def predict(self, X, *, batch_size: int = 128) -> np.ndarray:
        """Outputs (B, n_outputs) for inputs X (B, n_inputs): ``qeqprop.inference.predict``."""
        from .inference import predict

        return predict(self.system, self.params, X, batch_size=batch_size)


def _check_layout(params: Mapping[str, np.ndarray], system: Any) -> str | None:
    """Why ``params`` do not fit ``system`` (names, shapes of its init_params), or None."""
    expected = {k: np.shape(v) for k, v in system.init_params(0).items()}
    got = {k: np.shape(v) for k, v in params.items()}
    if sorted(expected) != sorted(got):
        return f"params are named {sorted(got)}, the system has {sorted(expected)}"
    wrong = [f"{k}: {got[k]} (system: {expected[k]})" for k in expected if got[k] != expected[k]]
    return f"params have the wrong shape: {', '.join(wrong)}" if wrong else None


def save_model(path: str | os.PathLike, system: Any, params: Mapping[str, Any], *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``system`` and its trained ``params`` to the model file ``path`` (module docstring),
    atomically; ``metadata`` is any JSON data (training settings, final metrics).

    The spec is rebuilt before writing, so a file that saves also loads, and ``params`` are checked
    against the system's parameters.

    Returns:
        The path written.

    Raises:
        ValueError: naming the system argument that has no saved form, params that do not fit the
            system, or metadata that is not JSON data.
    """
    spec = system_spec(system)
    arrays = named_arrays(params)
    problem = _check_layout(arrays, system_from_spec(spec))
    if problem:
        raise ValueError(f"params do not fit the system: {problem}; pass the params trained for this system")
    meta = {"system": spec, "params": array_layout(arrays), "metadata": plain_json(dict(metadata or {}), "metadata")}
    return write_archive(path, MODEL_FORMAT, meta, {f"params/{k}": v for k, v in arrays.items()})


def load_model(path: str | os.PathLike) -> Model:
    """The ``Model`` saved by ``save_model`` at ``path``: system rebuilt from its spec, params, metadata.

    Raises:
        FileFormatError: (a ValueError) naming ``path``: missing, not a model file, corrupt,
            truncated, written by a newer qeqprop, or a spec this qeqprop cannot rebuild.
    """
    fix = "pass a file written by qeqprop.save_model"
    meta, arrays = read_archive(path, MODEL_FORMAT, "model file", fix)
    try:
        layout = meta["params"]
        params = {name: arrays[f"params/{name}"] for name in layout}
        system = system_from_spec(meta["system"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"model file {path} cannot be read: {type(exc).__name__}: {exc}; {fix}", path) from exc
    problem = _check_layout(params, system)
    if problem:
        raise FileFormatError(f"model file {path} is inconsistent: {problem}", path)
    return Model(system, params, meta.get("metadata", {}))
