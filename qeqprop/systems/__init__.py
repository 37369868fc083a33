"""Energy systems: the protocol, the quantum spin systems and the registry of every system."""

from .long_chain import TFIMChain
from .oscillators import OscillatorNetwork
from .protocol import EnergySystem
from .registry import REGISTRY, SystemSpec
from .spin import SpinSystem, pauli_system
from .tfim import TFIMNetwork, coupling_edges
from .xxz import XXZNetwork

__all__ = ["REGISTRY", "EnergySystem", "OscillatorNetwork", "SpinSystem", "SystemSpec", "TFIMChain", "TFIMNetwork", "XXZNetwork", "coupling_edges", "pauli_system"]
