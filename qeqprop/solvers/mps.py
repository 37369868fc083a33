"""Matrix-product ground states by DMRG (TeNPy): EP past exact diagonalisation, 1D and ladders.

EP needs only the expectations <P_s> of the local Pauli terms of H(theta, x) in the free and the
nudged ground states. For gapped Hamiltonians whose terms have bounded range along a chain (or a
ladder ordered as a chain), the ground state is a matrix-product state (MPS) of small bond
dimension chi, found by two-site DMRG (White 1992; Schollwoeck, Ann. Phys. 326, 96 (2011)):

    H = sum_s c_s P_s                  ->  an MPO (TeNPy's finite-state-machine construction from the
                                           terms: bond dimension 2 + the terms open across a cut),
    psi_0 = argmin <psi|H|psi>          over MPS of bond dimension <= chi_max (two-site sweeps),
    <P_s> = <psi|P_s|psi>               from the canonical form: O(range chi^3) per string.

The free phase is a cold DMRG (generic real product start, subspace-expansion mixer); each nudged
phase starts from the free MPS and needs a few sweeps (the nudge moves the state by O(beta)). The
gap E_1 - E_0 comes from a second DMRG constrained orthogonal to psi_0 (TeNPy's
``orthogonal_to``), which also sees a degenerate ground state (gap ~ 0); it is converged on its
energy alone (relative change per sweep below ``tol``, entanglement entropies not tested: the gap
is an energy difference, and E_1 is variational, so its error is second order in the state's),
and ``MPS.gap_of`` computes it for a state already solved, so a caller can pick which free states
to check (SpinSystem's ``gap_check``, qeqprop.systems.gap_checks). Each state reports its
bond dimension, the largest discarded weight of its last sweep (truncation error), its energy
variance <H^2> - <H>^2 and its sweeps; a run that does not meet its tolerance raises
NotConvergedError.

Why TeNPy (physics-tenpy 1.1.1) rather than quimb 1.16 (benchmarks/results/mps_library.json):
installing quimb next to the project's dependencies makes pip downgrade pennylane 0.45.1 to
0.42.2 (pennylane 0.45 pins autoray==0.8.4, quimb 1.16 needs autoray>=0.10), while physics-tenpy
installs with pennylane 0.45.1 unchanged; TeNPy builds MPOs from arbitrary multi-site terms and
offers orthogonalised excited states (the gap) and perfect sampling, all used here. Speed did not
decide it: to |E - E_0| < 1e-8 on the critical 32-site TFIM chain (chi <= 64, sweep by sweep, one
process) TeNPy took 1.1 s and quimb 18-34 s, while converged runs with a bond-dimension ramp and a
looser stop favoured quimb (0.8 vs 7.6 s); the ranking follows the protocol.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .._blas import one_blas_thread
from ..errors import NotConvergedError
from ..hamiltonians.pauli import PauliString
from .base import GroundStateSolver
from .state import SETTLED_FIRST, SETTLED_RETRY, GroundState

logger = logging.getLogger(__name__)
_LETTER_OPS = {"X": "Sigmax", "Y": "Sigmay", "Z": "Sigmaz"}
# Cold solves expand the bond space by TeNPy's subspace-expansion mixer for this many sweeps (its
# amplitude 1e-5 falling 4x per sweep); after that the entropies can settle to ``entropy_tol``.
MIXER_SWEEPS = 3


@dataclass(frozen=True)
class PauliSum:
    """H = sum_s coeffs[s] strings[s] on ``n_qubits`` qubits, as its terms only (no 2^n arrays):
    what the MPS solver takes (a ``PauliOperator`` works too: its table's strings and coefficients).

    Example:
        >>> h = PauliSum.parse(3, {"Z0 Z1": -1.0, "Z1 Z2": -1.0, "X0": -0.5})
        >>> h.n_qubits, len(h.strings), h.max_range()
        (3, 3, 2)
    """

    n_qubits: int
    strings: tuple[PauliString, ...]
    coeffs: np.ndarray

    @classmethod
    def parse(cls, n_qubits: int, terms: dict) -> PauliSum:
        """From {pauli word: coefficient}."""
        return cls(int(n_qubits), tuple(PauliString.coerce(s) for s in terms), np.array(list(terms.values()), dtype=float))

    @classmethod
    def of(cls, operator) -> PauliSum:
        """A PauliSum itself, or the terms of a PauliOperator (``operator.table.strings``, ``operator.coeffs``)."""
        if isinstance(operator, PauliSum):
            return operator
        try:
            return cls(int(operator.n_qubits), tuple(operator.table.strings), np.asarray(operator.coeffs, dtype=float))
        except AttributeError:
            raise ValueError(f"operator must be a PauliSum or a PauliOperator, got {type(operator).__name__}") from None

    @property
    def is_real(self) -> bool:
        return all(s.n_y % 2 == 0 for s in self.strings)

    def max_range(self) -> int:
        """Largest span max(q) - min(q) + 1 of a string with a nonzero coefficient (1 for fields)."""
        spans = [s.qubits[-1] - s.qubits[0] + 1 for s, c in zip(self.strings, self.coeffs) if c != 0.0 and s.ops]
        return max(spans, default=0)


class _CappedRun(NotConvergedError):
    """A first DMRG run that ended unconverged at its bond-dimension cap; ``psi`` is where it stopped."""

    def __init__(self, message: str, psi):
        super().__init__(f"MPS (DMRG): {message}")
        self.message, self.psi = message, psi


def _tenpy():
    """TeNPy's modules, imported on first use (an optional dependency; quiet about its API notes)."""
    try:
        from tenpy.algorithms.dmrg import TwoSiteDMRGEngine
        from tenpy.models.lattice import Chain
        from tenpy.models.model import CouplingModel, MPOModel
        from tenpy.networks.mps import MPS as TenpyMPS
        from tenpy.networks.site import SpinHalfSite
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the MPS solver needs TeNPy: pip install physics-tenpy") from None
    return TwoSiteDMRGEngine, Chain, CouplingModel, MPOModel, TenpyMPS, SpinHalfSite


@contextmanager
def _tenpy_block():
    """A block of TeNPy calls: its optimisation level "skip_arg_checks" (drops its per-tensor sanity
    checks, 18 % of a DMRG sweep's time at 8 qubits, profiled; the arrays here are TeNPy's own) and its
    UserWarnings (notes on future API changes) silenced."""
    from tenpy.tools.optimization import temporary_level

    with warnings.catch_warnings(), temporary_level("skip_arg_checks"):
        warnings.simplefilter("ignore", UserWarning)
        yield


def pauli_model(terms: PauliSum):
    """(TeNPy MPO model of H without its identity part, the identity part's coefficient).

    One spin-1/2 site per qubit in qubit order (TeNPy's "up" = |0>, Sigmaz = +1 there: the
    project's convention); a one-qubit string becomes an onsite term, a longer one a multi-site
    coupling term (no Jordan-Wigner string: Pauli operators on different sites commute).
    """
    _, Chain, CouplingModel, MPOModel, _, SpinHalfSite = _tenpy()
    site = SpinHalfSite(conserve=None)
    lattice = Chain(terms.n_qubits, site, bc="open", bc_MPS="finite")
    model = CouplingModel.__new__(CouplingModel)
    CouplingModel.__init__(model, lattice)
    offset = 0.0
    for string, c in zip(terms.strings, terms.coeffs):
        if c == 0.0:
            continue
        if not string.ops:
            offset += float(c)
        elif len(string.ops) == 1:
            (q, letter), = string.ops
            model.add_onsite_term(float(c), q, _LETTER_OPS[letter])
        else:
            model.add_multi_coupling_term(float(c), list(string.qubits), [_LETTER_OPS[p] for _, p in string.ops], "Id")
    return MPOModel(lattice, model.calc_H_MPO()), offset


def mps_expectations(psi, strings: Sequence[PauliString]) -> np.ndarray:
    """<psi|P_s|psi> for every string (real), from a normalised TeNPy MPS in canonical form:
    one-qubit strings of a letter from one ``expectation_value`` pass over all sites, longer ones
    by ``expectation_value_term`` (cost O(span chi^3) each), the identity as 1."""
    out = np.empty(len(strings))
    singles: dict[str, np.ndarray] = {}
    for s, string in enumerate(strings):
        if not string.ops:
            out[s] = 1.0
        elif len(string.ops) == 1:
            (q, letter), = string.ops
            if letter not in singles:
                singles[letter] = np.real(psi.expectation_value(_LETTER_OPS[letter]))
            out[s] = singles[letter][q]
        else:
            out[s] = np.real(psi.expectation_value_term([(_LETTER_OPS[p], q) for q, p in string.ops]))
    return out


@dataclass
class MPSGroundState(GroundState):
    """A ground state held as an MPS (``mps``, TeNPy) instead of a 2^n vector (``vector`` is None).

    Beyond GroundState: ``bond_dimension`` (largest chi), ``truncation_error`` (largest discarded
    weight in the last sweep), ``variance`` (<H^2> - <H>^2; ``residual`` is its square root,
    ||H psi - E psi||), ``sweeps`` (DMRG sweeps; also ``iterations``), ``n_sites``, ``retries``
    (SETTLED_FIRST, or SETTLED_RETRY when the run was continued at a larger bond dimension: MPS,
    "Missed tolerances"; ``fit`` counts them as "solver_retries"), ``model`` and ``offset`` (the
    TeNPy MPO model it was solved with and H's identity coefficient: what ``MPS.gap_of`` reuses).
    """

    mps: object = field(default=None, repr=False)
    n_sites: int = 0
    bond_dimension: int = 0
    truncation_error: float = 0.0
    variance: float = 0.0
    sweeps: int = 0
    retries: int = SETTLED_FIRST
    model: object = field(default=None, repr=False, compare=False)
    offset: float = 0.0

    @property
    def n_qubits(self) -> int:
        return self.n_sites

    def probabilities(self) -> np.ndarray:
        raise ValueError("an MPS ground state has no 2^n probability vector; sample bitstrings from state.mps instead")


@dataclass(frozen=True)
class MPS(GroundStateSolver):
    """Two-site DMRG ground states as a solver object, registered as "mps" (module docstring).

    Args:
        chi_max: largest bond dimension (2^(n/2) is exact for n qubits: the default 256 is exact up
            to 16 qubits and ample for gapped chains of any length).
        svd_min: singular values below it are discarded.
        max_sweeps: sweeps allowed to a cold (free-phase) solve; warm (nudged) solves get
            ``warm_sweeps``.
        energy_floor: the relative energy change per sweep that counts as converged is
            max(tol, energy_floor) (``tol`` from ``solve``; float64 cannot resolve less).
        entropy_tol: largest change of the entanglement entropies per sweep at convergence (the
            state, not only its energy, must have settled: EP reads expectations, which move
            linearly with the state error where the energy moves quadratically).
        min_sweeps: sweeps before convergence is tested.

    Missed tolerances: a run that ends its sweeps unconverged with its bond dimension at chi_max
    (near a critical point a capped chi leaves the entanglement entropies wobbling at the truncation
    level) is continued from where it stopped at bond dimension ``retry_chi`` (default 2 chi_max)
    with a fresh budget of sweeps, logged (logger "qeqprop.solvers.mps", INFO) and recorded in the
    state (``retries``; the gap's orthogonal run retries the same way, logged only); NotConvergedError is raised only when that run fails too, or when a run
    below the cap does not converge (more bond dimension would not help). Measured: a 48-qubit
    sensor-preset run (47-site TFIM chain near g = J, chi_max 16) lost 12 minutes to a cold solve
    whose entropies still moved after 41 sweeps before this retry existed.

    Example:
        >>> import numpy as np
        >>> from qeqprop.hamiltonians.pauli import PauliTable
        >>> op = PauliTable(3, ["Z0 Z1", "Z1 Z2", "X0", "X1", "X2"]).operator(np.array([-1.0, -1.0, -0.5, -0.5, -0.5]))
        >>> state = MPS().solve(op)
        >>> print(f"{state.energy:.6f} {state.gap:.6f}", state.bond_dimension)  # dense eigh: -2.403212, 0.193937
        -2.403212 0.193937 2
    """

    chi_max: int = 256
    svd_min: float = 1e-14
    max_sweeps: int = 40
    warm_sweeps: int = 20
    energy_floor: float = 1e-14
    entropy_tol: float = 1e-9
    min_sweeps: int = 2
    gap: bool = True
    combine: bool = True
    retry_chi: int | None = None
    name: ClassVar[str] = "mps"

    def __post_init__(self):
        for arg in ("chi_max", "max_sweeps", "warm_sweeps", "min_sweeps"):
            value = getattr(self, arg)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if self.retry_chi is not None and (isinstance(self.retry_chi, bool) or not isinstance(self.retry_chi, (int, np.integer))
                                           or self.retry_chi < self.chi_max):
            raise ValueError(f"retry_chi must be an integer >= chi_max = {self.chi_max} (the bond dimension of a retried "
                             f"run; None: 2 chi_max), got {self.retry_chi!r}")
        for arg in ("svd_min", "energy_floor", "entropy_tol"):
            value = getattr(self, arg)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")

    @one_blas_thread
    def solve(self, operator, init=None, tol: float = 1e-12, with_gap: bool = True) -> MPSGroundState:
        """The DMRG ground state of ``operator`` (PauliSum or PauliOperator), warm-started from
        ``init`` (an MPSGroundState) when given; ``state.expectations`` holds <P_s> for every
        string of the operator (in its order)."""
        terms = PauliSum.of(operator)
        if terms.n_qubits < 3:
            raise ValueError(f"the MPS solver (two-site DMRG) needs at least 3 qubits, got {terms.n_qubits}; "
                             "use solver='dense' for smaller registers")
        if init is not None and not isinstance(init, MPSGroundState):
            raise ValueError(f"init must be an MPSGroundState from this solver (or None), got {type(init).__name__}")
        with _tenpy_block():
            model, offset = pauli_model(terms)
            psi = init.mps.copy() if init is not None else self._product_state(model, terms.is_real)
            energy, psi, stats, retries = self._dmrg_or_retry(model, psi, tol, warm=init is not None)
            state = self._state(model, psi, energy + offset, stats, terms)
            state.retries = retries
            state.model, state.offset = model, float(offset)
            if with_gap and self.gap:
                state.gap = self._gap(model, psi, tol, energy)
        return state

    @one_blas_thread
    def gap_of(self, state: MPSGroundState, tol: float = 1e-12) -> float:
        """E_1 - E_0 of a ground state this solver returned (``solve(..., with_gap=False)`` or a
        solver with ``gap=False``): the second, orthogonalised DMRG that ``solve`` runs when it
        computes the gap, so a caller can decide after the free solve which states to check.

        Raises:
            ValueError: ``state`` is not an MPSGroundState from ``solve`` (no model to reuse).

        Example:
            >>> from qeqprop.solvers.mps import MPS, PauliSum
            >>> h = PauliSum.parse(3, {"Z0 Z1": -1.0, "Z1 Z2": -1.0, "X0": -0.5, "X1": -0.5, "X2": -0.5})
            >>> state = MPS(gap=False).solve(h)
            >>> state.gap is None, round(MPS().gap_of(state), 6)  # dense eigh: 0.193937
            (True, 0.193937)
        """
        if not isinstance(state, MPSGroundState) or state.model is None or state.mps is None:
            raise ValueError(f"state must be an MPSGroundState returned by MPS.solve, got {type(state).__name__}")
        with _tenpy_block():
            return self._gap(state.model, state.mps, tol, state.energy - state.offset)

    def _product_state(self, model, real: bool):
        """A generic product state (fixed angles, every computational-basis weight nonzero), so no
        symmetry sector of H is missed by the cold start."""
        TenpyMPS = _tenpy()[4]
        sites = model.lat.mps_sites()
        angles = np.random.default_rng(0).uniform(0.2, 1.3, len(sites))
        if real:
            vectors = [np.array([np.cos(a), np.sin(a)]) for a in angles]
        else:
            vectors = [np.array([np.cos(a), np.sin(a) * np.exp(0.3j)]) for a in angles]
        return TenpyMPS.from_product_state(sites, vectors, "finite", dtype=float if real else complex,
                                           unit_cell_width=len(sites))

    def _dmrg_or_retry(self, model, psi, tol: float, warm: bool, **run):
        """(energy, MPS, sweep statistics, SETTLED_FIRST or SETTLED_RETRY): a DMRG run (``run``:
        ``_dmrg``'s orthogonal_to and entropy_tol), continued at bond dimension retry_chi when it
        misses its tolerance at the chi_max cap ("Missed tolerances"): ground and gap solves alike."""
        try:
            return (*self._dmrg(model, psi, tol, warm, **run), SETTLED_FIRST)
        except _CappedRun as capped:
            chi = self.retry_chi or 2 * self.chi_max
            logger.info("MPS (DMRG): %s; continuing at bond dimension %d", capped.message, chi)
            return (*self._dmrg(model, capped.psi, tol, warm=True, chi_max=chi, sweeps=self.max_sweeps, **run), SETTLED_RETRY)

    def _dmrg(self, model, psi, tol: float, warm: bool, orthogonal_to=(), chi_max: int | None = None, sweeps: int | None = None,
              entropy_tol: float | None = None):
        """(energy, MPS, TeNPy's sweep statistics) of a DMRG run at bond dimension ``chi_max``
        (default self.chi_max), converged when the energy changes by < tol (relative) and the
        entropies by < ``entropy_tol`` (default self.entropy_tol; inf: energy alone) per sweep;
        raises _CappedRun (a NotConvergedError) when it stops unconverged at the cap of a first
        run, NotConvergedError otherwise."""
        TwoSiteDMRGEngine = _tenpy()[0]
        first = chi_max is None
        chi_max = self.chi_max if first else chi_max
        sweeps = sweeps or (self.warm_sweeps if warm else self.max_sweeps)
        options = {
            "trunc_params": {"chi_max": chi_max, "svd_min": self.svd_min},
            "max_trunc_err": 1.0,  # a capped chi is the caller's choice: reported (truncation_error), not raised
            "mixer": not warm,
            "mixer_params": {"amplitude": 1e-5, "decay": 4.0, "disable_after": MIXER_SWEEPS},
            "max_E_err": max(tol, self.energy_floor),
            "max_S_err": self.entropy_tol if entropy_tol is None else entropy_tol,
            "min_sweeps": min(self.min_sweeps, sweeps),
            "max_sweeps": sweeps,
            "lanczos_params": {"P_tol": 1e-15},
            "combine": self.combine,
        }
        engine = TwoSiteDMRGEngine(psi, model, options, orthogonal_to=list(orthogonal_to) or None)
        energy, psi = engine.run()
        stats = engine.sweep_stats
        done = len(stats["sweep"])
        if done >= sweeps and not engine.is_converged():
            change = abs(stats["E"][-1] - stats["E"][-2]) if done > 1 else float("nan")
            message = (f"not converged after {done} sweeps (energy change {change:.2e} per sweep, bond dimension "
                       f"{max(psi.chi)} of chi_max={chi_max})")
            if first and max(psi.chi) >= chi_max:
                raise _CappedRun(message, psi)
            raise NotConvergedError(f"MPS (DMRG): {message}; raise max_sweeps/warm_sweeps, chi_max or retry_chi, or loosen tol")
        return float(energy), psi, stats

    def _state(self, model, psi, energy: float, stats, terms: PauliSum) -> MPSGroundState:
        variance = float(max(model.H_MPO.variance(psi), 0.0))
        sweeps = len(stats["sweep"])
        state = MPSGroundState(
            vector=None, energy=energy, gap=None, iterations=sweeps, residual=float(np.sqrt(variance)), solver=self.name,
            mps=psi, n_sites=terms.n_qubits, bond_dimension=int(max(psi.chi, default=1)),
            truncation_error=float(stats["max_trunc_err"][-1]), variance=variance, sweeps=sweeps,
        )
        state.expectations = mps_expectations(psi, terms.strings)
        return state

    def _gap(self, model, psi0, tol: float, energy0: float) -> float:
        """E_1 - E_0 from a cold DMRG orthogonal to psi_0 (0 or tiny for a degenerate ground state),
        converged on its energy alone (module docstring)."""
        start = self._product_state(model, np.isrealobj(psi0.get_B(0).to_ndarray()))
        energy1 = self._dmrg_or_retry(model, start, tol, warm=False, orthogonal_to=[psi0], entropy_tol=np.inf)[0]
        return max(energy1 - energy0, 0.0)

    def working_set(self, n_qubits: int, itemsize: int = 8) -> int:
        """No 2^n state vectors: the MPS holds n chi^2 numbers (0 for the memory check)."""
        return 0


def sample_bitstrings(state: MPSGroundState, shots: int, basis: str | None = None, rng=None) -> np.ndarray:
    """Perfect sampling of measurement outcomes from an MPS ground state (Ferris & Vidal, PRB 85,
    165146 (2012)): each shot measures every qubit in the eigenbasis of ``basis[q]`` ("X", "Y" or
    "Z"; default all "Z") exactly from the Born distribution, no 2^n vector. All shots advance
    together, site by site, through the right-canonical tensors B_q (vL, p, vR) rotated into the
    basis (U_q = H for X, H S^dagger for Y: readout.sampling.ROTATIONS): with each shot's
    normalised left vector l (its outcomes so far),

        a_s = l (U_q B_q)[:, s, :],   P(s | earlier outcomes) = ||a_s||^2,   l <- a_s / ||a_s||,

    O(shots n chi^2) in batched products.

    Returns:
        (shots, n_qubits) eigenvalues +-1 (int8; outcome 0 = eigenvalue +1); the mean of a product of
        columns estimates the expectation of the corresponding Pauli string in that basis.

    Raises:
        ValueError: ``shots`` not a positive integer, or ``basis`` not n letters of X, Y, Z.

    Example:
        >>> from qeqprop.solvers import MPS, PauliSum
        >>> state = MPS(gap=False).solve(PauliSum.parse(3, {"Z0 Z1": -1.0, "Z1 Z2": -1.0, "Z0": -0.5, "X1": -0.1}))
        >>> sample_bitstrings(state, 4, rng=0).tolist()  # all spins up: <Z_q> ~ 1
        [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
    """
    from ..readout.sampling import ROTATIONS

    n = state.n_qubits
    if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots < 1:
        raise ValueError(f"shots must be a positive integer, got {shots!r}")
    basis = "Z" * n if basis is None else str(basis).upper()
    if len(basis) != n or any(letter not in _LETTER_OPS for letter in basis):
        raise ValueError(f"basis must be {n} letters of X, Y, Z (one per qubit), got {basis!r}")
    rng = np.random.default_rng(rng)
    rows = np.arange(shots)
    left = np.ones((shots, 1), dtype=complex)
    outcomes = np.empty((shots, n), dtype=np.int8)
    with _tenpy_block():
        tensors = [state.mps.get_B(q, form="B").to_ndarray() for q in range(n)]
    for q, (tensor, letter) in enumerate(zip(tensors, basis)):
        rotated = np.einsum("st,atb->asb", ROTATIONS[letter], tensor)
        amplitudes = (left @ rotated.reshape(rotated.shape[0], -1)).reshape(shots, 2, -1)
        weights = np.sum(np.abs(amplitudes) ** 2, axis=2)
        second = rng.random(shots) * weights.sum(axis=1) >= weights[:, 0]
        outcomes[:, q] = np.where(second, -1, 1)
        left = amplitudes[rows, second.astype(int)] / np.sqrt(weights[rows, second.astype(int)])[:, None]
    return outcomes
