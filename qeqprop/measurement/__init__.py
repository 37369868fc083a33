"""Gradients from measured expectation values: hardware records, simulated shots, the beta for a
shot budget; and (re-exported from qeqprop.readout) the plans, records and samplers behind them."""

from ..readout.plan import ALLOCATIONS, MeasurementPlan, build_plan
from ..readout.records import TermEstimates, estimate_terms, parse_counts
from ..readout.sampling import (
    SAMPLERS,
    basis_probabilities,
    exact_term_moments,
    rotate_to_basis,
    sample_records,
)
from .gradient import (
    MeasuredGradient,
    gradient_from_counts,
    measured_ep_gradient,
    measurement_plan,
)
from .statistics import BetaChoice, optimal_beta

__all__ = [
    "ALLOCATIONS",
    "SAMPLERS",
    "BetaChoice",
    "MeasuredGradient",
    "MeasurementPlan",
    "TermEstimates",
    "basis_probabilities",
    "build_plan",
    "estimate_terms",
    "exact_term_moments",
    "gradient_from_counts",
    "measured_ep_gradient",
    "measurement_plan",
    "optimal_beta",
    "parse_counts",
    "rotate_to_basis",
    "sample_records",
]
