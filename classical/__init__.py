"""Classical EP baselines implementing the same EnergySystem protocol as the quantum systems,
so qeqprop.ep.ep_gradient and qeqprop.train.fit run on them unchanged.

    HopfieldNetwork         layered continuous Hopfield network, hard-sigmoid units (hopfield)
    ConvHopfieldNetwork     conv layer + max-pool + dense output Hopfield network (conv_hopfield)
    ResistiveNetwork        nonlinear resistive network: conductances, sources, diodes (resistive)
    FrequencyPropagation    gradient rule: error current at a second frequency, demodulated power (frequency_propagation)
    FlowNetwork             flow network with tunable conductances; random_flow_network, allosteric_task (flow)
    PhaseOscillatorNetwork  coupled phase oscillators, XY energy (phase_oscillators)
    IsingMachine            classical Ising machine = TFIM at Gamma = 0, finite T (ising)
    elastic_network         elastic spring network = QHO network at hbar = 0, batched (elastic: ElasticNetwork)
    AgnosticEP              gradient rule: weights relaxed with the state under homeostatic control (agnostic)
    learning rules          EP (positive / negative / centered), contrastive, coupled (learning_rules)
"""

from .agnostic import AgnosticEP
from .conv_hopfield import ConvHopfieldNetwork
from .elastic import ElasticNetwork, elastic_network
from .flow import FlowNetwork, allosteric_task, random_flow_network
from .frequency_propagation import FrequencyPropagation
from .hopfield import HopfieldNetwork
from .ising import BoltzmannState, IsingMachine
from .learning_rules import RULES, Contrastive, Coupled, contrastive_gradient, coupled_gradient, learning_rule_gradient
from .phase_oscillators import PhaseOscillatorNetwork
from .resistive import ResistiveNetwork
from ._common import Equilibrium

__all__ = [
    "AgnosticEP", "BoltzmannState", "Contrastive", "ConvHopfieldNetwork", "ElasticNetwork", "Coupled", "Equilibrium", "HopfieldNetwork", "IsingMachine", "PhaseOscillatorNetwork", "RULES",
    "ResistiveNetwork", "FlowNetwork", "FrequencyPropagation", "allosteric_task", "random_flow_network", "contrastive_gradient", "coupled_gradient", "elastic_network", "learning_rule_gradient",
]
