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

``import qeqprop`` switches JAX to float64 for the whole process (qeqprop.config says why).
"""

from . import _jax  # noqa: F401  (float64 JAX before anything makes arrays)
from . import config, costs, datasets, errors, estimators, hamiltonians, measurement, readout, rules, solvers, systems, train  # noqa: F401  (sub-namespaces)
from .comparison import compare
from .datasets import load_dataset
from .ep import EPResult, ep_gradient, reference_gradient, relative_error
from .errors import DegenerateGroundStateWarning, NotConvergedError
from .gradcheck import gradcheck, random_tfim_instance
from .hamiltonians.parametrized import ParamSpec, Term
from .readout import Exact, Shots
from .systems import OscillatorNetwork, SpinSystem, TFIMNetwork, XXZNetwork, pauli_system
from .train import fit

__version__ = "0.1.0"

# Loaded on first use (PEP 562): PennyLane and matplotlib are slow to import.
_LAZY = {"variational_tfim": "qeqprop.systems.variational", "plots": "qeqprop.plots"}

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


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if name == "plots" else getattr(module, name)
    if name in _MOVED:
        raise AttributeError(f"qeqprop.{name} moved: use {_MOVED[name]}.{name}")
    raise AttributeError(f"module 'qeqprop' has no attribute {name!r}")


__all__ = [
    "DegenerateGroundStateWarning", "EPResult", "Exact", "NotConvergedError", "OscillatorNetwork", "ParamSpec", "Shots",
    "SpinSystem", "TFIMNetwork", "Term", "XXZNetwork", "compare", "ep_gradient", "fit", "gradcheck", "load_dataset",
    "pauli_system", "random_tfim_instance", "reference_gradient", "relative_error", "variational_tfim",
]
