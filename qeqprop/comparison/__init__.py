"""Quantum-vs-classical comparison: tasks, sized systems, equal tuning, intervals, jobs, the harness, and its reports."""

from .chains import ANNNI, XXZ_FIELD, ChainModel
from .harness import ComparisonReport, compare
from .phases import load_phases, order_parameter, phase_labels, phase_sensor
from .quantum_data import chain_sensor, copies_curve, load_chain_task
from .snapshots import CopyLedger, exact_features, ground_states, snapshot_features
from .stats import t_interval, welch_interval
from .tuning import search_space, tune

__all__ = ["ANNNI", "XXZ_FIELD", "ChainModel", "ComparisonReport", "CopyLedger", "chain_sensor", "compare", "copies_curve",
           "exact_features", "ground_states", "load_chain_task", "load_phases", "order_parameter", "phase_labels",
           "phase_sensor", "search_space", "snapshot_features", "t_interval", "tune", "welch_interval"]
