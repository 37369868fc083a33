"""Equilibrium propagation on any EnergySystem: the one phase loop, batch-first.

With g(s) = dE/dtheta evaluated at state s and s_b the equilibrium nudged by b * C(y), an
estimator (qeqprop.estimators) is a linear combination over signed nudges b_k,

    ``grad = sum_k a_k g(s_{b_k})``,    e.g. centered  ``(g(s_beta) - g(s_-beta)) / (2 beta)``   bias O(beta^2),

and every one estimates dL/dtheta = d/dbeta g(s_beta) at beta = 0. ``ep_gradient`` runs the
phases for a whole batch: the free states s_0, the nudge from the (measured) free states, then
the nudged phases warm-started from s_0 (a -b phase from the reflection 2 s_0 - s_b of its +b
partner, error O(b^2), where the system offers ``reflect``; all nudged phases in one solve where
the system's batch view has ``joint_phases``). A readout (qeqprop.readout) turns each phase's
exact states into measured ones, so the same loop gives shot-noise gradients with standard errors.
This module knows nothing of physics beyond the protocol.

Two checks guard against silent wrong answers: a ``free`` state passed in must be the equilibrium
of this call's params and x (the system's ``check_free``), and beta must stay inside the radius
where the nudged state is analytic in beta. For a ground state with gap Delta and a nudge
V = sum_j w_j O_j the perturbation series converges for |beta| ||V|| < Delta / 2 (Kato); past it
the nudged state can saturate (e.g. beta = 1e6 gives an all-zero gradient), so
max_k |b_k| >= Delta / (2 ||V||) warns LargeNudgeWarning (the system's ``nudge_limit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .errors import LargeNudgeWarning, warn
from .estimators import ESTIMATORS, LinearEstimator, as_estimator, check_estimator
from .systems.protocol import BatchSystem, EnergySystem
from .validation import as_finite_array

if TYPE_CHECKING:
    from .readout import Readout

__all__ = ["ESTIMATORS", "EPResult", "check_estimator", "ep_gradient", "finite_difference_gradient", "flatten_grad",
           "reference_gradient", "relative_error"]


@dataclass
class EPResult:
    """An EP gradient with the equilibria it came from.

    For a batch (X of shape (B, n_inputs)): ``grad`` and ``stderr`` are dicts like params with a
    leading axis B (per-sample gradients), ``loss`` (B,), ``output`` (B, n_outputs); for one sample
    (1-D x) the batch axis is dropped. ``free`` = s_0 and ``nudged`` = {signed beta: s_beta} (a
    batch's states, or one sample's states); ``measured`` = {signed beta: measured states} with a
    readout other than Exact; ``stderr`` and ``covariance`` (flat parameters, (B, P, P) or (P, P))
    are None for exact readouts. ``loss`` = C(s_0, y) and ``output`` are read from the (measured)
    free phase.
    """

    grad: dict[str, np.ndarray]
    loss: Any
    output: np.ndarray
    free: Any
    nudged: dict[float, Any] = field(default_factory=dict)
    estimator: str = "centered"
    beta: float = 0.0
    stderr: dict[str, np.ndarray] | None = None
    covariance: np.ndarray | None = None
    measured: dict[float, Any] | None = None


def as_batch(system: EnergySystem, x, y) -> tuple[np.ndarray, np.ndarray, bool]:
    """(X (B, n_inputs), Y (B, n_outputs), single): a 1-D y is one sample (a batch of 1); x may be
    None for systems without inputs."""
    y = np.asarray(y)
    single = y.ndim <= 1
    Y = as_finite_array("y", y.reshape(1, -1) if single else y)
    if Y.shape[1] != system.n_outputs:
        raise ValueError(f"y must have one target per output ({system.n_outputs} per sample), got shape {np.shape(y)}")
    if len(Y) == 0:
        raise ValueError(f"y holds no samples (shape {np.shape(y)}): an EP gradient needs at least one (x, y) pair")
    if x is None:
        if system.n_inputs:
            raise ValueError(f"x is None but the system takes n_inputs={system.n_inputs}")
        X = np.zeros((len(Y), 0))
    else:
        X = np.asarray(x)
        if single:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape != (len(Y), system.n_inputs):
            raise ValueError(f"x must have shape ({len(Y)}, {system.n_inputs}) for y of shape {np.shape(y)}, got {np.shape(x)}")
        X = as_finite_array("x", X)
    return X, Y, single


def solve_phases(view: BatchSystem, params, X, nudge, betas: tuple[float, ...], free) -> dict[float, Any]:
    """The nudged phases {b: s_b}, warm-started from ``free``; a -b phase from the reflection of
    its +b partner where the system offers one; all at once where the view has ``joint_phases``."""
    if view.joint_phases and betas:
        return dict(zip(betas, view.equilibrate(params, X, nudge=nudge, beta=tuple(betas), init=free)))
    states: dict[float, Any] = {}
    for b in betas:
        start = view.reflect(free, states[-b]) if -b in states else None
        states[b] = view.equilibrate(params, X, nudge=nudge, beta=b, init=free if start is None else start)
    return states


def ep_gradient(
    system: EnergySystem,
    params: Mapping[str, np.ndarray],
    x,
    y,
    beta: float = 1e-2,
    estimator: "str | LinearEstimator" = "centered",
    readout: "Readout | None" = None,
    free: Any = None,
    rng: np.random.Generator | int | None = None,
    mean: bool = False,
) -> EPResult:
    """EP gradient estimates of dL/dtheta for one sample or a batch.

    Args:
        system: any EnergySystem (quantum or classical).
        params: the parameter pytree (dict of arrays).
        x, y: one sample (1-D x, 1-D y) or a batch (X (B, n_inputs), Y (B, n_outputs)); x may be
            None for a system without inputs.
        beta: nudge strength for an estimator given by name.
        estimator: "positive", "negative", "centered" or a LinearEstimator (its own nudges).
        readout: Exact() (default) or Shots(...): how each phase is read.
        free: the free states, if already solved (one sample's state or a batch's states) for
            these params and x; one solved for other params or inputs raises ValueError.
        rng: seed or Generator of a shot readout (overrides its ``seed``).
        mean: ``grad`` is the batch mean of the per-sample estimates (kept with a batch axis of
            length 1), computed by ``mean_energy_grad``; exact readouts only.

    Returns:
        EPResult: per-sample ``grad`` (leading axis B for a batch), ``loss``, ``output``, the
        states, and ``stderr`` with a shot readout.

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> net, params, x, y = qp.random_tfim_instance(4)
        >>> one = qp.ep_gradient(net, params, x, y, beta=1e-3)
        >>> batch = qp.ep_gradient(net, params, np.stack([x, -x]), np.stack([y, y]), beta=1e-3)
        >>> batch.grad["J"].shape[0], bool(np.allclose(batch.grad["J"][0], one.grad["J"], atol=1e-10))
        (2, True)
        >>> qp.relative_error(one.grad, qp.reference_gradient(net, params, x, y)) < 1e-5
        True
    """
    from .readout import Exact  # readout -> measurement -> ep: imported at call time

    rule = as_estimator(estimator, beta)
    X, Y, single = as_batch(system, x, y)
    view = system.batch_view(len(X))
    if hasattr(view, "ep_betas"):  # the free phase to the accuracy of this estimate (BatchSystem)
        view.ep_betas = tuple(rule.nudged_betas) or None
    free_states = view.equilibrate(params, X) if free is None else checked_free(system, view, params, X, free, single)
    measurement = (readout if readout is not None else Exact()).start(system, X, free_states, rng)
    measured = {0.0: measurement.measure(free_states)}
    nudge = view.nudge(free_states if measurement.nudge_from == "exact" else measured[0.0], Y)
    check_nudge_size(system.nudge_limit(free_states, nudge), rule)
    states = solve_phases(view, params, X, nudge, rule.nudged_betas, free_states)
    measured.update({b: measurement.measure(s) for b, s in states.items()})
    if mean and not (readout is None or isinstance(readout, Exact)):
        raise ValueError("mean=True needs an exact readout (a shot readout's covariance is per sample); leave out readout")
    local = mean_energy_grad if mean else lambda view, params, X, states: view.energy_grad(params, X, states)
    grad = rule.combine({b: local(view, params, X, measured[b]) for b in rule.weights})
    covariance = measurement.gradient_covariance({a: measured[b] for b, a in rule.weights.items()})
    result = EPResult(grad, view.cost(measured[0.0], Y), view.predict(measured[0.0]), free_states, states,
                      rule.name, rule.beta, stderr_of(grad, covariance), covariance,
                      None if readout is None or isinstance(readout, Exact) else measured)
    return unbatch(view, result) if single else result


def mean_energy_grad(view: BatchSystem, params, X: np.ndarray, states) -> dict[str, np.ndarray]:
    """(1/B) sum_i dE/dtheta (x_i, s_i) with a batch axis of length 1: the view's optional
    ``energy_grad_mean`` where it has one (layered networks: one matrix product S_k^T S_(k+1) / B per
    weight instead of B outer products), else the mean of its per-sample ``energy_grad``."""
    direct = getattr(view, "energy_grad_mean", None)  # optional BatchSystem member
    if direct is not None:
        return {k: np.asarray(v)[None] for k, v in direct(params, X, states).items()}
    return {k: np.asarray(v).mean(axis=0, keepdims=True) for k, v in view.energy_grad(params, X, states).items()}


def checked_free(system: EnergySystem, view: BatchSystem, params, X: np.ndarray, free, single: bool):
    """``free`` as the view's batch of states, refused (ValueError naming ``free``) when its size
    is not the batch's or the system finds it is not the equilibrium of ``params`` and X."""
    states = view.stack([free]) if single else free
    if len(states) != len(X):
        raise ValueError(f"free holds {len(states)} states but x has {len(X)} samples; pass the free states of this batch")
    system.check_free(params, X, states)
    return states


def check_nudge_size(limits, rule: LinearEstimator) -> None:
    """Warn LargeNudgeWarning where max_k |b_k| reaches a sample's limit (the system's
    ``nudge_limit``: gap / (2 ||V||) for ground states, module docstring); silent where the
    system knows no limit (None, NaN)."""
    if limits is None or not rule.nudged_betas:
        return
    beta = max(abs(b) for b in rule.nudged_betas)
    limits = np.asarray(limits, dtype=float)
    if np.any(beta >= limits):
        warn(f"beta={beta:g} is too large: beta * ||nudge|| reaches half the free gap (the nudged ground state is "
             "then no longer a small perturbation, and the EP estimate can saturate, e.g. to zero); use a beta below "
             "gap / (2 ||nudge||) (system.nudge_limit)", LargeNudgeWarning)


def stderr_of(grad: Mapping[str, np.ndarray], covariance: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """sqrt(diag Cov) per sample, shaped like ``grad``; the covariance's flat parameter order is
    grad's key order (the system's own)."""
    if covariance is None:
        return None
    variance = np.sqrt(np.clip(np.diagonal(covariance, axis1=-2, axis2=-1), 0.0, None))
    out, offset = {}, 0
    for k, v in grad.items():
        size = int(np.prod(np.shape(v)[1:], dtype=np.int64))
        out[k] = variance[:, offset : offset + size].reshape(np.shape(v))
        offset += size
    return out


def unbatch(view: BatchSystem, result: EPResult) -> EPResult:
    """A batch-of-one result as one sample's: batch axes dropped, per-sample states."""
    first = lambda tree: None if tree is None else {k: np.asarray(v)[0] for k, v in tree.items()}  # noqa: E731
    return EPResult(first(result.grad), float(result.loss[0]), np.asarray(result.output)[0], view.take(result.free, 0),
                    {b: view.take(s, 0) for b, s in result.nudged.items()}, result.estimator, result.beta,
                    first(result.stderr), None if result.covariance is None else result.covariance[0],
                    None if result.measured is None else {b: view.take(s, 0) for b, s in result.measured.items()})


def reference_gradient(system: EnergySystem, params, x, y) -> dict[str, np.ndarray]:
    """The exact dL/dtheta = d/dbeta g(s_beta) at beta = 0 that the EP estimators converge to.

    Quantum ground states: dL/dtheta = 2 Re <lam| dH/dtheta |psi_0> with the linear-response
    adjoint (H - E_0) lam = -Q O psi_0, O = sum_j dc/d<O_j> O_j, Q = 1 - |psi_0><psi_0|; classical
    systems: implicit differentiation / autodiff of the equilibrium (each system's ``reference_grad``).
    A batch (2-D y) gives per-sample gradients with a leading axis B.

    Example:
        >>> import qeqprop as qp
        >>> net, params, x, y = qp.random_tfim_instance(4)
        >>> exact = qp.reference_gradient(net, params, x, y)
        >>> fd = qp.ep.finite_difference_gradient(net, params, x, y)
        >>> qp.relative_error(exact, fd) < 1e-6
        True
    """
    X, Y, single = as_batch(system, x, y)
    grads = [system.reference_grad(params, xi, yi) for xi, yi in zip(X, Y)]
    if single:
        return grads[0]
    return {k: np.stack([np.asarray(g[k]) for g in grads]) for k in grads[0]}


def finite_difference_gradient(system: EnergySystem, params, x, y, step: float = 1e-4) -> dict[str, np.ndarray]:
    """Central differences of the loss, (L(theta + h e_k) - L(theta - h e_k)) / 2h, per entry."""
    grad = {}
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        out = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            losses = []
            for sign in (1.0, -1.0):
                shifted = {k: np.array(v, dtype=float) for k, v in params.items()}
                shifted[name][index] += sign * step
                losses.append(system.loss(shifted, x, y))
            out[index] = (losses[0] - losses[1]) / (2.0 * step)
        grad[name] = out
    return grad


def flatten_grad(grad: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate a gradient pytree (sorted by name) into one vector."""
    if not isinstance(grad, Mapping):
        raise ValueError(f"a gradient must be a dict of arrays (like params), got {type(grad).__name__}")
    return np.concatenate([np.ravel(grad[k]) for k in sorted(grad)]) if grad else np.zeros(0)


def check_same_tree(estimate: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> None:
    """Refuse two gradient pytrees with different names or shapes (ValueError naming them)."""
    for name, tree in (("estimate", estimate), ("reference", reference)):
        if not isinstance(tree, Mapping):
            raise ValueError(f"{name} must be a dict of arrays (like params), got {type(tree).__name__}")
    missing, extra = sorted(set(reference) - set(estimate)), sorted(set(estimate) - set(reference))
    if missing or extra:
        raise ValueError(f"estimate and reference must have the same parameter names: estimate lacks {missing} "
                         f"and has extra {extra}")
    for k in reference:
        if np.shape(estimate[k]) != np.shape(reference[k]):
            raise ValueError(f"estimate[{k!r}] has shape {np.shape(estimate[k])} but reference[{k!r}] has shape "
                             f"{np.shape(reference[k])}")


def relative_error(estimate: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> float:
    """||estimate - reference|| / ||reference|| over all parameters (sorted by name); both must
    have the same names and shapes (ValueError otherwise). A zero reference gives the absolute error.

    Example:
        >>> import numpy as np
        >>> from qeqprop import relative_error
        >>> relative_error({"J": np.array([3.0, 5.0])}, {"J": np.array([3.0, 4.0])})
        0.2
    """
    check_same_tree(estimate, reference)
    a, b = flatten_grad(estimate), flatten_grad(reference)
    norm = np.linalg.norm(b)
    if norm == 0.0:
        return float(np.linalg.norm(a - b))
    return float(np.linalg.norm(a - b) / norm)
