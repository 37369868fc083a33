"""Predictions of a trained system: the free-phase outputs o(x) = (<O_1>, ..., <O_m>) at s_0(theta, x).

Samples are equilibrated in chunks of ``batch_size`` through the system's batch view
(``system.batch_view``), the same chunked loop that ``train.evaluate`` reads its metrics from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .systems.protocol import BatchSystem, EnergySystem
from .validation import as_finite_array, check_int

EVAL_CHUNK = 128  # samples equilibrated together by ``predict`` and ``train.evaluate``

def check_inputs(system: EnergySystem, X, name: str = "X") -> np.ndarray:
    """X as a float64 array (n, n_inputs): 2-D, real, finite, with the system's input count."""
    array = np.asarray(X)  # complex values: refused by as_finite_array, naming X
    if array.ndim != 2 or array.shape[1] != system.n_inputs:
        raise ValueError(f"{name} must have shape (n_samples, {system.n_inputs}) for this system's n_inputs="
                         f"{system.n_inputs}, got shape {array.shape}; reshape one sample x to x[None, :]")
    return as_finite_array(name, array)


def equilibrate_chunks(system: EnergySystem, params, X: np.ndarray, batch_size: int = EVAL_CHUNK,
                       gaps: bool = True) -> Iterator[tuple[BatchSystem, Any, slice]]:
    """Free states s_0(theta, x) of X in chunks: yields (batch view, its states, the chunk's slice of X);
    ``gaps`` False: the views may skip the free phases' gaps (BatchSystem's ``free_gaps``)."""
    batch_size = check_int("batch_size", batch_size)
    for begin in range(0, len(X), batch_size):
        chunk = slice(begin, min(begin + batch_size, len(X)))
        view = system.batch_view(chunk.stop - chunk.start)
        if not gaps and hasattr(view, "free_gaps"):
            view.free_gaps = False
        yield view, view.equilibrate(params, X[chunk]), chunk


def predict(system: EnergySystem, params, X, *, batch_size: int = EVAL_CHUNK) -> np.ndarray:
    """Model outputs for every row of X: an array (n_samples, n_outputs) of free-phase expectations.

    For classification, ``datasets.decode_outputs`` turns them into classes (sign of a single
    output, argmax of several). Only outputs are returned, so batched Lanczos solves no gaps here
    (a third fewer H applications; the DegenerateGroundStateWarning of a near-degenerate free
    state comes from EP and ``train.evaluate``, or here too with a SpinSystem's gap_check="all").

    Args:
        system: any EnergySystem; params: its parameters (e.g. ``fit(...).params``).
        X: inputs (n_samples, n_inputs), real and finite.
        batch_size: samples equilibrated together.

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> from qeqprop.inference import predict
        >>> net = qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2])
        >>> predict(net, net.init_params(0), np.zeros((5, 2))).shape
        (5, 1)
    """
    X = check_inputs(system, X)
    outputs = [view.predict(states) for view, states, _ in equilibrate_chunks(system, params, X, batch_size, gaps=False)]
    return np.concatenate(outputs) if outputs else np.empty((0, system.n_outputs))
