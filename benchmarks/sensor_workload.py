"""The small-learner workload of issue 18 and the research-script baseline it is measured against.

The learner: a 10-qubit sensor model with complex Pauli terms. Sensor qubits 0..3 each read one
input through a three-body term x_i W_i Z_i X_{4+i} Z_{5+i}; each sensor couples to one system qubit
(4..7) by all nine two-qubit Pauli products a_i b_{4+i} (a, b in X, Y, Z: XY, YZ, ... make H complex);
every qubit has a trainable transverse field h_q X_q (mean 1), qubit 9 a trainable Y field, and
three fixed couplings Z7 Z8, Z8 Z9, Z4 Z9. Outputs <Z8>, <Z9>. 54 Pauli strings in H, 51 trainable
parameters.

The baseline is written the way a research script is: every Pauli string as a scipy.sparse matrix
from kron products, H = sum_s c_s P_s per sample and phase, ``scipy.sparse.linalg.eigsh`` for its
ground state, expectations <psi|P_s|psi> by sparse products, centered EP by hand.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

import qeqprop as qp

N_QUBITS, N_INPUTS = 10, 4
OUTPUTS = ("Z8", "Z9")


def sensor_terms() -> tuple[list, dict]:
    """(terms, parameter specs) of the sensor model (module docstring)."""
    terms = [qp.Term(f"Z{i} X{4 + i} Z{5 + i}", 1.0, "W", (i,), input=i) for i in range(N_INPUTS)]
    terms += [qp.Term(f"{a}{i} {b}{4 + i}", 1.0, "J", (i, 3 * ka + kb))
              for i in range(N_INPUTS) for ka, a in enumerate("XYZ") for kb, b in enumerate("XYZ")]
    terms += [qp.Term(f"X{q}", 1.0, "h", (q,)) for q in range(N_QUBITS)]
    terms += [qp.Term("Y9", 1.0, "g", (0,))]
    terms += [qp.Term(s, 0.5) for s in ("Z7 Z8", "Z8 Z9", "Z4 Z9")]
    params = {"W": qp.ParamSpec((N_INPUTS,), std=0.5), "J": qp.ParamSpec((N_INPUTS, 9), std=0.3),
              "h": qp.ParamSpec((N_QUBITS,), mean=1.0, std=0.2), "g": qp.ParamSpec((1,), std=0.3)}
    return terms, params


def sensor_system(**options) -> qp.SpinSystem:
    """The sensor learner as a qeqprop SpinSystem (solver "jax" unless given)."""
    terms, params = sensor_terms()
    options.setdefault("solver", "jax")
    return qp.pauli_system(N_QUBITS, terms, params, outputs=list(OUTPUTS), n_inputs=N_INPUTS, **options)


def sensor_data(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs N(0, 1) and targets uniform in [-1, 1]^2."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, N_INPUTS)), rng.uniform(-1, 1, size=(batch, len(OUTPUTS)))


PAULI = {"I": sp.identity(2, format="csr", dtype=complex), "X": sp.csr_matrix([[0, 1], [1, 0]], dtype=complex),
         "Y": sp.csr_matrix([[0, -1j], [1j, 0]]), "Z": sp.csr_matrix([[1, 0], [0, -1]], dtype=complex)}


def string_matrix(word: str, n: int) -> sp.csr_matrix:
    """The Pauli string "X0 Z3" as a sparse matrix, qubit 0 the most significant (kron order)."""
    letters = ["I"] * n
    for op in word.split():
        letters[int(op[1:])] = op[0]
    out = PAULI[letters[0]]
    for letter in letters[1:]:
        out = sp.kron(out, PAULI[letter], format="csr")
    return out


class ResearchScript:
    """Centered EP on the sensor model as a plain scipy script would do it (module docstring)."""

    def __init__(self, seed: int = 0):
        terms, specs = sensor_terms()
        self.terms = terms
        self.words = [str(t.string) for t in terms]
        self.mats = [string_matrix(w, N_QUBITS) for w in self.words]
        self.out_mats = [string_matrix(w, N_QUBITS) for w in OUTPUTS]
        rng = np.random.default_rng(seed)
        self.params = {k: s.draw(rng) for k, s in specs.items()}
        self.v0 = np.random.default_rng(1).standard_normal(2**N_QUBITS).astype(complex)

    def coefficients(self, params, x) -> np.ndarray:
        c = np.empty(len(self.terms))
        for k, t in enumerate(self.terms):
            value = t.weight
            if t.param is not None:
                value *= params[t.param][t.index]
            if t.input is not None:
                value *= x[t.input]
            c[k] = value
        return c

    def ground(self, c, extra=None, v0=None):
        H = sum(ck * m for ck, m in zip(c, self.mats))
        if extra is not None:
            H = H + sum(w * m for w, m in zip(extra, self.out_mats))
        _, vecs = eigsh(H, k=1, which="SA", v0=self.v0 if v0 is None else v0, tol=1e-10)
        return vecs[:, 0]

    def expect(self, psi, mats) -> np.ndarray:
        return np.array([np.vdot(psi, m @ psi).real for m in mats])

    def dh_dtheta(self, x, expectations) -> dict:
        grad = {k: np.zeros_like(v) for k, v in self.params.items()}
        for t, e in zip(self.terms, expectations):
            if t.param is not None:
                grad[t.param][t.index] += t.weight * (x[t.input] if t.input is not None else 1.0) * e
        return grad

    def gradient(self, x, y, beta: float = 0.4, shots: int | None = None, rng=None):
        """Centered EP gradient of the MSE cost for one sample (shots: Gaussian noise per term)."""
        c = self.coefficients(self.params, x)
        psi0 = self.ground(c)
        out = self.expect(psi0, self.out_mats)
        nudge = out - y  # d/d<O> of 0.5 ||<O> - y||^2
        phases = {}
        for b in (beta, -beta):
            psi = self.ground(c, b * nudge, v0=psi0)
            e = self.expect(psi, self.mats)
            if shots:
                e = e + rng.normal(size=e.shape) * np.sqrt(np.clip(1 - e**2, 0, None) / shots)
            phases[b] = self.dh_dtheta(x, e)
        return {k: (phases[beta][k] - phases[-beta][k]) / (2 * beta) for k in self.params}

    def predict(self, x) -> np.ndarray:
        return self.expect(self.ground(self.coefficients(self.params, x)), self.out_mats)
