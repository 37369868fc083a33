"""Readouts: how the states of a phase become the numbers EP combines.

A readout turns the exact states of a batch into measured ones of the same type, so a system's
``nudge`` and ``energy_grad`` run unchanged on either, and reports the standard error of the
gradient it leads to::

    Exact()                         the identity: exact expectation values, no error
    Shots(shots, seed=None, ...)    every planned Pauli string estimated from ``shots`` simulated
                                    shots per phase and sample, with covariances (qeqprop.measurement)

``readout.start(system, X, free, rng)`` binds a readout to one EP call (the measurement plan is
fixed from the inputs and, for variance allocation, the free states) and returns a
``Measurement`` with ``measure(states)`` and ``gradient_covariance({weight: measured})``.
"""

from .exact import Exact, ExactMeasurement, Measurement, Readout
from .shots import ShotMeasurement, Shots

__all__ = ["Exact", "ExactMeasurement", "Measurement", "Readout", "ShotMeasurement", "Shots"]
