"""Measurement plans: qubit-wise commuting groups of Pauli strings, one basis per group.

Strings P and Q qubit-wise commute (QWC) when on every qubit they carry the same letter or one
carries the identity; such a group is measured in one basis (X -> H, Y -> H S^dagger before
a computational-basis readout, Z and unused qubits read directly). Each needed string is
assigned to exactly one basis.

Fewest bases = a minimum colouring of the conflict graph (one vertex per string, an edge where
two strings do not QWC): the colour classes are the groups. ``grouping="colouring"`` (default)
keeps the fewest colours among first-fit in the greedy order (heaviest strings first, the
``"greedy"`` plan) and networkx's ``greedy_color`` strategies (largest first and smallest last,
each with and without colour interchange, and DSATUR: COLOURING_STRATEGIES),
so it never takes more bases than the greedy plan; ties keep the earlier candidate (greedy
first), so a plan greedy already gets right is unchanged. Plans are cached per set of strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..hamiltonians.pauli import PauliString

ALLOCATIONS = ("uniform", "weights", "variance")


@dataclass
class MeasurementPlan:
    """Bases (one letter per qubit, e.g. ``"ZZXZ"``), the table strings each basis serves,
    and the shots per basis."""

    n_qubits: int
    bases: list[str]
    members: list[np.ndarray]
    shots: np.ndarray

    def describe(self) -> str:
        """One line per basis: its letters, its shots and the strings it serves."""
        lines = []
        for basis, members, shots in zip(self.bases, self.members, self.shots):
            lines.append(f"{basis}  shots={int(shots)}  terms={members.tolist()}")
        return "\n".join(lines)


GROUPINGS = ("colouring", "greedy")
# networkx greedy_color strategies tried by grouping="colouring", as (strategy, interchange): on
# the models of benchmarks/measurement_bases.py the two interchange variants reached every
# minimum the ten strategies found; independent set and connected sequential never did better
# and independent set cost the most (benchmarks/results/measurement_bases.json).
COLOURING_STRATEGIES = (
    ("largest_first", False), ("largest_first", True), ("smallest_last", False), ("smallest_last", True),
    ("saturation_largest_first", False),
)
_LETTER_CODES = {"X": 1, "Y": 2, "Z": 3}


def conflict_matrix(strings: list[PauliString], n_qubits: int) -> np.ndarray:
    """(K, K) bool: True where strings k and l do *not* qubit-wise commute (some qubit carries
    different non-identity letters in the two)."""
    codes = np.zeros((len(strings), n_qubits), dtype=np.int8)
    for k, string in enumerate(strings):
        for q, letter in string.ops:
            codes[k, q] = _LETTER_CODES[letter]
    both = (codes[:, None, :] != 0) & (codes[None, :, :] != 0)
    return np.any(both & (codes[:, None, :] != codes[None, :, :]), axis=2)


def first_fit(conflicts: np.ndarray, order) -> np.ndarray:
    """Colour the vertices in ``order``, each with the lowest colour none of its conflicting,
    already coloured neighbours has."""
    colours = np.full(len(conflicts), -1, dtype=np.int64)
    for v in order:
        used = set(colours[conflicts[v] & (colours >= 0)].tolist())
        colours[v] = next(c for c in range(len(used) + 1) if c not in used)
    return colours


def conflict_graph(conflicts: np.ndarray):
    """The conflict matrix as a networkx graph, vertices 0..K-1 inserted in that order (the
    greedy strategies break ties by insertion order)."""
    import networkx as nx  # only planning needs it (import time)

    graph = nx.Graph()
    graph.add_nodes_from(range(len(conflicts)))
    graph.add_edges_from(zip(*np.nonzero(np.triu(conflicts, 1))))
    return graph


def min_colouring(conflicts: np.ndarray, order) -> np.ndarray:
    """The colouring with the fewest colours among first-fit in ``order`` (first candidate,
    kept on ties) and networkx's greedy strategies (COLOURING_STRATEGIES), colours 0..k-1."""
    import networkx as nx

    graph = conflict_graph(conflicts)
    best = first_fit(conflicts, order)
    for strategy, interchange in COLOURING_STRATEGIES:
        found = nx.greedy_color(graph, strategy, interchange=interchange)
        if len(set(found.values())) < best.max(initial=-1) + 1:
            labels = {c: k for k, c in enumerate(dict.fromkeys(found[v] for v in range(len(conflicts))))}
            best = np.array([labels[found[v]] for v in range(len(conflicts))], dtype=np.int64)
    return best


@lru_cache(maxsize=256)
def _groups(strings: tuple[PauliString, ...], n_qubits: int, grouping: str) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Bases and groups (positions in ``strings``) of the QWC grouping (module docstring)."""
    order = sorted(range(len(strings)), key=lambda k: -len(strings[k].ops))  # stable: ties by position
    conflicts = conflict_matrix(list(strings), n_qubits)
    colours = first_fit(conflicts, order) if grouping == "greedy" else min_colouring(conflicts, order)
    groups = [np.flatnonzero(colours == c) for c in range(colours.max(initial=-1) + 1)]
    bases = []
    for group in groups:
        letters = dict(op for k in group for op in strings[k].ops)
        bases.append("".join(letters.get(q, "Z") for q in range(n_qubits)))
    return tuple(bases), tuple(tuple(g.tolist()) for g in groups)


def qubitwise_groups(strings: list[PauliString], needed: np.ndarray, n_qubits: int,
                     grouping: str = "colouring") -> tuple[list[str], list[np.ndarray]]:
    """Qubit-wise commuting grouping of ``strings[needed]``: (bases, table indices each basis
    serves); every needed string in exactly one basis. ``grouping``: "colouring" (fewest bases
    found, never more than "greedy") or "greedy" (first fit, heaviest strings first).

    Example:
        >>> from qeqprop.hamiltonians.pauli import PauliString
        >>> strings = [PauliString.parse(t) for t in ("X0 X1", "Z0", "Z1", "X1")]
        >>> qubitwise_groups(strings, np.arange(4), 2)
        (['XX', 'ZZ'], [array([0, 3]), array([1, 2])])
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    needed = np.unique(np.asarray(needed, dtype=np.int64))
    bases, groups = _groups(tuple(strings[i] for i in needed), int(n_qubits), grouping)
    return list(bases), [needed[list(g)] for g in groups]


def allocate_shots(total: int, scores: np.ndarray) -> np.ndarray:
    """Split ``total`` shots over bases proportionally to ``scores`` (at least one each).

    Largest-remainder rounding keeps the sum exactly ``total``.
    """
    scores = np.asarray(scores, dtype=float)
    if not isinstance(total, (int, np.integer)) or total < len(scores):
        raise ValueError(f"shots must be an integer >= the number of bases ({len(scores)}), got {total!r}")
    scores = np.where(scores > 0, scores, 0.0)
    if scores.sum() == 0:
        scores = np.ones_like(scores)
    spare = total - len(scores)
    raw = spare * scores / scores.sum()
    shots = np.floor(raw).astype(np.int64)
    shots[np.argsort(raw - shots)[::-1][: spare - shots.sum()]] += 1
    return shots + 1


def basis_scores(members: list[np.ndarray], jacobian: np.ndarray, variances: np.ndarray | None) -> np.ndarray:
    """Neyman allocation scores sqrt(sum_{s in basis} sum_p J_sp^2 Var(P_s)): minimises the
    summed gradient variance sum_p Var(g_p) for a fixed total (covariances neglected)."""
    per_string = np.sum(jacobian**2, axis=1)
    if variances is not None:
        per_string = per_string * np.clip(variances, 0.0, None)
    return np.array([np.sqrt(per_string[m].sum()) for m in members])


def build_plan(
    strings: list[PauliString],
    needed: np.ndarray,
    n_qubits: int,
    shots: int,
    allocation: str = "uniform",
    jacobian: np.ndarray | None = None,
    variances: np.ndarray | None = None,
    grouping: str = "colouring",
) -> MeasurementPlan:
    """Group ``needed`` strings into bases (``grouping``: qubitwise_groups) and give each basis
    its share of ``shots``.

    ``allocation``: "uniform" (equal shares), "weights" (Neyman scores with Var = 1, from the
    gradient weights J), "variance" (Neyman scores with Var(P_s) = 1 - <P_s>^2 supplied).
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    bases, members = qubitwise_groups(strings, needed, n_qubits, grouping)
    if allocation == "uniform":
        scores = np.ones(len(bases))
    else:
        if jacobian is None or (allocation == "variance" and variances is None):
            raise ValueError(f"allocation={allocation!r} needs the gradient jacobian (and variances for 'variance')")
        scores = basis_scores(members, jacobian, variances if allocation == "variance" else None)
        # Output observables have no gradient weight but feed the nudge: keep them measured.
        scores = np.maximum(scores, 1e-3 * max(scores.max(), 1e-12))
    return MeasurementPlan(n_qubits, bases, members, allocate_shots(shots, scores))
