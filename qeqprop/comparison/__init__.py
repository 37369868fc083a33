"""Quantum-vs-classical comparison: tasks, sized systems, the harness, and its reports."""

from .harness import ComparisonReport, compare
from .phases import load_phases, order_parameter, phase_labels, phase_sensor

__all__ = ["ComparisonReport", "compare", "load_phases", "order_parameter", "phase_labels", "phase_sensor"]
