"""qeqprop: quantum equilibrium propagation.

Build a parametrized spin Hamiltonian (a TFIM or XXZ network, or any Pauli-string model), find its
ground states matrix-free, estimate dLoss/dtheta by equilibrium propagation from local
expectation values (exact or measured with shots), check it against the exact linear-response
gradient, and train; classical EP systems (``import classical``) share the same protocol.

The top level holds the names a session starts with; the rest lives in sub-namespaces:
``qeqprop.estimators`` (EP estimators), ``qeqprop.readout`` (Exact, Shots), ``qeqprop.rules``
(gradient rules), ``qeqprop.measurement`` (hardware counts, plans, optimal beta),
``qeqprop.solvers``, ``qeqprop.systems``, ``qeqprop.hamiltonians`` (Pauli tables, exports to
scipy/QuTiP/PennyLane), ``qeqprop.costs``, ``qeqprop.datasets``, ``qeqprop.train``,
``qeqprop.comparison``, ``qeqprop.plots``, ``qeqprop.errors``, ``qeqprop.config``.

Every name and sub-namespace is loaded on first use (PEP 562), so ``import qeqprop`` is fast and
imports neither JAX nor PennyLane, QuTiP or matplotlib. JAX runs in float64 for the whole process
from the moment qeqprop loads a module that uses it (qeqprop.config says why and when).
"""

import importlib as _importlib
import sys as _sys
import types as _types
from typing import Any as _Any

__version__ = "0.1.0"

# Top-level names: where each is defined. Adding a name is one line here (``__all__`` follows).
_EXPORTS = {
    "DegenerateGroundStateWarning": "qeqprop.errors",
    "DeviceLoop": "qeqprop.device",
    "EPResult": "qeqprop.ep",
    "Exact": "qeqprop.readout",
    "NotConvergedError": "qeqprop.errors",
    "OscillatorNetwork": "qeqprop.systems",
    "ParamSpec": "qeqprop.hamiltonians.parametrized",
    "Shots": "qeqprop.readout",
    "SpinSystem": "qeqprop.systems",
    "TFIMNetwork": "qeqprop.systems",
    "Term": "qeqprop.hamiltonians.parametrized",
    "XXZNetwork": "qeqprop.systems",
    "compare": "qeqprop.comparison",
    "ep_gradient": "qeqprop.ep",
    "fit": "qeqprop.train",
    "gradcheck": "qeqprop.gradcheck",
    "load_dataset": "qeqprop.datasets",
    "load_model": "qeqprop.serialization",
    "predict": "qeqprop.inference",
    "save_model": "qeqprop.serialization",
    "pauli_system": "qeqprop.systems",
    "random_tfim_instance": "qeqprop.gradcheck",
    "reference_gradient": "qeqprop.ep",
    "relative_error": "qeqprop.ep",
    "variational_tfim": "qeqprop.systems.variational",
}

# Sub-namespaces reachable as attributes (``qeqprop.solvers``) without importing them by name.
_SUBMODULES = ("comparison", "config", "costs", "datasets", "device", "ep", "errors", "estimators", "hamiltonians",
               "measurement", "plots", "readout", "rules", "solvers", "systems", "train")

# Names that were top-level before the API was curated: where they live now.
_MOVED = {
    **{n: "qeqprop.costs" for n in ("FunctionCost", "PauliSquaredError", "SoftmaxCrossEntropy", "SquaredError")},
    **{n: "qeqprop.measurement" for n in ("MeasurementPlan", "gradient_from_counts", "measured_ep_gradient",
                                          "measurement_plan", "optimal_beta")},
    **{n: "qeqprop.hamiltonians" for n in ("ParametrizedHamiltonian", "PauliOperator", "PauliString", "PauliTable",
                                           "from_pennylane", "terms_from_pennylane", "to_pennylane", "to_qutip",
                                           "to_sparse")},
    **{n: "qeqprop.solvers" for n in ("GroundState", "LanczosOptions", "dense_ground_state", "ground_state",
                                      "jax_ground_state", "lanczos_ground_state", "GaussianState",
                                      "gaussian_ground_state", "gaussian_thermal_state", "GibbsState", "gibbs_state",
                                      "KrylovGibbsState", "krylov_gibbs_state")},
    "FockState": "qeqprop.solvers.fock", "fock_ground_state": "qeqprop.solvers.fock",
    **{n: "qeqprop.plots" for n in ("coupling_graph", "coupling_heatmap", "gradient_error_plot", "history_figure")},
    "ESTIMATORS": "qeqprop.estimators", "finite_difference_gradient": "qeqprop.ep", "ComparisonReport": "qeqprop.comparison",
    "Dataset": "qeqprop.datasets", "EnergySystem": "qeqprop.systems", "FitResult": "qeqprop.train",
    "evaluate": "qeqprop.train", "VariationalSpinSystem": "qeqprop.systems.variational",
}

__all__ = list(_EXPORTS)

if "jax" in _sys.modules:  # JAX is loaded already (cheap to reach): float64 now, as before any qeqprop array
    from . import _jax  # noqa: F401


def __getattr__(name: str) -> _Any:
    """Load a top-level name or sub-namespace on first use (PEP 562) and keep it in the module."""
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"{__name__}.{name}")
    elif name in _MOVED:
        raise AttributeError(f"qeqprop.{name} moved: use {_MOVED[name]}.{name}")
    else:
        raise AttributeError(f"module 'qeqprop' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(_EXPORTS) | set(_SUBMODULES) | {"__version__"})


class _Package(_types.ModuleType):
    """The package's module type: a submodule loaded later must not hide the export of the same name.

    Loading a submodule binds it on its package (``qeqprop.gradcheck`` the module, once anything
    imports it), which would shadow the lazily loaded top-level function ``qeqprop.gradcheck``.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _EXPORTS and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
