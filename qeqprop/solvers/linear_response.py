"""First-order ground-state response: the exact reference gradient of EP ("backprop").

For a non-degenerate ground state psi of H with energy E0 and a cost linearised as
L = <psi| O |psi> (O = sum_j dc/d<O_j> O_j), the adjoint state

    (H - E0) lam = -Q O psi,   Q = 1 - |psi><psi|,   lam orthogonal to psi,

gives   dL/dtheta_p = 2 Re <lam| dH/dtheta_p |psi>   for every parameter at once.
It is solved matrix-free by conjugate gradients on the projected operator Q (H - E0) Q,
which is positive definite on the complement of psi (its condition number is the
spectral width over the gap).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from ..errors import NotConvergedError
from .state import GroundState


def adjoint_state(operator, state: GroundState, source: np.ndarray, rtol: float = 1e-12, maxiter: int | None = None,
                  strict: bool = True) -> np.ndarray:
    """Solve (H - E0) lam = -Q source, lam orthogonal to psi, with ``source = O psi``. ``strict``
    False: CG's last iterate is returned when it misses ``rtol`` within ``maxiter`` (an inexact
    Newton step, whose caller checks that it helps), instead of NotConvergedError."""
    psi = state.vector
    dtype = np.result_type(operator.dtype, psi.dtype, source.dtype)

    def project(v):
        return v - psi * np.vdot(psi, v)

    def apply(v):
        v = project(v)
        return project(operator.matvec(v) - state.energy * v)

    linear = LinearOperator(operator.shape, matvec=apply, dtype=dtype)
    rhs = -project(np.asarray(source, dtype=dtype))
    norm = np.linalg.norm(rhs)
    if norm == 0.0:
        return np.zeros_like(rhs)
    lam, info = cg(linear, rhs, rtol=rtol, atol=0.0, maxiter=maxiter or 20 * operator.dim)
    if info != 0 and strict:
        residual = np.linalg.norm(apply(lam) - rhs) / norm
        raise NotConvergedError(
            f"linear-response solve did not converge (relative residual {residual:.2e} after {info} "
            "iterations); the spectral gap may be too small for a well-defined gradient"
        )
    return project(lam)
