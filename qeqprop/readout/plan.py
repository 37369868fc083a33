"""Measurement plans: qubit-wise commuting groups of Pauli strings, one basis per group.

Strings P and Q qubit-wise commute when on every qubit they carry the same letter or one
carries the identity; such a group is measured in one basis (X -> H, Y -> H S^dagger before
a computational-basis readout, Z and unused qubits read directly). Each needed string is
assigned to exactly one basis (greedy, heaviest strings first).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def qubitwise_groups(strings: list[PauliString], needed: np.ndarray, n_qubits: int) -> tuple[list[str], list[np.ndarray]]:
    """Greedy qubit-wise commuting grouping of ``strings[needed]``."""
    order = sorted((int(i) for i in needed), key=lambda i: (-len(strings[i].ops), i))
    bases: list[dict[int, str]] = []
    members: list[list[int]] = []
    for index in order:
        ops = dict(strings[index].ops)
        for basis, group in zip(bases, members):
            if all(basis.get(q, letter) == letter for q, letter in ops.items()):
                basis.update(ops)
                group.append(index)
                break
        else:
            bases.append(dict(ops))
            members.append([index])
    letters = ["".join(basis.get(q, "Z") for q in range(n_qubits)) for basis in bases]
    return letters, [np.array(sorted(g), dtype=np.int64) for g in members]


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
) -> MeasurementPlan:
    """Group ``needed`` strings into bases and give each basis its share of ``shots``.

    ``allocation``: "uniform" (equal shares), "weights" (Neyman scores with Var = 1, from the
    gradient weights J), "variance" (Neyman scores with Var(P_s) = 1 - <P_s>^2 supplied).
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    bases, members = qubitwise_groups(strings, needed, n_qubits)
    if allocation == "uniform":
        scores = np.ones(len(bases))
    else:
        if jacobian is None or (allocation == "variance" and variances is None):
            raise ValueError(f"allocation={allocation!r} needs the gradient jacobian (and variances for 'variance')")
        scores = basis_scores(members, jacobian, variances if allocation == "variance" else None)
        # Output observables have no gradient weight but feed the nudge: keep them measured.
        scores = np.maximum(scores, 1e-3 * max(scores.max(), 1e-12))
    return MeasurementPlan(n_qubits, bases, members, allocate_shots(shots, scores))
