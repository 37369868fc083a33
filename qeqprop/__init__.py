"""qeqprop: quantum equilibrium propagation.

Build a parametrized spin Hamiltonian (a TFIM network or any Pauli-string model), find its
ground states matrix-free, estimate dLoss/dtheta by equilibrium propagation from local
expectation values, check it against the exact linear-response gradient, and train.
"""

from . import _jax  # noqa: F401  (float64 JAX before anything makes arrays)
from .costs import FunctionCost, PauliSquaredError, SoftmaxCrossEntropy, SquaredError
from .datasets import Dataset, load_dataset
from .ep import ESTIMATORS, EPResult, ep_gradient, finite_difference_gradient, reference_gradient, relative_error
from .gradcheck import gradcheck, random_tfim_instance
from .comparison import ComparisonReport, compare
from .hamiltonians.export import from_pennylane, terms_from_pennylane, to_pennylane, to_qutip, to_sparse
from .hamiltonians.parametrized import ParamSpec, ParametrizedHamiltonian, Term
from .hamiltonians.pauli import PauliOperator, PauliString, PauliTable
from .measurement import (
    MeasurementPlan,
    gradient_from_counts,
    measured_ep_gradient,
    measurement_plan,
    optimal_beta,
)
from .solvers import (
    DegenerateGroundStateWarning,
    GroundState,
    LanczosOptions,
    dense_ground_state,
    ground_state,
    jax_ground_state,
    lanczos_ground_state,
)
from .solvers.gaussian import GaussianState, gaussian_ground_state, gaussian_thermal_state
from .solvers.thermal import GibbsState, gibbs_state
from .solvers.thermal_krylov import KrylovGibbsState, krylov_gibbs_state
from .systems import EnergySystem, SpinSystem, TFIMNetwork, pauli_system
from .systems.oscillators import OscillatorNetwork
from .train import FitResult, evaluate, fit

__version__ = "0.1.0"

# Re-exports whose modules import QuTiP or PennyLane load on first use (PEP 562), so that
# `import qeqprop` and the CLI stay fast.
_LAZY = {
    "FockState": "qeqprop.solvers.fock",
    "fock_ground_state": "qeqprop.solvers.fock",
    "VariationalSpinSystem": "qeqprop.systems.variational",
    "variational_tfim": "qeqprop.systems.variational",
    "coupling_graph": "qeqprop.plots",  # plots: matplotlib and networkx
    "coupling_heatmap": "qeqprop.plots",
    "gradient_error_plot": "qeqprop.plots",
    "history_figure": "qeqprop.plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qeqprop' has no attribute {name!r}")

__all__ = [
    "coupling_graph", "coupling_heatmap", "gradient_error_plot", "history_figure",
    "ComparisonReport", "compare", "DegenerateGroundStateWarning", "FockState", "GaussianState", "OscillatorNetwork", "fock_ground_state",
    "gaussian_ground_state", "gaussian_thermal_state", "GibbsState", "gibbs_state", "KrylovGibbsState",
    "krylov_gibbs_state", "VariationalSpinSystem", "variational_tfim", "Dataset", "EPResult", "ESTIMATORS", "EnergySystem", "FitResult",
    "FunctionCost", "GroundState", "MeasurementPlan", "gradient_from_counts", "measured_ep_gradient",
    "measurement_plan", "optimal_beta", "ParamSpec", "ParametrizedHamiltonian", "PauliOperator", "PauliSquaredError",
    "PauliString", "PauliTable", "SoftmaxCrossEntropy", "SpinSystem", "SquaredError", "TFIMNetwork", "Term",
    "dense_ground_state", "jax_ground_state", "LanczosOptions", "ep_gradient", "evaluate", "finite_difference_gradient", "fit", "from_pennylane",
    "gradcheck", "ground_state", "lanczos_ground_state", "load_dataset", "pauli_system", "random_tfim_instance",
    "reference_gradient", "relative_error", "terms_from_pennylane", "to_pennylane", "to_qutip", "to_sparse",
]
