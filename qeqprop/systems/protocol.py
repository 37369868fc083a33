"""The EnergySystem protocol shared by quantum and classical systems, and its batch-first view.

EP needs only these operations, so one phase loop (qeqprop.ep), one trainer and one benchmark
harness serve every system:

    params = system.init_params(rng)
    s0     = system.equilibrate(params, x)                                 # free phase
    nudge  = system.nudge(s0, y)                                           # what beta multiplies
    sb     = system.equilibrate(params, x, nudge=nudge, beta=b, init=s0)   # nudged, warm start
    system.predict(s), system.cost(s, y)
    system.energy_grad(params, x, s)        # dE/dtheta at s, same pytree as params
    system.reference_grad(params, x, y)     # exact dL/dtheta

Generic code may also ask (``SystemBase`` gives every one a default):

    system.reflect(s0, sb)          start of the -beta phase (None: start from s0)
    system.diagnostics(s)           {"gap", "iterations", "residual", ...} where known
    system.describe()               {"name", "units", "unit"}: what the CLI and reports print
    system.encode_targets(labels, n_classes)   class labels -> targets y
    system.batch_view(B)            the batch-first view below: how this system solves B samples
    system.pauli_measurement()      the ParametrizedHamiltonian a shot readout measures (None: none)

The batch-first view (``BatchSystem``) has the same operations with a leading batch axis B on
inputs, targets, outputs, costs and every gradient leaf. The system decides how a batch is solved:
``LoopBatch`` loops over the per-sample methods (the default); spin systems on the JAX solver
solve all samples, and all nudged phases, in one batched Lanczos call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Params = Mapping[str, np.ndarray]


@runtime_checkable
class EnergySystem(Protocol):
    """What EP needs of a physical system with energy E(theta, x, s) and cost C(s, y):

        s_beta = argmin_s E(theta, x, s) + beta * C(s, y)     (``equilibrate``; beta = 0: free phase)
        g(s)   = dE/dtheta (theta, x, s)                       (``energy_grad``)
        dL/dtheta = d/dbeta g(s_beta) at beta = 0              (``reference_grad`` computes it exactly)
    """

    n_inputs: int
    n_outputs: int

    def init_params(self, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]: ...

    def equilibrate(self, params: Params, x: np.ndarray, nudge: Any = None, beta: float = 0.0, init: Any = None) -> Any: ...

    def nudge(self, state: Any, y: np.ndarray) -> Any: ...

    def predict(self, state: Any) -> np.ndarray: ...

    def cost(self, state: Any, y: np.ndarray) -> float: ...

    def energy_grad(self, params: Params, x: np.ndarray, state: Any) -> dict[str, np.ndarray]: ...

    def reference_grad(self, params: Params, x: np.ndarray, y: np.ndarray, free: Any = None) -> dict[str, np.ndarray]: ...

    def loss(self, params: Params, x: np.ndarray, y: np.ndarray) -> float: ...

    def reflect(self, free: Any, nudged: Any) -> Any: ...

    def diagnostics(self, state: Any) -> dict[str, float]: ...

    def describe(self) -> dict[str, Any]: ...

    def encode_targets(self, labels: np.ndarray, n_classes: int) -> np.ndarray: ...

    def batch_view(self, batch_size: int) -> BatchSystem: ...

    def pauli_measurement(self) -> Any: ...


@runtime_checkable
class BatchSystem(Protocol):
    """An EnergySystem's operations on a batch: X (B, n_inputs), Y (B, n_outputs), states of B
    samples, gradients with a leading axis B.

    ``joint_phases``: ``equilibrate`` accepts a tuple of betas and solves all those nudged phases
    in one call (returning a tuple of states, one per beta), warm-started from ``init``.

    ``ep_betas`` (optional attribute): where a view has it, ``ep_gradient`` sets it to the nudges
    of its call before the free phase, so that the view can solve its free phase to the accuracy
    the estimate needs (SpinBatch: the nudged phases' tolerance) rather than its evaluation one.

    ``free_gaps`` (optional attribute, True unless set): where a view has it, ``predict`` sets it to
    False, since it returns outputs only: the view may then solve its free phases without their gaps
    (SpinBatch with batched Lanczos: no deflated gap solve, ~1/3 of a free phase's H applications,
    unless the system's gap_check is "all"). EP and ``train.evaluate`` ("min_gap") keep it True.
    """

    joint_phases: bool

    def equilibrate(self, params: Params, X: np.ndarray, nudge: Any = None, beta: Any = 0.0, init: Any = None) -> Any: ...

    def reflect(self, free: Any, nudged: Any) -> Any: ...

    def nudge(self, states: Any, Y: np.ndarray) -> Any: ...

    def predict(self, states: Any) -> np.ndarray: ...

    def cost(self, states: Any, Y: np.ndarray) -> np.ndarray: ...

    def energy_grad(self, params: Params, X: np.ndarray, states: Any) -> dict[str, np.ndarray]: ...

    def diagnostics(self, states: Any) -> dict[str, np.ndarray]: ...

    def take(self, states: Any, index: int) -> Any: ...

    def stack(self, states: Sequence[Any]) -> Any: ...


class StateList(list):
    """The states of a batch solved one sample at a time (``LoopBatch``)."""


def stack_trees(trees: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """[{name: array}] * B -> {name: array with a leading axis B}."""
    return {k: np.stack([np.asarray(t[k]) for t in trees]) for k in trees[0]}


def stack_diagnostics(records: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Per-sample diagnostics dicts -> arrays (B,); a key missing for some sample reads NaN."""
    keys = sorted({k for r in records for k in r})
    return {k: np.array([np.nan if r.get(k) is None else float(r[k]) for r in records]) for k in keys}


class LoopBatch:
    """The batch-first view of any EnergySystem: one per-sample call per sample (the fallback for
    systems with no faster batch path). States are a ``StateList``.

    Example:
        >>> import numpy as np, qeqprop as qp
        >>> from qeqprop.systems.protocol import LoopBatch
        >>> net = qp.TFIMNetwork(3, "chain", n_inputs=1)
        >>> view = LoopBatch(net)
        >>> states = view.equilibrate(net.init_params(0), np.array([[0.1], [0.2]]))
        >>> view.predict(states).shape
        (2, 1)
    """

    joint_phases = False

    def __init__(self, system: EnergySystem):
        self.system = system

    def equilibrate(self, params, X, nudge=None, beta=0.0, init=None) -> StateList:
        inits = [None] * len(X) if init is None else init
        nudges = [None] * len(X) if nudge is None else nudge
        return StateList(self.system.equilibrate(params, x, nudge=n, beta=beta, init=s) for x, n, s in zip(X, nudges, inits))

    def reflect(self, free, nudged) -> StateList | None:
        starts = [self.system.reflect(s0, sb) for s0, sb in zip(free, nudged)]
        return None if any(s is None for s in starts) else StateList(starts)

    def nudge(self, states, Y) -> list:
        return [self.system.nudge(s, y) for s, y in zip(states, Y)]

    def predict(self, states) -> np.ndarray:
        return np.array([self.system.predict(s) for s in states])

    def cost(self, states, Y) -> np.ndarray:
        return np.array([self.system.cost(s, y) for s, y in zip(states, Y)], dtype=float)

    def energy_grad(self, params, X, states) -> dict[str, np.ndarray]:
        return stack_trees([self.system.energy_grad(params, x, s) for x, s in zip(X, states)])

    def diagnostics(self, states) -> dict[str, np.ndarray]:
        return stack_diagnostics([self.system.diagnostics(s) for s in states])

    def take(self, states, index: int):
        return states[index]

    def stack(self, states) -> StateList:
        return StateList(states)


class SystemBase:
    """Defaults for the optional protocol members; every system in qeqprop and classical derives
    from it, so generic code asks the protocol, never ``hasattr``.

    It also records the arguments the system was constructed with (``_init_arguments``, the
    outermost constructor call's ``(args, kwargs)``, before ``__init__`` runs), so
    ``qeqprop.serialization.system_spec`` can save any system and rebuild an identical one
    without a per-class spec method. Attributes changed after construction are not recorded.
    """

    n_inputs: int
    n_outputs: int

    def __new__(cls, *args, **kwargs):
        system = super().__new__(cls)
        system._init_arguments = (args, kwargs)
        return system

    def reflect(self, free, nudged):
        """Start of the -beta phase from the free and +beta states; None: start from ``free``."""
        return

    def check_free(self, params, X, states) -> None:
        """Refuse free states (a batch) not solved for ``params`` and X (ValueError naming ``free``);
        the default checks nothing."""

    def nudge_limit(self, states, nudge):
        """Per-sample largest |beta| at which an EP estimate from these free states (a batch) and
        nudges is still meaningful (qeqprop.ep warns beyond it); None: no limit known."""
        return None

    def diagnostics(self, state) -> dict[str, float]:
        """Solver facts about ``state`` (gap, iterations, residual) where the system knows them."""
        return {}

    def describe(self) -> dict[str, Any]:
        """{"name": what this system is, "units": how many degrees of freedom, "unit": their word}."""
        return {"name": type(self).__name__, "units": None, "unit": "units"}

    def encode_targets(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """Targets for class labels under this system's cost (``cost_fn`` where it has one): one
        output: -1/+1 for two classes; else one-hot for cross-entropy, one-hot +-1 otherwise."""
        from ..datasets import encode_targets

        return encode_targets(labels, self.n_outputs, n_classes, getattr(getattr(self, "cost_fn", None), "name", "mse"))

    def batch_view(self, batch_size: int) -> BatchSystem:
        """How this system solves a batch of ``batch_size`` samples (default: one at a time)."""
        return LoopBatch(self)

    def pauli_measurement(self):
        """The Pauli model a shot readout measures; None: this system has no Pauli readout."""
        return

    def loss(self, params, x, y) -> float:
        """L(theta) = C(s*(theta, x), y)."""
        return self.cost(self.equilibrate(params, x), y)
