"""What a device experiment costs: shots, circuit executions, variational optimisation steps.

Per EP gradient (one sample) with K measurement bases, M shots per circuit, E nudged phases
(2 for the centered estimator) and Z folding scales (1 without zero-noise extrapolation):

    circuits = (1 + E) * K * Z,     shots = circuits * M,

and the variational steps are the optimizer steps of the free and nudged phases (classically
optimised here: on hardware each step costs the energy and its gradient, e.g. 2 * n_angles + 1
parameter-shift evaluations of every basis of H). ``Budget`` counts all four; ``per_gradient``
divides by the gradients (samples) they served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The budget counters the fit history sums per record (qeqprop.train.BUDGET_COUNTS).
COUNTERS = ("gradients", "shots", "circuits", "variational_steps")


@dataclass
class Budget:
    """Totals: EP ``gradients`` (samples), ``shots``, ``circuits`` (executions), ``variational_steps``."""

    gradients: int = 0
    shots: int = 0
    circuits: int = 0
    variational_steps: int = 0

    def add(self, other: Budget) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def per_gradient(self) -> dict[str, float]:
        """Shots, circuits and variational steps per gradient (per sample).

        Example:
            >>> Budget(gradients=2, shots=12000, circuits=6, variational_steps=90).per_gradient()
            {'shots': 6000.0, 'circuits': 3.0, 'variational_steps': 45.0}
        """
        count = max(self.gradients, 1)
        return {name: getattr(self, name) / count for name in COUNTERS[1:]}
