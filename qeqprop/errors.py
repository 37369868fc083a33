"""The exceptions and warnings qeqprop raises, in one place.

Bad input raises ``ValueError`` naming the argument and the fix (qeqprop.validation). What is not
a bad argument has its own class here, so callers can catch exactly what they mean:

    NotConvergedError              an equilibrium solver stopped before its tolerance (every quantum
                                   and classical solver); a subclass of both RuntimeError and
                                   ValueError, so code written against either keeps working.
    DegenerateGroundStateWarning   the free-phase gap is below ``gap_tol``: EP is undefined there.
    NativeKernelWarning            the native CPU kernel could not be built; the XLA kernel runs.
    VariationalConvergenceWarning  a variational phase stopped before its tolerance.
"""

from __future__ import annotations


class NotConvergedError(RuntimeError, ValueError):
    """An equilibrium (ground state, Gibbs state, classical minimum, linear-response solve)
    did not reach its tolerance; the message names the solver, the residual and the knob to turn.

    Example:
        >>> from qeqprop.errors import NotConvergedError
        >>> issubclass(NotConvergedError, RuntimeError) and issubclass(NotConvergedError, ValueError)
        True
    """


class DegenerateGroundStateWarning(UserWarning):
    """The spectral gap above the ground state is below the threshold: EP is undefined there."""


class NativeKernelWarning(UserWarning):
    """The native kernel could not be built or loaded; the XLA kernel is used instead."""


class VariationalConvergenceWarning(UserWarning):
    """The optimizer stopped (maxiter, or no further decrease) before the gradient or
    energy criterion was met: the state may be far from the ansatz's minimum."""


__all__ = ["DegenerateGroundStateWarning", "NativeKernelWarning", "NotConvergedError", "VariationalConvergenceWarning"]
