"""Agnostic equilibrium propagation (Aeqprop): the parameters are physical degrees of freedom that
relax together with the state, under homeostatic control, after Scellier, Mishra, Bengio and
Ollivier, "Agnostic physics-driven deep learning" (arXiv:2205.15021, 2022); compared with EP in
Scellier et al., "Energy-based learning algorithms for analog computing: a comparative study"
(NeurIPS 2023).

The parameters theta sit in a stiff parameter potential k/2 |theta|^2 and feel a control force u
(set from outside, e.g. by a feedback loop). With a minibatch of B copies of the system sharing
theta, the total energy is

    G(theta, s; u) = 1/B sum_b [E(theta, x_b, s_b) + beta C(s_b, y_b)] + k/2 |theta|^2 - u . theta.

1. Free phase with homeostatic control: the state relaxes to s_0 at the current theta_t, and the
   controller sets u so that theta_t is the parameters' equilibrium, dG/dtheta = 0 at theta_t:
   u = k theta_t + g_0 with g_0 = 1/B sum_b dE/dtheta (theta_t, s_0b).
2. Nudged phase: u is frozen, beta > 0 switched on, and the state and the parameters relax
   jointly to (theta_beta, s_beta). The parameters' equilibrium condition reads

       theta = theta_t - (g(theta, s_beta(theta)) - g_0) / k,

   which ``AgnosticEP.relax`` solves by alternating the system's own relaxation (its equilibrate,
   warm-started) with this update (block-coordinate relaxation of G; a contraction for k above
   the curvature of E in theta).
3. The update is the displacement itself, theta_(t+1) = theta_beta: no gradient is computed.

Why it learns: with Phi(theta) = min_s 1/B sum_b E(theta, x_b, s_b) and L the minibatch loss,
expanding the equilibrium condition in beta gives

    theta_beta - theta_t = -beta (k I + Hess Phi)^-1 grad L + O(beta^2),

a preconditioned gradient step; in the limit of a stiff, isotropic parameter potential (k large
against Hess Phi) and a weak nudge (beta -> 0), -(k / beta)(theta_beta - theta_t) -> grad L, the
EP gradient (tests/test_classical_agnostic.py checks both statements and the rates O(beta), O(1/k)).
As a gradient rule, ``AgnosticEP.gradients`` returns that implied gradient -(k/beta)(theta_beta -
theta_t) for every sample of the minibatch (the copies share theta); SGD at learning rate beta / k
then reproduces the physical update theta_(t+1) = theta_beta exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qeqprop.ep import as_batch, mean_energy_grad
from qeqprop.errors import NotConvergedError
from qeqprop.validation import check_beta, check_int, check_positive_float


@dataclass
class AgnosticStep:
    """One Aeqprop step: the relaxed parameters ``nudged_params`` (theta_beta), the displacement
    theta_beta - theta_t, the free and nudged states of the batch, and the alternations taken."""

    nudged_params: dict[str, np.ndarray]
    displacement: dict[str, np.ndarray]
    free: Any
    nudged: Any
    iterations: int


class AgnosticEP:
    """The Aeqprop gradient rule (module docstring): nudge ``beta`` > 0, parameter stiffness
    ``stiffness`` = k; the joint relaxation stops when no parameter moves by more than ``tol``
    (relative to max |theta_beta - theta_t|) in an alternation, ValueError after ``max_iter``.

    Example:
        >>> import numpy as np
        >>> from classical import PhaseOscillatorNetwork
        >>> net = PhaseOscillatorNetwork(2, 3, 1)
        >>> step = AgnosticEP(beta=0.01, stiffness=1e4).relax(net, net.init_params(0), np.ones((2, 2)), np.ones((2, 1)))
        >>> sorted(step.displacement), step.iterations <= 5
        (['W', 'h', 'psi'], True)
    """

    name = "agnostic"

    def __init__(self, beta: float = 0.1, stiffness: float = 1e3, tol: float = 1e-8, max_iter: int = 50):
        self.beta = check_beta(beta)
        self.stiffness = check_positive_float("stiffness", stiffness)
        self.tol = check_positive_float("tol", tol)
        self.max_iter = check_int("max_iter", max_iter)

    def relax(self, system, params, X, Y) -> AgnosticStep:
        """Steps 1-2 of the module docstring for the minibatch (X, Y)."""
        X, Y, _ = as_batch(system, X, Y)
        theta = {k: np.array(v, dtype=float) for k, v in params.items()}
        view = system.batch_view(len(X))
        free = view.equilibrate(theta, X)
        nudge = view.nudge(free, Y)
        g0 = {k: v[0] for k, v in mean_energy_grad(view, theta, X, free).items()}
        current, states = theta, free
        for iteration in range(1, self.max_iter + 1):
            states = view.equilibrate(current, X, nudge=nudge, beta=self.beta, init=states)
            g = mean_energy_grad(view, current, X, states)
            new = {k: theta[k] - (g[k][0] - g0[k]) / self.stiffness for k in theta}
            moved = max(float(np.max(np.abs(new[k] - current[k]), initial=0.0)) for k in theta)
            scale = max(float(np.max(np.abs(new[k] - theta[k]), initial=0.0)) for k in theta)
            current = new
            if moved <= self.tol * max(scale, np.finfo(float).tiny):
                return AgnosticStep(current, {k: current[k] - theta[k] for k in theta}, free, states, iteration)
        raise NotConvergedError(f"agnostic EP: the joint relaxation of state and parameters did not converge in "
                                f"{self.max_iter} alternations (last move {moved:.2e}, displacement {scale:.2e}); raise "
                                "stiffness (the parameter springs must be stiffer than the energy's curvature in theta) "
                                "or max_iter")

    def gradients(self, system, params, X, Y, readout=None, rng=None) -> dict[str, np.ndarray]:
        """The implied gradient -(k / beta)(theta_beta - theta_t), repeated for each of the B samples
        (they share theta): the minibatch mean is that gradient itself."""
        if readout is not None and type(readout).__name__ != "Exact":
            raise ValueError("the 'agnostic' gradient rule relaxes exact states; shots need gradient='ep'")
        X, Y, _ = as_batch(system, X, Y)
        step = self.relax(system, params, X, Y)
        scale = -self.stiffness / self.beta
        return {k: np.broadcast_to(scale * v, (len(X), *np.shape(v))).copy() for k, v in step.displacement.items()}


__all__ = ["AgnosticEP", "AgnosticStep"]
