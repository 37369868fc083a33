"""Quantum-data tasks with curved phase boundaries: the ANNNI chain and the XXZ chain in a field.

Each task is a ``ChainModel``: an open chain of ``n_chain`` qubits whose Hamiltonian has two
input parameters x = (x_0, x_1) (coefficients of fixed Pauli terms, so the chain can be part of a
sensor's ParametrizedHamiltonian), a parameter window sampled uniformly with a fixed seed, and
phase labels from published thermodynamic-limit boundaries.

ANNNI (axial next-nearest-neighbour Ising) chain, x = (kappa, g), J1 = 1:

    H = - sum_i Z_i Z_(i+1) + kappa sum_i Z_i Z_(i+2) - g sum_i X_i

(the convention of Monaco et al., PRB 107, L081105 (2023), "Quantum phase detection
generalization from marginal quantum neural network models", rotated X <-> Z on every site).
Boundaries as quoted there (from the DMRG studies, e.g. Beccaria, Campostrini, Feo,
PRB 76, 094410 (2007)):

    Ising line (ferro | para, kappa < 1/2)   g_I(kappa) = (1 - kappa)/kappa (1 - sqrt((1 - 3 kappa + 4 kappa^2)/(1 - kappa)))
                                                        = 2 (1 - 2 kappa) / (1 + sqrt((1 - 3 kappa + 4 kappa^2)/(1 - kappa)))
    para | antiphase line (kappa > 1/2)      g_C(kappa) = 1.05 sqrt((kappa - 1/2)(kappa - 0.1))

Labels: 0 ferromagnetic (kappa < 1/2, g < g_I), 1 antiphase (kappa > 1/2, g < g_C; this region
also holds the floating phase above g_KT = 1.05 (kappa - 1/2), which an 8-12 site chain cannot
resolve: merged as in Monaco et al.), 2 paramagnetic (elsewhere). At kappa = 0 the model is the
TFIM with its critical point g = 1 (g_I(0) = 1).

XXZ chain in a longitudinal field, x = (Delta, h), J = 1:

    H = sum_i (X_i X_(i+1) + Y_i Y_(i+1) + Delta Z_i Z_(i+1)) - h sum_i Z_i

Boundaries from the Bethe ansatz (Pauli operators: J_S = 4, h_S = 2h in spin-1/2 units):
saturation h_s(Delta) = 2 (1 + Delta) (one-magnon instability of the polarized state), and for
Delta > 1 the lower critical field equal to the Neel spin gap (des Cloizeaux & Gaudin, J. Math.
Phys. 7, 1384 (1966); Takahashi, "Thermodynamics of one-dimensional solvable models", 1999)

    h_c1(Delta) = 2 sinh(lambda) sum_(n=-inf..inf) (-1)^n / cosh(n lambda),   cosh(lambda) = Delta.

Labels: 0 gapless XY (Luttinger liquid), 1 Neel (Delta > 1, h < h_c1), 2 polarized (h > h_s, or
Delta <= -1: in a longitudinal field the Ising ferromagnet is the polarized state, so the
ferromagnetic and polarized phases are one class; no state-based learner could tell them apart).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..hamiltonians.parametrized import Term


def annni_ising_line(kappa: np.ndarray) -> np.ndarray:
    """g_I(kappa), the ferro | para boundary (module docstring; the form without 0/0 at kappa = 0)."""
    kappa = np.asarray(kappa, dtype=float)
    root = np.sqrt(np.clip((1 - 3 * kappa + 4 * kappa**2) / np.maximum(1 - kappa, 1e-12), 0.0, None))
    return 2 * (1 - 2 * kappa) / (1 + root)


def annni_antiphase_line(kappa: np.ndarray) -> np.ndarray:
    """g_C(kappa) = 1.05 sqrt((kappa - 1/2)(kappa - 0.1)) for kappa > 1/2 (0 below)."""
    kappa = np.asarray(kappa, dtype=float)
    return 1.05 * np.sqrt(np.clip((kappa - 0.5) * (kappa - 0.1), 0.0, None)) * (kappa > 0.5)


def annni_labels(x: np.ndarray) -> np.ndarray:
    """0 ferromagnetic, 1 antiphase (with floating), 2 paramagnetic, for rows x = (kappa, g)."""
    kappa, g = x[:, 0], x[:, 1]
    ferro = (kappa < 0.5) & (g < annni_ising_line(kappa))
    anti = (kappa > 0.5) & (g < annni_antiphase_line(kappa))
    return np.where(ferro, 0, np.where(anti, 1, 2))


def xxz_neel_field(delta: np.ndarray, terms: int = 64) -> np.ndarray:
    """h_c1(Delta) of the module docstring (0 for Delta <= 1); the alternating sum to |n| <= terms."""
    delta = np.asarray(delta, dtype=float)
    lam = np.arccosh(np.maximum(delta, 1.0))[..., None]
    n = np.arange(1, terms + 1)
    with np.errstate(over="ignore"):
        series = 1 + 2 * np.sum((-1.0) ** n / np.cosh(n * lam), axis=-1)
    return np.where(delta > 1, 2 * np.sinh(lam[..., 0]) * series, 0.0)


def xxz_saturation_field(delta: np.ndarray) -> np.ndarray:
    """h_s(Delta) = 2 (1 + Delta), clipped at 0 (Delta <= -1: polarized at any h > 0)."""
    return np.maximum(2 * (1 + np.asarray(delta, dtype=float)), 0.0)


def xxz_labels(x: np.ndarray) -> np.ndarray:
    """0 XY, 1 Neel, 2 polarized, for rows x = (Delta, h)."""
    delta, h = x[:, 0], x[:, 1]
    polarized = (delta <= -1) | (h > xxz_saturation_field(delta))
    neel = (delta > 1) & (h < xxz_neel_field(delta))
    return np.where(polarized, 2, np.where(neel, 1, 0))


def tfim_terms(n_chain: int, offset: int = 0) -> list[Term]:
    """-J sum Z_i Z_(i+1) - g sum X_i on qubits offset..offset+n_chain-1, J = x_0, g = x_1."""
    sites = range(offset, offset + n_chain)
    terms = [Term(f"Z{i} Z{i + 1}", -1.0, input=0) for i in sites if i + 1 < offset + n_chain]
    return terms + [Term(f"X{i}", -1.0, input=1) for i in sites]


def tfim_labels(x: np.ndarray) -> np.ndarray:
    """Exact TFIM phase of each row x = (J, g) (Pfeuty 1970): 1 (ferromagnet) if g < J, else 0."""
    return (x[:, 1] < x[:, 0]).astype(int)


def annni_terms(n_chain: int, offset: int = 0) -> list[Term]:
    """-sum Z_i Z_(i+1) + kappa sum Z_i Z_(i+2) - g sum X_i on qubits offset.., kappa = x_0, g = x_1."""
    s = range(offset, offset + n_chain)
    end = offset + n_chain
    return ([Term(f"Z{i} Z{i + 1}", -1.0) for i in s if i + 1 < end] + [Term(f"Z{i} Z{i + 2}", 1.0, input=0) for i in s if i + 2 < end]
            + [Term(f"X{i}", -1.0, input=1) for i in s])


def xxz_terms(n_chain: int, offset: int = 0) -> list[Term]:
    """sum (X X + Y Y + Delta Z Z) - h sum Z on qubits offset.., Delta = x_0, h = x_1."""
    s = range(offset, offset + n_chain)
    end = offset + n_chain
    bonds = [i for i in s if i + 1 < end]
    return ([Term(f"{p}{i} {p}{i + 1}", 1.0) for i in bonds for p in "XY"] + [Term(f"Z{i} Z{i + 1}", 1.0, input=0) for i in bonds]
            + [Term(f"Z{i}", -1.0, input=1) for i in s])


@dataclass(frozen=True)
class ChainModel:
    """A quantum-data task (module docstring): ``terms(n_chain, offset)`` builds the chain's terms
    (coefficients x_0, x_1 as Term inputs), ``labels(x)`` the published phase of each row of x,
    ``window`` the sampled ((low_0, high_0), (low_1, high_1)) and ``points`` ({class: (x_0, x_1)})
    one point deep inside each phase."""

    name: str
    inputs: tuple[str, str]
    classes: tuple[str, ...]
    window: tuple[tuple[float, float], tuple[float, float]]
    terms: Callable[[int, int], list[Term]]
    label_rule: Callable[[np.ndarray], np.ndarray]
    points: dict

    def labels(self, x) -> np.ndarray:
        """Phase label of each row x = (x_0, x_1); ValueError for another shape."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.ndim != 2 or x.shape[1] != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"x must be finite rows {self.inputs}, shape (n, 2); got shape {x.shape}")
        return self.label_rule(x).astype(int)

    def sample(self, n_samples: int, seed: int) -> np.ndarray:
        """``n_samples`` points uniform in ``window``, seeded (the task's fixed sampling)."""
        rng = np.random.default_rng(seed)
        (a0, b0), (a1, b1) = self.window
        return np.column_stack([rng.uniform(a0, b0, n_samples), rng.uniform(a1, b1, n_samples)])


ANNNI = ChainModel("annni", ("kappa", "g"), ("ferromagnetic", "antiphase", "paramagnetic"), ((0.0, 1.0), (0.05, 1.2)),
                   annni_terms, annni_labels, {0: (0.1, 0.2), 1: (0.9, 0.1), 2: (0.3, 1.15)})
XXZ_FIELD = ChainModel("xxz_field", ("Delta", "h"), ("XY", "Neel", "polarized"), ((-1.5, 3.5), (0.05, 6.0)),
                       xxz_terms, xxz_labels, {0: (0.0, 0.5), 1: (3.0, 0.3), 2: (0.0, 5.5)})
MODELS = {model.name: model for model in (ANNNI, XXZ_FIELD)}
# the TFIM chain of the "phases" task (comparison.phases: its straight boundary g = J)
TFIM_CHAIN = ChainModel("phases", ("J", "g"), ("paramagnetic", "ferromagnetic"), ((0.2, 2.0), (0.2, 2.0)),
                        tfim_terms, tfim_labels, {0: (0.5, 1.8), 1: (1.8, 0.5)})
SENSOR_CHAINS = {TFIM_CHAIN.name: TFIM_CHAIN, **MODELS}  # task name -> the data chain a sensor of that task reads


def get_model(name: str) -> ChainModel:
    """The ChainModel named ``name`` (one of MODELS)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {name!r}")
    return MODELS[name]
