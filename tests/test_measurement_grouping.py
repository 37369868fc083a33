"""Qubit-wise commuting grouping by graph colouring: valid plans, never more bases than greedy."""

import networkx as nx
import numpy as np
import pytest
from conftest import random_strings

from qeqprop import random_tfim_instance
from qeqprop.hamiltonians import PauliTable
from qeqprop.readout import Shots
from qeqprop.readout.plan import (
    build_plan,
    conflict_graph,
    conflict_matrix,
    qubitwise_groups,
)


def random_model(seed: int):
    """A random Pauli model: 3..12 qubits, up to 8n strings of weight 1..3, a random subset needed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 13))
    count = int(rng.integers(4, 8 * n))
    strings = PauliTable(n, random_strings(rng, n, count)).strings
    needed = np.sort(rng.choice(count, size=int(rng.integers(1, count + 1)), replace=False))
    return strings, needed, n


def clique_number(strings, n) -> int:
    """Size of the largest set of pairwise non-QWC strings: a lower bound on the bases."""
    conflicts = conflict_matrix(strings, n)
    graph = conflict_graph(conflicts)
    return max(len(c) for c in nx.find_cliques(graph))


@pytest.mark.parametrize("seed", range(40))
def test_every_string_in_exactly_one_basis_that_measures_it(seed):
    strings, needed, n = random_model(seed)
    counts = {}
    for grouping in ("colouring", "greedy"):
        bases, members = qubitwise_groups(strings, needed, n, grouping)
        served = np.concatenate(members)
        assert sorted(served.tolist()) == needed.tolist()  # each needed string exactly once, nothing else
        assert len(bases) == len(members) and all(len(basis) == n for basis in bases)
        for basis, group in zip(bases, members):
            assert len(group) > 0
            for s in group:
                assert all(basis[q] == letter for q, letter in strings[s].ops), (basis, str(strings[s]))
        counts[grouping] = len(bases)
    assert counts["colouring"] <= counts["greedy"]
    assert counts["colouring"] >= clique_number([strings[i] for i in needed], n)


def test_colouring_beats_greedy_and_reaches_the_clique_bound():
    """On this 6-qubit model greedy (heaviest first) takes 7 bases; 5 pairwise non-QWC strings
    prove 5 is the minimum, and the colouring finds it."""
    rng = np.random.default_rng(0)
    strings = PauliTable(6, random_strings(rng, 6, 18)).strings
    greedy, _ = qubitwise_groups(strings, np.arange(18), 6, "greedy")
    colouring, _ = qubitwise_groups(strings, np.arange(18), 6)
    assert (len(greedy), len(colouring), clique_number(strings, 6)) == (7, 5, 5)


def test_plan_is_deterministic_and_cache_safe():
    strings, needed, n = random_model(7)
    bases, members = qubitwise_groups(strings, needed, n)
    members[0][:] = -1  # the caller's copy: must not reach the cached plan
    again_bases, again_members = qubitwise_groups(strings, needed, n)
    assert again_bases == bases and np.all(again_members[0] >= 0)
    plan = build_plan(strings, needed, n, shots=10 * len(bases))
    assert plan.bases == bases and [m.tolist() for m in plan.members] == [m.tolist() for m in again_members]


def test_greedy_plan_is_kept_where_it_is_already_minimal():
    """TFIM: Z and X bases, the same plan as before (existing shot streams unchanged)."""
    system = random_tfim_instance(5, seed=0)[0]
    ham = system.pauli_measurement()
    needed = np.arange(len(ham.table))
    colouring = qubitwise_groups(ham.table.strings, needed, ham.n_qubits)
    greedy = qubitwise_groups(ham.table.strings, needed, ham.n_qubits, "greedy")
    assert colouring[0] == greedy[0] and len(colouring[0]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(colouring[1], greedy[1]))


def test_bad_grouping_names_the_argument():
    strings, needed, n = random_model(1)
    with pytest.raises(ValueError, match="grouping must be one of"):
        qubitwise_groups(strings, needed, n, "rlf")
    with pytest.raises(ValueError, match="grouping must be one of"):
        Shots(100, grouping="largest_first")
    with pytest.raises(ValueError, match="nudge_from must be one of"):
        Shots(100, nudge_from="free")


def test_plan_docstring_example_runs():
    import doctest

    import qeqprop.readout.plan as module

    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0
