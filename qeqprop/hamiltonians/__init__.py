"""Pauli strings and tables, parametrized Hamiltonians H(theta, x), their JAX kernels, observables
(Pauli sums, projectors), a learner builder from any Pauli Hamiltonian, and exports to
scipy.sparse, QuTiP and PennyLane (qubit 0 = most significant bit)."""

from .builder import learner, learner_hamiltonian
from .export import from_pennylane, terms_from_pennylane, to_pennylane, to_qutip, to_sparse
from .observables import pauli_sum, projector
from .parametrized import ParamSpec, ParametrizedHamiltonian, Term
from .pauli import PauliOperator, PauliString, PauliTable

__all__ = ["ParamSpec", "ParametrizedHamiltonian", "PauliOperator", "PauliString", "PauliTable", "Term", "from_pennylane",
           "learner", "learner_hamiltonian", "pauli_sum", "projector", "terms_from_pennylane", "to_pennylane", "to_qutip",
           "to_sparse"]
