"""Gap checks of MPS ground states (issue 22; house rule: a near-degenerate ground state, where EP is
undefined, is detected and reported).

A SpinSystem whose solver is an MPS with no gap solve of its own (``MPS(..., gap=False)``: the
long-chain solver of qeqprop.systems.long_chain.chain_solver) at T = 0 gets ground states without a
gap. Unique is not gapped, and EP needs the gap (its nudged states are analytic in beta only for
beta ||V|| < gap / 2), so the free state's gap E_1 - E_0 comes from a second DMRG orthogonal to it
(``MPS.gap_of``: cold, converged on its energy), on the free phases the system's ``gap_check`` names:

    "ep"     every EP free phase, i.e. every training sample (default)
    "first"  the first sample of each EP minibatch (the same as "ep" at batch size 1)
    k        (an integer >= 1) every k-th EP free phase, counted over the system's EP calls
             (``SpinSystem.ep_free_phases``; ``fit`` counts from 0 and checkpoints the count)
    "all"    also every free phase outside EP: evaluation ("<split>_min_gap"), predict, equilibrate
    "none"   none (the free states are not checked: EP may silently run on a degenerate one)

Which samples are checked never changes the training (the gap solve leaves the free state as it
is). A checked gap below ``gap_tol`` warns DegenerateGroundStateWarning, and ``fit``'s history
records the smallest checked gap ("batch_min_gap") and how many free phases were checked
("batch_gap_checks"). Cost per training epoch: benchmarks/mps_gap_check.py. Exact solvers compute
every free phase's gap whatever ``gap_check`` says, except ``predict``'s with batched Lanczos, which
returns outputs only and solves the gaps (a deflated second solve) only with "all".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._blas import one_blas_thread
from ..solvers import report_small_gap
from .spin_batch import SpinBatch, SpinStates

if TYPE_CHECKING:
    from .spin import SpinSystem

# the modes of ``gap_check`` (module docstring); the first is the default; an integer k >= 1 is also accepted
GAP_CHECKS = ("ep", "first", "all", "none")


def check_gap_check(gap_check) -> str | int:
    """``gap_check`` as a mode of GAP_CHECKS or an int k >= 1 (module docstring).

    Raises:
        ValueError: anything else, naming gap_check, the choices and the command-line form.

    Example:
        >>> check_gap_check("first"), check_gap_check(np.int64(4))
        ('first', 4)
    """
    stride = isinstance(gap_check, (int, np.integer)) and not isinstance(gap_check, bool) and gap_check >= 1
    if not (stride or (isinstance(gap_check, str) and gap_check in GAP_CHECKS)):
        raise ValueError(f"gap_check must be one of {GAP_CHECKS} or an integer k >= 1 (which MPS free phases get a gap "
                         f"solve: every EP free phase, the first of each minibatch, also evaluation's, none; k: every "
                         f"k-th EP free phase; --option gap_check=ep), got {gap_check!r}")
    return int(gap_check) if stride else gap_check


def checked_samples(gap_check: str | int, done: int, batch_size: int) -> list[int]:
    """The samples of an EP free phase of ``batch_size`` samples whose gap ``gap_check`` checks, when
    ``done`` EP free phases came before it.

    Example:
        >>> checked_samples("ep", 0, 3), checked_samples("first", 5, 3), checked_samples(4, 3, 6)
        ([0, 1, 2], [0], [1, 5])
    """
    if isinstance(gap_check, int):
        return [b for b in range(batch_size) if (done + b) % gap_check == 0]
    return list(range(batch_size if gap_check in ("ep", "all") else 1 if gap_check == "first" else 0))


class GapCheckedBatch(SpinBatch):
    """The batch view of a SpinSystem on MPS ground states without gaps (``SpinSystem.checks_gaps``):
    one DMRG per sample and phase (SpinBatch without a joint solver); the free phase of an EP call
    (``ep_betas`` set by ``ep_gradient``) also gets the gap of the samples its ``gap_check`` names
    (``checked_samples``) by ``MPS.gap_of``, and warns DegenerateGroundStateWarning when the smallest
    is below gap_tol. Unchecked samples read gap NaN (``diagnostics``), so ``fit`` records the
    smallest checked gap ("batch_min_gap") and how many were checked ("batch_gap_checks")."""

    def __init__(self, system: SpinSystem):
        super().__init__(system, None)

    def checked(self, batch_size: int) -> list[int]:
        """The samples of the system's next EP free phase of ``batch_size`` samples whose gap is
        checked; the system's count of EP free phases (``ep_free_phases``) moves on."""
        system = self.system
        done = system.ep_free_phases
        system.ep_free_phases += batch_size
        return checked_samples(system.gap_check, done, batch_size)

    @one_blas_thread
    def equilibrate(self, params, X, nudge=None, beta=0.0, init: SpinStates | None = None):
        states = super().equilibrate(params, X, nudge=nudge, beta=beta, init=init)
        if nudge is not None or self.ep_betas is None:
            return states  # nudged phases; free phases outside EP: SpinSystem.equilibrate checks them ("all")
        system, members = self.system, states.members
        checked = [b for b in self.checked(len(X)) if members[b].gap is None]
        for b in checked:
            members[b].gap = system.solver.gap_of(members[b], system.tol)
        if checked:
            states.gaps[checked] = [members[b].gap for b in checked]
            report_small_gap(float(np.nanmin(states.gaps)), system.gap_tol)
        return states
