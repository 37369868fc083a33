"""A Hamiltonian in, a learner out: chosen coefficients of an imported Hamiltonian become
trainable parameters or input-driven fields.

Given H = sum_s c_s P_s (a PennyLane Hamiltonian, a PauliOperator, a {word: coefficient} dict,
(coefficient, word) pairs or fixed qeqprop Terms), every Pauli word P_s ends up with

    c_s(theta, x) = [ c_s                      fixed (not selected)
                    | theta_{g,k}              trainable: group g, entry k (init ~ N(c_s, init_std^2)) ]
                    + sum_{i: s in inputs[i]} a_{s,i} x_i

where an input-driven word takes its imported coefficient as its input scale, a_{s,i} = c_s
(1 for a word not in H), or a trainable input weight W_k ~ N(c_s, init_std^2) with
``input_weights="W"``. An input-driven word loses its constant c_s (it moved onto x_i) unless it
is also trainable, which gives it a bias theta_{g,k} ~ N(0, init_std^2): theta + c_s x_i, like
the TFIM field b_j + sum_i W_ij x_i. Words selected that are not in H join it (coefficient 0).

Selectors (``trainable`` values, ``inputs`` values): a Pauli word "Z0 Z1", an index into H's
terms (in the order ``pauli_sum`` lists them), a list of those, or a predicate
``f(word: str, coefficient: float) -> bool`` over H's terms.

The outputs are any observables ``pauli_sum`` reads (a word "Z2", {word: coefficient},
``projector("01", wires=(0, 1))``, a PennyLane observable). ``learner`` checks that the ground
state at x = 0 and ``init_params(init_check)`` is non-degenerate (gap >= the system's gap_tol)
for registers up to CHECK_QUBITS qubits and warns DegenerateGroundStateWarning otherwise: EP
(and every gradient) is undefined at a degenerate ground state, and a symmetry that survives the
random init (e.g. only Z-diagonal terms trainable on a parity-symmetric H) survives training too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DegenerateGroundStateWarning, warn
from ..validation import check_positive_float
from .observables import pauli_sum
from .parametrized import ParametrizedHamiltonian, ParamSpec, Term
from .pauli import PauliOperator, PauliString

if TYPE_CHECKING:
    from ..systems.spin import SpinSystem

Selector = str | int | Sequence | Callable[[str, float], bool]

# Registers up to this size get the non-degeneracy check of the initial parameters.
CHECK_QUBITS = 12


def hamiltonian_pairs(hamiltonian) -> tuple[int, list[tuple[PauliString, float]]]:
    """(qubits the input names, [(P_s, c_s)]) of any Hamiltonian form (module docstring)."""
    if isinstance(hamiltonian, Sequence) and not isinstance(hamiltonian, str) and hamiltonian \
            and all(isinstance(t, Term) for t in hamiltonian):
        driven = [t for t in hamiltonian if t.param is not None or t.input is not None]
        if driven:
            raise ValueError(f"hamiltonian: Term {driven[0]} already has a parameter or input; pass fixed Terms "
                             "(or build a ParametrizedHamiltonian directly)")
        hamiltonian = [(t.weight, t.string) for t in hamiltonian]
    pairs = pauli_sum(hamiltonian, "hamiltonian")
    size = max((q + 1 for p, _ in pairs for q in p.qubits), default=1)
    if isinstance(hamiltonian, PauliOperator):
        size = hamiltonian.n_qubits
    elif hasattr(hamiltonian, "wires"):  # PennyLane: its wires 0..n-1 are our qubits
        size = max(size, max((int(w) + 1 for w in hamiltonian.wires), default=1))
    return size, pairs


def select(selector: Selector, pairs: list[tuple[PauliString, float]], name: str) -> list[PauliString]:
    """The words a selector picks (module docstring), in its order, each once."""
    if callable(selector):
        words = [p for p, c in pairs if selector(str(p), c)]
    else:
        items = [selector] if isinstance(selector, (str, int, PauliString)) else list(selector)
        words = []
        for item in items:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not 0 <= item < len(pairs):
                    raise ValueError(f"{name}: term index {item} out of range 0..{len(pairs) - 1} of the Hamiltonian")
                words.append(pairs[item][0])
            else:
                words.append(PauliString.coerce(item))
    if not words:
        raise ValueError(f"{name} selects no term of the Hamiltonian; its words are {[str(p) for p, _ in pairs]}")
    repeated = sorted({str(w) for w in words if words.count(w) > 1})
    if repeated:
        raise ValueError(f"{name} selects {repeated} more than once")
    return words


def learner_hamiltonian(hamiltonian, trainable: Mapping[str, Selector] | None = None, inputs: Mapping[int, Selector] | None = None,
                        outputs: Sequence = (), n_inputs: int | None = None, n_qubits: int | None = None,
                        input_weights: str | None = None, init_std: float = 0.1) -> ParametrizedHamiltonian:
    """The ParametrizedHamiltonian of ``learner`` (arguments there)."""
    size, pairs = hamiltonian_pairs(hamiltonian)
    imported = dict(pairs)
    trainable, inputs = dict(trainable or {}), dict(inputs or {})
    init_std = check_positive_float("init_std", init_std, hint=" (spread of the initial parameters)")
    if n_inputs is None:
        n_inputs = max((int(i) + 1 for i in inputs), default=0)
    for i in inputs:
        if not isinstance(i, (int, np.integer)) or not 0 <= i < n_inputs:
            raise ValueError(f"inputs: key {i!r} must be an input index in 0..{n_inputs - 1} (n_inputs={n_inputs})")
    if input_weights is not None and input_weights in trainable:
        raise ValueError(f"input_weights={input_weights!r} is also a trainable group name; pick another name")
    driven = {i: select(sel, pairs, f"inputs[{i}]") for i, sel in inputs.items()}
    driven_words = {w for words in driven.values() for w in words}
    slots: dict[PauliString, tuple[str, int]] = {}
    specs, terms = {}, []
    for group, sel in trainable.items():
        words = select(sel, pairs, f"trainable[{group!r}]")
        for k, word in enumerate(words):
            if word in slots:
                raise ValueError(f"trainable: {word} is in groups {slots[word][0]!r} and {group!r}; a word has one parameter")
            slots[word] = (group, k)
        means = [0.0 if w in driven_words else imported.get(w, 0.0) for w in words]
        specs[group] = ParamSpec((len(words),), mean=tuple(means), std=init_std)
        terms += [Term(str(w), 1.0, group, (k,)) for k, w in enumerate(words)]
    terms += [Term(str(p), c) for p, c in pairs if p not in slots and p not in driven_words]
    scales = []
    for i, words in driven.items():
        for word in words:
            scale = imported.get(word, 1.0)
            if input_weights is None:
                terms.append(Term(str(word), scale, input=int(i)))
            else:
                terms.append(Term(str(word), 1.0, input_weights, (len(scales),), input=int(i)))
                scales.append(scale)
    if input_weights is not None:
        specs[input_weights] = ParamSpec((len(scales),), mean=tuple(scales), std=init_std)
    observables = []
    for j, o in enumerate(outputs):
        output = pauli_sum(o, f"outputs[{j}]")
        observables.append(str(output[0][0]) if len(output) == 1 and output[0][1] == 1.0
                           else {str(p): a for p, a in output})  # JSON-friendly
    widest = max((q + 1 for t in terms for q in PauliString.coerce(t.string).qubits), default=1)
    for o in observables:
        widest = max([widest] + [q + 1 for w in ([o] if isinstance(o, str) else o) for q in PauliString.coerce(w).qubits])
    n_qubits = max(size, widest) if n_qubits is None else n_qubits
    return ParametrizedHamiltonian(n_qubits, terms, specs, n_inputs=n_inputs, observables=observables)


def learner(
    hamiltonian,
    trainable: Mapping[str, Selector] | None = None,
    inputs: Mapping[int, Selector] | None = None,
    outputs: Sequence = (),
    n_inputs: int | None = None,
    n_qubits: int | None = None,
    input_weights: str | None = None,
    init_std: float = 0.1,
    init_check: int | None = 0,
    **options,
) -> SpinSystem:
    """A SpinSystem whose chosen coefficients of ``hamiltonian`` are trainable or input-driven.

    Args:
        hamiltonian: a PennyLane Hamiltonian, PauliOperator, {word: coefficient}, (coefficient,
            word) pairs or fixed Terms; PennyLane wire q / word qubit q = our qubit q.
        trainable: group name -> selector: those words' coefficients become the parameter array
            ``params[name]`` (one entry per word, in selection order).
        inputs: input index -> selector: those words' coefficients are driven by x_i (module docstring).
        outputs: the model outputs, one observable each (a word, {word: coefficient},
            ``projector(...)``, a PennyLane observable).
        n_inputs: input features (default: the largest ``inputs`` key + 1).
        n_qubits: register size (default: the widest of the Hamiltonian, its wires and the outputs).
        input_weights: name of a trainable array of input scales (None: the scales are fixed).
        init_std: standard deviation of the initial parameters around their imported coefficients.
        init_check: seed of ``init_params`` for the non-degeneracy check at x = 0; None skips it.
        **options: SpinSystem options (cost, solver, gap_tol, tol, temperature, ...).

    Returns:
        SpinSystem (its ``init_params(rng)`` draws around the imported coefficients).

    Example: a 3-qubit PennyLane TFIM whose ZZ couplings and X fields train, with x_0 on Z0:

        >>> import numpy as np, pennylane as qml, qeqprop as qp
        >>> from qeqprop.hamiltonians import learner
        >>> H = qml.Hamiltonian([-1.0, -1.0, -0.8, -0.8, -0.8, 0.3],
        ...                     [qml.Z(0) @ qml.Z(1), qml.Z(1) @ qml.Z(2), qml.X(0), qml.X(1), qml.X(2), qml.Z(0)])
        >>> net = learner(H, trainable={"J": ["Z0 Z1", "Z1 Z2"], "h": ["X0", "X1", "X2"]},
        ...               inputs={0: ["Z0"]}, outputs=["Z2"])
        >>> net
        SpinSystem(n_qubits=3, n_inputs=1, outputs=['Z2'], solver='auto', cost='mse')
        >>> print(net.hamiltonian)
        J[0] * (Z0 Z1) + J[1] * (Z1 Z2) + h[0] * (X0) + h[1] * (X1) + h[2] * (X2) + 0.3 * x[0] * (Z0)
        >>> params = net.init_params(0)
        >>> x, y = np.array([0.5]), np.array([0.2])
        >>> ep = qp.ep_gradient(net, params, x, y, beta=1e-3)
        >>> qp.relative_error(ep.grad, qp.reference_gradient(net, params, x, y)) < 1e-5
        True
    """
    from ..systems.spin import (
        SpinSystem,  # systems build on hamiltonians: imported at call time
    )

    ham = learner_hamiltonian(hamiltonian, trainable, inputs, outputs, n_inputs, n_qubits, input_weights, init_std)
    system = SpinSystem(ham, **options)
    if init_check is not None and system.temperature == 0.0 and ham.n_qubits <= CHECK_QUBITS:
        params = system.init_params(init_check)
        with warnings.catch_warnings():  # the solver's own warning would point here; this one names the fix
            warnings.simplefilter("ignore", DegenerateGroundStateWarning)
            gap = system.equilibrate(params, np.zeros(ham.n_inputs)).gap
        if gap is None or not gap >= system.gap_tol:
            shown = "unknown" if gap is None else f"{gap:.2e}"
            warn(f"the learner's ground state at x = 0 and init_params({init_check}) is degenerate (gap {shown} < "
                 f"gap_tol={system.gap_tol:g}): EP is undefined there; make terms that break the symmetry trainable "
                 "or add them (e.g. fields on every qubit), or train at temperature > 0", DegenerateGroundStateWarning)
    return system
