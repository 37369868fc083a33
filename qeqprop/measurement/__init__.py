"""Gradients from measured expectation values: plans, records, shot sampling, statistics."""

from .gradient import MeasuredGradient, gradient_from_counts, gradient_from_records, measured_ep_gradient, measurement_plan
from .plan import ALLOCATIONS, MeasurementPlan, build_plan
from .records import TermEstimates, estimate_terms, parse_counts
from .sampling import SAMPLERS, basis_probabilities, exact_term_moments, rotate_to_basis, sample_records
from .statistics import BetaChoice, optimal_beta

__all__ = [
    "ALLOCATIONS", "BetaChoice", "MeasuredGradient", "MeasurementPlan", "SAMPLERS", "TermEstimates",
    "basis_probabilities", "build_plan", "estimate_terms", "exact_term_moments", "gradient_from_counts",
    "gradient_from_records", "measured_ep_gradient", "measurement_plan", "optimal_beta", "parse_counts",
    "rotate_to_basis", "sample_records",
]
