"""Pauli strings and the one matrix-free Pauli-sum operator every solver uses.

Conventions (tested against PennyLane and QuTiP exports):

* qubit ``q`` of ``n`` is bit ``n - 1 - q`` of the basis index, so qubit 0 is the
  most significant bit (PennyLane's wire order and QuTiP's tensor order);
* ``|0>`` has Z = +1.

A Pauli string is stored as two bit masks and a Y count,

    P = i^{n_Y} X^{x} Z^{z},        (P psi)[c] = i^{n_Y} (-1)^{|(c xor x) & z|} psi[c xor x],

with ``x`` the qubits carrying X or Y and ``z`` those carrying Z or Y. A Pauli sum
``H = sum_s c_s P_s`` is applied grouped by flip mask ``x``:

    (H psi)[c] = sum_x d_x[c] psi[c xor x],   d_x[c] = sum_{s: x_s = x} c_s i^{n_Y,s} (-1)^{|(c xor x) & z_s|}.

``d_x`` is a Walsh-Hadamard transform of a sparse spectrum, so it costs one fast
Walsh-Hadamard transform (n 2^n operations) however many strings share the flip mask;
a group whose strings carry no Z part has a constant ``d_x`` and stores a scalar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

_PAULI_LETTERS = "IXYZ"
_TOKEN = re.compile(r"^([IXYZ])(\d+)$")


def _bit(n_qubits: int, qubit: int) -> int:
    """Mask of qubit ``qubit``: bit ``n - 1 - qubit`` (qubit 0 most significant)."""
    return 1 << (n_qubits - 1 - qubit)


@dataclass(frozen=True)
class PauliString:
    """A tensor product of single-qubit Paulis, e.g. ``PauliString.parse("Z0 X1 Z2")``.

    ``ops`` maps qubit index -> one of ``"X"``, ``"Y"``, ``"Z"`` (identities are omitted).
    """

    ops: tuple[tuple[int, str], ...]

    @classmethod
    def from_dict(cls, ops: Mapping[int, str]) -> "PauliString":
        items = []
        for qubit, letter in ops.items():
            if not isinstance(qubit, (int, np.integer)) or qubit < 0:
                raise ValueError(f"Pauli string qubit index {qubit!r} must be a non-negative integer")
            letter = str(letter).upper()
            if letter not in _PAULI_LETTERS:
                raise ValueError(f"Pauli letter {letter!r} on qubit {qubit} must be one of I, X, Y, Z")
            if letter != "I":
                items.append((int(qubit), letter))
        return cls(tuple(sorted(items)))

    @classmethod
    def parse(cls, text: str) -> "PauliString":
        """Parse ``"Z0 Z1"``, ``"X3"``, ``"Y0 Y2"``; ``""`` or ``"I"`` is the identity."""
        ops: dict[int, str] = {}
        for token in text.replace("*", " ").replace("@", " ").split():
            if token.upper() == "I":
                continue
            match = _TOKEN.match(token.upper())
            if match is None:
                raise ValueError(
                    f"cannot parse Pauli token {token!r} in {text!r}; write e.g. 'Z0 X1 Y3'"
                )
            letter, qubit = match.group(1), int(match.group(2))
            if qubit in ops:
                raise ValueError(f"qubit {qubit} appears twice in Pauli string {text!r}")
            ops[qubit] = letter
        return cls.from_dict(ops)

    @classmethod
    def coerce(cls, value: "PauliString | str | Mapping[int, str]") -> "PauliString":
        if isinstance(value, PauliString):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise ValueError(f"cannot make a Pauli string from {value!r}; pass 'Z0 Z1' or {{0: 'Z', 1: 'Z'}}")

    @property
    def qubits(self) -> tuple[int, ...]:
        return tuple(q for q, _ in self.ops)

    @property
    def n_y(self) -> int:
        return sum(1 for _, letter in self.ops if letter == "Y")

    @property
    def is_diagonal(self) -> bool:
        return all(letter == "Z" for _, letter in self.ops)

    def masks(self, n_qubits: int) -> tuple[int, int]:
        """Return ``(x_mask, z_mask)`` for an ``n_qubits`` register."""
        x_mask = z_mask = 0
        for qubit, letter in self.ops:
            if qubit >= n_qubits:
                raise ValueError(
                    f"Pauli string {self} acts on qubit {qubit} but the register has {n_qubits} qubits "
                    f"(valid indices 0..{n_qubits - 1})"
                )
            bit = _bit(n_qubits, qubit)
            if letter in "XY":
                x_mask |= bit
            if letter in "ZY":
                z_mask |= bit
        return x_mask, z_mask

    def __str__(self) -> str:
        return " ".join(f"{letter}{qubit}" for qubit, letter in self.ops) or "I"


def walsh_hadamard(values: np.ndarray, n_qubits: int) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform along the last axis.

    out[..., c] = sum_z (-1)^{|c & z|} values[..., z]; n 2^n additions. Leading axes are batch axes.
    """
    out = np.array(values, copy=True)
    head = out.shape[:-1]
    for bit in range(n_qubits):
        view = out.reshape(head + (-1, 2, 1 << bit))
        upper = view[..., 0, :].copy()
        lower = view[..., 1, :]
        view[..., 0, :] += lower
        np.subtract(upper, lower, out=view[..., 1, :])
    return out


def parity_signs(n_qubits: int, z_mask: int, index: np.ndarray | None = None) -> np.ndarray:
    """(-1)^{|c & z|} for every basis index c (as float64)."""
    if index is None:
        index = np.arange(1 << n_qubits, dtype=np.int64)
    parity = np.bitwise_count(index & z_mask) & 1
    return 1.0 - 2.0 * parity


def flip_axes(n_qubits: int, x_mask: int) -> tuple[int, ...]:
    """The qubits whose bits ``x_mask`` flips (the X/Y positions of a string)."""
    return tuple(q for q in range(n_qubits) if x_mask & _bit(n_qubits, q))


def flipped(psi_nd: np.ndarray, n_qubits: int, x_mask: int, offset: int = 0) -> np.ndarray:
    """View of psi[c xor x] on a state reshaped with its (2,) * n qubit axes starting at axis
    ``offset``: flip the X/Y axes."""
    axes = tuple(offset + q for q in flip_axes(n_qubits, x_mask))
    return np.flip(psi_nd, axis=axes) if axes else psi_nd


# A group with more strings than this computes its Walsh coefficients by one fast transform.
_DIRECT_SUM_LIMIT = 4


class PauliTable:
    """A fixed list of Pauli strings on ``n_qubits``, grouped by flip mask.

    It knows nothing about coefficients: ``operator(coeffs)`` makes the matrix-free
    operator ``sum_s coeffs[s] P_s`` and ``expectations(psi, bra)`` returns every
    ``<bra|P_s|psi>`` in one pass (one product vector per flip mask, then signed sums).
    """

    def __init__(self, n_qubits: int, strings: Sequence[PauliString | str]):
        if not isinstance(n_qubits, (int, np.integer)) or n_qubits < 1:
            raise ValueError(f"n_qubits must be a positive integer, got {n_qubits!r}")
        self.n_qubits = int(n_qubits)
        self.strings = [PauliString.coerce(s) for s in strings]
        masks = [s.masks(self.n_qubits) for s in self.strings]
        self.x_masks = np.array([m[0] for m in masks], dtype=np.int64)
        self.z_masks = np.array([m[1] for m in masks], dtype=np.int64)
        self.n_y = np.array([s.n_y for s in self.strings], dtype=np.int64)
        groups: dict[int, list[int]] = {}
        for index, x_mask in enumerate(self.x_masks.tolist()):
            groups.setdefault(x_mask, []).append(index)
        self.groups = {x: np.array(idx, dtype=np.int64) for x, idx in groups.items()}
        # Phase of each string relative to its group's Walsh coefficient: i^{n_Y} (-1)^{|x & z|}.
        parity_xz = np.bitwise_count(self.x_masks & self.z_masks) & 1
        self.phases = (1j ** self.n_y) * (1.0 - 2.0 * parity_xz)
        self.is_real = bool(np.all(self.n_y % 2 == 0))

    @property
    def dim(self) -> int:
        return 1 << self.n_qubits

    def __len__(self) -> int:
        return len(self.strings)

    def index(self) -> np.ndarray:
        return np.arange(self.dim, dtype=np.int64)

    def _walsh_values(self, members: np.ndarray, spectrum_values: np.ndarray) -> np.ndarray:
        """sum_{s in members} spectrum_values[..., s] (-1)^{|c & z_s|} for all c (batch axes lead)."""
        z = self.z_masks[members]
        head = spectrum_values.shape[:-1]
        if len(members) <= _DIRECT_SUM_LIMIT:
            index = self.index()
            total = np.zeros(head + (self.dim,), dtype=spectrum_values.dtype)
            for k, z_mask in enumerate(z.tolist()):
                total += spectrum_values[..., k, None] * parity_signs(self.n_qubits, z_mask, index)
            return total
        spectrum = np.zeros(head + (self.dim,), dtype=spectrum_values.dtype)
        for k, z_mask in enumerate(z.tolist()):
            spectrum[..., z_mask] += spectrum_values[..., k]
        return walsh_hadamard(spectrum, self.n_qubits)

    def compile(self, coeffs: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """The grouped form of sum_s coeffs[..., s] P_s: the diagonal (..., 2^n) and, per flip
        mask x, its factor d_x: shape (...) when constant over the basis, (..., 2^n) otherwise.

        Factors are real when the table is real. Leading axes of ``coeffs`` are batch axes.
        """
        coeffs = np.asarray(coeffs, dtype=np.float64)
        head = coeffs.shape[:-1]
        diagonal = np.zeros(head + (self.dim,))
        flips = []
        for x_mask, members in self.groups.items():
            values = coeffs[..., members] * self.phases[members]
            if self.is_real:
                values = values.real
            if x_mask == 0:
                diagonal += self._walsh_values(members, values.real)
            elif np.all(self.z_masks[members] == 0):
                flips.append((int(x_mask), values.sum(axis=-1)))
            else:
                flips.append((int(x_mask), self._walsh_values(members, values)))
        return diagonal, flips

    def operator(self, coeffs: np.ndarray) -> "PauliOperator":
        return PauliOperator(self, coeffs)

    def expectations(self, psi: np.ndarray, bra: np.ndarray | None = None) -> np.ndarray:
        """<bra|P_s|psi> for every string s (``bra = psi`` by default); leading axes of
        ``psi`` (..., 2^n) are batch axes, the result has shape (..., n_strings).

        Real (float64) when ``bra`` is None; complex otherwise.
        """
        psi = np.asarray(psi)
        if psi.shape[-1:] != (self.dim,):
            raise ValueError(f"state vector must have shape (..., {self.dim}), got {psi.shape}")
        same = bra is None
        bra = psi if same else np.asarray(bra)
        if bra.shape != psi.shape:
            raise ValueError(f"bra must have shape {psi.shape}, got {bra.shape}")
        n = self.n_qubits
        head = psi.shape[:-1]
        psi_nd = psi.reshape(head + (2,) * n)
        bra_nd = np.conj(bra).reshape(head + (2,) * n)
        out = np.zeros(head + (len(self.strings),), dtype=np.complex128)
        index = None
        for x_mask, members in self.groups.items():
            product = (bra_nd * flipped(psi_nd, n, x_mask, offset=len(head))).reshape(head + (-1,))
            z = self.z_masks[members]
            if len(members) <= _DIRECT_SUM_LIMIT:
                if index is None:
                    index = self.index()
                sums = np.stack(
                    [product.sum(axis=-1) if z_mask == 0 else product @ parity_signs(n, z_mask, index) for z_mask in z.tolist()],
                    axis=-1,
                )
            else:
                sums = walsh_hadamard(product, n)[..., z]
            out[..., members] = self.phases[members] * sums
        if same:
            return out.real.copy()
        return out


class PauliOperator:
    """Matrix-free ``H = sum_s c_s P_s`` (real coefficients: H is Hermitian).

    ``H @ psi`` works on vectors of shape ``(2^n,)`` and blocks ``(2^n, k)``. Float64
    arithmetic when every string has an even number of Y (H real), complex128 otherwise.
    """

    def __init__(self, table: PauliTable, coeffs: np.ndarray):
        coeffs = np.asarray(coeffs)
        if coeffs.shape != (len(table),):
            raise ValueError(f"coeffs must have shape ({len(table)},), got {coeffs.shape}")
        if np.iscomplexobj(coeffs):
            if np.any(np.abs(coeffs.imag) > 0):
                raise ValueError("Pauli-sum coefficients must be real so that H is Hermitian")
            coeffs = coeffs.real
        if not np.all(np.isfinite(coeffs)):
            raise ValueError("Pauli-sum coefficients contain NaN or inf; check the parameters and inputs")
        self.table = table
        self.coeffs = coeffs.astype(np.float64)
        self.n_qubits = table.n_qubits
        self.dim = table.dim
        self.dtype = np.float64 if table.is_real else np.complex128
        self.shape = (self.dim, self.dim)
        self.diagonal, flips = table.compile(self.coeffs)
        self.flips = [
            (x_mask, factor if factor.ndim == 0 else factor.reshape((2,) * self.n_qubits)) for x_mask, factor in flips
        ]

    def matvec(self, psi: np.ndarray) -> np.ndarray:
        """H psi for psi of shape (2^n,) or (2^n, k)."""
        psi = np.asarray(psi)
        if psi.shape[0] != self.dim or psi.ndim > 2:
            raise ValueError(f"state must have shape ({self.dim},) or ({self.dim}, k), got {psi.shape}")
        n = self.n_qubits
        tail = psi.shape[1:]
        out_dtype = np.result_type(self.dtype, psi.dtype)
        diag = self.diagonal.reshape((-1,) + (1,) * len(tail))
        out = (diag * psi).astype(out_dtype, copy=False)
        out_nd = out.reshape((2,) * n + tail)
        psi_nd = psi.reshape((2,) * n + tail)
        for x_mask, factor in self.flips:
            view = flipped(psi_nd, n, x_mask)
            factor = factor.reshape(factor.shape + (1,) * len(tail))
            out_nd += factor * view
        return out

    __matmul__ = matvec

    def to_dense(self) -> np.ndarray:
        """The 2^n x 2^n matrix, built by applying H to the identity (small n only)."""
        return self.matvec(np.eye(self.dim, dtype=self.dtype))

