"""One registry of EP systems, quantum and classical: what ``qeqprop train --system NAME``, the
comparison harness (qeqprop.comparison) and the contract tests (tests/test_contract.py) build.

    REGISTRY[name] = SystemSpec(name, builder, kind, description, options, unit, rules, tasks, needs)

A builder makes the system sized for a task,

    spec.build(n_inputs, n_outputs, hidden, **options) -> EnergySystem,

where ``hidden`` counts the units that are neither inputs nor outputs (hidden qubits, oscillators
or spins; the neurons of the one hidden layer; the phase sensor's data-chain qubits) and
``options`` are the knobs in ``spec.options`` (names from OPTIONS; the CLI passes them from its
flags of the same names and from ``--option KEY=VALUE``). An option whose value is None counts as
not given; an option given to a system that does not use it is refused (ValueError naming it),
never silently dropped.

Adding a system is its own file plus one ``SystemSpec`` line below: the CLI's ``--system``
choices, ``compare(systems=[...])`` and every contract test pick it up from here. Builders
import their system's module on first use, so ``import qeqprop`` and the CLI stay fast.

Example:
    >>> from qeqprop.systems.registry import REGISTRY, build
    >>> net = build("xxz", n_inputs=2, n_outputs=1, hidden=2, gamma=0.8)
    >>> net.describe()
    {'name': 'XXZNetwork', 'units': 3, 'unit': 'qubits'}
    >>> REGISTRY["hopfield"].kind, REGISTRY["hopfield"].rules
    ('classical', ('ep', 'reference', 'agnostic', 'contrastive', 'coupled'))
    >>> build("hopfield", 2, 1, 4, gamma=0.8)
    Traceback (most recent call last):
    ...
    ValueError: system 'hopfield' does not use option(s) ['gamma'] (it takes ['layers', 'tol']); leave them out
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .protocol import EnergySystem

KINDS = ("quantum", "classical")

OPTIONS: dict[str, str] = {
    "graph": "coupling graph: 'complete', 'chain' (phase oscillators also 'layered'), or an edge list",
    "gamma": "transverse field Gamma (spin networks)",
    "train_gamma": "train the transverse fields",
    "delta": "XXZ anisotropy Delta (ZZ / XY exchange; 1 = Heisenberg)",
    "train_delta": "train the ZZ exchange Jz = Delta J independently of J",
    "temperature": "0: ground states; T > 0: Gibbs / Boltzmann states",
    "hbar": "Planck constant of the oscillator network (0 = classical springs)",
    "solver": "equilibrium solver ('auto', 'dense', 'lanczos', 'jax', 'mps'; tfim also 'vqe'; oscillators 'gaussian', 'fock')",
    "cost": "cost on the outputs ('mse', 'cross_entropy', 'pauli_mse')",
    "ansatz": "variational circuit ('hva' or 'hardware_efficient')",
    "depth": "variational circuit layers",
    "per_term": "HVA with one angle per Hamiltonian term",
    "tol": "solver tolerance (layered classical networks: largest unit change in a converged sweep)",
    "input_scale": "phase oscillators: input phases are input_scale * x",
    "target_amplitude": "phase oscillators: class targets +-target_amplitude for the outputs sin(phi_o)",
    "layers": "layered networks: every hidden layer's size, a list (e.g. [256, 256]); replaces hidden",
    "input_gain": "resistive networks: input source voltages are input_gain * (x, -x)",
    "init_std": "resistive networks: spread of the initial raw conductances (softplus^-1(g0) + init_std N(0, 1))",
    "j_init": "tfim_chain, tfim_sites: couplings start at J = j_init + 0.05 N(0, 1) (default 0.9 and 0.5: paramagnetic, "
              "correlation length ~10 and ~1.4 sites)",
    "chain": "sensor: the data chain it reads, the task's ('phases': TFIM, 'annni', 'xxz_field'; default 'phases')",
    "chi_max": "tfim_chain, tfim_sites and sensor with solver 'mps' (the chains' default past 16 qubits): largest MPS bond dimension (default 16)",
    "gap_check": "tfim_chain, tfim_sites and sensor with solver 'mps': which free phases get a gap solve (a second DMRG), "
                 "warned below gap_tol: 'ep' "
                 "(default: every EP free phase), 'first' (the first sample of each minibatch), k (every k-th EP free phase), "
                 "'all' (also evaluation's), 'none'",
    "reach": "sensor: each sensor qubit couples to this many chain sites at the chain's end (default: every site; "
             "a short reach keeps a long chain an MPS)",
    "pin": "sensor: its ZZ couplings start at pin + 0.5 N(0, 1) (default 0; > 0 pins an ordered chain: gapped)",
}

EP_RULES = ("ep", "reference", "agnostic")  # agnostic: classical.agnostic, needs only the EP protocol
CLAMPING_RULES = EP_RULES + ("contrastive", "coupled")  # the classical rules hold outputs fixed: system.clamp
VARIATIONAL = ("ansatz", "depth", "per_term")
SPIN = ("graph", "gamma", "train_gamma", "temperature", "solver", "cost")


def load(target: str) -> Callable[..., Any]:
    """The object named "package.module:attribute", imported on first use."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def network(target: str, outputs: str = "output_qubits") -> Callable[..., EnergySystem]:
    """Builder of a network of N = hidden + n_outputs nodes whose last n_outputs nodes are the
    outputs: ``target(N, graph, n_inputs=..., <outputs>=[hidden, ..., N - 1], **options)``
    (the TFIMNetwork signature; ``outputs`` names its output keyword)."""

    def build(n_inputs: int, n_outputs: int, hidden: int, graph="complete", **options) -> EnergySystem:
        n = hidden + n_outputs
        return load(target)(n, graph, n_inputs=n_inputs, **{outputs: list(range(hidden, n))}, **options)

    return build


def layered(target: str) -> Callable[..., EnergySystem]:
    """Builder of a layered network: ``target(n_inputs, layers, n_outputs, **options)``, with one hidden
    layer of ``hidden`` units unless the ``layers`` option lists every hidden layer's size."""

    def build(n_inputs: int, n_outputs: int, hidden: int, layers=None, **options) -> EnergySystem:
        return load(target)(n_inputs, (hidden,) if layers is None else tuple(layers), n_outputs, **options)

    return build


def _tfim(n_inputs: int, n_outputs: int, hidden: int, solver: str = "auto", **options) -> EnergySystem:
    """TFIMNetwork; solver='vqe' builds the variational TFIM (what ``--solver vqe`` always did)."""
    if solver == "vqe":
        return REGISTRY["variational_tfim"].build(n_inputs, n_outputs, hidden, **options)
    circuit = sorted(set(options) & set(VARIATIONAL))
    if circuit:
        raise ValueError(f"option(s) {circuit} configure variational circuits: add solver='vqe' (--solver vqe) "
                         "or use system 'variational_tfim'")
    return network("qeqprop.systems.tfim:TFIMNetwork")(n_inputs, n_outputs, hidden, solver=solver, **options)


def _phase_oscillators(n_inputs: int, n_outputs: int, hidden: int, **options) -> EnergySystem:
    return load("classical:PhaseOscillatorNetwork")(n_inputs, hidden, n_outputs, **options)


def _sensor(n_inputs: int, n_outputs: int, hidden: int, chain: str = "phases", solver: str = "auto",
            chi_max: int | None = None, **options) -> EnergySystem:
    """The quantum sensor (qeqprop.comparison.sensor): ``hidden`` data-chain qubits (>= 2) of the
    task ``chain``, one sensor qubit per output; solver "mps" is the long-chain MPS solver
    (qeqprop.systems.long_chain.chain_solver, bond dimension ``chi_max``), whose free phases get the
    gap checks of ``gap_check`` (SpinSystem's)."""
    if n_inputs != 2:
        raise ValueError(f"system 'sensor' takes the 2 inputs of its data chain (the task's Hamiltonian parameters), "
                         f"got n_inputs={n_inputs}")
    solver = load("qeqprop.systems.long_chain:chain_solver")(solver, chi_max)
    return load("qeqprop.comparison.sensor:chain_sensor")(chain, n_chain=hidden, n_sensors=n_outputs, solver=solver, **options)


@dataclass(frozen=True)
class SystemSpec:
    """How to build one registered system.

    Fields::

        name : the registry key (CLI ``--system`` value).
        builder : (n_inputs, n_outputs, hidden, **options) -> EnergySystem (module docstring).
        kind : "quantum" or "classical".
        description : one line for help texts and reports.
        options : the OPTIONS this builder takes.
        unit : what ``hidden`` counts, singular ("qubit", "oscillator", "spin", "neuron", "node"): hidden
            units of that kind (the hidden layer's for layered networks; the data chain's for the sensor).
        rules : gradient rules (qeqprop.rules.RULES) it supports; contrastive and coupled learning
            need a system that can clamp its outputs.
        tasks : the only datasets it can learn (None: any with numeric features); ``needs`` says why.
    """

    name: str
    builder: Callable[..., EnergySystem]
    kind: str
    description: str
    options: tuple[str, ...] = ()
    unit: str = "unit"
    rules: tuple[str, ...] = EP_RULES
    tasks: tuple[str, ...] | None = None
    needs: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind of system {self.name!r} must be one of {KINDS}, got {self.kind!r}")
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"system {self.name!r} declares unknown option(s) {unknown}; add them to OPTIONS with a help line")

    def takes(self, task: str) -> bool:
        """Whether this system can learn the dataset (task) named ``task``."""
        return self.tasks is None or task in self.tasks

    def build(self, n_inputs: int, n_outputs: int, hidden: int, **options) -> EnergySystem:
        """The system for ``n_inputs`` features and ``n_outputs`` outputs with ``hidden`` hidden
        units; ``options`` valued None are not given (module docstring)."""
        for argument, value, least in (("n_inputs", n_inputs, 0), ("n_outputs", n_outputs, 1), ("hidden", hidden, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{argument} must be an integer >= {least}, got {value!r}")
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for system {self.name!r}; options are {sorted(OPTIONS)}")
        unused = sorted(set(given) - set(self.options))
        if unused:
            raise ValueError(f"system {self.name!r} does not use option(s) {unused} (it takes {sorted(self.options)}); "
                             "leave them out")
        return self.builder(int(n_inputs), int(n_outputs), int(hidden), **given)


_SPECS = (
    SystemSpec("tfim", _tfim, "quantum", "transverse-field Ising network, inputs as trained fields", SPIN + VARIATIONAL,
               "qubit"),
    SystemSpec("tfim_chain", lambda *sizes, **options: load("qeqprop.systems.long_chain:tfim_chain")(*sizes, **options), "quantum",
               "TFIM on an open chain: inputs as fields at one end, outputs at the other, MPS (DMRG) ground states",
               ("gamma", "train_gamma", "solver", "cost", "j_init", "chi_max", "gap_check"), "qubit"),
    SystemSpec("tfim_sites", lambda *sizes, **options: load("qeqprop.systems.long_chain:site_chain")(*sizes, **options), "quantum",
               "TFIM on an open chain of `hidden` sites: one input field per site, outputs the mean <Z> of blocks, MPS (DMRG) "
               "ground states past 16 qubits", ("gamma", "solver", "cost", "j_init", "chi_max", "gap_check"), "qubit"),
    SystemSpec("xxz", network("qeqprop.systems.xxz:XXZNetwork"), "quantum", "XXZ exchange network (XX + YY + Delta ZZ), transverse field",
               SPIN + ("delta", "train_delta"), "qubit"),
    SystemSpec("variational_tfim", network("qeqprop.systems.variational:variational_tfim"), "quantum",
               "TFIM network with variational (VQE circuit) ground states", ("graph", "gamma", "train_gamma", "cost", "solver") + VARIATIONAL,
               "qubit"),
    SystemSpec("qho", network("qeqprop.systems.oscillators:OscillatorNetwork", "output_nodes"), "quantum",
               "quantum harmonic oscillator network, hbar = 1 unless set (linear in x)", ("graph", "hbar", "temperature", "solver"),
               "oscillator"),
    SystemSpec("sensor", _sensor, "quantum", "quantum sensor: a data chain (the task's parameters as its Hamiltonian coefficients) "
               "+ trained sensor qubits", ("solver", "cost", "temperature", "chain", "reach", "pin", "chi_max", "gap_check"), "qubit", tasks=("phases", "annni", "xxz_field"),
               needs="learns from quantum data only: its inputs are a chain's Hamiltonian parameters (tasks 'phases', 'annni', "
                     "'xxz_field')"),
    SystemSpec("hopfield", layered("classical:HopfieldNetwork"), "classical", "layered Hopfield network, hard-sigmoid units", ("tol", "layers"),
               "neuron", CLAMPING_RULES),
    SystemSpec("conv_hopfield", lambda *sizes, **options: load("classical.conv_hopfield:conv_hopfield")(*sizes, **options), "classical",
               "convolutional Hopfield network: conv layer + 2x2 max-pool, dense output (Laborieux et al. 2021)", ("tol",), "channel"),
    SystemSpec("resistive", layered("classical:ResistiveNetwork"), "classical", "nonlinear resistive network (diode-bounded hidden voltages)",
               ("tol", "layers", "input_gain", "init_std"), "node", CLAMPING_RULES + ("frequency_propagation",)),
    SystemSpec("flow", lambda *sizes, **options: load("classical.flow:random_flow_network")(*sizes, **options), "classical",
               "flow network with tunable conductances on a random graph (linear; Stern et al. 2021)", (), "node", CLAMPING_RULES),
    SystemSpec("phase_oscillators", _phase_oscillators, "classical", "coupled phase oscillators (XY energy)", ("graph", "input_scale", "target_amplitude"),
               "oscillator", CLAMPING_RULES),
    SystemSpec("ising", network("classical:IsingMachine", "output_spins"), "classical",
               "classical Ising machine (TFIM at Gamma = 0), Boltzmann states at T = 1 unless set", ("graph", "temperature", "cost"),
               "spin", CLAMPING_RULES),
    SystemSpec("elastic", network("classical.elastic:elastic_network", "output_nodes"), "classical",
               "elastic spring network (QHO at hbar = 0; linear in x)", ("graph", "temperature"), "node"),
)

REGISTRY: dict[str, SystemSpec] = {spec.name: spec for spec in _SPECS}
QUANTUM = tuple(name for name, spec in REGISTRY.items() if spec.kind == "quantum")
CLASSICAL = tuple(name for name, spec in REGISTRY.items() if spec.kind == "classical")


def get_spec(name: str) -> SystemSpec:
    """The spec of system ``name`` (ValueError listing the registered names otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"system must be one of {tuple(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def build(name: str, n_inputs: int, n_outputs: int, hidden: int, **options) -> EnergySystem:
    """``REGISTRY[name].build(n_inputs, n_outputs, hidden, **options)``."""
    return get_spec(name).build(n_inputs, n_outputs, hidden, **options)
