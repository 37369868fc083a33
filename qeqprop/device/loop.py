"""The EP experiment loop on a quantum device.

For a variational learner (``qeqprop.variational_tfim(...)``: phases prepared by an HVA or
hardware-efficient circuit) and a device, one gradient is:

1. free phase: phi_0 = argmin <psi(phi)|H(theta, x)|psi(phi)>, warm-started from this sample's
   last free circuit (across minibatches and epochs; the ansatz's default start the first time);
2. measure the free circuit in every basis of the plan (qeqprop.device.readout); the outputs
   o^ = M <P>^ and the nudge w = dC/do at o^ come from these MEASURED counts;
3. nudged phases phi_{+-beta} = argmin <psi(phi)|H + (+-beta) sum_j w_j O_j|psi(phi)>, warm-started
   from phi_0 (the -beta phase from the reflection 2 phi_0 - phi_beta), measured the same way;
4. the estimator's combination g = sum_k a_k J(x)^T <P>^_k (qeqprop.ep: the one phase loop).

Steps 2-4 are ``ep_gradient(..., readout=DeviceReadout(...))``. The variational optimisation runs
on the classical simulator of the circuit (the angles are then executed on the device): on
hardware it would itself cost circuit evaluations, counted here as ``variational_steps``.

Standard errors. The phases are measured on independent shots, and the free phase enters twice:
through its own weight a_0 (one-sided estimators) and through the nudge. With C_k the covariance
of phase k's term estimates, J = dc/dtheta, M the output matrix, W = d w / d o (the cost's
Hessian in the outputs) and G = d g / d w (how the gradient moves with the nudge),

    Cov(g) = sum_{k nudged} a_k^2 J^T C_k J  +  D C_0 D^T,     D = a_0 J^T + G W M.

G is a central difference of the estimator on the simulated expectations of extra (classical)
nudged phases at w +- delta e_j, delta = NUDGE_STEP * max_j |w_j|: g is not linear in w at the
betas a device needs (on the 4-qubit TFIM learner at beta = 0.2 the slope dg/dw is 0.85-0.96 of
the secant g / w), and the secant made the reported errors up to 16 % too large. This costs
4 n_outputs extra variational solves per gradient (no circuits); ``gradient(errors=False)`` skips
it (fit does: it needs no standard errors) and reports the phases' shot errors only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..ep import (
    EPResult,
    as_batch,
    ep_gradient,
    flatten_grad,
    stderr_of,
    unbatch,
)
from ..estimators import LinearEstimator, as_estimator
from ..systems.spin_batch import SpinStates
from .budget import Budget
from .clients import as_client
from .mitigation import ZeroNoiseExtrapolation
from .readout import DeviceReadout

# Step of the central differences of the cost's gradient (W = dw/do).
COST_HESSIAN_STEP = 1e-5
# Relative step of the central difference of the gradient in the nudge (G = dg/dw).
NUDGE_STEP = 0.1
GROUPINGS = ("colouring", "greedy")


@dataclass
class DeviceGradient(EPResult):
    """An EPResult from a device (grad, stderr, covariance, loss and output from the measured free
    phase, the states) with the ``budget`` it took."""

    budget: Budget | None = None


def check_learner(learner) -> None:
    if getattr(learner, "variational", None) is None or learner.pauli_measurement() is None:
        raise ValueError(f"learner must be a variational spin learner (e.g. qeqprop.variational_tfim(4, n_inputs=2)), "
                         f"got {type(learner).__name__}: a device runs the circuits that prepare its phases")


def cost_hessian(cost, output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W = d(dC/do)/do at ``output`` by central differences, (n_out, n_out)."""
    h, n = COST_HESSIAN_STEP, len(output)
    columns = [(np.asarray(cost.grad(output + h * e, y)) - np.asarray(cost.grad(output - h * e, y))) / (2 * h) for e in np.eye(n)]
    return np.stack(columns, axis=1)


class DeviceLoop:
    """EP gradients of a variational learner measured on ``device`` (module docstring).

    Args:
        device: a PennyLane device (``qml.device("default.qubit", wires=4, shots=2000)``,
            lightning.qubit, default.mixed with ``qml.add_noise``), a Qiskit backend
            (``qiskit_aer.AerSimulator()``: bit order handled) or a qeqprop.device Client.
        shots: shots per circuit (default: the device's; a PennyLane device without shots gives
            analytic expectations of the same circuits; a Qiskit backend: 2000).
        mitigation: None or ``ZeroNoiseExtrapolation(scale_factors)``.
        grouping: how Pauli strings share bases ("colouring" or "greedy", readout.plan).
        check_bit_order: refuse records that fit the reversed qubit order (qeqprop.device.bit_order).
        warm_start: start each sample's free phase from its last free circuit.

    ``total`` is the Budget of every gradient this loop measured.

    Example:
        >>> import numpy as np, pennylane as qml, qeqprop as qp
        >>> from qeqprop.device import DeviceLoop
        >>> net = qp.variational_tfim(3, n_inputs=1, compare_exact=False)
        >>> loop = DeviceLoop(qml.device("default.qubit", wires=3, seed=0), shots=500)
        >>> r = loop.gradient(net, net.init_params(0), np.array([0.5]), np.array([1.0]), beta=0.2)
        >>> sorted(r.grad) == sorted(r.stderr), r.budget.circuits, r.budget.shots
        (True, 3, 1500)
    """

    def __init__(self, device, shots: int | None = None, mitigation: ZeroNoiseExtrapolation | None = None,
                 grouping: str = "colouring", check_bit_order: bool = True, warm_start: bool = True):
        if mitigation is not None and not isinstance(mitigation, ZeroNoiseExtrapolation):
            raise ValueError(f"mitigation must be None or ZeroNoiseExtrapolation(...), got {mitigation!r}")
        if grouping not in GROUPINGS:
            raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
        self.client = as_client(device, shots)
        self.mitigation, self.grouping = mitigation, grouping
        self.check_bit_order, self.warm_start = bool(check_bit_order), bool(warm_start)
        self.total = Budget()
        self._starts: dict[bytes, object] = {}

    def describe(self) -> dict:
        """The loop's settings (what a fit's run spec records)."""
        return {"client": type(self.client).__name__, "device": self.client.name, "shots": self.client.shots,
                "mitigation": None if self.mitigation is None else list(self.mitigation.scale_factors),
                "grouping": self.grouping}

    def free_phase(self, learner, params, X: np.ndarray) -> SpinStates:
        """The free states of a batch, each warm-started from its sample's last free circuit."""
        members = []
        for x in X:
            key = np.ascontiguousarray(x, dtype=np.float64).tobytes()
            state = learner.equilibrate(params, x, init=self._starts.get(key) if self.warm_start else None)
            self._starts[key] = state
            members.append(state)
        return SpinStates.pack(members)

    def gradient(self, learner, params, x, y, beta: float = 0.1, estimator: str | LinearEstimator = "centered",
                 rng: np.random.Generator | int | None = None, errors: bool = True) -> DeviceGradient:
        """The EP gradient of one sample (1-D x, y) or a batch, measured on the device, with standard
        errors (module docstring; ``errors=False``: the phases' shot errors only, without the
        nudge's share and its extra solves) and its budget."""
        check_learner(learner)
        rule = as_estimator(estimator, beta)
        X, Y, single = as_batch(learner, x, y)
        free = self.free_phase(learner, params, X)
        readout = DeviceReadout(self)
        result = ep_gradient(learner, params, X, Y, estimator=rule, readout=readout, free=free, rng=rng)
        if errors and self.client.shots is not None:  # (analytic: zero covariance, nothing to add)
            result.covariance = self.covariance(learner, params, X, Y, rule, result)
            result.stderr = stderr_of(result.grad, result.covariance)
        budget = readout.last.budget
        budget.gradients = len(X)
        phases = (result.free, *result.nudged.values())
        budget.variational_steps = int(sum(np.nansum(s.iterations) for s in phases))
        self.total.add(budget)
        if single:
            result = unbatch(learner.batch_view(1), result)
        return DeviceGradient(**{f.name: getattr(result, f.name) for f in fields(EPResult)}, budget=budget)

    def covariance(self, learner, params, X, Y, rule: LinearEstimator, result: EPResult) -> np.ndarray:
        """Cov(g) per sample with the nudge's share (module docstring), (B, P, P)."""
        view, ham = learner.batch_view(len(X)), learner.hamiltonian
        measured_free = result.measured[0.0]
        outputs = view.predict(measured_free)
        nudge = view.nudge(measured_free, Y)
        per_nudge = self.nudge_response(learner, params, X, rule, result, nudge)  # (B, P, n_out)
        a0 = rule.weights.get(0.0, 0.0)
        out = []
        for b, x in enumerate(X):
            J = ham.jacobian(x)
            cov = sum(a**2 * J.T @ result.measured[k].covariance[b] @ J for k, a in rule.weights.items() if k != 0.0)
            D = a0 * J.T + per_nudge[b] @ cost_hessian(learner.cost_fn, outputs[b], Y[b]) @ ham.output_matrix
            out.append(cov + D @ measured_free.covariance[b] @ D.T)
        return np.array(out)

    def nudge_response(self, learner, params, X, rule: LinearEstimator, result: EPResult, nudge: np.ndarray) -> np.ndarray:
        """G = dg/dw per sample, (B, P, n_out): central differences of the estimator on simulated
        nudged phases at w +- delta e_j (module docstring)."""
        view = learner.batch_view(len(X))
        delta = NUDGE_STEP * np.maximum(np.abs(nudge).max(axis=1), 1e-3)  # (B,)

        def simulated(shifted: np.ndarray) -> np.ndarray:  # each phase warm-started from its measured partner
            states = {0.0: result.free, **{b: view.equilibrate(params, X, nudge=shifted, beta=b, init=result.nudged[b])
                                           for b in rule.nudged_betas}}
            grads = rule.combine({b: view.energy_grad(params, X, s) for b, s in states.items()})
            return np.stack([flatten_grad({k: v[i] for k, v in grads.items()}) for i in range(len(X))])

        columns = []
        for e in np.eye(learner.n_outputs):
            step = delta[:, None] * e
            columns.append((simulated(nudge + step) - simulated(nudge - step)) / (2.0 * delta[:, None]))
        return np.stack(columns, axis=2)

    def minibatch(self, learner, params, X, Y, estimator: LinearEstimator, rng=None) -> tuple[dict, dict]:
        """(mean gradient, info) of a minibatch, what ``fit(device=...)`` descends: info has "loss",
        "grad_norm" and the budget counters (qeqprop.device.budget.COUNTERS)."""
        result = self.gradient(learner, params, X, Y, estimator=estimator, rng=rng, errors=False)
        grad = {k: np.asarray(v).mean(axis=0) for k, v in result.grad.items()}
        info = {"loss": float(np.mean(result.loss)), "grad_norm": float(np.linalg.norm(flatten_grad(grad))),
                **result.budget.as_dict()}
        return grad, info


def device_gradient(learner, params, x, y, device, beta: float = 0.1, estimator: str | LinearEstimator = "centered",
                    shots: int | None = None, mitigation: ZeroNoiseExtrapolation | None = None,
                    rng: np.random.Generator | int | None = None) -> DeviceGradient:
    """One measured EP gradient: ``DeviceLoop(device, shots, mitigation).gradient(learner, params, x, y, beta, estimator, rng)``."""
    return DeviceLoop(device, shots, mitigation).gradient(learner, params, x, y, beta, estimator, rng)


def as_loop(device) -> DeviceLoop:
    """``device`` as a DeviceLoop (a loop as it is; a device or client wrapped with defaults)."""
    return device if isinstance(device, DeviceLoop) else DeviceLoop(device)
