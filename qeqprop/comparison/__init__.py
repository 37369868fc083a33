"""Quantum-vs-classical comparison: tasks, sized systems, equal tuning, intervals, jobs, the harness, and its reports."""

from .harness import ComparisonReport, compare
from .phases import load_phases, order_parameter, phase_labels, phase_sensor
from .stats import t_interval, welch_interval
from .tuning import search_space, tune

__all__ = ["ComparisonReport", "compare", "load_phases", "order_parameter", "phase_labels", "phase_sensor",
           "search_space", "t_interval", "tune", "welch_interval"]
