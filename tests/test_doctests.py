"""The Examples in the core names' docstrings run as printed (doctest), in the default test run."""

import doctest
import importlib

import pytest

MODULES = [
    "qeqprop.backprop",
    "qeqprop.datasets",
    "qeqprop.ep",
    "qeqprop.errors",
    "qeqprop.estimators",
    "qeqprop.gradcheck",
    "qeqprop.inference",
    "qeqprop.hamiltonians.builder",
    "qeqprop.hamiltonians.jax_kernel",
    "qeqprop.hamiltonians.observables",
    "qeqprop.readout.exact",
    "qeqprop.solvers.mps",
    "qeqprop.solvers.refine",
    "qeqprop.readout.mps_sampling",
    "qeqprop.readout.shots",
    "qeqprop.rules",
    "qeqprop.serialization",
    "qeqprop.checkpoint",
    "qeqprop.solvers.base",
    "qeqprop.solvers.registry",
    "qeqprop.systems.gap_checks",
    "qeqprop.systems.long_chain",
    "qeqprop.systems.oscillators",
    "qeqprop.systems.protocol",
    "qeqprop.systems.registry",
    "qeqprop.systems.spin",
    "qeqprop.systems.tfim",
    "qeqprop.systems.xxz",
    "qeqprop.train",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctested example"
    assert result.failed == 0
