"""The batch-first view of a spin system: B samples' phases as one object.

States of a batch are ``SpinStates``: the expectations <P_s> of every Pauli string per sample
(B, S) (all a spin system's outputs, nudges and local gradients need), the state vectors (B, D)
where the states are pure, and the solver's gaps, iterations and residuals per sample. A measured
batch (qeqprop.readout.Shots) is the same type with the expectations replaced by shot estimates
and their covariance (B, S, S) attached, so ``nudge`` and ``energy_grad`` run unchanged on it.

How a batch is solved:

- ``joint=True`` (solver "jax" at T = 0, B > 1): the coefficients c(theta, x_b) of all samples are
  stacked and every ground state of a phase comes from fixed-length batched Lanczos blocks
  (solvers.batched_lanczos.BatchedLanczos); the free phase also yields the gaps, certified by a
  deflated second batched solve (a degenerate ground state reads gap 0: solvers.deflation); the nudged
  phases (+beta and -beta, or any set of nudges) are stacked into one solve of len(betas) * B
  Hamiltonians, warm-started from the free states.
- otherwise one per-sample ``equilibrate`` per sample (dense, ARPACK, thick-restart JAX, Gibbs
  states, variational circuits), packed into the same type.

Local gradients g_b = J(x_b)^T <P>_b for the whole batch in one product (energy_grad_batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._blas import one_blas_thread
from ..solvers import GroundState, report_small_gap
from ..solvers.batched_lanczos import BatchedLanczos
from .protocol import LoopBatch

if TYPE_CHECKING:
    from .spin import SpinSystem


class SpinStates:
    """The states of a batch of B samples (module docstring).

    expectations : (B, S) <P_s> per sample (shot estimates on a measured batch); computed from
        ``vectors`` with ``table`` on first use when not given (a shot readout never reads the
        exact values of its nudged phases).
    vectors : (B, D) state vectors, or None (Gibbs states; a measured batch from records).
    energies : (B,) energies of the phase Hamiltonians (NaN where not computed).
    gaps, iterations, residuals : (B,) solver facts (NaN where not computed).
    members : the per-sample state objects where the batch was solved one sample at a time.
    covariance : (B, S, S) covariance of measured expectations; None for exact states.
    retries : (B,) how a batched solve settled each sample (BatchedSolve.retries: 0 in its first
        run, 1 batched retry, 2 single-state fallback, 3 accepted within the usable bound); None
        where the batch was not solved jointly.
    """

    def __init__(self, expectations: np.ndarray | None = None, vectors: np.ndarray | None = None,
                 energies: np.ndarray | None = None, gaps: np.ndarray | None = None, iterations: np.ndarray | None = None,
                 residuals: np.ndarray | None = None, members: list | None = None, covariance: np.ndarray | None = None,
                 table=None, retries: np.ndarray | None = None):
        if expectations is None and (vectors is None or table is None):
            raise ValueError("SpinStates needs expectations, or vectors and the Pauli table to compute them")
        self._expectations, self.vectors, self.energies, self.gaps = expectations, vectors, energies, gaps
        self.iterations, self.residuals, self.members, self.covariance, self.table = iterations, residuals, members, covariance, table
        self.retries = retries
        self._whole: tuple[SpinStates, slice] | None = None  # set by ``part``
        self._outputs: np.ndarray | None = None  # ``outputs`` from the output strings alone

    @property
    def expectations(self) -> np.ndarray:
        if self._expectations is None:
            if self._whole is not None:  # a part of a joint solve: the whole batch's in one pass
                whole, cut = self._whole
                self._expectations = whole.expectations[cut]
            else:
                self._expectations = self.table.expectations(self.vectors)
        return self._expectations

    def __len__(self) -> int:
        return len(self.vectors) if self._expectations is None else len(self._expectations)

    def outputs(self, hamiltonian) -> np.ndarray:
        """<O_j> per sample (B, n_outputs): from ``expectations`` when they are there (or this is
        a part of a joint solve, which reads them all), else from the strings the outputs read
        alone (``hamiltonian.output_strings``: predictions need no other expectation)."""
        if self._expectations is None and self._whole is None:
            if self._outputs is None:  # read by the nudge, the loss and the outputs of one EP call
                self._outputs = hamiltonian.outputs_of(self.table.expectations(self.vectors, strings=hamiltonian.output_strings))
            return self._outputs
        return hamiltonian.outputs(self.expectations)

    def measured(self, expectations: np.ndarray, covariance: np.ndarray) -> SpinStates:
        """The same batch with shot estimates (B, S) and their covariance (B, S, S)."""
        return SpinStates(expectations, self.vectors, self.energies, self.gaps, self.iterations, self.residuals,
                          self.members, covariance, retries=self.retries)

    def part(self, start: int, stop: int) -> SpinStates:
        """Samples start..stop-1 of a batch solved jointly. Its expectations, when first read, are
        computed for the whole batch in one pass (the nudged phases of an EP call are parts of
        one solve and all read them) unless already there."""
        cut = slice(start, stop)
        part = SpinStates(None if self._expectations is None else self._expectations[cut], self.vectors[cut],
                          self.energies[cut], self.gaps[cut], self.iterations[cut], self.residuals[cut], table=self.table,
                          retries=None if self.retries is None else self.retries[cut])
        part._whole = (self, cut)
        return part

    @classmethod
    def pack(cls, members: Sequence[Any]) -> SpinStates:
        """Per-sample states (GroundState, GibbsState, VariationalState, ...) as one batch; ``retries``
        from the states that record how they were settled (MPSGroundState). One member's vector is
        viewed, not copied (at 26 qubits a copy per phase is 0.5 GiB: benchmarks/ep_gradient.py)."""
        vectors = [getattr(s, "vector", None) for s in members]

        def facts(name: str) -> np.ndarray:
            return np.array([np.nan if getattr(s, name, None) is None else float(getattr(s, name)) for s in members])

        settled = any(getattr(s, "retries", None) is not None for s in members)
        if any(v is None for v in vectors):
            stacked = None
        elif len(vectors) == 1:  # a view, not a copy: one sample's state is what large registers solve
            stacked = np.asarray(vectors[0])[None]
        else:
            stacked = np.array(vectors)
        return cls(np.array([s.expectations for s in members]), stacked,
                   facts("energy"), facts("gap"), facts("iterations"), facts("residual"), list(members),
                   retries=facts("retries") if settled else None)


@dataclass
class MeasuredState:
    """One sample's measured phase: estimated <P_s> (S,) and their covariance (S, S). A spin
    system's per-sample ``predict``, ``nudge`` and ``energy_grad`` read it like an exact state."""

    expectations: np.ndarray
    covariance: np.ndarray


class SpinBatch:
    """``BatchSystem`` of a SpinSystem (module docstring)."""

    def __init__(self, system: SpinSystem, solver: BatchedLanczos | None = None):
        """``solver``: solve the batch jointly with it (SpinSystem.batch_view passes a fresh one per
        EP call, or its kept one with keep_block_lengths); None: one solve per sample."""
        self.system = system
        self.solver = solver
        self.joint_phases = solver is not None
        self.ep_betas: tuple[float, ...] | None = None  # set by ep_gradient (BatchSystem docstring)
        self.free_gaps = True  # False from predict: free phases without their gap solve (BatchSystem docstring)

    @one_blas_thread
    def equilibrate(self, params, X, nudge=None, beta=0.0, init: SpinStates | None = None):
        """Free states (``nudge`` None), or the nudged states of H + b sum_j nudge_bj O_j for a
        float b, or (joint view) a tuple of b's solved together: a tuple of SpinStates."""
        system = self.system
        if not self.joint_phases:
            if isinstance(beta, tuple):
                raise ValueError("this batch view solves one nudge at a time (joint_phases is False)")
            starts = None if init is None else init.members
            return SpinStates.pack(LoopBatch(system).equilibrate(params, X, nudge=nudge, beta=beta, init=starts))
        ham = system.hamiltonian
        coeffs = ham.coefficients_batch(params, X)
        if nudge is None:
            start = np.broadcast_to(np.random.default_rng(0).standard_normal(ham.table.dim), (len(coeffs), ham.table.dim))
            tol = system.tol if self.ep_betas is None else system.ep_tol(self.ep_betas)
            with_gap = self.free_gaps or system.gap_check == "all"
            free = self.solver.solve(coeffs, start, tol, with_gap=with_gap, cold=True)
            if with_gap:
                report_small_gap(float(free.gaps.min()), system.gap_tol)
            return self._states(free, len(X), with_gap=with_gap)
        betas = beta if isinstance(beta, tuple) else (float(beta),)
        signs = np.repeat(np.asarray(betas, dtype=float), len(coeffs))
        shifted = np.concatenate([coeffs] * len(betas))
        shifted += signs[:, None] * ham.nudge_coefficients(np.concatenate([np.asarray(nudge)] * len(betas)))
        tol = system.ep_tol(betas)
        solved = self._states(self.solver.solve(shifted, np.concatenate([init.vectors] * len(betas)), tol, with_gap=False),
                              len(X) * len(betas), with_gap=False)
        parts = tuple(solved.part(k * len(X), (k + 1) * len(X)) for k in range(len(betas)))
        return parts if isinstance(beta, tuple) else parts[0]

    def _states(self, solve, count: int, with_gap: bool) -> SpinStates:
        """A BatchedSolve of ``count`` samples as SpinStates, with its per-sample H applications and retry facts."""
        vectors = np.asarray(solve.vectors)
        return SpinStates(None, vectors, np.asarray(solve.energies), np.asarray(solve.gaps) if with_gap else np.full(count, np.nan),
                          np.asarray(solve.iterations, dtype=float), np.asarray(solve.residuals), table=self.system.hamiltonian.table,
                          retries=np.asarray(solve.retries))

    def reflect(self, free: SpinStates, nudged: SpinStates) -> SpinStates | None:
        if free.members is None or nudged.members is None:
            return None
        starts = LoopBatch(self.system).reflect(free.members, nudged.members)
        # a start for the loop, not a solved batch: only its members are read
        return None if starts is None else SpinStates(free.expectations, members=list(starts))

    def nudge(self, states: SpinStates, Y) -> np.ndarray:
        cost = self.system.cost_fn
        return np.array([cost.grad(o, y) for o, y in zip(self.predict(states), Y)])

    def predict(self, states: SpinStates) -> np.ndarray:
        return states.outputs(self.system.hamiltonian)

    def cost(self, states: SpinStates, Y) -> np.ndarray:
        cost = self.system.cost_fn
        return np.array([cost.value(o, y) for o, y in zip(self.predict(states), Y)], dtype=float)

    @one_blas_thread
    def energy_grad(self, params, X, states: SpinStates) -> dict[str, np.ndarray]:
        ham = self.system.hamiltonian
        ham.check_params(params)
        return ham.unflatten_batch(ham.energy_grad_batch(X, states.expectations))

    def diagnostics(self, states: SpinStates) -> dict[str, np.ndarray]:
        facts = {"gap": states.gaps, "iterations": states.iterations, "residual": states.residuals}
        if states.retries is not None:
            facts["retries"] = states.retries
        return facts

    def stack(self, states) -> SpinStates:
        """Per-sample states as one batch."""
        return SpinStates.pack(states)

    def take(self, states: SpinStates, index: int):
        """Sample ``index`` as a per-sample state (its own object where it was solved alone; a
        MeasuredState for measured batches)."""
        if states.covariance is not None:
            return MeasuredState(states.expectations[index], states.covariance[index])
        if states.members is not None:
            return states.members[index]
        return GroundState(states.vectors[index], float(states.energies[index]), float(states.gaps[index]), int(states.iterations[index]),
                           float(states.residuals[index]), "batched lanczos", states.expectations[index])
