"""Shared test helpers: an independent Kronecker-product Pauli reference and random models."""

from __future__ import annotations

import os

import numpy as np
import pytest

# JAX's persistent compilation cache stays off in the test run (before qeqprop loads JAX): no
# writes into the user's ~/.cache, and the suite compiles as it was measured (see
# _release_compiled_programs); tests/test_compile_cache.py tests the cache in subprocesses.
os.environ.setdefault("QEQPROP_JAX_CACHE", "0")

from qeqprop import ParamSpec, Term, pauli_system

_MATS = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.diag([1.0, -1.0]).astype(complex),
}


def kron_pauli(text: str, n: int) -> np.ndarray:
    """Dense matrix of a Pauli string like 'Z0 X2' by Kronecker products (qubit 0 leftmost)."""
    letters = ["I"] * n
    for token in text.split():
        letters[int(token[1:])] = token[0]
    out = np.array([[1.0 + 0j]])
    for letter in letters:
        out = np.kron(out, _MATS[letter])
    return out


def random_strings(rng: np.random.Generator, n: int, count: int, with_y: bool = True) -> list[str]:
    """Distinct random Pauli strings of weight 1..3."""
    letters = "XYZ" if with_y else "XZ"
    seen: set[str] = set()
    while len(seen) < count:
        weight = int(rng.integers(1, min(3, n) + 1))
        qubits = sorted(rng.choice(n, size=weight, replace=False).tolist())
        seen.add(" ".join(f"{letters[rng.integers(len(letters))]}{q}" for q in qubits))
    return sorted(seen)


def random_general_system(rng: np.random.Generator, n: int, n_inputs: int = 2, solver: str = "auto", **options):
    """A trainable model with XX, YY, three-body ZXZ and input fields: complex when Y appears once."""
    terms = []
    for k in range(n - 1):
        terms.append(Term(f"X{k} X{k + 1}", 1.0, "J", (k, 0)))
        terms.append(Term(f"Y{k} Y{k + 1}", 1.0, "J", (k, 1)))
        terms.append(Term(f"Z{k} Z{k + 1}", 1.0, "J", (k, 2)))
    terms += [Term(f"Z{k} X{k + 1} Z{k + 2}", 1.0, "K", (k,)) for k in range(n - 2)]
    terms += [Term(f"Y{k}", 0.3) for k in range(n)]
    terms += [Term(f"X{k}", -0.8) for k in range(n)]
    terms += [Term(f"Z{j}", 1.0, "W", (i, j), input=i) for i in range(n_inputs) for j in range(n)]
    terms += [Term(f"Z{j}", 1.0, "h", (j,)) for j in range(n)]
    params = {
        "J": ParamSpec((n - 1, 3), std=0.6),
        "K": ParamSpec((n - 2,), std=0.5),
        "W": ParamSpec((n_inputs, n), std=0.5),
        "h": ParamSpec((n,), std=0.3),
    }
    system = pauli_system(n, terms, params, outputs=[f"Z{n - 1}", f"X{n - 2}"], n_inputs=n_inputs, solver=solver, **options)
    return system, system.init_params(rng), rng.normal(size=n_inputs), rng.uniform(-1, 1, 2)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


EP_BETAS = (1e-1, 1e-2, 1e-3)
EP_SLOPES = {"positive": 1.0, "negative": 1.0, "centered": 2.0}


def assert_ep_rates(system, params, x, y, betas=EP_BETAS) -> dict[str, list[float]]:
    """Every estimator's error against the reference gradient falls with the expected
    log-log slope (1 one-sided, 2 centered, within 0.15); returns the errors per estimator."""
    from qeqprop.ep import ESTIMATORS, ep_gradient, relative_error
    from qeqprop.gradcheck import log_slope

    reference = system.reference_grad(params, x, y)
    free = system.equilibrate(params, x)
    errors = {}
    for estimator in ESTIMATORS:
        errors[estimator] = [relative_error(ep_gradient(system, params, x, y, b, estimator, free=free).grad, reference) for b in betas]
        assert abs(log_slope(betas, errors[estimator]) - EP_SLOPES[estimator]) < 0.15, (estimator, errors[estimator])
    return errors


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after every test module. One pytest process compiles thousands
    of XLA programs; with all of them kept, jaxlib 0.10.2 (CPU) segfaulted inside
    ``backend_compile_and_load`` late in the full run (twice, in test_variational, which passes
    alone and after either half of the suite). Releasing them per module ran the full suite clean."""
    yield
    import sys

    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()


def assert_layered_batch_equals_alone(net, view, params, X, Y, free, beta: float):
    """A layered classical batch view's free states and its jointly solved +beta / -beta states equal
    the per-sample solves (nudged ones warm-started from the free state) to 1e-10: states, energies,
    iterations, betas and residuals. Returns the (plus, minus) batches."""
    plus, minus = view.equilibrate(params, X, nudge=view.nudge(free, Y), beta=(beta, -beta), init=free)
    for i, (x, y) in enumerate(zip(X, Y)):
        alone = net.equilibrate(params, x)
        np.testing.assert_allclose(free.state[i], alone.state, rtol=0, atol=1e-10)
        assert free.iterations[i] == alone.iterations and free.energy[i] == pytest.approx(alone.energy, abs=1e-10)
        for signed, batched in ((beta, plus), (-beta, minus)):
            nudged = net.equilibrate(params, x, nudge=y, beta=signed, init=alone)
            np.testing.assert_allclose(batched.state[i], nudged.state, rtol=0, atol=1e-10)
            assert batched.iterations[i] == nudged.iterations and batched.beta[i] == signed
            assert batched.residual[i] < 1e-10 and batched.energy[i] == pytest.approx(nudged.energy, abs=1e-10)
    return plus, minus


def stacked_operators(table, coeffs: np.ndarray, dtype, compact: bool, native: bool | None = None):
    """The batch's ``JaxPauliOperator`` (leaves stacked along B) for coefficient rows ``coeffs`` (B, S)
    of ``table``, its vector factors compiled compact (as ``BatchedLanczos`` does on CPU) or full."""
    from qeqprop.hamiltonians.jax_kernel import JaxPauliOperator, structure_of
    from qeqprop.hamiltonians.native_kernel import COMPACT_BITS

    diagonal, flips = table.compile(coeffs, compact_bits=COMPACT_BITS if compact else None)
    supports = {x: table.support(x) for x, _ in flips} if compact else None
    return JaxPauliOperator.from_arrays(structure_of(table.n_qubits, [(x, f[0]) for x, f in flips], supports),
                                        np.asarray(diagonal, dtype), tuple(np.asarray(f, dtype) for _, f in flips), native)
