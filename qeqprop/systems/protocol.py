"""The EnergySystem protocol shared by quantum and classical systems (shared/DESIGN.md).

EP needs only these operations, so one set of estimators, one trainer and one benchmark
harness serve every system:

    params = system.init_params(rng)
    s0     = system.equilibrate(params, x)                                 # free phase
    nudge  = system.nudge(s0, y)                                           # what beta multiplies
    sb     = system.equilibrate(params, x, nudge=nudge, beta=b, init=s0)   # nudged, warm start
    system.predict(s), system.cost(s, y)
    system.energy_grad(params, x, s)        # dE/dtheta at s, same pytree as params
    system.reference_grad(params, x, y)     # exact dL/dtheta
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

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

    def reference_grad(self, params: Params, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]: ...

    def loss(self, params: Params, x: np.ndarray, y: np.ndarray) -> float: ...
