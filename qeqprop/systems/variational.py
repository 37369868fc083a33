"""Spin systems whose states are variational (circuit) ground states.

Free phase: phi_0 = argmin_phi <psi(phi)|H(theta, x)|psi(phi)>. Nudged phase:
phi_beta = argmin_phi <psi(phi)|H(theta, x) + beta sum_j w_j O_j|psi(phi)>, warm-started
from phi_0 (the -beta phase from the reflection 2 phi_0 - phi_beta): a few optimizer steps
for small beta. The local gradient <dH/dtheta> =
J(x)^T <P> is measured on |psi(phi)> exactly as for exact ground states, so the EP
estimators of qeqprop.ep apply unchanged. With a variational energy
E_var(theta, phi) = <psi(phi)|H(theta)|psi(phi)>, EP converges (beta -> 0, converged
optimizer) to the gradient of the *variational* loss C(psi(phi_0(theta))); the reference
gradient stays the exact linear-response gradient of the exact-ground-state loss, so their
difference is the bias the ansatz puts on the gradient.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..hamiltonians.parametrized import ParametrizedHamiltonian
from ..solvers import GroundState, report_small_gap
from ..solvers.variational import VariationalSolver, VariationalState
from .protocol import Params
from .spin import SpinSystem
from .spin_batch import SpinBatch
from .tfim import TFIMNetwork


class VariationalSpinSystem(SpinSystem):
    """Ground-state EP on ``hamiltonian`` with states from a variational circuit.

    Parameters
    ----------
    hamiltonian : ParametrizedHamiltonian with one observable per output.
    ansatz, depth : the circuit ("hva" or "hardware_efficient", layers >= 1).
    cost, solver, gap_tol, tol : as SpinSystem; ``solver`` is the exact solver of the reference
        gradient (batches are always solved sample by sample through the circuit: ``batch_view``).
    **variational : VariationalSolver options (per_term, entangler, optimizer,
        learning_rate, maxiter, gtol, ftol, seed, compare_exact).
    """

    def __init__(
        self,
        hamiltonian: ParametrizedHamiltonian,
        ansatz: str = "hva",
        depth: int = 2,
        cost="mse",
        solver: str = "auto",
        gap_tol: float = 1e-6,
        tol: float = 1e-12,
        **variational,
    ):
        super().__init__(hamiltonian, cost=cost, solver=solver, gap_tol=gap_tol, tol=tol)
        self.variational = VariationalSolver(hamiltonian.table, ansatz, depth, **variational)

    def equilibrate(self, params: Params, x, nudge=None, beta: float = 0.0, init: GroundState | None = None) -> VariationalState:
        """Variational ground state of H(theta, x) + beta * sum_j nudge_j O_j; a VariationalState
        ``init`` warm-starts the optimizer from its circuit parameters."""
        operator, free = self.phase_operator(params, x, nudge, beta)
        start = init.circuit_params if isinstance(init, VariationalState) else None
        state = self.variational.minimize(operator, init=start)
        if free:
            report_small_gap(state.gap, self.gap_tol)
        state.expectations = self.hamiltonian.table.expectations(state.vector)
        return state

    def batch_view(self, batch_size: int) -> SpinBatch:
        """One circuit optimisation per sample and phase, whatever the exact solver."""
        return SpinBatch(self, None)

    def reflect(self, free: VariationalState, plus: VariationalState) -> VariationalState:
        """Start for the -beta phase: circuit params 2 phi_0 - phi_beta = phi_-beta + O(beta^2)."""
        return replace(free, circuit_params=2.0 * free.circuit_params - plus.circuit_params, solver="reflection")

    def exact_state(self, params: Params, x) -> GroundState:
        """The exact free-phase ground state (SpinSystem's solver)."""
        return SpinSystem.equilibrate(self, params, x)

    def reference_grad(self, params: Params, x, y, free: GroundState | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta by linear response on the *exact* ground state (a variational
        ``free`` state is ignored): the target the variational EP bias is measured from."""
        if free is None or isinstance(free, VariationalState):
            free = self.exact_state(params, x)
        return super().reference_grad(params, x, y, free=free)


class VariationalTFIM(TFIMNetwork, VariationalSpinSystem):
    """A TFIMNetwork (same Hamiltonian, parameters and options) with variational states."""


def variational_tfim(
    n_qubits: int,
    graph="complete",
    n_inputs: int = 0,
    output_qubits: Sequence[int] | None = None,
    ansatz: str = "hva",
    depth: int = 2,
    **options,
) -> VariationalTFIM:
    """A TFIM learner (see TFIMNetwork) whose free and nudged states come from the
    variational solver; ``options`` take TFIMNetwork keywords (gamma, input_mode, ...),
    VariationalSpinSystem keywords (cost, solver, gap_tol, tol) and VariationalSolver
    keywords (per_term, entangler, optimizer, maxiter, gtol, ...)."""
    return VariationalTFIM(n_qubits, graph, n_inputs=n_inputs, output_qubits=output_qubits, ansatz=ansatz, depth=depth, **options)
