"""Training checkpoints that record the run: atomic, versioned, no pickle.

File format "qeqprop-checkpoint", version 1: the container of qeqprop.serialization (one ``.npz``
zip archive, ``np.load(path, allow_pickle=False)`` opens it) with::

    params/<name>.npy   the parameters (np.load key "params/<name>")
    opt_state/<i>.npy   the optimizer state's leaves, i = 0, 1, ... in jax.tree_util order
    meta.json           {"format": "qeqprop-checkpoint", "version": 1, "qeqprop_version": "0.1.0",
                         "epoch": completed epochs, "step": minibatch index within the epoch
                         (0 at an epoch boundary), "history": [{metric: number or null}, ...],
                         "run": {every training setting and the system spec},
                         "params": {name: {"shape": [...], "dtype": "float64"}},
                         "opt_state": {"leaves": [{"shape", "dtype"}, ...], "treedef": "PyTreeDef(...)"},
                         "solver_schedule": {"free@1e-12": 64, ...}: the batched solver's learned block
                         lengths (BatchedLanczos.schedule; {} when none, and when absent in older files),
                         "system_state": {"ep_free_phases": 12}: the system's run counters
                         (SpinSystem.fit_state; {} when none, and when absent in older files)}

History and run come back as plain JSON values (Python floats, ints, strings, lists, dicts), never
numpy arrays. Writes are atomic (temporary file in the same folder, fsync, os.replace): a run killed
at any moment leaves the previous checkpoint or the new one.

``load_checkpoint(path, run=...)`` refuses to resume a different run: every setting that differs
from the saved ``run`` is named by its dotted path (``system.args.gamma``, ``optimizer``,
``learning_rate``) in a ``CheckpointMismatchError``. A missing, corrupt, truncated, foreign,
pickled or newer file raises ``CheckpointError`` naming the path.

Example:
    >>> import numpy as np, optax, tempfile, pathlib
    >>> from qeqprop.checkpoint import CheckpointMismatchError, load_checkpoint, save_checkpoint
    >>> params = {"J": np.array([0.5, -0.25])}
    >>> optimizer = optax.adam(0.1)
    >>> state = {"params": params, "opt_state": optimizer.init(params), "history": [{"loss": np.float64(0.5)}],
    ...          "epoch": 1, "step": 0, "run": {"optimizer": "adam", "learning_rate": 0.1}}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.npz"
    >>> save_checkpoint(path, state)
    >>> saved = load_checkpoint(path, run=state["run"], opt_state_template=optimizer.init(params))
    >>> saved["history"], saved["epoch"]
    ([{'loss': 0.5}], 1)
    >>> try:
    ...     load_checkpoint(path, run={"optimizer": "sgd", "learning_rate": 0.1})
    ... except CheckpointMismatchError as exc:
    ...     print(str(exc).splitlines()[1:])
    ['  optimizer: saved "adam", now "sgd"', 'use another checkpoint path, or resume=False to start afresh']
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from . import _jax  # noqa: F401  (float64)
from .serialization import (
    FileFormatError,
    array_layout,
    is_later_default,
    named_arrays,
    plain_json,
    read_archive,
    write_archive,
)

logger = logging.getLogger(__name__)

FORMAT = "qeqprop-checkpoint"
KEYS = ("params", "opt_state", "history", "epoch", "step", "run")
_FIX = "use another checkpoint path, or resume=False to start afresh"


class CheckpointError(FileFormatError):
    """A checkpoint that cannot be resumed from: missing, corrupt, truncated, foreign, pickled or
    written by a newer qeqprop (a ValueError; ``path`` is the file)."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint written by a different run. ``differences``: [(dotted key, saved, current)]."""

    def __init__(self, message: str, path, differences: list[tuple[str, Any, Any]]):
        super().__init__(message, path)
        self.differences = differences


def to_numpy(tree: Any) -> Any:
    """Every array leaf of a pytree as a numpy array (host memory; a checkpoint stores numpy arrays)."""
    return jax.tree_util.tree_map(np.asarray, tree)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"state[{name!r}] must be an integer >= 0, got {value!r}")
    return int(value)


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Atomically write a training ``state`` to ``path`` (module docstring).

    Args:
        state: {"params": dict of arrays, "opt_state": optax state pytree, "history": list of
            {metric: number or None}, "epoch": completed epochs, "step": minibatch index within
            the epoch, "run": JSON data describing the run (settings and system spec), and optionally
            "solver_schedule": {name: block length} of the batched solver (``fit`` resumes with it),
            "system_state": the system's run counters, JSON data (``SpinSystem.fit_state``)}.

    Raises:
        ValueError: a missing key, params that are not named numeric arrays, history or run values
            that are not JSON data (naming the key).
    """
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ValueError(f"state is missing {missing}; a checkpoint state has keys {list(KEYS)}")
    params = named_arrays(state["params"], "state['params']")
    leaves, treedef = jax.tree_util.tree_flatten(state["opt_state"])
    leaves = [np.asarray(leaf) for leaf in leaves]
    if not isinstance(state["history"], (list, tuple)):
        raise ValueError(f"state['history'] must be a list of per-epoch records, got {type(state['history']).__name__}")  # noqa: TRY004
    meta = {
        "epoch": _count(state["epoch"], "epoch"),
        "step": _count(state["step"], "step"),
        "history": plain_json(state["history"], "history"),
        "run": plain_json(state["run"], "run"),
        "params": array_layout(params),
        "opt_state": {"leaves": list(array_layout(dict(enumerate(leaves))).values()), "treedef": str(treedef)},
        "solver_schedule": _schedule(state.get("solver_schedule", {})),
        "system_state": _system_state(state.get("system_state", {})),
    }
    arrays = {f"params/{k}": v for k, v in params.items()} | {f"opt_state/{i}": v for i, v in enumerate(leaves)}
    write_archive(path, FORMAT, meta, arrays)


def _schedule(schedule: Any) -> dict[str, int]:
    """A solver schedule {name: positive int} as JSON data (ValueError naming it otherwise)."""
    if not isinstance(schedule, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for k, v in schedule.items()):
        raise ValueError(f"state['solver_schedule'] must map names to positive integers (block lengths), got {schedule!r}")
    return {k: int(v) for k, v in schedule.items()}


def _system_state(state: Any) -> dict:
    """A system's run counters {name: JSON data} (ValueError naming them otherwise)."""
    if not isinstance(state, Mapping):
        raise ValueError(f"state['system_state'] must be a dict of the system's run counters, got {state!r}")  # noqa: TRY004
    return plain_json(dict(state), "system_state")


def _unwrap(value: Any) -> Any:
    """A saved value as nested dicts and lists for comparison: tagged tuples as lists, dataclasses,
    Hamiltonians and costs as dicts of their fields (qeqprop.serialization's tags)."""
    if isinstance(value, dict):
        if "__tuple__" in value:
            return value["__tuple__"]
        if "__dataclass__" in value:
            return {"class": value["__dataclass__"], **value.get("fields", {})}
        if "__hamiltonian__" in value:
            return value["__hamiltonian__"]
        if "__cost__" in value:
            return {"name": value["__cost__"], **value.get("args", {})}
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality with NaN equal to NaN (a recorded NaN setting is the same setting)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):  # JSON true is not 1
        return a is b
    return a == b


class _Text(str):
    """A description printed as is in mismatch messages (other values print as JSON)."""


_MISSING = _Text("<not set>")


def differences(saved: Any, current: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """[(dotted key, saved value, current value)] for every leaf where two JSON documents differ;
    lists of equal length compare item by item (``key[i]``), tagged values by their fields. A system
    spec's constructor argument that the saved spec lacks and the current one has at its default (a
    class that took the argument after the file was written: serialization.is_later_default) is no
    difference: the same system, logged at INFO."""
    saved, current = _unwrap(saved), _unwrap(current)
    if isinstance(saved, dict) and isinstance(current, dict) and "__ndarray__" not in saved:
        current = _without_later_defaults(saved, current, key)
        found = []
        for name in list(saved) + [k for k in current if k not in saved]:
            sub = f"{key}.{name}" if key else name
            found += differences(saved.get(name, _MISSING), current.get(name, _MISSING), sub)
        return found
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [d for i, (a, b) in enumerate(zip(saved, current)) for d in differences(a, b, f"{key}[{i}]")]
    return [] if _same(saved, current) else [(key or "run", saved, current)]


def _without_later_defaults(saved: dict, current: dict, key: str) -> dict:
    """``current`` without the constructor arguments that a saved system spec of the same class lacks
    and ``current`` has at their defaults (``differences``)."""
    if not (isinstance(saved.get("args"), dict) and isinstance(current.get("args"), dict)
            and saved.get("class") == current.get("class")):
        return current
    later = [name for name, value in current["args"].items()
             if name not in saved["args"] and is_later_default(current["class"], name, value)]
    for name in later:
        logger.info("checkpoint: %s.args.%s is not in the saved run (written before %s took it); it is at its "
                    "default, so the run is the same", key or "run", name, current["class"])
    return {**current, "args": {k: v for k, v in current["args"].items() if k not in later}} if later else current


def _describe(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, _Text) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _layout_mismatch(pairs: list[tuple[str, np.ndarray, Any]]) -> list[tuple[str, str, str]]:
    """[(key, saved "dtype[shape]", current "dtype[shape]")] where a saved array and a template leaf differ."""
    found = []
    for key, a, b in pairs:
        shape, dtype = np.shape(b), np.dtype(b.dtype) if hasattr(b, "dtype") else np.asarray(b).dtype
        if a.shape != shape or a.dtype != dtype:
            found.append((key, _Text(f"{a.dtype}{list(a.shape)}"), _Text(f"{dtype}{list(shape)}")))
    return found


def load_checkpoint(path: str | os.PathLike, *, run: Mapping[str, Any] | None = None,
                    params_template: Mapping[str, Any] | None = None, opt_state_template: Any = None) -> dict:
    """The state saved by ``save_checkpoint``: {"params", "opt_state", "history", "epoch", "step", "run",
    "solver_schedule", "system_state"} (each {} for a file written without one).

    Args:
        run: the current run's description; any difference from the saved run is refused.
        params_template: the current params; saved names and shapes must match.
        opt_state_template: the current optimizer's initial state; the saved leaves are put back
            into its tree structure (count, shapes and dtypes must match). Without it,
            ``opt_state`` is the list of saved leaves.

    Raises:
        CheckpointError: (a ValueError) the file is missing, corrupt, truncated, foreign, pickled or
            from a newer qeqprop; the message names the path.
        CheckpointMismatchError: the saved run, params or optimizer state differ from ``run``,
            ``params_template`` or ``opt_state_template``; the message names every differing key.
    """
    meta, arrays = read_archive(path, FORMAT, "checkpoint", _FIX, CheckpointError)
    try:
        params = {name: arrays[f"params/{name}"] for name in meta["params"]}
        leaves = [arrays[f"opt_state/{i}"] for i in range(len(meta["opt_state"]["leaves"]))]
        state = {"params": params, "opt_state": leaves, "history": list(meta["history"]),
                 "epoch": _count(meta["epoch"], "epoch"), "step": _count(meta["step"], "step"), "run": meta["run"],
                 "solver_schedule": _schedule(meta.get("solver_schedule", {})),
                 "system_state": _system_state(meta.get("system_state", {}))}
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt: {type(exc).__name__}: {exc}; {_FIX}", path) from exc

    found = []
    if run is not None:
        found += differences(meta["run"], json.loads(json.dumps(plain_json(run, "run"))))
    if params_template is not None:
        if sorted(params_template) != sorted(params):
            found.append(("params", sorted(params), sorted(params_template)))
        else:
            found += _layout_mismatch([(f"params.{k}", params[k], v) for k, v in params_template.items()])
    template_leaves, treedef = jax.tree_util.tree_flatten(opt_state_template)
    if opt_state_template is not None:
        if len(template_leaves) != len(leaves):
            found.append(("optimizer", _Text(f"{len(leaves)} state arrays"), _Text(f"{len(template_leaves)} state arrays")))
        else:
            found += _layout_mismatch([(f"optimizer[{i}]", a, b) for i, (a, b) in enumerate(zip(leaves, template_leaves))])
    if found:
        lines = "\n".join(f"  {key}: saved {_describe(a)}, now {_describe(b)}" for key, a, b in found)
        raise CheckpointMismatchError(f"checkpoint {path} was written by a different run (resuming would train a mix of "
                                      f"two runs):\n{lines}\n{_FIX}", path, found)
    if opt_state_template is not None:
        state["opt_state"] = jax.tree_util.tree_unflatten(treedef, leaves)
    return state
