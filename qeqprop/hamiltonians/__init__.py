"""Pauli strings and tables, parametrized Hamiltonians H(theta, x), their JAX kernels, and
exports to scipy.sparse, QuTiP and PennyLane (qubit 0 = most significant bit)."""

from .export import from_pennylane, terms_from_pennylane, to_pennylane, to_qutip, to_sparse
from .parametrized import ParamSpec, ParametrizedHamiltonian, Term
from .pauli import PauliOperator, PauliString, PauliTable

__all__ = ["ParamSpec", "ParametrizedHamiltonian", "PauliOperator", "PauliString", "PauliTable", "Term", "from_pennylane",
           "terms_from_pennylane", "to_pennylane", "to_qutip", "to_sparse"]
