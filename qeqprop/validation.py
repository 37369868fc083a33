"""Input checks shared by every module: each raises ValueError naming the argument and the fix."""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np


def as_finite_array(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array after checking that it is real, its shape and finiteness.

    Complex input is refused (numpy would drop the imaginary part with only a ComplexWarning):
    parameters, inputs and targets of an energy-based model are real numbers.
    """
    try:
        raw = np.asarray(value)
        array = None if raw.dtype.kind == "c" else np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real numeric array: {exc}") from None
    if array is None:
        raise ValueError(f"{name} is complex (dtype {raw.dtype}); it must be real: pass np.real({name}) "
                         "if its imaginary part is meant to be zero")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); pass finite numbers")
    return array


def check_int(name: str, value, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def per_item(name: str, value, count: int, what: str) -> np.ndarray:
    """A scalar broadcast to (count,), or an array of that shape (ValueError naming ``name``)."""
    if np.ndim(value) == 0:
        value = np.full(count, value, dtype=float)
    return as_finite_array(f"{name} (one per {what})", value, (count,))


def check_params(params: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Check a parameter pytree (dict of arrays) against the expected names and shapes."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of arrays with keys {sorted(shapes)}, got {type(params).__name__}")
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes))
    if missing or extra:
        raise ValueError(f"params keys must be {sorted(shapes)}; missing {missing}, unexpected {extra}")
    return {name: as_finite_array(f"params[{name!r}]", params[name], shapes[name]) for name in shapes}


def check_positive_float(name: str, value, hint: str = "") -> float:
    """A finite float > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number{hint}, got {value!r}") from None
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0{hint}, got {value}")
    return value


def check_beta(beta: float) -> float:
    """EP needs a finite nudge strength beta > 0 (the estimator picks the sign)."""
    return check_positive_float("beta", beta, hint=" (e.g. 1e-2; the estimator chooses the sign)")


def available_memory_bytes() -> int:
    """Memory the process may still use: MemAvailable from /proc/meminfo, else physical pages."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_state_memory(n_qubits: int, itemsize: int, n_vectors: int, what: str = "the solver", held_bytes: int = 0) -> None:
    """Refuse a qubit count whose working set of state vectors exceeds available memory; ``held_bytes``
    of it the process holds already and reuses or frees first (a solver's kept Krylov basis), so they
    count as available."""
    need = (1 << n_qubits) * itemsize * n_vectors
    have = available_memory_bytes() + int(held_bytes)
    if need > have:
        raise ValueError(
            f"n_qubits={n_qubits}: {what} needs about {need / 2**30:.2f} GiB "
            f"({n_vectors} state vectors of 2^{n_qubits} x {itemsize} bytes) but only "
            f"{have / 2**30:.2f} GiB is available; use fewer qubits"
        )


def check_index_list(name: str, indices, size: int, default, kind: str = "qubit") -> list[int]:
    """Distinct integer indices in 0..size-1 (``default`` when ``indices`` is None)."""
    indices = list(default if indices is None else indices)
    for index in indices:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < size:
            raise ValueError(f"{name}: {kind} index {index!r} out of range 0..{size - 1}")
    if len(set(indices)) != len(indices):
        raise ValueError(f"{name} has repeated {kind}s: {indices}")
    return [int(i) for i in indices]


def check_temperature(temperature: float, positive: bool = False) -> float:
    """T >= 0 (0 is the ground state), or T > 0 with ``positive`` (Gibbs-state solvers)."""
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number, got {temperature!r}") from None
    if not np.isfinite(temperature) or temperature < 0.0 or (positive and temperature == 0.0):
        bound = "> 0 (use ground states at temperature=0)" if positive else ">= 0 (0 is the ground state)"
        raise ValueError(f"temperature must be a finite number {bound}, got {temperature}")
    return temperature
