"""Elastic spring networks: the hbar = 0 limit of the quantum oscillator network.

    E(theta, x, u) = 1/2 sum_((i,j) in E) k_ij (u_i - u_j)^2 + 1/2 sum_i kappa_i u_i^2 - sum_i f_i(x) u_i

is minimized by K u = f (K the stiffness matrix); qeqprop.systems.oscillators.OscillatorNetwork
with hbar = 0 is exactly this classical network (zero covariance, EP on the displacements u,
cost 1/2 sum_o (u_o - y_o)^2, local gradient dE/dk_ij = 1/2 (u_i - u_j)^2). ``ElasticNetwork``
is that class with hbar fixed to 0 and a batched equilibrium.

Batched equilibrium: K depends on the parameters (and, in a nudged phase, on beta: K + beta P_out)
but not on the input, so one eigendecomposition K = V diag(w^2) V^T (mass-weighted normal modes,
qeqprop.solvers.gaussian.normal_modes, which also refuses a K that is not positive definite)
serves every sample of a minibatch:

    U = ((F V) / w^2) V^T,    F = (f(x_1); ...; f(x_B)) + beta Y P_out      (B, n),

the per-sample formula mu = V ((V^T f) / w^2) applied to B right-hand sides at once (BLAS level).
At T > 0 the classical Gibbs state has the same means and the shared covariance T K^-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from qeqprop.solvers.gaussian import (
    GaussianState,
    mode_free_energies,
    mode_variances,
    normal_modes,
)
from qeqprop.systems.oscillators import OscillatorNetwork
from qeqprop.validation import as_finite_array


@dataclass
class SpringBatch:
    """Equilibria of a batch: means (B, n), the shared covariance (n, n) (zero at T = 0), energies
    <E + beta C> and free energies (B,), the shared normal modes, and the beta solved with."""

    mean: np.ndarray
    covariance: np.ndarray
    energy: np.ndarray
    free_energy: np.ndarray
    frequencies: np.ndarray
    modes: np.ndarray
    temperature: float
    beta: float = 0.0

    def __len__(self) -> int:
        return len(self.mean)

    def take(self, index: int) -> GaussianState:
        """Sample ``index`` as the per-sample state (a GaussianState with hbar = 0)."""
        return GaussianState(self.mean[index].copy(), self.covariance.copy(), float(self.energy[index]),
                             float(self.free_energy[index]), self.frequencies, self.modes, 0.0, self.temperature)


class ElasticNetwork(OscillatorNetwork):
    """An OscillatorNetwork with hbar = 0 (every other option as OscillatorNetwork) whose
    ``batch_view`` solves a minibatch with one eigendecomposition (module docstring).

    Example:
        >>> import numpy as np
        >>> net = ElasticNetwork(4, "chain", n_inputs=2, output_nodes=[3])
        >>> params, X = net.init_params(0), np.array([[0.1, 0.2], [-0.3, 0.5]])
        >>> states = net.batch_view(2).equilibrate(params, X)
        >>> bool(np.allclose(states.mean[1], net.equilibrate(params, X[1]).mean, atol=1e-12))
        True
    """

    def __init__(self, n_nodes: int, graph="chain", **options):
        if "hbar" in options:
            raise ValueError("ElasticNetwork fixes hbar = 0; use qeqprop.systems.oscillators.OscillatorNetwork for hbar > 0")
        super().__init__(n_nodes, graph, hbar=0.0, **options)

    def describe(self) -> dict:
        return {"name": type(self).__name__, "units": self.n_nodes, "unit": "nodes"}

    def forces(self, params, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stiffness matrix K (n, n) and the forces f(x) of every row of X, (B, n)."""
        params = self.check_params(params)
        stiffness, bias = self.potential(params, np.zeros(self.n_inputs))
        X = as_finite_array("X", X, (len(X), self.n_inputs))
        force = np.broadcast_to(bias, (len(X), self.n_nodes)).copy()
        if "W" in params:
            force += X @ params["W"]
        if self.input_nodes:
            force[:, self.input_nodes] += self.clamp_stiffness * X
        return stiffness, force

    def solve_batch(self, params, X: np.ndarray, targets=None, beta: float = 0.0) -> SpringBatch:
        """Equilibria (Gibbs states at T > 0) of E + beta C(y) for every row of X; ``targets``
        (B, n_outputs) the nudge's y (module docstring)."""
        stiffness, force = self.forces(params, X)
        constant = np.zeros(len(force))
        if targets is not None and beta != 0.0:
            out = self.output_nodes
            stiffness[out, out] += beta
            force[:, out] += beta * targets
            constant = 0.5 * beta * np.sum(targets**2, axis=1)
        else:
            beta = 0.0
        try:
            w, v = normal_modes(self.masses, stiffness)
        except ValueError as exc:
            if beta == 0.0:
                raise
            raise ValueError(f"nudged phase beta={beta}: {exc}; use a smaller |beta|") from None
        mean = ((force @ v) / w**2) @ v.T
        variances = mode_variances(w, 0.0, self.temperature)
        scaled = v * np.sqrt(variances)
        static = constant - 0.5 * np.sum(force * mean, axis=1)
        energy = static + float(np.sum(w**2 * variances))
        free = energy if self.temperature == 0.0 else static + float(np.sum(mode_free_energies(w, 0.0, self.temperature)))
        return SpringBatch(mean, scaled @ scaled.T, energy, free, w, v, self.temperature, float(beta))

    def batch_view(self, batch_size: int) -> ElasticBatch:
        return ElasticBatch(self)


class ElasticBatch:
    """The batch-first view (qeqprop.systems.protocol.BatchSystem) of an ElasticNetwork: states
    are SpringBatch objects; every phase of a minibatch is one ``solve_batch``."""

    joint_phases = False

    def __init__(self, system: ElasticNetwork):
        self.system = system

    def _targets(self, Y) -> np.ndarray:
        return as_finite_array("nudge", Y, (len(Y), self.system.n_outputs))

    def equilibrate(self, params, X, nudge=None, beta=0.0, init=None) -> SpringBatch:
        nudged = nudge is not None and beta != 0.0
        return self.system.solve_batch(params, X, self._targets(nudge) if nudged else None, float(beta) if nudged else 0.0)

    def reflect(self, free, nudged):
        return None

    def nudge(self, states, Y) -> np.ndarray:
        return self._targets(Y)

    def predict(self, states: SpringBatch) -> np.ndarray:
        return states.mean[:, self.system.output_nodes]

    def cost(self, states: SpringBatch, Y) -> np.ndarray:
        out = self.system.output_nodes
        return 0.5 * np.sum((self.predict(states) - self._targets(Y)) ** 2 + np.diag(states.covariance)[out], axis=1)

    def energy_grad(self, params, X, states: SpringBatch) -> dict[str, np.ndarray]:
        """<dE/dtheta> per sample: OscillatorNetwork._contract with <x> = mean and <x x^T> =
        C + mean mean^T, only the entries each leaf needs."""
        system = self.system
        params = system.check_params(params)
        (i, j), mean, cov = system._ends, states.mean, states.covariance
        spread = (mean[:, i] - mean[:, j]) ** 2 + cov[i, i] + cov[j, j] - cov[i, j] - cov[j, i]
        grads = {"k_raw": 0.5 * spread * expit(params["k_raw"])}
        if system.train_anchors:
            grads["kappa_raw"] = 0.5 * (mean**2 + np.diag(cov)) * expit(params["kappa_raw"])
        grads["b"] = -mean
        if "W" in params:
            grads["W"] = -np.asarray(X)[:, :, None] * mean[:, None, :]
        return grads

    def diagnostics(self, states: SpringBatch) -> dict[str, np.ndarray]:
        return {}

    def take(self, states: SpringBatch, index: int) -> GaussianState:
        return states.take(index)

    def stack(self, states) -> SpringBatch:
        if isinstance(states, SpringBatch):
            return states
        states = list(states)
        first = states[0]
        return SpringBatch(np.stack([s.mean for s in states]), first.covariance, np.array([s.energy for s in states]),
                           np.array([s.free_energy for s in states]), first.frequencies, first.modes, first.temperature)


def elastic_network(n_nodes: int, graph="chain", **options) -> ElasticNetwork:
    """An ElasticNetwork: OscillatorNetwork with hbar = 0 (every other option as OscillatorNetwork)."""
    if "hbar" in options:
        raise ValueError("elastic_network fixes hbar = 0; use qeqprop.systems.oscillators.OscillatorNetwork for hbar > 0")
    return ElasticNetwork(n_nodes, graph, **options)


__all__ = ["ElasticBatch", "ElasticNetwork", "OscillatorNetwork", "SpringBatch", "elastic_network"]
