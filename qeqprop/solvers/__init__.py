"""Ground-state solvers as objects (``base.GroundStateSolver``): dense ``eigh``, scipy ARPACK, the
jitted JAX thick-restart Lanczos and the ``Auto`` dispatcher, one registry of their names
(``registry``), the batched Lanczos for many Hamiltonians of one table, and the linear-response solve."""

from .auto import AUTO_DENSE_MAX_QUBITS, Auto
from .base import BatchGroundStateSolver, GroundStateSolver
from .dense import DENSE_MAX_QUBITS, Dense, dense_ground_state
from .gaussian import GaussianState, gaussian_ground_state, gaussian_thermal_state
from .jax_lanczos import JaxLanczos, LanczosOptions, jax_ground_state, release_workspace, solve_vectors
from .lanczos import KRYLOV_VECTORS, Arpack, lanczos_ground_state
from .linear_response import adjoint_state
from .mps import MPS, MPSGroundState, PauliSum, sample_bitstrings
from .refine import Refined
from .registry import REGISTRY, SOLVERS, ground_state, make_solver, uses_dense, working_set_vectors
from .state import DegenerateGroundStateWarning, GroundState, report_small_gap
from .thermal import GibbsState, gibbs_state
from .thermal_krylov import KrylovGibbsState, krylov_gibbs_state

__all__ = [
    "AUTO_DENSE_MAX_QUBITS",
    "Arpack",
    "Auto",
    "BatchGroundStateSolver",
    "DENSE_MAX_QUBITS",
    "Dense",
    "DegenerateGroundStateWarning",
    "GaussianState",
    "GibbsState",
    "GroundState",
    "GroundStateSolver",
    "JaxLanczos",
    "KRYLOV_VECTORS",
    "KrylovGibbsState",
    "LanczosOptions",
    "MPS",
    "MPSGroundState",
    "PauliSum",
    "REGISTRY",
    "Refined",
    "SOLVERS",
    "adjoint_state",
    "dense_ground_state",
    "gaussian_ground_state",
    "gaussian_thermal_state",
    "gibbs_state",
    "ground_state",
    "jax_ground_state",
    "krylov_gibbs_state",
    "lanczos_ground_state",
    "make_solver",
    "release_workspace",
    "report_small_gap",
    "sample_bitstrings",
    "solve_vectors",
    "uses_dense",
    "working_set_vectors",
]
