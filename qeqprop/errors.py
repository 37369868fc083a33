"""The exceptions and warnings qeqprop raises, in one place.

Bad input raises ``ValueError`` naming the argument and the fix (qeqprop.validation). What is not
a bad argument has its own class here, so callers can catch exactly what they mean::

    NotConvergedError              an equilibrium solver stopped before its tolerance (every quantum
                                   and classical solver); a subclass of both RuntimeError and
                                   ValueError, so code written against either keeps working.
    DegenerateGroundStateWarning   the free-phase gap is below ``gap_tol``: EP is undefined there.
    LargeNudgeWarning              beta times the nudge's norm reaches half the free gap (qeqprop.ep).
    NativeKernelWarning            the native CPU kernel could not be built; the XLA kernel runs.
    VariationalConvergenceWarning  a variational phase stopped before its tolerance.

Warnings are emitted by ``warn``, which attributes them to the caller's line (the first frame
outside the qeqprop package), however deep inside qeqprop they arise.
"""

from __future__ import annotations

import os
import sys
import warnings

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _internal(filename: str) -> bool:
    """Frames a warning must not point at: qeqprop's own files, and the import machinery
    (a warning raised while a module is imported belongs to the importing line)."""
    return filename.startswith((PACKAGE_DIR, "<frozen importlib"))


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` attributed to the caller's line: the innermost frame
    outside the qeqprop package (Python 3.12's ``skip_file_prefixes``, which 3.11 lacks). A
    fixed ``stacklevel`` cannot do it: the depth between the user's call and the code that
    warns differs per entry point (decorators, batch views, solver objects).

    Example:
        >>> import warnings
        >>> from qeqprop.errors import DegenerateGroundStateWarning, warn
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn("gap below gap_tol", DegenerateGroundStateWarning)
        >>> caught[0].filename.startswith("<doctest")  # this example's line, not errors.py
        True
    """
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn's caller
    while frame.f_back is not None and _internal(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


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


class LargeNudgeWarning(UserWarning):
    """beta is too large for the free state: beta * ||sum_j w_j O_j|| >= gap / 2, past the radius
    where the nudged ground state is an analytic (perturbative) function of beta, so the EP
    estimate no longer approximates d/dbeta at 0 (e.g. a saturated, all-zero gradient)."""


class NativeKernelWarning(UserWarning):
    """The native kernel could not be built or loaded; the XLA kernel is used instead."""


class VariationalConvergenceWarning(UserWarning):
    """The optimizer stopped (maxiter, or no further decrease) before the gradient or
    energy criterion was met: the state may be far from the ansatz's minimum."""


__all__ = [
    "DegenerateGroundStateWarning",
    "LargeNudgeWarning",
    "NativeKernelWarning",
    "NotConvergedError",
    "VariationalConvergenceWarning",
    "warn",
]
