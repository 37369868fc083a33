"""Elastic spring networks: the hbar = 0 limit of the quantum oscillator network.

    E(theta, x, u) = 1/2 sum_((i,j) in E) k_ij (u_i - u_j)^2 + 1/2 sum_i kappa_i u_i^2 - sum_i f_i(x) u_i

is minimized by K u = f (K the stiffness matrix); qeqprop.systems.oscillators.OscillatorNetwork
with hbar = 0 is exactly this classical network (zero covariance, EP on the displacements u,
cost 1/2 sum_o (u_o - y_o)^2, local gradient dE/dk_ij = 1/2 (u_i - u_j)^2). This module only
re-exports it with hbar fixed to 0.
"""

from __future__ import annotations

from qeqprop.systems.oscillators import OscillatorNetwork


def elastic_network(n_nodes: int, graph="chain", **options) -> OscillatorNetwork:
    """An OscillatorNetwork with hbar = 0 (every other option as OscillatorNetwork)."""
    if "hbar" in options:
        raise ValueError("elastic_network fixes hbar = 0; use qeqprop.systems.oscillators.OscillatorNetwork for hbar > 0")
    return OscillatorNetwork(n_nodes, graph, hbar=0.0, **options)


__all__ = ["OscillatorNetwork", "elastic_network"]
