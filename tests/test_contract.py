"""The contract every registered system meets (qeqprop.systems.registry.REGISTRY), run on each
one through the same checks, so a new system is tested by adding its registry line:

- it is an EnergySystem and describes itself ({"name", "units", "unit"});
- gradient pytrees (energy_grad, reference_grad, EP; per sample and batched) have the keys and
  shapes of init_params;
- the reference gradient equals central finite differences of the loss;
- EP's error against the reference falls with log-log slope estimator.order (1 positive,
  1 negative, 2 centered) over beta = 1e-1, 1e-2, 1e-3, within 0.15 (the tolerance of
  tests/test_gradients.py and tests/test_classical_gradients.py);
- one batched ep_gradient call equals per-sample calls to 1e-10.

Each system is built by the registry at a small size (2 inputs, 2 outputs, 2 hidden units) with
its default options. Finite differences: step h = 1e-5, tolerance 1e-6 relative, as in
tests/test_classical_gradients.py. That fits every system whose equilibria are exact to
rounding or converged to ~1e-12: the spin systems (tfim, xxz, sensor: dense eigh up to 8
qubits, linear-response reference), the oscillator networks (qho, elastic: closed-form Gaussian
states), the Ising machine (exact Boltzmann enumeration), Hopfield and resistive networks
(block-coordinate descent to 1e-12 per sweep) and phase oscillators (Newton to |dE/dphi| ~
1e-12): the central difference's truncation error is O(h^2) ~ 1e-10 and the solver's share
~1e-12 / h = 1e-7 at most. CASES lists the systems that need another size, point or step, with why.
"""

from __future__ import annotations

import doctest
import importlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import qutip

from conftest import kron_pauli, random_general_system
from qeqprop.comparison.systems import AVAILABLE, QUANTUM
from qeqprop.ep import ep_gradient, finite_difference_gradient, reference_gradient, relative_error
from qeqprop.errors import DegenerateGroundStateWarning
from qeqprop.estimators import BUILDERS as ESTIMATOR_BUILDERS
from qeqprop.gradcheck import log_slope
from qeqprop.systems import TFIMNetwork
from qeqprop.systems.protocol import EnergySystem
from qeqprop.systems.registry import KINDS, OPTIONS, REGISTRY, build, get_spec
from qeqprop.systems.xxz import XXZNetwork

BETAS = (1e-1, 1e-2, 1e-3)
SLOPE_TOL = 0.15
BATCH = 4


def pinned_phases(system, rng):
    """Phase oscillators at a stiff minimum: fields h in [1, 2] pin every free oscillator near its
    psi in [-1, 1] (where the sin readout is steep), couplings W ~ 0.5 N(0, 1). At the default init
    (psi = 0, |h| ~ 0.05) the energy has soft modes: the beta = 0.1 nudged state moves far and
    the beta range is not yet asymptotic (measured slopes 0.90 / 0.77 / 1.56); so does
    tests/test_classical_gradients.py's point at some seeds (centered 2.32 here at seed 0)."""
    n_free = system.param_shapes["h"][0]
    return {"W": 0.5 * rng.standard_normal(system.param_shapes["W"]), "h": rng.uniform(1, 2, n_free),
            "psi": rng.uniform(-1, 1, n_free)}


def stiff_conductances(system, rng):
    """Resistive network at its default init with every conductance times 10: the default
    (g ~ 0.1, two hidden nodes) gives the output nodes a total conductance ~0.2, so the beta = -0.1
    phase is far from asymptotic (negative slope 1.23). Voltages are weighted means, so they are
    unchanged by the scaling (the current sources start at 0)."""
    params = system.init_params(rng)
    return system.with_conductances(params, {name: 10 * g for name, g in system.conductances(params).items()})


@dataclass(frozen=True)
class Case:
    """How the contract builds one system: size, options, parameter point and FD step."""

    n_outputs: int = 2
    hidden: int = 2
    options: dict = field(default_factory=dict)
    params: object = None  # (system, rng) -> params; None: system.init_params(rng)
    fd_step: float = 1e-5


CASES = {
    # Two qubits with one angle per term and two layers: the circuit reaches the exact ground state
    # (measured |reference - FD| ~ 6e-9), so the variational loss is the exact loss and EP converges
    # to the reference gradient. The states come from an optimizer stopped at |dE/dphi| <= gtol, so
    # the loss carries ~1e-12 noise: h = 1e-4 keeps its share of the central difference at ~1e-8.
    "variational_tfim": Case(n_outputs=1, hidden=1, options={"per_term": True, "depth": 2}, fd_step=1e-4),
    "phase_oscillators": Case(params=pinned_phases),
    "resistive": Case(params=stiff_conductances),
}


def make(name: str, seed: int = 0):
    """(system, params, x, y, X, Y, fd_step) for registered system ``name``."""
    case = CASES.get(name, Case())
    system = build(name, 2, case.n_outputs, case.hidden, **case.options)
    rng = np.random.default_rng(seed)
    params = case.params(system, rng) if case.params else system.init_params(rng)
    x, y = rng.normal(size=2), rng.uniform(-1, 1, case.n_outputs)
    X, Y = rng.normal(size=(BATCH, 2)), rng.uniform(-1, 1, (BATCH, case.n_outputs))
    return system, params, x, y, X, Y, case.fd_step


@pytest.fixture(scope="module", params=list(REGISTRY))
def case(request):
    system, params, x, y, X, Y, step = make(request.param)
    free = system.equilibrate(params, x)
    return request.param, system, params, x, y, X, Y, step, free, system.reference_grad(params, x, y)


def shapes(tree) -> dict:
    return {k: np.shape(v) for k, v in tree.items()}


def test_registry_entries_are_well_formed():
    assert AVAILABLE == tuple(REGISTRY)
    assert set(QUANTUM) == {name for name, spec in REGISTRY.items() if spec.kind == "quantum"}
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.kind in KINDS and spec.description and spec.unit
        assert set(spec.options) <= set(OPTIONS) and set(spec.rules) >= {"ep", "reference"}
        assert spec.tasks is None or spec.needs


def test_protocol_and_describe(case):
    name, system, params, x, y, X, Y, step, free, reference = case
    assert isinstance(system, EnergySystem), name
    described = system.describe()
    assert set(described) == {"name", "units", "unit"}, described
    assert isinstance(described["name"], str) and isinstance(described["unit"], str) and described["unit"]
    assert isinstance(described["units"], (int, np.integer)) and described["units"] > 0, described
    assert (system.n_inputs, system.n_outputs) == (2, len(y))
    assert system.predict(free).shape == (len(y),)
    assert np.isfinite(system.cost(free, y)) and system.cost(free, y) == pytest.approx(system.loss(params, x, y), abs=1e-12)
    diagnostics = system.diagnostics(free)
    assert isinstance(diagnostics, dict) and all(v is None or np.isfinite(float(v)) for v in diagnostics.values())


def test_gradient_pytrees_match_params(case):
    name, system, params, x, y, X, Y, step, free, reference = case
    expected = shapes(system.init_params(1))
    assert shapes(params) == expected, name
    assert shapes(system.energy_grad(params, x, free)) == expected
    assert shapes(reference) == expected
    assert shapes(ep_gradient(system, params, x, y, beta=1e-2).grad) == expected
    assert shapes(reference_gradient(system, params, X[:2], Y[:2])) == {k: (2, *s) for k, s in expected.items()}


def test_reference_equals_finite_differences(case):
    name, system, params, x, y, X, Y, step, free, reference = case
    assert np.linalg.norm(np.concatenate([np.ravel(v) for v in reference.values()])) > 1e-3, name  # not a trivial zero
    assert relative_error(reference, finite_difference_gradient(system, params, x, y, step=step)) < 1e-6, name


@pytest.mark.parametrize("estimator", sorted(ESTIMATOR_BUILDERS))
def test_ep_converges_at_the_estimators_order(case, estimator):
    name, system, params, x, y, X, Y, step, free, reference = case
    order = ESTIMATOR_BUILDERS[estimator](BETAS[0]).order
    errors = [relative_error(ep_gradient(system, params, x, y, estimator=ESTIMATOR_BUILDERS[estimator](b), free=free).grad, reference)
              for b in BETAS]
    assert abs(log_slope(BETAS, errors) - order) < SLOPE_TOL, (name, estimator, errors)


def max_batch_difference(system, params, X, Y, beta: float = 1e-2) -> tuple[float, float, object]:
    """(largest |batched - per-sample| over every gradient leaf, and over losses and outputs; the batch result)."""
    batch = ep_gradient(system, params, X, Y, beta=beta)
    assert shapes(batch.grad) == {k: (len(X), *np.shape(v)) for k, v in params.items()}
    grad_diff, value_diff = 0.0, 0.0
    for b in range(len(X)):
        single = ep_gradient(system, params, X[b], Y[b], beta=beta)
        grad_diff = max(grad_diff, *(float(np.max(np.abs(batch.grad[k][b] - single.grad[k]), initial=0.0)) for k in params))
        value_diff = max(value_diff, abs(batch.loss[b] - single.loss), float(np.max(np.abs(batch.output[b] - single.output))))
    return grad_diff, value_diff, batch


def test_batch_call_equals_per_sample_calls(case):
    name, system, params, x, y, X, Y, *_ = case
    grad_diff, value_diff, _ = max_batch_difference(system, params, X, Y)
    print(f"{name}: batch vs per-sample max |difference| {grad_diff:.1e} (gradients), {value_diff:.1e} (loss, outputs)")
    assert grad_diff <= 1e-10 and value_diff <= 1e-10, (name, grad_diff, value_diff)


@pytest.mark.parametrize("which", ["complex_pauli", "thermal_tfim"])
def test_batch_equals_per_sample_beyond_the_registry_defaults(which):
    """The issue's other batch cases: a complex Pauli model (Y terms, complex H) and Gibbs states."""
    rng = np.random.default_rng(3)
    if which == "complex_pauli":
        system, params, *_ = random_general_system(rng, 4, solver="dense")
    else:
        system = build("tfim", 2, 2, 2, temperature=0.5)
        params = system.init_params(rng)
    X, Y = rng.normal(size=(BATCH, system.n_inputs)), rng.uniform(-1, 1, (BATCH, system.n_outputs))
    grad_diff, value_diff, _ = max_batch_difference(system, params, X, Y)
    print(f"{which}: batch vs per-sample max |difference| {grad_diff:.1e} (gradients), {value_diff:.1e} (loss, outputs)")
    assert grad_diff <= 1e-10 and value_diff <= 1e-10, (which, grad_diff, value_diff)


def test_batched_lanczos_equals_per_sample_within_the_solver_tolerance():
    """TFIM with solver="jax": a batch goes through batched Lanczos (all samples and both nudged
    phases in one solve), a single sample through thick-restart Lanczos. Both stop at a residual
    r <= tol max(1, |E|), tol = 1e-12 (nudge_tol = 1e-12 keeps the nudged phases there too). A state
    with residual r is off by ||d psi|| <= r / gap (Davis-Kahan), so each expectation <P> by at most
    4 r / gap, each local gradient g = J(x)^T <P> by 4 r c / gap (c = max(1, |x|_max) bounds J's column
    sums here), and the centered estimate by (|dg+| + |dg-|) / (2 beta) <= 4 r c / (gap beta); two
    paths: 8 r c / (gap beta). That bound is the tolerance; the measured difference is printed."""
    system = build("tfim", 2, 2, 2, solver="jax")
    system.nudge_tol = 1e-12
    rng = np.random.default_rng(0)
    params = system.init_params(rng)
    X, Y = rng.normal(size=(BATCH, 2)), rng.uniform(-1, 1, (BATCH, 2))
    beta = 1e-2
    grad_diff, value_diff, batch = max_batch_difference(system, params, X, Y, beta)
    assert system.batch_view(BATCH).joint_phases  # the batch really took the batched-Lanczos path
    residual = system.tol * max(1.0, float(np.max(np.abs(batch.free.energies))))
    bound = 8 * residual * max(1.0, float(np.max(np.abs(X)))) / (float(np.min(batch.free.gaps)) * beta)
    print(f"tfim (jax): batch vs per-sample max |difference| {grad_diff:.1e} (gradients; bound {bound:.1e}), {value_diff:.1e} (loss, outputs)")
    assert grad_diff <= bound, (grad_diff, bound)
    assert value_diff <= 4 * residual / float(np.min(batch.free.gaps)), value_diff  # free states only: no 1/beta


# -- the registry's own behaviour ------------------------------------------------------------------


def test_build_refuses_options_a_system_cannot_use():
    with pytest.raises(ValueError, match=r"system 'hopfield' does not use option\(s\) \['gamma'\]"):
        build("hopfield", 2, 1, 3, gamma=0.5)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['gama'\]"):
        build("tfim", 2, 1, 2, gama=0.5)
    with pytest.raises(ValueError, match="system must be one of"):
        build("spring", 2, 1, 2)
    with pytest.raises(ValueError, match="hidden must be an integer >= 0"):
        build("tfim", 2, 1, -1)
    with pytest.raises(ValueError, match=r"option\(s\) \['depth'\] configure variational circuits"):
        build("tfim", 2, 1, 2, depth=3)
    with pytest.raises(ValueError, match="takes the 2 inputs"):
        build("sensor", 3, 1, 4)
    assert not get_spec("sensor").takes("xor") and get_spec("sensor").takes("phases")
    # options valued None are "not given": every system builds with every knob unset
    unset = dict.fromkeys(OPTIONS)
    for name in REGISTRY:
        if name != "variational_tfim":  # builds PennyLane circuits: covered by the contract cases
            assert isinstance(build(name, 2, 1, 2, **unset), EnergySystem), name


def test_tfim_solver_vqe_builds_the_variational_tfim():
    system = build("tfim", 2, 1, 1, solver="vqe", per_term=True)
    assert type(system).__name__ == "VariationalTFIM" and system.describe()["units"] == 2


@pytest.mark.parametrize("module", ["qeqprop.systems.registry", "qeqprop.systems.xxz"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# -- the XXZ network ----------------------------------------------------------------------------


def xxz_instance():
    """A 4-qubit XXZ network on a ring with a chord, trainable Jz and Gamma, at a random point."""
    net = XXZNetwork(4, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], n_inputs=2, output_qubits=[2, 3], delta=0.7,
                     train_delta=True, train_gamma=True, solver="dense")
    rng = np.random.default_rng(5)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in net.init_params(rng).items()}
    return net, params, rng.normal(size=2)


def qutip_xxz(net: XXZNetwork, params, x) -> qutip.Qobj:
    """H of the XXZ module docstring from qutip.sigmax/sigmay/sigmaz tensor products (qubit 0 leftmost)."""
    n = net.n_qubits

    def site(op, q):
        return qutip.tensor([op if k == q else qutip.qeye(2) for k in range(n)])

    sx, sy, sz = qutip.sigmax(), qutip.sigmay(), qutip.sigmaz()
    H = 0 * site(sz, 0)
    for k, (i, j) in enumerate(net.edges):
        H -= params["J"][k] * (site(sx, i) * site(sx, j) + site(sy, i) * site(sy, j)) + params["Jz"][k] * site(sz, i) * site(sz, j)
    fields = params["b"] + x @ params["W"]
    for q in range(n):
        H -= fields[q] * site(sz, q) + params["gamma"][q] * site(sx, q)
    return H


def kron_xxz(net: XXZNetwork, params, x) -> np.ndarray:
    """The same H from Kronecker products of 2 x 2 Pauli matrices (tests/conftest.kron_pauli)."""
    n = net.n_qubits
    H = np.zeros((2**n, 2**n), dtype=complex)
    for k, (i, j) in enumerate(net.edges):
        H -= params["J"][k] * (kron_pauli(f"X{i} X{j}", n) + kron_pauli(f"Y{i} Y{j}", n)) + params["Jz"][k] * kron_pauli(f"Z{i} Z{j}", n)
    fields = params["b"] + x @ params["W"]
    for q in range(n):
        H -= fields[q] * kron_pauli(f"Z{q}", n) + params["gamma"][q] * kron_pauli(f"X{q}", n)
    return H


def test_xxz_energies_match_dense_eigh_and_qutip():
    net, params, x = xxz_instance()
    reference = qutip_xxz(net, params, x)
    np.testing.assert_allclose(net.hamiltonian.operator(params, x).to_dense(), reference.full(), atol=1e-12)
    spectrum = np.linalg.eigvalsh(kron_xxz(net, params, x))
    np.testing.assert_allclose(spectrum, reference.eigenenergies(), atol=1e-10)
    energy, ground = reference.groundstate()
    outputs = [qutip.expect(qutip.tensor([qutip.sigmaz() if k == q else qutip.qeye(2) for k in range(4)]), ground)
               for q in net.output_qubits]
    for solver in ("dense", "lanczos", "jax"):
        system = XXZNetwork(4, net.edges, n_inputs=2, output_qubits=[2, 3], delta=0.7, train_delta=True, train_gamma=True,
                            solver=solver)
        state = system.equilibrate(params, x)
        assert state.energy == pytest.approx(energy, abs=1e-10), solver
        assert state.energy == pytest.approx(spectrum[0], abs=1e-10), solver
        assert state.gap == pytest.approx(spectrum[1] - spectrum[0], abs=1e-8), solver
        np.testing.assert_allclose(system.predict(state), outputs, atol=1e-8)


def test_xxz_with_zero_xy_exchange_is_the_tfim():
    net, params, x = xxz_instance()
    tfim = TFIMNetwork(4, net.edges, n_inputs=2, output_qubits=[2, 3], train_gamma=True, solver="dense")
    ising = {"J": np.zeros_like(params["J"]), **{k: params[k] for k in ("Jz", "b", "W", "gamma")}}
    same = {"J": params["Jz"], **{k: params[k] for k in ("b", "W", "gamma")}}
    np.testing.assert_allclose(net.hamiltonian.operator(ising, x).to_dense(), tfim.hamiltonian.operator(same, x).to_dense(), atol=1e-14)


def test_xxz_fixed_anisotropy_ties_zz_to_xy_exchange():
    net = XXZNetwork(3, "chain", n_inputs=1, delta=[0.5, 2.0], gamma=0.4)
    params = net.init_params(2)
    assert set(params) == {"J", "b", "W"}
    np.testing.assert_allclose(net.anisotropy(params), [0.5, 2.0])
    trained = XXZNetwork(3, "chain", n_inputs=1, delta=[0.5, 2.0], gamma=0.4, train_delta=True)
    tied = {**params, "Jz": np.array([0.5, 2.0]) * params["J"]}
    x = np.array([0.3])
    np.testing.assert_allclose(net.hamiltonian.operator(params, x).to_dense(), trained.hamiltonian.operator(tied, x).to_dense(), atol=1e-14)


def smallest_gap(net: XXZNetwork, params, low: float = 0.05, high: float = 5.0) -> tuple[float, float]:
    """(min over x in [low, high] of the free-phase gap at input x, where): a grid, then Brent refinement."""
    from scipy.optimize import minimize_scalar

    def gap(x):
        return net.equilibrate(params, np.array([x])).gap

    grid = np.linspace(low, high, 100)
    gaps = [gap(v) for v in grid]
    i = int(np.argmin(gaps))
    best = minimize_scalar(gap, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]), method="bounded",
                           options={"xatol": 1e-12})
    return float(best.fun), float(best.x)


def test_xxz_transverse_field_turns_level_crossings_into_avoided_ones():
    """An antiferromagnetic 3-qubit chain swept by a field x (h_j = W_j x) changes magnetization
    sector (<Z_2> jumps from ~0.85 to 1). At Gamma = 0 (U(1): M = sum Z conserved) the two
    sectors' levels cross exactly; Gamma = 0.5 couples them and the gap stays open (measured
    minimum 0.230). Uniform couplings and fields (a mirror-symmetric chain) keep the crossing
    even at Gamma = 0.5: the docstring's caveat that only generic, symmetry-free H avoid it."""
    generic = {"J": np.array([-1.0, -0.7]), "b": np.zeros(3), "W": np.array([[1.0, 0.8, 1.3]])}
    mirror = {"J": np.array([-1.0, -1.0]), "b": np.zeros(3), "W": np.ones((1, 3))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateGroundStateWarning)
        crossing, where = smallest_gap(XXZNetwork(3, "chain", n_inputs=1, gamma=0.0, solver="dense"), generic)
        avoided, _ = smallest_gap(XXZNetwork(3, "chain", n_inputs=1, gamma=0.5, solver="dense"), generic)
        protected, _ = smallest_gap(XXZNetwork(3, "chain", n_inputs=1, gamma=0.5, solver="dense"), mirror)
    assert crossing < 1e-6 and 2.5 < where < 3.5, (crossing, where)
    assert avoided > 0.2, avoided
    assert protected < 1e-6, protected
    with pytest.warns(DegenerateGroundStateWarning):
        XXZNetwork(3, "chain", n_inputs=1, gamma=0.0, solver="dense").equilibrate(generic, np.array([where]))


def test_xxz_random_instances_are_gapped():
    """At the registry's default init, the gap stays well open over random inputs."""
    net = build("xxz", 2, 2, 3)
    rng = np.random.default_rng(11)
    gaps = [net.diagnostics(net.equilibrate(net.init_params(rng), rng.normal(size=2)))["gap"] for _ in range(20)]
    assert min(gaps) > 0.05, gaps


def test_xxz_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n_qubits must be an integer >= 2"):
        XXZNetwork(1)
    with pytest.raises(ValueError, match=r"delta \(one per edge\)"):
        XXZNetwork(3, "chain", delta=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"gamma \(one per qubit\)"):
        XXZNetwork(3, "chain", gamma=[1.0, 2.0])
    with pytest.raises(ValueError, match="graph has no edges"):
        XXZNetwork(3, [])
    with pytest.raises(ValueError, match="self-loop"):
        XXZNetwork(3, [(1, 1)])
