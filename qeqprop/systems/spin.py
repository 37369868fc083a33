"""Quantum EnergySystem on a parametrized spin Hamiltonian: states are ground states.

Free phase: psi_0 = ground state of H(theta, x). Nudged phase: ground state of
H(theta, x) + beta sum_j w_j O_j with w = dc/d<O> at the free state (warm-started from it).
Local gradient: <dH/dtheta> = J(x)^T <P> from one pass over the Pauli table.
Reference gradient: linear response (solvers.linear_response).
"""

from __future__ import annotations

import copy
import inspect
from typing import Sequence

import numpy as np

from .._blas import one_blas_thread
from ..costs import Cost, make_cost
from ..hamiltonians.parametrized import ParamSpec, ParametrizedHamiltonian, Term, gradient_rows
from ..solvers import MPS, GroundState, JaxLanczos, PauliSum, adjoint_state, ground_state, make_solver, report_small_gap, uses_dense, working_set_vectors
from ..solvers.thermal_krylov import krylov_gibbs_state
from ..solvers.thermal import gibbs_state, thermal_expectations, thermal_response
from ..validation import as_finite_array, check_state_memory, check_temperature
from .protocol import Params, SystemBase
from ..solvers.batched_lanczos import BatchedLanczos
from .gap_checks import GAP_CHECKS, GapCheckedBatch, check_gap_check
from .spin_batch import SpinBatch


# A free state passed to EP whose energy or eigen-residual under the given params and x is off by
# more than this (relative to sum_s |c_s|) was solved for other params or inputs (SpinSystem.check_free).
STALE_TOL = 1e-6


class SpinSystem(SystemBase):
    """Ground-state EP on ``hamiltonian``; its observables are the model outputs.

    Parameters
    ----------
    hamiltonian : ParametrizedHamiltonian with one observable per output.
    cost : "mse" (on expectations), "cross_entropy", "pauli_mse" (observable C(y)) or a Cost.
    solver : "auto" (dense up to 8 qubits, JAX Lanczos above), "dense", "lanczos" (scipy), "jax",
        or a GroundStateSolver object (qeqprop.solvers); with the JAX Lanczos solver, batches are
        solved jointly by batched Lanczos (``batch_view``).
    gap_tol : a free-phase gap below this warns DegenerateGroundStateWarning.
    tol : Lanczos tolerance (solvers.ground_state). Nudged phases use the EP-suited
        max(tol, nudge_tol * beta^2): a residual r shifts the EP estimate by ~ r / (beta gap),
        so this keeps the solver's share at ~nudge_tol * beta, far below the O(beta^2)
        bias of the centered estimator for beta >= 1e-3. The free phase of a batched EP call
        (``ep_gradient``) uses it too: its error enters the estimate the same way (the one-sided
        estimators' <dH/dtheta>_0, and every estimator's nudge through the free outputs); the
        free phase of ``equilibrate``, ``predict`` and ``evaluate`` uses ``tol``.
    temperature : 0 for ground states; T > 0 for Gibbs states exp(-H/T)/Z (EP then
        differentiates the free energy; degenerate ground states are harmless): exact by dense
        diagonalisation up to 8 qubits (solver="dense": any size that fits), above that from the lowest ``thermal_levels`` eigenpairs
        (solvers.thermal_krylov) with a rigorous error bound that must stay below ``thermal_tol``.
    batched : options of the batched Lanczos solver that solves batches with solver="jax"
        (solvers.batched_lanczos.BatchedLanczos: free_steps, nudged_steps, gap_steps, max_steps, max_blocks,
        workers, and for samples that miss the tolerance retry_blocks, fallback, usable); ``with_batched``
        gives a copy with other options (what ``fit(solver_options=...)`` uses).
    keep_block_lengths : False (default): every EP call starts the batched solver's block lengths
        afresh, so results depend on the inputs only. True: the block lengths learned from the
        measured convergence carry over between calls (fewer restarted blocks and shorter first
        blocks once they settle); results then depend on the calls before at the solver-tolerance
        level. ``fit`` trains a kept copy (``with_kept_block_lengths``) and checkpoints the learned
        lengths, so a resumed run is still bitwise equal to a straight one.
    gap_check : which free phases get a gap solve when the solver is an MPS without one of its own
        (``checks_gaps``): one of GAP_CHECKS ("ep", the default: every EP free phase; "first", "all",
        "none") or an integer k >= 1 (every k-th EP free phase, counted in ``ep_free_phases``);
        qeqprop.systems.gap_checks. Other solvers compute every free phase's gap regardless, except
        ``predict``'s on batched Lanczos (outputs only: no deflated gap solve unless gap_check="all").
    """

    def __init__(
        self,
        hamiltonian: ParametrizedHamiltonian,
        cost: "str | Cost" = "mse",
        solver: str = "auto",
        gap_tol: float = 1e-6,
        tol: float = 1e-12,
        temperature: float = 0.0,
        nudge_tol: float = 1e-5,
        thermal_levels: int = 32,
        thermal_tol: float = 1e-8,
        batched: dict | None = None,
        keep_block_lengths: bool = False,
        gap_check: str | int = GAP_CHECKS[0],
    ):
        self.gap_check = check_gap_check(gap_check)
        self.ep_free_phases = 0  # EP free phases solved so far (gap_check k counts them)
        make_solver(solver)  # a bad name fails here, naming the choices
        if hamiltonian.n_outputs == 0:
            raise ValueError("hamiltonian needs at least one output observable (observables=[...])")
        itemsize = 8 if hamiltonian.table.is_real else 16
        check_state_memory(hamiltonian.n_qubits, itemsize, working_set_vectors(solver, hamiltonian.n_qubits, itemsize),
                           "this system's solver")
        self.hamiltonian = hamiltonian
        self.cost_fn = make_cost(cost)
        self.solver = solver
        self.gap_tol = float(gap_tol)
        self.tol = float(tol)
        self.nudge_tol = float(nudge_tol)
        self.temperature = check_temperature(temperature)
        self.thermal_levels, self.thermal_tol = int(thermal_levels), float(thermal_tol)
        self.batched = dict(batched or {})
        # bad options fail here, not in the first batch; the solver is kept only with keep_block_lengths
        self._block_solver = BatchedLanczos(hamiltonian.table, **self.batched)
        self.keep_block_lengths = bool(keep_block_lengths)

    @property
    def n_qubits(self) -> int:
        return self.hamiltonian.n_qubits

    def ep_tol(self, betas) -> float:
        """The EP-suited residual max(tol, nudge_tol * min |beta|^2) of the phases of an EP call
        with nudges ``betas`` (class docstring)."""
        return max(self.tol, self.nudge_tol * min(abs(float(b)) for b in betas) ** 2)

    @property
    def n_inputs(self) -> int:
        return self.hamiltonian.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.hamiltonian.n_outputs

    def init_params(self, rng=None) -> dict[str, np.ndarray]:
        return self.hamiltonian.init_params(rng)

    def describe(self) -> dict:
        return {"name": type(self).__name__, "units": self.n_qubits, "unit": "qubits"}

    def repr_fields(self) -> dict:
        """What ``repr`` shows: qubits, inputs, outputs (as Pauli sums), solver, cost, temperature."""
        from ..hamiltonians.observables import format_pauli_sum

        fields = {"n_qubits": self.n_qubits, "n_inputs": self.n_inputs,
                  "outputs": [format_pauli_sum(pairs) for pairs in self.hamiltonian.output_sums],
                  "solver": self.solver if isinstance(self.solver, str) else type(self.solver).__name__,
                  "cost": self.cost_fn.name}
        if self.temperature > 0.0:
            fields["temperature"] = self.temperature
        return fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.repr_fields().items())})"

    def __str__(self) -> str:
        return f"{self!r}\n  H(theta, x) = {self.hamiltonian}"

    def nudge_limit(self, states, nudge) -> np.ndarray:
        """Per-sample beta_max = max(gap, T) / (2 ||V||) for free states (a batch) and nudges w (B,
        n_outputs), with ||V|| <= sum_j |w_j| ||O_j|| (identity parts dropped: they shift every
        level alike). At T = 0 this is Kato's radius: the nudged ground state is analytic in beta
        for |beta| ||V|| < gap / 2; past it the state can cross or saturate. At T > 0 the Gibbs
        state's populations move on the scale max(gap, T) (a heuristic bound). inf for a zero nudge;
        NaN where the gap is unknown (no warning)."""
        size = np.abs(np.asarray(nudge, dtype=float)) @ self.hamiltonian.output_norms()
        scale = np.maximum(np.asarray(states.gaps, dtype=float), self.temperature)
        with np.errstate(divide="ignore"):
            return scale / (2.0 * size)

    def check_free(self, params: Params, X, states) -> None:
        """Refuse free states (a batch, SpinStates) not solved for ``params`` and inputs X (B, n_inputs).

        With c_b = c(theta, x_b) and the tolerance t_b = STALE_TOL * max(1, sum_s |c_bs|)
        (sum_s |c_s| bounds ||H||), a state solved for these params and x has::

            | sum_s c_bs <P_s>_b - E_b | <= t_b             (its recorded energy is its <H>), and
            || H_b psi_b - <H>_b psi_b || <= t_b + 2 r_b    (pure states: as much an eigenvector as
                                                              the solver reported, residual r_b).

        The energy test is O(B S) from the expectations at hand and covers Gibbs and variational
        states; the residual test costs one H application per sample.
        """
        ham = self.hamiltonian
        coeffs = ham.coefficients_batch(params, X)
        allowed = STALE_TOL * np.maximum(1.0, np.abs(coeffs).sum(axis=1))
        mean = np.sum(coeffs * np.real(states.expectations), axis=1)
        mismatch = np.abs(mean - np.asarray(states.energies, dtype=float))
        stale = mismatch > allowed  # NaN (an energy not recorded) passes
        if getattr(states, "vectors", None) is not None:
            solver_residual = np.nan_to_num(np.asarray(states.residuals, dtype=float), nan=0.0)
            for b, (c, psi) in enumerate(zip(coeffs, states.vectors)):
                h_psi = ham.table.operator(c).matvec(psi)
                residual = np.linalg.norm(h_psi - mean[b] * psi)
                stale[b] |= residual > allowed[b] + 2.0 * solver_residual[b]
        if np.any(stale):
            first = int(np.flatnonzero(stale)[0])
            raise ValueError(
                f"free: the free state of sample {first} is not the equilibrium of these params and x (<H> differs "
                f"from its energy by {mismatch[first]:.2e}; {int(stale.sum())} of {len(coeffs)} samples): it was "
                "solved for other params or inputs; pass free=None to solve it, or the free state of this call's "
                "params and x"
            )

    def diagnostics(self, state) -> dict[str, float]:
        """Gap E1 - E0 (free phases), H applications and residual ||H psi - E psi|| where known."""
        return {name: getattr(state, name, None) for name in ("gap", "iterations", "residual")}

    def with_batched(self, **options) -> SpinSystem:
        """A shallow copy of this system whose batched Lanczos solver takes ``options`` on top of
        ``batched`` (BatchedLanczos's arguments: free_steps, nudged_steps, gap_steps, max_steps,
        max_blocks, retry_blocks, fallback, usable, workers); this system is left unchanged.

        Raises:
            ValueError: an unknown option, or a bad value (naming the option).
        """
        known = [name for name in inspect.signature(BatchedLanczos).parameters if name != "table"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown batched solver options {unknown}: choose from {known}")
        other = copy.copy(self)
        other.batched = {**self.batched, **options}
        other._block_solver = BatchedLanczos(self.hamiltonian.table, **other.batched)
        return other

    def with_kept_block_lengths(self) -> SpinSystem:
        """A shallow copy of this system with ``keep_block_lengths`` and a solver of its own (what
        ``fit`` trains: the block lengths learned on one minibatch serve the next; ``block_lengths``
        and ``restore_block_lengths`` carry them through a checkpoint); this system is left unchanged."""
        other = copy.copy(self)
        other.keep_block_lengths = True
        other._block_solver = BatchedLanczos(self.hamiltonian.table, **self.batched)
        return other

    def block_lengths(self) -> dict[str, int]:
        """The batched solver's learned block lengths (``BatchedLanczos.schedule``; empty unless kept)."""
        return self._block_solver.schedule if self.keep_block_lengths else {}

    def restore_block_lengths(self, schedule: dict[str, int]) -> None:
        """Continue from the learned block lengths ``schedule`` (``block_lengths``) of a kept solver."""
        if schedule and not self.keep_block_lengths:
            raise ValueError("restore_block_lengths needs keep_block_lengths=True (with_kept_block_lengths())")
        self._block_solver.restore(schedule)

    @property
    def checks_gaps(self) -> bool:
        """Whether ``gap_check`` applies: ground states (T = 0) from an MPS solver without a gap solve of
        its own (``MPS(gap=False)``); every other solver reports the gap of every free phase that asks
        for one (all but ``predict``'s batched ones: BatchSystem's ``free_gaps``)."""
        solver = make_solver(self.solver)
        return isinstance(solver, MPS) and not solver.gap and self.temperature == 0.0

    def fit_state(self) -> dict[str, int]:
        """What ``fit`` checkpoints besides params so a resumed run equals a straight one: the count of
        EP free phases (``gap_check`` k checks every k-th)."""
        return {"ep_free_phases": int(self.ep_free_phases)}

    def restore_fit_state(self, state: dict) -> None:
        """Continue from ``fit_state()``'s ``state`` ({}: a fresh run, counting from 0)."""
        count = state.get("ep_free_phases", 0)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"state['ep_free_phases'] must be an integer >= 0 (EP free phases done), got {count!r}")
        self.ep_free_phases = int(count)

    def batch_view(self, batch_size: int) -> SpinBatch:
        """Batched Lanczos for solver "jax" at T = 0 and more than one sample, or one sample on at most
        BATCHED_SINGLE_QUBITS qubits; with MPS ground states without gaps (``checks_gaps``) the
        gap-checked view (GapCheckedBatch: ``gap_check``); else one solve per sample."""
        if self.checks_gaps:
            return GapCheckedBatch(self)
        joint = (isinstance(make_solver(self.solver), JaxLanczos) and self.temperature == 0.0
                 and (batch_size > 1 or self.n_qubits <= BATCHED_SINGLE_QUBITS))
        if not joint:
            return SpinBatch(self, None)
        if not self.keep_block_lengths:
            return SpinBatch(self, BatchedLanczos(self.hamiltonian.table, **self.batched))
        return SpinBatch(self, self._block_solver)

    def pauli_measurement(self):
        """The ParametrizedHamiltonian whose Pauli strings a shot readout measures."""
        return self.hamiltonian

    def phase_operator(self, params: Params, x, nudge=None, beta: float = 0.0):
        """(H(theta, x) + beta * sum_j nudge_j O_j, whether this is the free phase); for the MPS
        solver as its terms (a PauliSum: no 2^n arrays)."""
        weights = None
        if nudge is not None and beta != 0.0:
            weights = float(beta) * as_finite_array("nudge", nudge, (self.n_outputs,))
        if isinstance(make_solver(self.solver), MPS):
            coeffs = self.hamiltonian.coefficients(params, x)
            if weights is not None:
                coeffs = coeffs + self.hamiltonian.nudge_coefficients(weights)
            return PauliSum(self.n_qubits, tuple(self.hamiltonian.table.strings), coeffs), weights is None
        return self.hamiltonian.operator(params, x, nudge=weights), weights is None

    @one_blas_thread
    def equilibrate(self, params: Params, x, nudge=None, beta: float = 0.0, init: GroundState | None = None) -> GroundState:
        """Ground state of H(theta, x) + beta * sum_j nudge_j O_j, warm-started from ``init``; with
        ``checks_gaps`` and gap_check="all" a free phase also gets its gap (``MPS.gap_of``)."""
        operator, free = self.phase_operator(params, x, nudge, beta)
        if self.temperature > 0.0:
            if uses_dense(self.solver, self.n_qubits):
                state = gibbs_state(operator, self.temperature)
            else:
                start = getattr(init, "vectors", None)
                state = krylov_gibbs_state(operator, self.temperature, self.thermal_levels, self.thermal_tol, init=start)
            state.expectations = thermal_expectations(self.hamiltonian.table, state)
            return state
        state = ground_state(
            operator,
            self.solver,
            init=None if init is None else init if init.vector is None else init.vector,
            tol=self.tol if free else self.ep_tol((beta,)),
            with_gap=free,
        )
        if free and state.gap is None and self.gap_check == "all" and self.checks_gaps:
            state.gap = self.solver.gap_of(state, self.tol)
        if free:
            report_small_gap(state.gap, self.gap_tol)
        if state.expectations is None:  # an MPS solver measures its own strings
            state.expectations = self.hamiltonian.table.expectations(state.vector)
        return state

    @one_blas_thread
    def reflect(self, free: GroundState, plus: GroundState) -> GroundState:
        """Start vector for the -beta phase: 2 psi_0 - psi_beta (psi_beta phase-aligned to
        psi_0), which is ``psi_-beta`` up to O(beta^2). Gibbs states and MPS (warm-started from the free MPS) need no start: ``free``."""
        if self.temperature > 0.0 or free.vector is None:
            return free
        overlap = np.vdot(free.vector, plus.vector)
        # in place on one new vector (no temporaries: each is a state vector, 0.5 GiB at 26 qubits)
        vector = np.multiply(plus.vector, -np.conj(overlap) / abs(overlap) if abs(overlap) > 0 else -1.0,
                             dtype=np.result_type(free.vector, plus.vector))
        vector += free.vector
        vector += free.vector
        vector /= np.linalg.norm(vector)
        return GroundState(vector, free.energy, None, 0, float("nan"), "reflection")

    def predict(self, state: GroundState) -> np.ndarray:
        """Model outputs <O_j>."""
        return self.hamiltonian.outputs(state.expectations)

    def cost(self, state: GroundState, y) -> float:
        return self.cost_fn.value(self.predict(state), y)

    def nudge(self, state: GroundState, y) -> np.ndarray:
        """dc/d<O_j> at ``state``: the nudge Hamiltonian is beta * sum_j nudge_j O_j."""
        return self.cost_fn.grad(self.predict(state), y)

    @one_blas_thread
    def energy_grad(self, params: Params, x, state: GroundState) -> dict[str, np.ndarray]:
        """<dH/dtheta> at ``state`` (params only fix the pytree; H is linear in theta)."""
        self.hamiltonian.check_params(params)
        return self.hamiltonian.energy_grad(x, state.expectations)

    def reference_grad(self, params: Params, x, y, free: GroundState | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta: 2 Re <lam| dH/dtheta |psi> with the linear-response adjoint lam at
        T = 0; the thermal response (solvers.thermal) at T > 0."""
        if isinstance(make_solver(self.solver), MPS):
            raise ValueError("the MPS solver has no linear-response reference gradient (no state vector); use "  # noqa: TRY004
                             "finite_difference_gradient, or the same system with an exact solver (solver='jax')")
        state = free if free is not None else self.equilibrate(params, x)
        ham = self.hamiltonian
        weights = ham.nudge_coefficients(self.nudge(state, y))
        if self.temperature > 0.0:
            if not uses_dense(self.solver, self.n_qubits):
                raise ValueError(
                    f"the thermal reference gradient needs exact (dense) Gibbs states; this system has "
                    f"{self.n_qubits} qubits with solver={self.solver!r}: use EP (ep_gradient) or solver='dense'"
                )
            jacobian = ham.jacobian(x)
            used = gradient_rows(jacobian)
            unit = np.eye(len(ham.table))
            strings = [ham.table.operator(unit[s]).to_dense() for s in used]
            response = thermal_response(state, ham.table.operator(weights).to_dense(), strings)
            return ham.unflatten(jacobian[used].T @ response)
        source = ham.table.operator(weights).matvec(state.vector)
        operator = ham.operator(params, x)
        lam = adjoint_state(operator, state, source)
        mixed = ham.table.expectations(state.vector, bra=lam)
        return ham.unflatten(2.0 * ham.jacobian(x).T @ mixed.real)


# One sample takes the batched solver (a batch of one) up to this register size: its fixed-length
# blocks beat the thick-restart loop's per-restart dispatch on small states (free phase with gap,
# TFIM complete graph, one sample, 2 loaded cores: 10 qubits 8 ms vs 33 ms, 14 qubits 31 vs 159 ms;
# at 16 qubits the thick restart wins, 160 vs 308 ms).
BATCHED_SINGLE_QUBITS = 14


def pauli_system(
    n_qubits: int,
    terms: Sequence[Term],
    params: dict[str, ParamSpec | tuple[int, ...]],
    outputs: Sequence[str],
    n_inputs: int = 0,
    **options,
) -> SpinSystem:
    """A SpinSystem from a list of Pauli-string terms (the general builder).

    Args:
        n_qubits: register size.
        terms: Term(pauli string, weight, param name, param index, input index) list; each term
            contributes weight * [theta[param][index]] * [x[input]] * P to H.
        params: the trainable parameters, name -> ParamSpec (or a shape tuple).
        outputs: the Pauli strings whose expectations are the model outputs.
        n_inputs: input features.
        **options: SpinSystem options (cost, solver, gap_tol, tol, temperature, ...).

    Example: a 3-qubit XX+YY+ZXZ model with trainable couplings and an input field:

        >>> import numpy as np, qeqprop as qp
        >>> from qeqprop import Term, ParamSpec, pauli_system
        >>> terms = [Term("X0 X1", param="J", index=(0,)), Term("Y1 Y2", param="J", index=(1,)),
        ...          Term("Z0 X1 Z2", weight=0.5), Term("Z0", input=0), Term("X0"), Term("X2")]
        >>> system = pauli_system(3, terms, {"J": ParamSpec((2,), std=0.5)}, outputs=["Z2"], n_inputs=1)
        >>> params = system.init_params(0)
        >>> r = qp.ep_gradient(system, params, np.array([0.3]), np.array([0.5]), beta=1e-3)
        >>> qp.relative_error(r.grad, qp.reference_gradient(system, params, np.array([0.3]), np.array([0.5]))) < 1e-5
        True
    """
    hamiltonian = ParametrizedHamiltonian(n_qubits, terms, params, n_inputs=n_inputs, observables=outputs)
    return SpinSystem(hamiltonian, **options)
