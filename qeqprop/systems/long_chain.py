"""TFIM learners on long open chains: TFIMChain (inputs as fields at one end, outputs at the other,
this docstring) and SiteChain (one input field per site, outputs block magnetisations: a learner
whose accuracy grows with its length, see its docstring).

    H(theta, x) = - sum_{i=0}^{N-2} J_i Z_i Z_{i+1} - sum_i b_i Z_i - sum_{q < n_in} x_q Z_q - Gamma sum_i X_i

Qubits 0..n_in-1 take the inputs as longitudinal fields, the last n_out qubits are the outputs
(<Z_o>), the qubits in between are hidden. Every coupling is nearest-neighbour, so the ground
state is a matrix-product state of small bond dimension while the chain stays gapped, and DMRG
(``qeqprop.solvers.MPS``) reaches lengths exact diagonalisation cannot (48 qubits: the chain-sign
preset). A signal reaches the outputs only through the couplings, so the task grows with N.

Why the couplings start near J0 = 0.9 < Gamma = 1 (``j_init``): the uniform open chain is
critical at J = Gamma. On the paramagnetic side its correlation length is xi = 1 / ln(Gamma / J)
(Pfeuty, Ann. Phys. 57, 79 (1970)), about 9.5 sites at J / Gamma = 0.9, so the input's effect on an
output N sites away falls like (J / Gamma)^N: small at N = 48 but nonzero, and the EP gradient
points towards the larger couplings that carry it. A start deep in the paramagnet (J = 0.5, xi =
1.4 sites) leaves ~exp(-33) of the input at the far end: no signal to learn from. A start in the
ferromagnet (J > Gamma) gives a finite chain two nearly degenerate ground states, split only by the
fields, where DMRG converges slowly and EP (which needs a gapped ground state) is fragile.

Why the fields b start random (0.05 N(0, 1), TFIMNetwork's default): they break the symmetry
Z -> -Z, x -> -x, so the untrained output is biased and the sign task starts at chance (with b = 0 the
output starts odd in x and every sample starts on the right side of 0: accuracy 1 before training).
The price: longitudinal fields gap the chain and screen the end-to-end response besides biasing it.
Measured on 48 sites (MPS, chi 16), <Z_47> at x = +1 minus at x = -1, couplings 0.9 / 0.95 / 1.0 +
0.05 N(0, 1): 5.7e-3 / 5.6e-2 / 0.33 with b = 0, and 1.6e-3 / 5.0e-3 / 5.2e-3 with b = 0.05 N(0, 1),
which biases the output by 0.15-0.34.

Training: once the couplings order the chain, every field b_i acts on the output through the one
global magnetisation, and Adam moves each b_i by ~lr per step, so sum_i b_i moves by ~N lr per step
and can outweigh the input field at qubit 0 (the bulk polarises, the output decouples: a constant
output). Small rates train the 16-qubit analogue (couplings from 0.73: the same chain length /
correlation length; exact states; lr 0.01, one sample per step: test accuracy 0.5 -> 1.0 in two
epochs for seeds 0, 1, 2); at 48 qubits no setting tried so far learns (the chain48-mps preset's notes).

Solver: "mps" past EXACT_MAX_QUBITS = 16 qubits unless told otherwise, exact states ("auto": dense
eigh up to 8 qubits, JAX Lanczos above) up to there: at 16 qubits a state vector is 0.5 MiB and
an exact EP gradient takes under a second, while TeNPy's DMRG spends ~0.3 s per ground state
even on 8 qubits (a 1-epoch chain-sign run at 8 qubits: ~60 s with MPS), and the exact states
also give the linear-response reference gradient. MPS settings for solver "mps": bond dimension ``chi_max`` (default 16), singular values below
1e-10 dropped, converged when the entanglement entropies change by < 1e-7 per sweep, no gap
solve in the solver (it costs a second, cold DMRG per free phase; with Gamma > 0 the chain
Hamiltonian is stoquastic and its ground state unique, Perron-Frobenius, but unique is not gapped:
every SpinSystem on these ground states, SiteChain, TFIMChain and the sensor alike, checks the gaps of
its EP free phases itself, ``gap_check``, qeqprop.systems.gap_checks). On the 32-site critical chain the EP
gradient at chi_max = 16 equals chi_max = 128's to 6e-9 (benchmarks/results/mps_chi.json).
"""

from __future__ import annotations

import numpy as np

from ..hamiltonians.parametrized import ParametrizedHamiltonian, ParamSpec, Term
from ..solvers import MPS
from .gap_checks import GAP_CHECKS, GapCheckedBatch, check_gap_check  # noqa: F401  (the first two: importable from here as before)
from .protocol import EnergySystem
from .spin import SpinSystem
from .tfim import TFIMNetwork

EXACT_MAX_QUBITS = 16
J_INIT = 0.9
SITE_J_INIT = 0.5  # SiteChain's couplings (its docstring)
CHI_MAX = 16
MPS_SVD_MIN = 1e-10
MPS_ENTROPY_TOL = 1e-7


def chain_solver(solver, chi_max: int | None = None):
    """``solver`` itself, or for "mps" the long-chain MPS solver of the module docstring: bond
    dimension ``chi_max`` (default CHI_MAX), singular values below MPS_SVD_MIN dropped, converged
    when the entanglement entropies change by < MPS_ENTROPY_TOL per sweep, no gap solve (the system
    checks gaps itself: ``MPS.gap_of`` on the free phases its ``gap_check`` names). Shared by
    TFIMChain and the long-chain quantum sensor (registry "sensor" with solver "mps")."""
    if solver == "mps":
        return MPS(chi_max=CHI_MAX if chi_max is None else chi_max, svd_min=MPS_SVD_MIN, entropy_tol=MPS_ENTROPY_TOL, gap=False)
    if chi_max is not None:
        raise ValueError(f"chi_max sets the MPS bond dimension: add solver='mps' (--solver mps), got solver={solver!r}")
    return solver


class TFIMChain(TFIMNetwork):
    """TFIM learner on an open chain of ``n_qubits`` (module docstring): inputs as fields on qubits
    0..n_inputs-1, outputs <Z> of the last ``n_outputs`` qubits, couplings J_i = j_init + j_std N(0, 1).

    Args:
        n_qubits: chain length (>= n_inputs + n_outputs).
        n_inputs, n_outputs: input and output qubits at the two ends.
        j_init, j_std: mean and spread of the initial couplings (module docstring: why 0.9).
        chi_max: MPS bond-dimension cap (solver "mps" only; default 16).
        solver: None (default: "mps" past EXACT_MAX_QUBITS qubits, "auto" up to there), "mps", or
            any other solver name or object ("dense", "jax": exact states, the same physics).
        **options: TFIMNetwork's (gamma, train_gamma, input_scale, init_std: the fields b start at
            0.1 init_std N(0, 1), 0.05 N(0, 1) by default) and SpinSystem's (cost, tol, gap_tol,
            gap_check: which MPS free phases get a gap solve, qeqprop.systems.gap_checks, ...).

    Example:
        >>> net = TFIMChain(6)
        >>> net.input_qubits, net.output_qubits, net.solver, net.init_params(0)["J"].round(2).tolist()
        ([0], [5], 'auto', [0.91, 0.89, 0.93, 0.91, 0.87])
        >>> type(TFIMChain(48).solver).__name__, TFIMChain(48).solver.chi_max
        ('MPS', 16)
    """

    def __init__(
        self,
        n_qubits: int,
        n_inputs: int = 1,
        n_outputs: int = 1,
        j_init: float = J_INIT,
        j_std: float = 0.05,
        chi_max: int | None = None,
        solver=None,
        **options,
    ):
        for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, (int, np.integer)) or n_qubits < n_inputs + n_outputs:
            raise ValueError(f"n_qubits must be an integer >= n_inputs + n_outputs = {n_inputs + n_outputs}, got {n_qubits!r}")
        if not np.isfinite(j_init):
            raise ValueError(f"j_init must be a finite number, got {j_init!r}")
        if not (np.isfinite(j_std) and j_std >= 0):
            raise ValueError(f"j_std must be a finite number >= 0, got {j_std!r}")
        if solver is None:
            solver = "mps" if n_qubits > EXACT_MAX_QUBITS else "auto"
        solver = chain_solver(solver, chi_max)
        self.j_init, self.j_std = float(j_init), float(j_std)
        super().__init__(int(n_qubits), "chain", n_inputs=n_inputs, input_mode="fields", input_qubits=list(range(n_inputs)),
                         output_qubits=list(range(n_qubits - n_outputs, n_qubits)), solver=solver, **options)

    def coupling_specs(self, init_std: float) -> dict[str, ParamSpec]:
        """J_i = j_init + j_std N(0, 1), one per chain edge (init_std sets only the fields b)."""
        return {"J": ParamSpec((len(self.edges),), mean=self.j_init, std=self.j_std)}


def tfim_chain(n_inputs: int, n_outputs: int, hidden: int, **options) -> EnergySystem:
    """The registry's builder (qeqprop.systems.registry): a TFIMChain of n_inputs + hidden + n_outputs qubits."""
    return TFIMChain(n_inputs + hidden + n_outputs, n_inputs=n_inputs, n_outputs=n_outputs, **options)


class SiteChain(SpinSystem):
    """TFIM learner on an open chain with one input per site, read out by block magnetisations:

        H(theta, x) = - sum_{i=0}^{N-2} J_i Z_i Z_{i+1} - sum_{i=0}^{N-1} (b_i + w_i x_i) Z_i - Gamma sum_i X_i
        O_k         = (1 / |B_k|) sum_{i in B_k} <Z_i>          (output k: the mean <Z> over block k)

    Site i takes feature i (i < min(N, n_inputs)); sites past the features get only b_i, features
    past the chain are not seen. The blocks B_k split the chain into ``n_outputs`` contiguous blocks
    of (nearly) equal length. theta = (J, b, w); Gamma is fixed.

    Why this layout (issue 22, "a task where size matters"): the input reaches the output locally,
    not across the chain. TFIMChain sends one input field along the chain to its last qubit, and the
    response falls like (J / Gamma)^N (Pfeuty 1970): at 48 sites nothing is left to learn from. Here
    each site's field moves its own <Z_i> by O(1) and the mean collects them, so the learner's reach
    grows with N through the number of features it sees, while the couplings correlate neighbouring
    responses over the correlation length. On chain-teacher (a 48-spin teacher perceptron,
    qeqprop.datasets.chain_teacher_data) a chain of k sites sees k of the 48 spins.

    Why each output is a mean of one-site Z: the nudge beta sum_k nudge_k O_k adds one-site fields
    (beta nudge_k / |B_k|) Z_i, so the nudged Hamiltonian has the free one's terms and MPO, and the
    nudged DMRG warm-starts from the free MPS.

    Why the couplings start at J = 0.5 < Gamma = 1 (``j_init``): the open chain is then paramagnetic
    with correlation length 1 / ln(Gamma / J) = 1.4 sites, gapped (gap ~ 2 (Gamma - J) without fields)
    with a ground state of small bond dimension (13 at 48 sites, measured), and its ground state is
    unique (Gamma > 0: stoquastic, Perron-Frobenius). Couplings that training pushes past Gamma order
    the chain; the fields b_i + w_i x_i then split its two ordered states, and a free-phase gap below
    ``gap_tol`` is reported (DegenerateGroundStateWarning): by the exact solvers on every free phase,
    and with MPS ground states on the free phases ``gap_check`` names.

    Gap checks (solver "mps"): ``gap_check`` (SpinSystem's, qeqprop.systems.gap_checks) names the
    EP free phases whose gap a second DMRG computes; the default "ep" checks every one. With exact
    solvers (up to EXACT_MAX_QUBITS qubits by default) every gap is computed whatever it says.

    Args:
        n_qubits: chain length N (>= n_outputs; one site has no coupling).
        n_inputs: features (>= 1); site i takes feature i for i < min(N, n_inputs).
        n_outputs: output blocks (>= 1).
        j_init, j_std: mean and spread of the initial couplings, J_i = j_init + j_std N(0, 1).
        w_std, b_std: spreads of the initial input weights and fields (means 0; w starts near zero, so the
            first steps move it along the data's direction rather than away from a random w).
        gamma: the transverse field Gamma (fixed).
        chi_max, solver: as TFIMChain's (MPS past EXACT_MAX_QUBITS qubits, exact states up to there).
        gap_check: which MPS free phases get a gap solve, one of GAP_CHECKS or an integer k >= 1
            (qeqprop.systems.gap_checks; command line: ``--option gap_check=...``).
        **options: SpinSystem's (cost, tol, gap_tol, ...).

    Example:
        >>> import numpy as np
        >>> net = SiteChain(4, n_inputs=3, n_outputs=2, solver="dense")
        >>> net.repr_fields()["outputs"]
        ['0.5 * Z0 + 0.5 * Z1', '0.5 * Z2 + 0.5 * Z3']
        >>> {k: v.shape for k, v in net.init_params(0).items()}
        {'J': (3,), 'b': (4,), 'w': (3,)}
        >>> net.predict(net.equilibrate(net.init_params(0), np.array([1.0, -1.0, 1.0]))).round(3).tolist()
        [0.045, 0.029]
    """

    def __init__(
        self,
        n_qubits: int,
        n_inputs: int,
        n_outputs: int = 1,
        j_init: float = SITE_J_INIT,
        j_std: float = 0.05,
        w_std: float = 0.05,
        b_std: float = 0.05,
        gamma: float = 1.0,
        chi_max: int | None = None,
        solver=None,
        gap_check: str = GAP_CHECKS[0],
        **options,
    ):
        gap_check = check_gap_check(gap_check)  # first: refused before the chain is built
        for name, value, least in (("n_inputs", n_inputs, 1), ("n_outputs", n_outputs, 1), ("n_qubits", n_qubits, n_outputs)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        for name, value, least in (("j_init", j_init, -np.inf), ("j_std", j_std, 0.0), ("w_std", w_std, 0.0),
                                   ("b_std", b_std, 0.0), ("gamma", gamma, 0.0)):
            if not (np.isfinite(value) and value >= least):
                raise ValueError(f"{name} must be a finite number{'' if least == -np.inf else f' >= {least}'}, got {value!r}")
        n, seen = int(n_qubits), min(int(n_qubits), int(n_inputs))
        if solver is None:
            solver = "mps" if n > EXACT_MAX_QUBITS else "auto"
        specs = {"J": ParamSpec((n - 1,), mean=float(j_init), std=float(j_std)), "b": ParamSpec((n,), std=float(b_std)),
                 "w": ParamSpec((seen,), std=float(w_std))}
        terms = [Term(f"Z{i} Z{i + 1}", -1.0, "J", (i,)) for i in range(n - 1)]
        terms += [Term(f"Z{i}", -1.0, "b", (i,)) for i in range(n)]
        terms += [Term(f"Z{i}", -1.0, "w", (i,), input=i) for i in range(seen)]
        terms += [Term(f"X{i}", -float(gamma)) for i in range(n) if gamma != 0.0]
        observables = [{f"Z{i}": 1.0 / len(block) for i in block} for block in np.array_split(np.arange(n), n_outputs)]
        hamiltonian = ParametrizedHamiltonian(n, terms, specs, n_inputs=int(n_inputs), observables=observables)
        super().__init__(hamiltonian, solver=chain_solver(solver, chi_max), gap_check=gap_check, **options)


def site_chain(n_inputs: int, n_outputs: int, hidden: int, **options) -> EnergySystem:
    """The registry's builder (qeqprop.systems.registry, "tfim_sites"): a SiteChain of ``hidden`` sites."""
    return SiteChain(hidden, n_inputs, n_outputs, **options)
