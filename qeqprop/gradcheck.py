"""Gradient check on a random instance: EP estimators vs the exact reference gradient.

For each estimator and beta the relative error ||g_EP - g_ref|| / ||g_ref|| is reported, and
the log-log slope of error vs beta is fitted (expected: 1 one-sided, 2 centered). The
reference itself is checked against central finite differences of the loss. A system on the
MPS solver (no state vector, so no linear response) takes its reference gradient from the same
system on the exact JAX Lanczos solver (``exact_twin``): the same physics, so its EP errors per
beta equal the exact solver's.
"""

from __future__ import annotations

import copy

import numpy as np

from .ep import ESTIMATORS, ep_gradient, finite_difference_gradient, relative_error
from .solvers import MPS, Refined, make_solver
from .systems.spin import SpinSystem
from .systems.tfim import TFIMNetwork
from .validation import check_positive_float

DEFAULT_BETAS = (1e-1, 1e-2, 1e-3)
GRAPHS = ("random", "chain")


def random_tfim_instance(n_qubits: int, seed: int = 0, n_inputs: int = 2, n_outputs: int = 2, solver: str = "auto",
                         graph: str = "random"):
    """A random TFIM learner on an Erdos-Renyi graph (connected chain included), or on the chain
    alone (``graph="chain"``: nearest neighbours, what MPS solvers are made for), with params, x, y.

        H = -sum_{(i,j) in E} J_ij Z_i Z_j - sum_j (b_j + sum_i W_ij x_i) Z_j - sum_j Gamma_j X_j,

    E = chain (i, i+1) plus (graph "random") each longer pair with probability 1/2, Gamma_j ~ U(0.5, 1.5)
    (trainable), x ~ N(0, 1), targets y ~ U(-1, 1) on the last ``n_outputs`` qubits.

    Returns:
        (system, params, x, y).

    Example:
        >>> import qeqprop as qp
        >>> net, params, x, y = qp.random_tfim_instance(5, seed=1)
        >>> net.n_qubits, x.shape, y.shape
        (5, (2,), (2,))
    """
    if n_qubits < 2:
        raise ValueError(f"n_qubits must be >= 2 for a gradient check, got {n_qubits}")
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(n_qubits) for j in range(i + 2, n_qubits) if rng.random() < 0.5]
    if graph == "chain":
        pairs = []
    edges = [(i, i + 1) for i in range(n_qubits - 1)] + pairs
    gamma = rng.uniform(0.5, 1.5, n_qubits)
    n_outputs = min(n_outputs, n_qubits)
    system = TFIMNetwork(
        n_qubits, edges, n_inputs=n_inputs, output_qubits=list(range(n_qubits - n_outputs, n_qubits)),
        gamma=gamma, train_gamma=True, solver=solver,
    )
    params = system.init_params(rng)
    x = rng.normal(size=n_inputs)
    y = rng.uniform(-1, 1, n_outputs)
    return system, params, x, y


def critical_tfim_chain(n_qubits: int, solver="mps") -> tuple:
    """(system, params, x, y): a TFIM chain learner at its critical point (J_i = 1 + 0.05 N(0, 1),
    Gamma = 1, fields b ~ 0.02 N(0, 1), an input field on qubit 0, the output <Z_(n-1)>), seeded.
    Its entanglement grows with log n, so an MPS needs its bond dimension here (a random gapped
    chain is converged at chi = 4): the instance of the MPS convergence checks."""
    net = TFIMNetwork(n_qubits, "chain", n_inputs=1, input_mode="fields", input_qubits=[0], output_qubits=[n_qubits - 1],
                      gamma=1.0, solver=solver)
    rng = np.random.default_rng(3)
    params = net.init_params(rng)
    params["J"] = 1.0 + 0.05 * rng.standard_normal(n_qubits - 1)
    params["b"] = 0.02 * rng.standard_normal(n_qubits)
    return net, params, np.array([0.7]), np.array([0.3])


def precise(system):
    """What the check runs: for a spin system a shallow copy whose nudged phases are solved to the
    free-phase tolerance (``nudge_tol = 0``) and whose Krylov states are Newton-refined to the float64
    residual floor (``Refined``; dense and MPS solvers as they are); any other system itself."""
    if not isinstance(system, SpinSystem):
        return system
    twin = copy.copy(system)
    twin.nudge_tol = 0.0
    solver = make_solver(system.solver)
    if not isinstance(solver, (MPS, Refined)):
        twin.solver = Refined(solver)
    return twin


def exact_twin(system):
    """``system`` itself, or for a spin system on the MPS solver a shallow copy on the exact JAX
    Lanczos solver (its reference gradient needs the state vector: linear response)."""
    if isinstance(make_solver(getattr(system, "solver", "auto")), MPS):
        twin = copy.copy(system)
        twin.solver = "jax"
        return twin
    return system


def log_slope(betas, errors) -> float:
    """Least-squares slope p of log(error) = p log(beta) + log(A) (error ~ A beta^p)."""
    return float(np.polyfit(np.log(betas), np.log(errors), 1)[0])


def check_betas(betas) -> list[float]:
    """At least two distinct finite betas > 0: a slope needs two points (ValueError naming ``betas``)."""
    try:
        values = [float(b) for b in betas]
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a list of positive numbers, e.g. {list(DEFAULT_BETAS)}, got {betas!r}") from None
    for b in values:
        check_positive_float("betas", b, hint=f" (each beta; e.g. {list(DEFAULT_BETAS)})")
    if len(set(values)) < 2:
        raise ValueError(f"betas must hold at least two distinct values to fit the error slope, got {values}; "
                         f"e.g. {list(DEFAULT_BETAS)}")
    return values


def gradcheck(system, params, x, y, betas=DEFAULT_BETAS, fd_step: float = 1e-4) -> dict:
    """Errors of every estimator at every beta, fitted slopes, and reference-vs-FD error.

        errors[estimator][k] = ||g_estimator(beta_k) - g_ref|| / ||g_ref||,
        slopes[estimator]    = p in errors ~ A beta^p (log_slope; 1 one-sided, 2 centered),
        reference_vs_finite_difference = ||g_ref - g_FD|| / ||g_FD||,
        g_FD,k = (L(theta + h e_k) - L(theta - h e_k)) / (2h),   h = ``fd_step``,

    the EP phases and the reference's free state solved by ``precise`` (float64-floor states; the
    system passed in is not changed); the finite differences (error ~ h^2) by the system as it is.

    Returns:
        dict with "errors", "slopes", "betas", "gap" (free phase, where known) and
        "reference_vs_finite_difference".

    Example:
        >>> import qeqprop as qp
        >>> report = qp.gradcheck(*qp.random_tfim_instance(4))
        >>> [round(report["slopes"][e]) for e in ("positive", "negative", "centered")]
        [1, 1, 2]
    """
    betas = check_betas(betas)
    fd_step = check_positive_float("fd_step", fd_step, hint=" (the finite-difference step h, e.g. 1e-4)")
    exact = exact_twin(system)
    reference = precise(exact).reference_grad(params, x, y)
    system = precise(system)
    report = {
        "reference_vs_finite_difference": relative_error(reference, finite_difference_gradient(exact, params, x, y, fd_step)),
        "betas": betas,
        "errors": {},
        "slopes": {},
    }
    free = system.equilibrate(params, x)
    report["gap"] = system.diagnostics(free).get("gap")
    for estimator in ESTIMATORS:
        errors = [relative_error(ep_gradient(system, params, x, y, b, estimator, free=free).grad, reference) for b in betas]
        report["errors"][estimator] = errors
        report["slopes"][estimator] = log_slope(betas, errors)
    return report
