"""Variational ground states with PennyLane circuits (VQE).

For a Pauli-sum Hamiltonian H = sum_s c_s P_s (a PauliOperator, e.g. from
ParametrizedHamiltonian.operator) and a circuit |psi(phi)> = U(phi)|psi_init>, the solver finds

    phi* = argmin_phi  E(phi) = <psi(phi)| H |psi(phi)>          (E(phi*) >= E_0)

inside one jitted ``jax.lax.while_loop``.

Ansätze (``depth`` = number of layers L, each a list of PennyLane gates):

* ``"hva"``, the Hamiltonian-variational ansatz for TFIM-like models (every string Z-type
  or X-type): start in |+>^n, then for l = 1..L

      U_l = prod_{s in X} exp(-i phi_{l,g(s)} P_s)  prod_{s in Z} exp(-i phi_{l,g(s)} P_s),

  i.e. exp(-i a_l sum ZZ) exp(-i a'_l sum Z) then exp(-i b_l sum X): one angle per layer
  and group g of like strings (same letter and weight: couplings, fields, transverse
  fields); with ``per_term=True`` every string s has its own angle phi_{l,s}. The start
  is the Trotterized adiabatic ramp from |+>^n (the ground state of -sum Gamma X) to H:
  phi_{l,s} = dt (l / L) c_s on Z strings and dt c_s on X strings, dt = 0.3 / max |c_s|
  (group means for shared angles).
* ``"hardware_efficient"``: L layers of RY(phi) RZ(phi) on every qubit followed by CNOT
  (or CZ) on every edge of the model's coupling graph (qubit pairs sharing a string),
  then a closing RY RZ layer; it starts near |+>^n (RY = pi/2 plus seeded noise).

Circuits never depend on theta, x or the nudge (only their start does): the variational
manifold is fixed, so EP on it estimates the gradient of the variational loss exactly.

Optimizers:

* ``"newton"`` (default): Newton with the exact Hessian, shifted Levenberg-Marquardt style,

      delta = -sum_k v_k (v_k . g) / (lambda_k + mu + max(0, -lambda_min)),

  with (lambda_k, v_k) the eigenpairs of d2E/dphi2: the shift keeps the model positive
  definite and makes long steps along negative curvature (saddles are escaped). mu / 4
  when the decrease matches the quadratic model (ratio > 3/4), mu * 4 when it does not
  (ratio < 1/4; the step is rejected if E rises). Where the change of E is below its
  float64 rounding (|g| ~ 1e-7 on stiff directions) a step is accepted when it lowers |g|.
  Over-parametrized ansätze have Hessians with eigenvalues from ~1e-6 to ~10: Newton
  reaches |g| < 1e-8 there, and a warm-started nudged phase takes a handful of steps.
* ``"lbfgs"`` (optax.lbfgs with its zoom line search) and ``"adam"`` (optax.adam): first
  order; on those Hessians L-BFGS stalls near |g| ~ 1e-7 after thousands of steps.

The loop stops when ||dE/dphi|| <= gtol ("gradient"); when an accepted step changes E by
<= ftol max(1, |E|) ("energy"; off by default: E is quadratic in the state error while EP
reads expectations, which are linear in it, so only the gradient certifies an EP-grade
state); when no step makes progress any more ("stalled": mu above 1e8, or a failed line
search); or after maxiter steps ("max_steps"). The last two warn
(VariationalConvergenceWarning).

Simulation: every rotation is a ``qml.PauliRot`` (RY(t) = PauliRot(t, "Y"), IsingZZ(t) =
PauliRot(t, "ZZ"), ...): in PennyLane 0.45 its JAX backprop compiles faster than that of
RX/RY/RZ. The state vector comes from PennyLane's default.qubit kernels
(``pennylane.devices.qubit.apply_operation``) scanned over layers with ``jax.lax.scan``,
so the compile time does not grow with depth; E(phi) = <psi|H psi> applies the model's
fused JAX Pauli kernel (hamiltonians.jax_kernel) to that vector. The same gate list runs
as a ``qml.tape.QuantumScript`` on any PennyLane device (``circuit_counts`` measures it
with shots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml
from pennylane.devices.qubit import apply_operation, create_initial_state

from .. import _jax  # noqa: F401  (float64 before any array is made)
from ..errors import VariationalConvergenceWarning, warn
from ..hamiltonians.jax_kernel import JaxPauliOperator, xla_apply
from ..hamiltonians.pauli import PauliOperator, PauliTable
from . import ground_state
from .state import GroundState

ANSATZE = ("hva", "hardware_efficient")
ENTANGLERS = ("cnot", "cz")
OPTIMIZERS = ("newton", "lbfgs", "adam")
STOP_REASONS = ("gradient", "energy", "stalled", "max_steps")
# Levenberg-Marquardt damping of the Newton step (start, floor, stall ceiling).
NEWTON_DAMPING_START, NEWTON_DAMPING_MIN, NEWTON_DAMPING_MAX = 1e-3, 1e-9, 1e8
# Energy changes below ROUNDING * max(1, |E|) are float64 rounding noise.
ROUNDING = 64 * np.finfo(np.float64).eps
# Fidelity and energy error against the exact ground state are computed up to this size.
EXACT_COMPARE_MAX_QUBITS = 12
# Total Trotter time step of the HVA start (adiabatic ramp), in units of 1 / max |c_s|.
HVA_RAMP_STEP = 0.3




@dataclass
class VariationalState(GroundState):
    """A variational ground state: ``vector`` = |psi(phi*)>, ``energy`` = <H> at phi*.

    ``iterations`` = ``steps`` (optimizer steps); ``residual`` = ||H psi - E psi||;
    ``stop_reason`` is one of STOP_REASONS, ``grad_norm`` = ||dE/dphi|| and
    ``energy_change`` = |E_k - E_{k-1}| at the last accepted step. For n <= 12 qubits (or when
    asked) the exact ground state of the same operator gives ``exact_energy``,
    ``energy_error`` = E(phi*) - E_0 >= 0, ``fidelity`` = |<psi_0|psi(phi*)>|^2 and ``gap``.
    """

    circuit_params: np.ndarray | None = None
    steps: int = 0
    stop_reason: str = ""
    grad_norm: float = float("nan")
    energy_change: float = float("nan")
    exact_energy: float | None = None
    energy_error: float | None = None
    fidelity: float | None = None

    @property
    def converged(self) -> bool:
        return self.stop_reason in ("gradient", "energy")

    @property
    def relative_energy_error(self) -> float | None:
        """(E(phi*) - E_0) / |E_0| (None without the exact comparison)."""
        if self.energy_error is None:
            return None
        return self.energy_error / max(abs(self.exact_energy), np.finfo(float).tiny)


# -- ansätze ---------------------------------------------------------------------------


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1 (the number of circuit layers), got {depth!r}")
    return int(depth)


def _pauli_word(string) -> tuple[str, list[int]]:
    """(letters, wires) of a PauliString for qml.PauliRot."""
    return "".join(letter for _, letter in string.ops), list(string.qubits)


class HamiltonianVariationalAnsatz:
    """The HVA on a Z-type / X-type Pauli table (see the module docstring).

    Angles have shape (depth, number of groups), or (depth, n_Z + n_X) with ``per_term``;
    ``terms`` lists the table strings in gate order (Z strings, then X strings).
    """

    name = "hva"

    def __init__(self, table: PauliTable, depth: int, per_term: bool = False):
        self.n_qubits = table.n_qubits
        self.depth = _check_depth(depth)
        self.per_term = bool(per_term)
        z_terms, x_terms = [], []
        for s, string in enumerate(table.strings):
            letters = {letter for _, letter in string.ops}
            if not letters:
                continue
            if letters == {"Z"}:
                z_terms.append(s)
            elif letters == {"X"}:
                x_terms.append(s)
            else:
                raise ValueError(
                    f"ansatz='hva' needs every Pauli string to be Z-type or X-type (a TFIM-like model); "
                    f"{string} is neither; use ansatz='hardware_efficient'"
                )
        if not x_terms:
            raise ValueError("ansatz='hva' needs X-type terms (a transverse field) to mix the |+> start; "
                             "use ansatz='hardware_efficient'")
        self.terms = z_terms + x_terms
        self.is_mixer = np.arange(len(self.terms)) >= len(z_terms)
        self.words = [_pauli_word(table.strings[s]) for s in self.terms]
        keys = [("X" if mixer else "Z", len(wires)) for mixer, (_, wires) in zip(self.is_mixer, self.words)]
        self.groups = list(dict.fromkeys(keys))
        self.group = np.array([self.groups.index(key) for key in keys])
        self.shape = (self.depth, len(self.terms) if self.per_term else len(self.groups))

    def prep_ops(self) -> list:
        return [qml.Hadamard(q) for q in range(self.n_qubits)]

    def layer_ops(self, angles) -> list:
        """exp(-i theta_s P_s) for the Z strings, then the X strings, as PauliRot(2 theta_s)."""
        index = range(len(self.terms)) if self.per_term else self.group
        return [qml.PauliRot(2.0 * angles[k], word, wires=wires) for k, (word, wires) in zip(index, self.words)]

    def closing_ops(self, angles) -> list:
        return []

    def init_params(self, coeffs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The adiabatic ramp: theta_{l,s} = dt (l / L) c_s on Z strings, dt c_s on X strings,
        dt = HVA_RAMP_STEP / max |c_s|; shared angles take the mean over their group."""
        coeffs = np.asarray(coeffs, dtype=float)[self.terms]
        scale = np.max(np.abs(coeffs))
        dt = HVA_RAMP_STEP / scale if scale > 0 else HVA_RAMP_STEP
        ramp = np.where(self.is_mixer, 1.0, np.arange(1, self.depth + 1)[:, None] / self.depth)
        angles = dt * ramp * coeffs
        if self.per_term:
            return angles
        return np.stack([angles[:, self.group == g].mean(axis=1) for g in range(len(self.groups))], axis=1)


class HardwareEfficientAnsatz:
    """RY RZ on every qubit then CNOT/CZ on every coupling edge, ``depth`` times, then RY RZ.

    Angles have shape (depth + 1, 2 n): row l = (RY angles, RZ angles) of layer l.
    """

    name = "hardware_efficient"

    def __init__(self, table: PauliTable, depth: int, entangler: str = "cnot"):
        if entangler not in ENTANGLERS:
            raise ValueError(f"entangler must be one of {ENTANGLERS}, got {entangler!r}")
        self.n_qubits = n = table.n_qubits
        self.depth = _check_depth(depth)
        self.entangler = qml.CNOT if entangler == "cnot" else qml.CZ
        pairs = sorted({tuple(s.qubits) for s in table.strings if len(s.qubits) == 2})
        self.edges = pairs if pairs else [(q, q + 1) for q in range(n - 1)]
        self.shape = (self.depth + 1, 2 * n)

    def prep_ops(self) -> list:
        return []

    def closing_ops(self, angles) -> list:
        n = self.n_qubits
        return [qml.PauliRot(angles[q], "Y", wires=q) for q in range(n)] + [
            qml.PauliRot(angles[n + q], "Z", wires=q) for q in range(n)
        ]

    def layer_ops(self, angles) -> list:
        return self.closing_ops(angles) + [self.entangler(wires=list(edge)) for edge in self.edges]

    def init_params(self, coeffs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """RY = pi/2 (|+> on every qubit, which CNOTs leave unchanged) plus N(0, 0.1^2) noise."""
        params = 0.1 * rng.standard_normal(self.shape)
        params[:, : self.n_qubits] += np.pi / 2
        return params


def make_ansatz(name: str, table: PauliTable, depth: int, per_term: bool = False, entangler: str = "cnot"):
    """The ansatz ``name`` (one of ANSATZE) for the strings of ``table``."""
    if name == "hva":
        if entangler != "cnot":
            raise ValueError("entangler applies to ansatz='hardware_efficient' only; the HVA entangles by exp(-i a ZZ)")
        return HamiltonianVariationalAnsatz(table, depth, per_term)
    if name == "hardware_efficient":
        if per_term:
            raise ValueError("per_term applies to ansatz='hva' only; the hardware-efficient ansatz has one angle per gate")
        return HardwareEfficientAnsatz(table, depth, entangler)
    raise ValueError(f"ansatz must be one of {ANSATZE}, got {name!r}")


def circuit_ops(ansatz, phi) -> list:
    """The full gate list U(phi) of ``ansatz`` (prep, layers, closing) for PennyLane devices."""
    depth = ansatz.depth
    ops = ansatz.prep_ops()
    for layer in range(depth):
        ops += ansatz.layer_ops(phi[layer])
    if ansatz.shape[0] > depth:
        ops += ansatz.closing_ops(phi[depth])
    return ops


# -- the solver ------------------------------------------------------------------------


class VariationalSolver:
    """Minimizes <psi(phi)|H|psi(phi)> over the circuit angles for operators on ``table``.

    One solver compiles its jitted optimizer once (per table structure and ansatz) and
    reuses it for every coefficient vector: free and nudged phases, all inputs.

    Parameters
    ----------
    table : the PauliTable every operator passed to ``minimize`` is built on.
    ansatz : "hva" or "hardware_efficient"; depth : layers (>= 1).
    per_term : HVA with one angle per string per layer; entangler : "cnot" or "cz" (HEA).
    optimizer : "newton", "lbfgs" (optax.lbfgs, zoom line search) or "adam" (optax.adam
        with ``learning_rate``); see the module docstring.
    maxiter, gtol, ftol : the stopping rule of the module docstring.
    seed : seeds the hardware-efficient start.
    compare_exact : compute fidelity / energy error against the exact ground state
        (default: when n_qubits <= 12).
    """

    def __init__(
        self,
        table: PauliTable,
        ansatz: str = "hva",
        depth: int = 2,
        *,
        per_term: bool = False,
        entangler: str = "cnot",
        optimizer: str = "newton",
        learning_rate: float = 0.05,
        maxiter: int = 1000,
        gtol: float = 1e-8,
        ftol: float = 0.0,
        seed: int = 0,
        compare_exact: bool | None = None,
    ):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
            raise ValueError(f"maxiter must be an integer >= 1, got {maxiter!r}")
        for name, value in (("learning_rate", learning_rate), ("gtol", gtol), ("ftol", ftol)):
            if not np.isfinite(value) or value < 0 or (name == "learning_rate" and value == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'learning_rate' else '>= 0'}, got {value}")
        self.table = table
        self.n_qubits = table.n_qubits
        self.ansatz = make_ansatz(ansatz, table, depth, per_term, entangler)
        self.optimizer = optimizer
        self.maxiter, self.gtol, self.ftol = int(maxiter), float(gtol), float(ftol)
        self.seed = int(seed)
        self.compare_exact = self.n_qubits <= EXACT_COMPARE_MAX_QUBITS if compare_exact is None else bool(compare_exact)
        self._transform = None
        if optimizer == "lbfgs":
            self._transform = optax.lbfgs()
        elif optimizer == "adam":
            self._transform = optax.with_extra_args_support(optax.adam(learning_rate))
        self._structure = JaxPauliOperator(table.operator(np.zeros(len(table)))).structure
        self._statevector = jax.jit(self._state)
        self._minimize = jax.jit(self._run)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the circuit-parameter array phi."""
        return self.ansatz.shape

    def init_params(self, coeffs: np.ndarray) -> np.ndarray:
        """The ansatz's default start for the Hamiltonian with coefficients ``coeffs``."""
        return self.ansatz.init_params(coeffs, np.random.default_rng(self.seed))

    # -- jitted pieces ------------------------------------------------------------------
    def _state(self, phi):
        """|psi(phi)> by default.qubit kernels, scanned over the layers; shape (2^n,)."""
        ansatz, depth = self.ansatz, self.ansatz.depth
        state = create_initial_state(range(self.n_qubits), like="jax").astype(jnp.complex128)

        def apply(state, ops):
            for op in ops:
                state = apply_operation(op, state)
            return state

        state = apply(state, ansatz.prep_ops())
        state, _ = jax.lax.scan(lambda s, angles: (apply(s, ansatz.layer_ops(angles)), None), state, phi[:depth])
        if ansatz.shape[0] > depth:
            state = apply(state, ansatz.closing_ops(phi[depth]))
        return state.reshape(-1)

    def _energy(self, phi, diagonal, factors):
        psi = self._state(phi)
        return jnp.real(jnp.vdot(psi, xla_apply(self._structure, diagonal, factors, psi)))

    def _run(self, phi0, diagonal, factors):
        """The optimizer loop: (phi, energy, |grad|, |dE|, steps, stalled, psi)."""
        shape = phi0.shape

        def energy(flat):
            return self._energy(flat.reshape(shape), diagonal, factors)

        value_and_grad = jax.value_and_grad(energy)

        if self.optimizer == "newton":
            hessian = jax.hessian(energy)

            def stalled(carry):  # carry = (phi, damping, step, value, grad, change)
                return carry[1] > NEWTON_DAMPING_MAX

            def body(carry):
                phi, damping, step, value, grad, change = carry
                curvature, modes = jnp.linalg.eigh(hessian(phi))
                along = modes.T @ grad
                delta = -modes @ (along / (curvature + jnp.maximum(0.0, -curvature[0]) + damping))
                predicted = -(grad @ delta + 0.5 * jnp.sum(curvature * (modes.T @ delta) ** 2))
                new_value, new_grad = value_and_grad(phi + delta)
                ratio = (value - new_value) / predicted
                # Below the rounding of E, progress is judged by |g| (Newton converges quadratically).
                flat = (jnp.abs(value - new_value) <= ROUNDING * jnp.maximum(1.0, jnp.abs(value))) & (
                    jnp.linalg.norm(new_grad) < jnp.linalg.norm(grad)
                )
                accept = flat | (new_value < value)
                shrink = flat | (accept & (ratio > 0.75))
                keep = accept & ~shrink & (ratio >= 0.25)
                damping = jnp.where(shrink, jnp.maximum(damping / 4.0, NEWTON_DAMPING_MIN), jnp.where(keep, damping, damping * 4.0))
                return (
                    jnp.where(accept, phi + delta, phi), damping, step + 1,
                    jnp.where(accept, new_value, value), jnp.where(accept, new_grad, grad),
                    jnp.where(accept, jnp.abs(value - new_value), change),
                )

            aux0 = jnp.asarray(NEWTON_DAMPING_START)
        else:
            transform = self._transform
            if self.optimizer == "lbfgs":
                state_value_and_grad = optax.value_and_grad_from_state(energy)
            else:

                def state_value_and_grad(phi, state):
                    return value_and_grad(phi)

            def stalled(carry):  # carry = (phi, optimizer state, step, value, grad, change)
                return carry[5] == 0.0

            def body(carry):
                phi, state, step, value, grad, _ = carry
                updates, state = transform.update(grad, state, phi, value=value, grad=grad, value_fn=energy)
                phi = optax.apply_updates(phi, updates)
                new_value, new_grad = state_value_and_grad(phi, state=state)
                return phi, state, step + 1, new_value, new_grad, jnp.abs(new_value - value)

            aux0 = transform.init(phi0.ravel())

        def keep_going(carry):
            _, _, step, value, grad, change = carry
            small_change = change <= self.ftol * jnp.maximum(1.0, jnp.abs(value))
            return (step < self.maxiter) & (jnp.linalg.norm(grad) > self.gtol) & ~small_change & ~stalled(carry)

        value0, grad0 = value_and_grad(phi0.ravel())
        carry = (phi0.ravel(), aux0, jnp.asarray(0), value0, grad0, jnp.asarray(jnp.inf))
        carry = jax.lax.while_loop(keep_going, body, carry)
        phi, _, steps, value, grad, change = carry
        phi = phi.reshape(shape)
        return phi, value, jnp.linalg.norm(grad), change, steps, stalled(carry), self._state(phi)

    # -- public API ---------------------------------------------------------------------
    def _check_operator(self, operator: PauliOperator) -> None:
        if not isinstance(operator, PauliOperator):
            raise ValueError(f"operator must be a PauliOperator (e.g. ParametrizedHamiltonian.operator(...)), got {type(operator).__name__}")
        if operator.table is not self.table and operator.table.strings != self.table.strings:
            raise ValueError("operator is built on another Pauli table than this solver's; build the solver on operator.table")

    def check_params(self, phi) -> np.ndarray:
        phi = np.asarray(phi, dtype=np.float64)
        if phi.shape != self.shape:
            raise ValueError(f"circuit params must have shape {self.shape} for this ansatz, got {phi.shape}")
        if not np.all(np.isfinite(phi)):
            raise ValueError("circuit params contain NaN or inf; restart from the ansatz default (init=None)")
        return phi

    def statevector(self, phi) -> np.ndarray:
        """|psi(phi)> (complex128, qubit 0 = most significant bit)."""
        return np.asarray(self._statevector(jnp.asarray(self.check_params(phi))))

    def ops(self, phi) -> list:
        """The circuit U(phi) as a list of PennyLane operations (wires 0..n-1)."""
        return circuit_ops(self.ansatz, self.check_params(phi))

    def minimize(self, operator: PauliOperator, init: np.ndarray | None = None) -> VariationalState:
        """min_phi <psi(phi)|H|psi(phi)>, started from ``init`` (circuit params) or the default."""
        self._check_operator(operator)
        phi0 = self.init_params(operator.coeffs) if init is None else self.check_params(init)
        kernel = JaxPauliOperator(operator)
        phi, value, grad_norm, change, steps, stalled, psi = self._minimize(
            jnp.asarray(phi0), kernel.diagonal, kernel.factors
        )
        phi, psi, steps = np.asarray(phi), np.asarray(psi), int(steps)
        grad_norm, change = float(grad_norm), float(change)
        if grad_norm <= self.gtol:
            reason = "gradient"
        elif self.ftol > 0.0 and change <= self.ftol * max(1.0, abs(float(value))):
            reason = "energy"
        else:
            reason = "stalled" if bool(stalled) else "max_steps"
            warn(
                f"variational solver {reason} after {steps} steps with |grad| = {grad_norm:.2e} > gtol={self.gtol:.1e} "
                f"(optimizer={self.optimizer!r}); raise maxiter or loosen gtol"
                + ("" if self.optimizer == "newton" else ", or use optimizer='newton'"),
                VariationalConvergenceWarning,
            )
        h_psi = operator.matvec(psi)
        energy = float(np.real(np.vdot(psi, h_psi)))
        state = VariationalState(
            vector=psi, energy=energy, gap=None, iterations=steps,
            residual=float(np.linalg.norm(h_psi - energy * psi)), solver=f"variational-{self.ansatz.name}",
            circuit_params=phi, steps=steps, stop_reason=reason, grad_norm=grad_norm, energy_change=change,
        )
        if self.compare_exact:
            exact = ground_state(operator, "auto")
            state.exact_energy = exact.energy
            state.energy_error = energy - exact.energy
            state.fidelity = float(abs(np.vdot(exact.vector, psi)) ** 2)
            state.gap = exact.gap
        return state


def circuit_counts(
    solver: VariationalSolver,
    state: VariationalState,
    bases: Sequence[str],
    shots: int | Sequence[int],
    seed: int | None = None,
) -> dict[str, dict[str, int]]:
    """Measure the circuit of ``state`` with shots on PennyLane's default.qubit (for any gate list,
    any device, the nudge from measured outputs and the whole EP loop: qeqprop.device).

    For each basis (one letter per qubit, e.g. a MeasurementPlan's ``"ZZXZ"``) the circuit
    U(phi*) is followed by the readout rotations X -> H, Y -> S^dagger then H, and all wires
    are counted: {basis: {bitstring (wire 0 first): count}}, the input format of
    measurement.gradient_from_counts.
    """
    from ..device.circuits import basis_circuit  # (qeqprop.device imports this module)

    shots = np.broadcast_to(np.asarray(shots), (len(bases),))
    if np.any(shots < 1):
        raise ValueError(f"shots must be positive integers, got {shots.tolist()}")
    ops = solver.ops(state.circuit_params)
    n = solver.n_qubits
    for basis in bases:
        if len(basis) != n or set(basis) - set("XYZ"):
            raise ValueError(f"basis {basis!r} must have {n} letters from X, Y, Z (one per qubit)")
    tapes = [basis_circuit(ops, basis, int(count)) for basis, count in zip(bases, shots)]
    device = qml.device("default.qubit", wires=n, seed=seed)
    results = qml.execute(tapes, device)
    return {basis: {str(k): int(v) for k, v in result.items()} for basis, result in zip(bases, results)}
