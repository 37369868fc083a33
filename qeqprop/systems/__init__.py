"""Energy systems: the protocol and the quantum spin systems."""

from .protocol import EnergySystem
from .spin import SpinSystem, pauli_system
from .tfim import TFIMNetwork, coupling_edges

__all__ = ["EnergySystem", "SpinSystem", "TFIMNetwork", "coupling_edges", "pauli_system"]
