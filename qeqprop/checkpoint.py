"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then rename,
so a run killed at any moment leaves either the old or the new checkpoint, never half."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np


def to_numpy(tree: Any) -> Any:
    """Every array leaf of a pytree as a numpy array (jax arrays pickle device-bound)."""
    return jax.tree_util.tree_map(np.asarray, tree)


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write ``payload`` (pickled, arrays as numpy) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(to_numpy(payload), handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (only load files you wrote: pickle)."""
    with open(path, "rb") as handle:
        return pickle.load(handle)
