"""Quantum harmonic oscillator (QHO) networks: EP on Gaussian (or Fock-space) ground states,
and on Gaussian thermal (Gibbs) states at temperature T > 0.

    H(theta, x) = sum_i p_i^2 / (2 m_i) + 1/2 sum_{(i,j) in E} k_ij (x_i - x_j)^2
                  + 1/2 sum_i kappa_i x_i^2 - sum_i f_i(x) x_i + sum_i lambda_i x_i^4
                = sum_i p_i^2 / (2 m_i) + 1/2 x^T K x - f^T x + sum_i lambda_i x_i^4,

    K = sum_{e=(i,j)} k_e (e_i - e_j)(e_i - e_j)^T + diag(kappa)   (+ clamp springs).

Parameters (a dict of arrays):
    k_raw       one per edge; spring constants k = softplus(k_raw) = log(1 + exp(k_raw)) > 0
    kappa_raw   anchors kappa = softplus(kappa_raw), only with train_anchors (else fixed kappa >= 0)
    b           bias forces on every node
    W           input weights (input_mode="weights"): f_j = b_j + sum_i W_ij x_i
In input_mode="clamped", input i pulls node q_i towards x_i with a spring s, 1/2 s (x_q - x_i)^2:
K_qq += s and f_q = b_q + s x_i. Outputs: <x_o>. The cost is the observable

    C(y) = 1/2 sum_o (x_o - y_o)^2,   <C(y)> = 1/2 sum_o [(<x_o> - y_o)^2 + Var(x_o)],

which counts the zero-point spread. It is quadratic, so a nudged phase stays Gaussian:
H + beta C(y) has K_oo += beta, f_o += beta y_o and the constant beta/2 |y|^2.

Finite temperature (``temperature`` T > 0, harmonic networks): every phase is the Gibbs state
rho_beta = exp(-(H + beta C(y))/T)/Z (solvers.gaussian.gaussian_thermal_state: mean K^-1 f,
covariance V diag(hbar/(2w) coth(hbar w/2T)) V^T). The loss is L = <C(y)>_T, EP differentiates
the free energy F(beta) = -T log Z(beta), whose dF/dtheta = <dH/dtheta>_rho_beta and
dF/dbeta = <C(y)>_rho_beta, so d/dbeta <dH/dtheta>_rho_beta at beta = 0 is dL/dtheta with the
same local gradient below. T -> 0 is the ground state; hbar = 0 at T > 0 is the classical
thermal elastic network (covariance T K^-1).

Local gradient <dH/dtheta> at a state with mean mu and second moments <x x^T>:
    dE/dk_raw_e     = 1/2 <(x_i - x_j)^2> sigmoid(k_raw_e),
                      <(x_i - x_j)^2> = (mu_i - mu_j)^2 + Var(x_i - x_j)
    dE/dkappa_raw_i = 1/2 <x_i^2> sigmoid(kappa_raw_i)
    dE/db_j = -<x_j>,   dE/dW_ij = -x_i <x_j>
Reference gradient: the solver state's exact response of <C(y)> (Gaussian: analytic formula,
at T > 0 the Kubo-Mori response from differentiating the closed-form covariance; Fock: linear
response on the truncated Hamiltonian). Solvers: "gaussian" (exact, any size) and
"fock" (QuTiP ED of a few modes; needed for quartic lambda_i > 0). hbar = 0 is the classical
elastic network, handled by this same class (Gaussian solver, zero covariance).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import expit

from ..solvers.fock import check_quartic, fock_ground_state
from ..solvers.gaussian import check_hbar, check_masses, gaussian_thermal_state, per_mode
from ..validation import as_finite_array, check_index_list, check_params, check_temperature
from .protocol import Params, SystemBase
from .tfim import coupling_edges

INPUT_MODES = ("weights", "clamped")
OSCILLATOR_SOLVERS = ("auto", "gaussian", "fock")


def softplus(z: np.ndarray | float) -> np.ndarray:
    """log(1 + exp(z)), overflow-free."""
    return np.logaddexp(0.0, z)


def softplus_inverse(k: np.ndarray | float) -> np.ndarray:
    """z with softplus(z) = k, for k > 0: z = k + log(1 - exp(-k))."""
    return k + np.log(-np.expm1(-k))


def _positive(name: str, value, n: int, allow_zero: bool = False, hint: str = "") -> np.ndarray:
    """``value`` as an (n,) array (scalars broadcast) whose entries are > 0 (>= 0 with allow_zero)."""
    values = per_mode(name, value, n)
    bad = values < 0.0 if allow_zero else values <= 0.0
    if np.any(bad):
        where = f" at index {np.flatnonzero(bad).tolist()}" if n > 1 else ""
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {values[bad].tolist()}{where}{hint}")
    return values


class OscillatorNetwork(SystemBase):
    """A QHO-network learner implementing the EnergySystem protocol (module docstring).

    Parameters
    ----------
    n_nodes : number of oscillators.
    graph : networkx graph, edge list, "complete", "chain" or a coupling matrix's pattern.
    n_inputs, output_nodes (default: the last node), input_mode ("weights" or "clamped"),
    input_nodes (clamped mode; default 0..n_inputs-1), clamp_stiffness s > 0.
    masses : m_i > 0 (scalar or per node).
    anchors : kappa_i >= 0 (scalar or per node); trained through softplus if train_anchors
        (then kappa_i > 0). Every connected component needs an anchor or a clamp.
    quartic : lambda_i >= 0 (anharmonic; needs the Fock solver).
    hbar : >= 0; 0 is the classical elastic network.
    temperature : T >= 0; 0 gives ground states, T > 0 Gaussian Gibbs states (harmonic
        networks, Gaussian solver only).
    solver : "auto" (Gaussian, Fock when quartic), "gaussian" or "fock".
    spring_init, init_std : init_params draws k_raw ~ softplus^-1(spring_init) + init_std N(0, 1),
        W ~ init_std N(0, 1), b ~ 0.1 init_std N(0, 1).
    max_cutoff, cutoff_tol : Fock-space convergence (solvers.fock.fock_ground_state).

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> net = qp.OscillatorNetwork(4, "chain", n_inputs=2, output_nodes=[3], hbar=1.0)
        >>> params, x, y = net.init_params(0), np.array([0.2, -0.4]), np.array([0.3])
        >>> r = qp.ep_gradient(net, params, x, y, beta=1e-3)
        >>> qp.relative_error(r.grad, qp.reference_gradient(net, params, x, y)) < 1e-5
        True
    """

    def __init__(
        self,
        n_nodes: int,
        graph="chain",
        n_inputs: int = 0,
        output_nodes: Sequence[int] | None = None,
        input_mode: str = "weights",
        input_nodes: Sequence[int] | None = None,
        clamp_stiffness: float = 10.0,
        masses: float | Sequence[float] = 1.0,
        anchors: float | Sequence[float] = 1.0,
        train_anchors: bool = False,
        quartic: float | Sequence[float] | None = None,
        hbar: float = 1.0,
        temperature: float = 0.0,
        solver: str = "auto",
        spring_init: float = 1.0,
        init_std: float = 0.5,
        max_cutoff: int = 24,
        cutoff_tol: float = 1e-10,
    ):
        if not isinstance(n_nodes, (int, np.integer)) or n_nodes < 1:
            raise ValueError(f"n_nodes must be a positive integer, got {n_nodes!r}")
        if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 0:
            raise ValueError(f"n_inputs must be an integer >= 0, got {n_inputs!r}")
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        if solver not in OSCILLATOR_SOLVERS:
            raise ValueError(f"solver must be one of {OSCILLATOR_SOLVERS}, got {solver!r}")
        n = int(n_nodes)
        self.n_nodes, self.n_inputs, self.input_mode = n, int(n_inputs), input_mode
        self.edges = coupling_edges(graph, n)
        self._ends = (np.array([i for i, _ in self.edges], dtype=int), np.array([j for _, j in self.edges], dtype=int))
        self.output_nodes = check_index_list("output_nodes", output_nodes, n, default=[n - 1], kind="node")
        if not self.output_nodes:
            raise ValueError("output_nodes must name at least one node")
        self.n_outputs = len(self.output_nodes)
        self.input_nodes: list[int] = []
        if input_mode == "clamped":
            self.input_nodes = check_index_list("input_nodes", input_nodes, n, default=range(self.n_inputs), kind="node")
            if len(self.input_nodes) != self.n_inputs:
                raise ValueError(f"input_nodes must name one node per input ({self.n_inputs}), got {self.input_nodes}")
            self.clamp_stiffness = float(_positive("clamp_stiffness", clamp_stiffness, 1)[0])
        self.masses = check_masses(per_mode("masses", masses, n))
        self.train_anchors = bool(train_anchors)
        self.anchors = _positive("anchors", anchors, n, allow_zero=not self.train_anchors,
                                 hint="; trained anchors kappa = softplus(kappa_raw) are > 0" if self.train_anchors else "")
        self.quartic = check_quartic(quartic, n)
        self.hbar = check_hbar(hbar)
        anharmonic = bool(np.any(self.quartic > 0.0))
        self.solver = ("fock" if anharmonic else "gaussian") if solver == "auto" else solver
        if anharmonic and self.solver == "gaussian":
            raise ValueError("quartic terms make the ground state non-Gaussian; use solver='fock' (or 'auto')")
        if self.solver == "fock" and self.hbar == 0.0:
            raise ValueError("solver 'fock' needs hbar > 0; the harmonic classical limit hbar = 0 uses solver='gaussian'")
        self.temperature = check_temperature(temperature)
        if self.temperature > 0.0 and self.solver == "fock":
            raise ValueError(
                f"temperature={self.temperature} needs the Gaussian thermal state of a harmonic network; "
                "use solver='gaussian' without quartic terms, or temperature=0 for Fock-space ground states"
            )
        self.spring_init = float(_positive("spring_init", spring_init, 1)[0])
        self.init_std = float(init_std)
        self.max_cutoff, self.cutoff_tol = max_cutoff, cutoff_tol

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"k_raw": (len(self.edges),)}
        if self.train_anchors:
            shapes["kappa_raw"] = (self.n_nodes,)
        shapes["b"] = (self.n_nodes,)
        if self.input_mode == "weights" and self.n_inputs > 0:
            shapes["W"] = (self.n_inputs, self.n_nodes)
        return shapes

    def describe(self) -> dict:
        return {"name": type(self).__name__, "units": self.n_nodes, "unit": "oscillators"}

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(rng)
        shapes = self.param_shapes
        params = {"k_raw": softplus_inverse(self.spring_init) + self.init_std * rng.standard_normal(shapes["k_raw"])}
        if self.train_anchors:
            params["kappa_raw"] = softplus_inverse(self.anchors)
        params["b"] = 0.1 * self.init_std * rng.standard_normal(self.n_nodes)
        if "W" in shapes:
            params["W"] = self.init_std * rng.standard_normal(shapes["W"])
        return params

    def check_params(self, params: Params) -> dict[str, np.ndarray]:
        return check_params(params, self.param_shapes)

    def check_input(self, x) -> np.ndarray:
        return as_finite_array("x", np.zeros(0) if x is None else x, (self.n_inputs,))

    def springs(self, params: Params) -> np.ndarray:
        """Spring constants k = softplus(k_raw), one per edge."""
        return softplus(self.check_params(params)["k_raw"])

    def anchor_values(self, params: Params) -> np.ndarray:
        """kappa per node: softplus(kappa_raw) when trained, else the fixed anchors."""
        return softplus(self.check_params(params)["kappa_raw"]) if self.train_anchors else self.anchors

    def with_springs(self, params: Params, springs) -> dict[str, np.ndarray]:
        """Copy of ``params`` with spring constants k given directly (k_raw = softplus^-1(k))."""
        springs = _positive("springs", springs, len(self.edges),
                            hint="; k = softplus(k_raw) is always positive: remove the edge from the graph instead")
        new = {k: np.array(v, dtype=float) for k, v in self.check_params(params).items()}
        new["k_raw"] = softplus_inverse(springs)
        return new

    def potential(self, params: Params, x) -> tuple[np.ndarray, np.ndarray]:
        """The stiffness matrix K and forces f of the harmonic part 1/2 x^T K x - f^T x."""
        params, x = self.check_params(params), self.check_input(x)
        n, (i, j) = self.n_nodes, self._ends
        k = softplus(params["k_raw"])
        stiffness = np.zeros((n, n))
        stiffness[i, j] = stiffness[j, i] = -k
        stiffness[np.diag_indices(n)] = np.bincount(i, k, n) + np.bincount(j, k, n) + self.anchor_values(params)
        force = params["b"].copy()
        if "W" in params:
            force += x @ params["W"]
        if self.input_nodes:
            stiffness[self.input_nodes, self.input_nodes] += self.clamp_stiffness
            force[self.input_nodes] += self.clamp_stiffness * x
        return stiffness, force

    def equilibrate(self, params: Params, x, nudge=None, beta: float = 0.0, init=None):
        """Ground state (Gibbs state at T > 0) of H(theta, x) + beta C(y) with ``nudge`` = y.

        Gaussian: exact, ``init`` unused. Fock: ``init``'s basis (centre, frequencies, cutoff) is
        reused, so every phase of one EP step shares one truncation; else the cutoff converges.
        """
        stiffness, force = self.potential(params, x)
        constant, nudged = 0.0, nudge is not None and beta != 0.0
        if nudged:
            y = as_finite_array("nudge", nudge, (self.n_outputs,))
            out = self.output_nodes
            stiffness[out, out] += beta
            force[out] += beta * y
            constant = 0.5 * beta * float(y @ y)
        try:
            if self.solver == "gaussian":
                return gaussian_thermal_state(self.masses, stiffness, force, self.temperature, self.hbar, constant)
            return fock_ground_state(
                self.masses, stiffness, force, self.hbar, self.quartic, constant,
                basis=None if init is None else init.basis, max_cutoff=self.max_cutoff, tol=self.cutoff_tol,
            )
        except ValueError as exc:
            if not nudged:
                raise
            raise ValueError(f"nudged phase beta={beta}: {exc}; use a smaller |beta|") from None

    def nudge(self, state, y) -> np.ndarray:
        """The targets y: the nudge Hamiltonian is beta C(y) = beta/2 sum_o (x_o - y_o)^2."""
        return as_finite_array("y", y, (self.n_outputs,))

    def predict(self, state) -> np.ndarray:
        """Model outputs <x_o>."""
        return state.mean[self.output_nodes]

    def cost(self, state, y) -> float:
        """<C(y)> = 1/2 sum_o [(<x_o> - y_o)^2 + Var(x_o)]."""
        y = as_finite_array("y", y, (self.n_outputs,))
        out = self.output_nodes
        return 0.5 * float(np.sum((state.mean[out] - y) ** 2 + np.diag(state.covariance)[out]))

    def _contract(self, params: dict[str, np.ndarray], x: np.ndarray, first: np.ndarray, second: np.ndarray) -> dict[str, np.ndarray]:
        """d/dtheta of 1/2 tr(K second) - f . first (K, f linear in k, kappa, b, W; chain rule
        through softplus). With first = <x>, second = <x x^T> this is <dH/dtheta>."""
        i, j = self._ends
        grads = {"k_raw": 0.5 * (second[i, i] + second[j, j] - second[i, j] - second[j, i]) * expit(params["k_raw"])}
        if self.train_anchors:
            grads["kappa_raw"] = 0.5 * np.diag(second) * expit(params["kappa_raw"])
        grads["b"] = -first
        if "W" in params:
            grads["W"] = -np.outer(x, first)
        return grads

    def energy_grad(self, params: Params, x, state) -> dict[str, np.ndarray]:
        """<dH/dtheta> at ``state`` (module docstring)."""
        return self._contract(self.check_params(params), self.check_input(x), state.mean, state.second_moment)

    def reference_grad(self, params: Params, x, y, free=None) -> dict[str, np.ndarray]:
        """Exact dL/dtheta of L = <C(y)> (<C(y)>_T at T > 0) at the free state, from the state's
        response to the observable C(y) = 1/2 x^T D x - d^T x + 1/2 |y|^2 (D = 1 and d = y on the
        outputs)."""
        y = as_finite_array("y", y, (self.n_outputs,))
        state = free if free is not None else self.equilibrate(params, x)
        curvature, target = np.zeros((self.n_nodes, self.n_nodes)), np.zeros(self.n_nodes)
        curvature[self.output_nodes, self.output_nodes] = 1.0
        target[self.output_nodes] = y
        first, second = state.response(curvature, target)
        return self._contract(self.check_params(params), self.check_input(x), first, second)
