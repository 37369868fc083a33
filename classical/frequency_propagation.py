"""Frequency propagation (Anisetti, Kandala, Scellier & Schwarz, "Frequency propagation:
multimechanism learning in nonlinear physical networks", Neural Computation 2024) on resistive
networks (classical.resistive.ResistiveNetwork).

The activation sources (input voltages, bias voltages, node current sources) oscillate at
harmonic k1 of a base frequency (k1 = 0: DC) and the error is a current injected into the
output nodes at harmonic k2 != k1,

    sources(t) = c1(t) * (activation sources),   I_out(t) = epsilon c2(t) (a y - o),
    c1(t) = cos(k1 t),  c2(t) = cos(k2 t),  t_n = 2 pi n / N,  n = 0 ... N - 1,

with o the outputs' amplitude at k1 in the free network (epsilon = 0). A network of resistors,
diodes and sources has no memory, so at each time the node voltages are the quasi-static
equilibrium v(t) = argmin_v E(v; sources(t)) - I_out(t) . v_out (N equilibria, solved as one batch).
In the linear regime (no diode conducts) v(t) = c1(t) v_A + epsilon c2(t) v_B, where v_A is the
free state and v_B = H^-1 (a y - o) the response to the error current, which is -dv/dbeta of EP's
nudged state. The local power of an edge, dE/dg = 1/2 dv(t)^2, then carries the cross term
epsilon c1 c2 dv_A dv_B, whose amplitude at the mixing frequency f (k2 if k1 = 0, else k1 + k2)
is read by demodulation (a lock-in amplifier):

    grad = (2 / (N m epsilon)) sum_n dE/dtheta(v(t_n)) cos(f t_n),   m = 1 (k1 = 0) or 1/2 (k1 > 0),

which equals dv_A dv_B = d/dbeta dE/dtheta(s_beta) at beta = 0 = dL/dtheta, the gradient EP
estimates, exactly for every epsilon (the epsilon^2 terms sit at frequencies 0, 2 k2 and the c1^2
terms at 0, 2 k1, none at f). With diodes the error current can switch diodes during the cycle:
the estimate is then exact while the conduction pattern stays fixed and biased by O(epsilon)
otherwise. DC activation (k1 = 0) keeps the diode pattern of the free state; an oscillating
activation (k1 > 0) reverses the inputs every half cycle, so it is meant for linear networks and
needs a network without current sources (their gradient -v is linear in the state and has no
component at k1 + k2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qeqprop.ep import as_batch
from qeqprop.rules import Exactly
from qeqprop.validation import check_int, check_positive_float

from ._common import split_layers
from .layered_batch import solve_batch
from .resistive import ResistiveNetwork


def aliases(k1: int, k2: int, samples: int) -> bool:
    """Whether N = ``samples`` time points fail to resolve the mixing frequency f: f or -f lands
    on another frequency of the local power (0, 2 k1, 2 k2, |k1 - k2|), or 2 f on 0."""
    f = k2 if k1 == 0 else k1 + k2
    others = {0, 2 * k1, 2 * k2, abs(k1 - k2)} - {f}
    return (2 * f) % samples == 0 or any((m - f) % samples == 0 or (m + f) % samples == 0 for m in others)


def minimal_samples(k1: int, k2: int) -> int:
    """The fewest time points per cycle that resolve the mixing frequency (``aliases``)."""
    return next(n for n in range(3, 4 * (k1 + k2) + 8) if not aliases(k1, k2, n))


@dataclass(frozen=True)
class FrequencyPropagation(Exactly):
    """Frequency propagation as a gradient rule (qeqprop.rules.GradientRule): per-sample
    estimates of dL/dtheta from the demodulated local power (module docstring).

    Args:
        epsilon: amplitude of the error current, in units of the output error (a y - o).
        activation_harmonic: k1 >= 0 (0: DC activation, the choice for networks with diodes).
        error_harmonic: k2 >= 1, != k1.
        samples: time points per cycle N (None: the fewest that avoid aliasing).
    """

    epsilon: float = 0.1
    activation_harmonic: int = 0
    error_harmonic: int = 1
    samples: int | None = None
    name: str = "frequency_propagation"

    def __post_init__(self):
        check_positive_float("epsilon", self.epsilon)
        k1 = check_int("activation_harmonic", self.activation_harmonic, 0)
        k2 = check_int("error_harmonic", self.error_harmonic, 1)
        if k1 == k2:
            raise ValueError(f"error_harmonic must differ from activation_harmonic (both {k1}): the error must sit at its own frequency")
        if self.samples is None:
            object.__setattr__(self, "samples", minimal_samples(k1, k2))
        if aliases(k1, k2, check_int("samples", self.samples, 3)):
            raise ValueError(f"samples={self.samples} time points alias the mixing frequency of harmonics k1={k1}, k2={k2} "
                             f"onto another component of the local power; use samples >= {minimal_samples(k1, k2)}")

    @property
    def times(self) -> np.ndarray:
        """t_n = 2 pi n / N."""
        return 2 * np.pi * np.arange(self.samples) / self.samples

    def _signals(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(c1(t_n), c2(t_n), mixing frequency f, cross-term amplitude m)."""
        t, k1, k2 = self.times, self.activation_harmonic, self.error_harmonic
        return np.cos(k1 * t), np.cos(k2 * t), float(k2 if k1 == 0 else k1 + k2), 1.0 if k1 == 0 else 0.5

    def response(self, system: ResistiveNetwork, params, X: np.ndarray, free, currents: np.ndarray | None = None):
        """The quasi-static equilibria at every time point: a BatchEquilibrium of B * N rows
        (sample-major), with the activation sources scaled by c1(t_n) and output currents
        ``currents`` (B, n_outputs) scaled by c2(t_n) (None: no error current), warm-started
        from c1(t_n) times the DC free states ``free``."""
        c1, c2, _, _ = self._signals()
        batch, samples = len(X), self.samples
        scale = np.tile(c1, batch)[:, None]
        quadratic = system.quadratic(params)
        quadratic.linear = [np.asarray(c, dtype=float) * scale for c in quadratic.linear]  # current and bias sources follow c1
        quadratic.constant = quadratic.constant * scale[:, 0] ** 2
        start = np.repeat(free.state, samples, axis=0) * scale
        if currents is not None:
            quadratic.linear[-1] = quadratic.linear[-1] + np.repeat(currents, samples, axis=0) * np.tile(c2, batch)[:, None]
        return solve_batch(quadratic, split_layers(start, system.sizes), system.tol, system.max_iter,
                           "frequency propagation (quasi-static equilibria)", np.zeros(batch * samples))

    def outputs(self, system: ResistiveNetwork, params, X: np.ndarray, free) -> np.ndarray:
        """o: the free output voltages' amplitude at the activation harmonic k1 (B, n_outputs),
        demodulated from the free response (k1 = 0: the DC free state's outputs)."""
        if self.activation_harmonic == 0:
            return system.layers(free)[-1]
        c1, *_ = self._signals()
        v_out = system.layers(self.response(system, params, X, free))[-1].reshape(len(X), self.samples, -1)
        return np.einsum("bnk,n->bk", v_out, c1) / np.sum(c1**2)

    def gradients(self, system: ResistiveNetwork, params, X, Y, readout=None, rng=None) -> dict[str, np.ndarray]:
        """Per-sample gradient estimates ``{name: (B, *shape)}`` for X (B, n_inputs), Y (B, n_outputs)."""
        if not isinstance(system, ResistiveNetwork):
            raise ValueError(f"frequency propagation runs on a ResistiveNetwork (currents and voltages), "  # noqa: TRY004
                             f"got {type(system).__name__}")
        self._check_readout(readout)
        if self.activation_harmonic and (system.current_sources or system.bias_voltages.size):
            raise ValueError("an oscillating activation (activation_harmonic > 0) needs a network without current sources "
                             "and bias sources (current_sources=False, bias_voltages=()): their local gradients are not "
                             "quadratic in the voltages; use activation_harmonic=0")
        X, Y, _ = as_batch(system, X, Y)
        params = system.check_params(params)
        free = system.batch_view(len(X)).equilibrate(params, X)
        error = system.target_voltage * Y - self.outputs(system, params, X, free)
        states = self.response(system, params, X, free, self.epsilon * error)
        _, _, f, m = self._signals()
        weights = 2.0 * np.cos(f * self.times) / (self.samples * m * self.epsilon)
        power = system.energy_grad(params, X, states)
        return {k: np.tensordot(weights, v.reshape(len(X), self.samples, *v.shape[1:]), axes=([0], [1]))
                for k, v in power.items()}
