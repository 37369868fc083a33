"""Classical Ising machine: the Gamma = 0 limit of the TFIM network, at temperature T.

    E(theta, x, s) = -sum_((i,j) in E) J_ij s_i s_j - sum_j h_j(x) s_j,   h_j(x) = b_j + sum_i W_ij x_i,

s in {-1, +1}^N: the diagonal of the TFIM Hamiltonian (qeqprop.systems.tfim, input_mode
"weights"; same parameter names J, b, W). Exact Gamma = 0 ground states are discrete, so
<dE/dtheta> jumps as theta moves and EP is undefined there (the quantum TFIM at Gamma = 0 is
degenerate-prone for the same reason). The smoothing used here is finite temperature: the
state is the Boltzmann distribution p(s) = exp(-E(s)/T) / Z, enumerated exactly over all 2^N
configurations, and EP differentiates the free energy F = -T log Z, whose gradient
dF/dtheta = <dE/dtheta> is smooth:

    dE/dJ_ij = -<s_i s_j>,   dE/db_j = -<s_j>,   dE/dW_ij = -x_i <s_j>.

Outputs <s_o>; the cost c(<s_o>, y) is a qeqprop cost (mse by default, like SpinSystem). As in
SpinSystem, the nudge is linear, E + beta sum_o w_o s_o with w = dc/d<s_o> at the free state,
so d/dbeta <dE/dtheta>_beta at beta = 0 equals dL/dtheta exactly. This is SpinSystem's Gibbs
state at Gamma = 0, computed without building 2^N x 2^N matrices.
Reference gradient: JAX autodiff of theta -> <s_o> through the enumeration, contracted with
dc/d<s_o>.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
from scipy.special import logsumexp

from qeqprop.costs import Cost, make_cost
from qeqprop.systems.tfim import coupling_edges
from qeqprop.validation import as_finite_array, check_index_list, check_state_memory

from ._common import ClassicalSystemMixin, check_positive_float, check_int, check_targets

MAX_SPINS = 22


@dataclass
class BoltzmannState:
    """The Boltzmann distribution over all configurations and its moments."""

    probabilities: np.ndarray
    mean: np.ndarray
    correlations: np.ndarray
    free_energy: float
    beta: float = 0.0


def configurations(n_spins: int) -> np.ndarray:
    """All 2^n configurations as rows of +-1 (row r: spin i = +1 iff bit n-1-i of r is 0)."""
    bits = (np.arange(1 << n_spins)[:, None] >> np.arange(n_spins)[None, ::-1]) & 1
    return 1.0 - 2.0 * bits


class IsingMachine(ClassicalSystemMixin):
    """A finite-temperature classical Ising learner implementing the EnergySystem protocol.

    Parameters
    ----------
    n_spins, graph ("complete", "chain", networkx graph, edge list or coupling pattern),
        n_inputs, output_spins (default: the last spin) : as TFIMNetwork.
    temperature : T > 0 of the Boltzmann distribution (the smoothing; module docstring).
    cost : "mse", "cross_entropy", "pauli_mse" or a qeqprop Cost on the outputs <s_o>.
    init_std : init_params draws J, W ~ init_std N(0, 1) and b ~ 0.1 init_std N(0, 1).
    """

    unit = "spins"

    def __init__(
        self,
        n_spins: int,
        graph="complete",
        n_inputs: int = 0,
        output_spins: Sequence[int] | None = None,
        temperature: float = 1.0,
        cost: "str | Cost" = "mse",
        init_std: float = 0.5,
    ):
        self.n_spins = self.n_units = check_int("n_spins", n_spins)
        if self.n_spins > MAX_SPINS:
            raise ValueError(f"n_spins={n_spins}: exact enumeration of 2^n configurations is limited to n <= {MAX_SPINS}")
        self.n_inputs = check_int("n_inputs", n_inputs, minimum=0)
        self.edges = coupling_edges(graph, self.n_spins)
        self.output_spins = check_index_list("output_spins", output_spins, self.n_spins, default=[self.n_spins - 1], kind="spin")
        if not self.output_spins:
            raise ValueError("output_spins must name at least one spin")
        self.n_outputs = len(self.output_spins)
        self.temperature = check_positive_float("temperature", temperature)
        self.cost_fn = make_cost(cost)
        self.init_std = float(init_std)
        check_state_memory(self.n_spins, 8, self.n_spins + len(self.edges), "Boltzmann enumeration")
        self.spins = configurations(self.n_spins)
        ends = np.array(self.edges, dtype=int).reshape(-1, 2)
        self.pairs = self.spins[:, ends[:, 0]] * self.spins[:, ends[:, 1]]

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"J": (len(self.edges),), "b": (self.n_spins,)}
        if self.n_inputs:
            shapes["W"] = (self.n_inputs, self.n_spins)
        return shapes

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        params = {"J": self.init_std * rng.standard_normal(len(self.edges)),
                  "b": 0.1 * self.init_std * rng.standard_normal(self.n_spins)}
        if self.n_inputs:
            params["W"] = self.init_std * rng.standard_normal((self.n_inputs, self.n_spins))
        return params

    def fields(self, params, x) -> np.ndarray:
        """h(x) = b + x W."""
        params = self.check_params(params)
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        return params["b"] + (x @ params["W"] if self.n_inputs else 0.0)

    def energies(self, params, x) -> np.ndarray:
        """E(s) for every configuration (rows of ``spins``)."""
        return -self.pairs @ self.check_params(params)["J"] - self.spins @ self.fields(params, x)

    def _boltzmann(self, energies: np.ndarray, beta: float) -> BoltzmannState:
        logits = -energies / self.temperature
        log_z = logsumexp(logits)
        p = np.exp(logits - log_z)
        return BoltzmannState(p, p @ self.spins, p @ self.pairs, -self.temperature * float(log_z), beta)

    def equilibrate(self, params, x, nudge=None, beta: float = 0.0, init=None) -> BoltzmannState:
        """Boltzmann state of E + beta sum_o nudge_o s_o (exact: ``init`` is not needed)."""
        energies = self.energies(params, x)
        nudged = nudge is not None and beta != 0.0
        if nudged:
            energies = energies + float(beta) * self.spins[:, self.output_spins] @ as_finite_array("nudge", nudge, (self.n_outputs,))
        return self._boltzmann(energies, float(beta) if nudged else 0.0)

    def clamp(self, params, x, outputs, init=None, tol: float = 1e-12, max_iter: int = 100) -> BoltzmannState:
        """Minimum-free-energy state with <s_o> held at ``outputs`` in [-1, 1]: outputs +-1
        condition on s_o; the others tilt p(s) ~ exp(-E(s)/T + lambda . s_o), lambda found by
        Newton's method on the convex dual log Z(lambda) - lambda . outputs."""
        outputs = check_targets(outputs, self.n_outputs, "outputs")
        if np.any(np.abs(outputs) > 1.0):
            raise ValueError(f"outputs must lie in [-1, 1] (they are magnetizations <s_o>), got {outputs.tolist()}")
        energies = self.energies(params, x)
        spins = self.spins[:, self.output_spins]
        hard = np.abs(outputs) == 1.0
        allowed = np.all(spins[:, hard] == outputs[hard], axis=1)
        energies = np.where(allowed, energies, np.inf)
        soft, targets = spins[:, ~hard], outputs[~hard]
        lam = np.zeros(targets.size)

        def dual(lam):
            return float(logsumexp(-energies / self.temperature + soft @ lam)) - float(lam @ targets)

        for _ in range(max_iter):
            state = self._boltzmann(energies - self.temperature * soft @ lam, 0.0)
            grad = state.probabilities @ soft - targets
            if np.max(np.abs(grad), initial=0.0) <= tol:
                return state
            centered = soft - state.probabilities @ soft
            hess = (centered * state.probabilities[:, None]).T @ centered
            step, size = np.linalg.lstsq(hess, grad, rcond=None)[0], 1.0
            while dual(lam - size * step) > dual(lam) - 1e-4 * size * float(grad @ step) and size > 1e-12:
                size *= 0.5
            lam = lam - size * step
        raise ValueError(f"clamp: the tilt did not reach outputs {targets.tolist()} in {max_iter} Newton steps "
                         f"(residual {np.max(np.abs(grad)):.3e}); magnetizations very near +-1 need larger tilts")

    def predict(self, state: BoltzmannState) -> np.ndarray:
        """<s_o>."""
        return state.mean[self.output_spins]

    def cost(self, state: BoltzmannState, y) -> float:
        return self.cost_fn.value(self.predict(state), y)

    def nudge(self, state: BoltzmannState, y) -> np.ndarray:
        """dc/d<s_o> at ``state``: the nudged energy is E + beta sum_o nudge_o s_o."""
        return self.cost_fn.grad(self.predict(state), y)

    def energy_grad(self, params, x, state: BoltzmannState) -> dict[str, np.ndarray]:
        """<dE/dtheta> (module docstring)."""
        self.check_params(params)
        grads = {"J": -state.correlations, "b": -state.mean}
        if self.n_inputs:
            grads["W"] = -np.outer(as_finite_array("x", x, (self.n_inputs,)), state.mean)
        return grads

    @cached_property
    def _output_gradient(self):
        """jit of (params, x, w) -> d(w . <s_o>)/dtheta through the enumeration."""
        import jax
        import jax.numpy as jnp

        spins, pairs, out, temperature = jnp.asarray(self.spins), jnp.asarray(self.pairs), self.output_spins, self.temperature

        def weighted_outputs(p, x, w):
            fields = p["b"] + (x @ p["W"] if "W" in p else 0.0)
            probabilities = jax.nn.softmax((pairs @ p["J"] + spins @ fields) / temperature)
            return w @ (probabilities @ spins[:, out])

        return jax.jit(jax.grad(weighted_outputs))

    def reference_grad(self, params, x, y, free: BoltzmannState | None = None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta = (dc/d<s_o>) . d<s_o>/dtheta, the Jacobian by JAX autodiff of the
        enumerated Boltzmann average."""
        state = free if free is not None else self.equilibrate(params, x)
        x = as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))
        grad = self._output_gradient(self.check_params(params), x, self.nudge(state, y))
        return {k: np.asarray(v, dtype=np.float64) for k, v in grad.items()}
