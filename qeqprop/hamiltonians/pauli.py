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

``d_x`` is a sum of Walsh functions over a sparse set of masks z_s, and so are the
expectation values of a group's strings; both are computed by ``WalshSplit`` (two small
matrix products over the index split into high and low bits). A group whose strings carry
no Z part has a constant ``d_x`` and stores a scalar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .._blas import one_blas_thread

_PAULI_LETTERS = "IXYZ"
# native expectations (PauliTable._native_expectations) up to this many qubits; one C call uses every
# core from this many amplitudes in the batch on
NATIVE_EXPECTATIONS_QUBITS = 14
NATIVE_EXPECTATIONS_PARALLEL = 1 << 16
MASK_QUBITS = 63  # qubits an int64 bit mask holds: the state-vector (exact) solvers' limit, far past their memory
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


def parity_signs(n_qubits: int, z_mask: int, index: np.ndarray | None = None) -> np.ndarray:
    """(-1)^{|c & z|} for every basis index c (as float64)."""
    if index is None:
        index = np.arange(1 << n_qubits, dtype=np.int64)
    parity = np.bitwise_count(index & z_mask) & 1
    return 1.0 - 2.0 * parity


def deposit(values: np.ndarray, mask: int) -> np.ndarray:
    """The bits of each value spread onto the set bits of ``mask``, lowest first (BMI2's pdep)."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros_like(values)
    for source, bit in enumerate(b for b in range(int(mask).bit_length()) if mask >> b & 1):
        out |= ((values >> source) & 1) << bit
    return out


def extract(values: np.ndarray, mask: int) -> np.ndarray:
    """The bits of each value at the set bits of ``mask``, packed into the low bits (BMI2's pext;
    the inverse of ``deposit`` on values within the mask)."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros_like(values)
    for target, bit in enumerate(b for b in range(int(mask).bit_length()) if mask >> b & 1):
        out |= ((values >> bit) & 1) << target
    return out


def compact_length(n_qubits: int, support: int, bits: int) -> int:
    """Values a compact factor stores (``compact_points``): 2^h rows of min(2^bits, 2^n), h the
    support bits above the lowest ``bits``."""
    return min(1 << bits, 1 << n_qubits) << (int(support) >> bits).bit_count()


def compact_points(n_qubits: int, support: int, bits: int) -> np.ndarray:
    """The basis indices c at which a compact factor (``PauliTable.compile(..., compact_bits=bits)``)
    stores its values, in storage order: row r, column l holds c = (deposit(r, S) << bits) | l, with S
    the support bits above the lowest ``bits`` (support >> bits) and l < min(2^bits, 2^n). A factor
    that depends on c only through c & support equals its row pext(c >> bits, S), column c mod 2^bits."""
    high = int(support) >> bits
    rows = deposit(np.arange(1 << int(high).bit_count()), high) << bits
    return (rows[:, None] | np.arange(min(1 << bits, 1 << n_qubits))[None, :]).reshape(-1)


def compact_index(n_qubits: int, support: int, bits: int) -> np.ndarray:
    """For every basis index c, the position of its value in a compact factor (``compact_points``):
    the expansion compact[..., compact_index] is the full factor vector (2^n,)."""
    c = np.arange(1 << n_qubits, dtype=np.int64)
    return extract(c >> bits, int(support) >> bits) * min(1 << bits, 1 << n_qubits) + (c & ((1 << bits) - 1))


ALIGNMENT = 64  # bytes: a numpy array this aligned is viewed, not copied, by jax.device_put(may_alias=True) on CPU


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array whose data start on an ALIGNMENT-byte boundary (numpy's own start
    on 16 bytes), so that XLA on CPU can use it in place (``JaxPauliOperator``: no copy of the
    diagonal per solve, a state vector at 2^24 and up)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    buffer = np.empty(size * dtype.itemsize + ALIGNMENT, np.uint8)
    offset = -buffer.ctypes.data % ALIGNMENT
    return buffer[offset:offset + size * dtype.itemsize].view(dtype).reshape(shape)


def _flipped(psi: np.ndarray, n_qubits: int, x_mask: int) -> np.ndarray:
    """psi[..., c xor x] (a view) for states with leading batch axes, as an array of psi's shape
    viewed through ``split_view``: (..., shape) with the flipped axes reversed."""
    head = psi.shape[:-1]
    shape, axes = split_view(n_qubits, x_mask)
    return np.flip(psi.reshape(head + shape), axis=tuple(len(head) + a for a in axes))


def split_view(n_qubits: int, mask: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(shape, axes): the 2^n state as an array with a length-2 axis per qubit in ``mask``
    (qubit 0 most significant, so axes follow qubit order) and the runs of other qubits merged."""
    shape, axes, run = [], [], 1
    for bit in reversed(range(n_qubits)):
        if mask >> bit & 1:
            if run > 1:
                shape.append(run)
            run = 1
            axes.append(len(shape))
            shape.append(2)
        else:
            run *= 2
    if run > 1:
        shape.append(run)
    return tuple(shape), tuple(axes)


# A flip group whose strings touch at most this many qubits (X, Y and Z together) sums its
# expectations in one einsum over the state viewed with those qubits as axes (no product
# vector); wider groups (e.g. all diagonal strings) form the product and use WalshSplit.
_EINSUM_SUPPORT_MAX = 6
# WalshSplit.values of a small group (2^n |masks| at most this many signs) is one matrix product
# with its stored sign matrix: at 10 qubits (groups of 1-9 strings, batches of 10-256) 2-3x faster
# than the split products, whose per-call overhead and stacked small matrix products dominate there.
_DENSE_SIGNS_MAX = 1 << 16


class WalshSplit:
    """Walsh sums at a sparse set of masks z_s, by splitting the index bits.

    With c = (h, l) and z_s = (h_s, l_s) (high n - b bits, low b bits), P the vector p viewed
    as a (2^{n-b}, 2^b) matrix, and S_H[h, k] = (-1)^{|h & H_k|} over the distinct high parts
    H_k (S_L likewise over the distinct low parts L_k):

        sum_c p[c] (-1)^{|c & z_s|} = [S_H^T (P S_L)]_{h_s, l_s}      (``sums``),
        sum_s v_s (-1)^{|c & z_s|}  = [S_H V S_L^T]_{h, l},  V[h_s, l_s] += v_s   (``values``).

    Two matrix products, 2^n |L| + 2^{n-b} |H| |L| multiply-adds; b minimises that count
    (b = n is the direct signed sum). For the 210 diagonal strings of a 20-qubit all-to-all
    Ising model b = 8 and |L| = 37: one pass over p with 37 multiply-adds per amplitude.
    """

    def __init__(self, n_qubits: int, z_masks: Sequence[int]):
        masks = np.asarray(z_masks, dtype=np.int64).reshape(-1)
        self.n_qubits = n_qubits

        def parts(b):
            return np.unique(masks >> b, return_inverse=True), np.unique(masks & ((1 << b) - 1), return_inverse=True)

        def cost(b):
            (high, _), (low, _) = parts(b)
            return (1 << n_qubits) * len(low) + (1 << (n_qubits - b)) * len(high) * len(low)

        self.dense = (1 << n_qubits) * len(masks) <= _DENSE_SIGNS_MAX
        self._signs: dict[bool, np.ndarray] = {}
        self.z_masks = masks
        self.low_bits = b = min(range(n_qubits + 1), key=lambda b: (cost(b), -b))
        (high, self.rows), (low, self.cols) = parts(b)
        self.high_signs = np.stack([parity_signs(n_qubits - b, int(h)) for h in high], axis=1)
        self.low_signs = np.stack([parity_signs(b, int(l)) for l in low], axis=1)

    def _matrix(self, vectors):
        head = vectors.shape[:-1]
        return vectors.reshape(head + (1 << (self.n_qubits - self.low_bits), 1 << self.low_bits))

    def sums(self, products):
        """sum_c products[..., c] (-1)^{|c & z_s|} for every mask: shape (..., n_masks)."""
        if products.dtype.kind == "c":  # two real products: a complex one would promote the signs (4x the flops)
            return self.sums(products.real) + 1j * self.sums(products.imag)
        table = self.high_signs.T @ (self._matrix(products) @ self.low_signs)
        return table[..., self.rows, self.cols]

    def values(self, weights: np.ndarray) -> np.ndarray:
        """sum_s weights[..., s] (-1)^{|c & z_s|} for every basis index c: shape (..., 2^n)."""
        if self.dense:
            return self._dense_values(weights)
        head = weights.shape[:-1]
        spectrum = np.zeros(head + (self.high_signs.shape[1], self.low_signs.shape[1]), dtype=weights.dtype)
        np.add.at(spectrum, (..., self.rows, self.cols), weights)
        left = self.high_signs @ spectrum
        out = aligned_empty(left.shape[:-1] + (self.low_signs.shape[0],), left.dtype)
        return np.matmul(left, self.low_signs.T, out=out).reshape(head + (1 << self.n_qubits,))

    def _dense_values(self, weights: np.ndarray) -> np.ndarray:
        """``values`` as weights (.., |masks|) @ S with S[s, c] = (-1)^{|c & z_s|}; complex weights
        as their interleaved (Re, Im) doubles @ S woven (S on the even rows and columns and on the
        odd ones: the product's doubles are the complex result's), one real product, no copies."""
        complex_ = weights.dtype.kind == "c"
        signs = self._signs.get(complex_)
        if signs is None:
            plain = np.stack([parity_signs(self.n_qubits, int(z)) for z in self.z_masks])
            if complex_:
                signs = np.zeros((2 * plain.shape[0], 2 * plain.shape[1]))
                signs[0::2, 0::2] = signs[1::2, 1::2] = plain
            else:
                signs = plain
            self._signs[complex_] = signs
        head = weights.shape[:-1]
        flat = np.ascontiguousarray(weights.reshape(-1, weights.shape[-1]), np.complex128 if complex_ else np.float64)
        out = np.matmul(flat.view(np.float64) if complex_ else flat, signs,
                        out=aligned_empty((flat.shape[0], signs.shape[1]), np.float64))
        return (out.view(np.complex128) if complex_ else out).reshape(head + (1 << self.n_qubits,))


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
        # int64 masks up to MASK_QUBITS; beyond, Python ints (the terms of an MPS model: no 2^n vector exists)
        dtype = np.int64 if self.n_qubits <= MASK_QUBITS else object
        self.x_masks = np.array([m[0] for m in masks], dtype=dtype)
        self.z_masks = np.array([m[1] for m in masks], dtype=dtype)
        self.n_y = np.array([s.n_y for s in self.strings], dtype=np.int64)
        groups: dict[int, list[int]] = {}
        for index, x_mask in enumerate(self.x_masks.tolist()):
            groups.setdefault(x_mask, []).append(index)
        self.groups = {x: np.array(idx, dtype=np.int64) for x, idx in groups.items()}
        # Phase of each string relative to its group's Walsh coefficient: i^{n_Y} (-1)^{|x & z|}.
        overlap = self.x_masks & self.z_masks
        parity_xz = (np.bitwise_count(overlap) if dtype is np.int64 else np.array([int(v).bit_count() for v in overlap], dtype=np.int64)) & 1
        self.phases = (1j ** self.n_y) * (1.0 - 2.0 * parity_xz)
        self.is_real = bool(np.all(self.n_y % 2 == 0))
        self._splits: dict[int, WalshSplit] = {}
        self._compact: dict[tuple[int, int], np.ndarray] = {}
        self._support_plans: dict[tuple[int, bool], tuple] = {}
        self._native_plans: dict[tuple[int, ...] | None, tuple] = {}

    @property
    def dim(self) -> int:
        return 1 << self.n_qubits

    def __len__(self) -> int:
        return len(self.strings)

    def check_vectors(self) -> None:
        """Refuse state-vector work above MASK_QUBITS qubits (2^n amplitudes cannot be stored)."""
        if self.n_qubits > MASK_QUBITS:
            raise ValueError(f"a {self.n_qubits}-qubit Pauli table has no state-vector operator or expectations "
                             f"(2^{self.n_qubits} amplitudes); use solver='mps', which takes the terms only")

    def _support_plan(self, x_mask: int, members: np.ndarray, support: int, same: bool) -> tuple:
        """The static part of ``_support_sums`` for one group (built once per group and ``same``):
        the view shape, the axes to flip and keep, the half-state cut, the (members, 2^s) signs and
        the conjugate-pair signs."""
        key = (x_mask, same)
        plan = self._support_plans.get(key)
        if plan is not None:
            return plan
        shape, axes = split_view(self.n_qubits, support)
        bits = [self.n_qubits - 1 - q for q in range(self.n_qubits) if support >> (self.n_qubits - 1 - q) & 1]
        flipped = tuple(a for a, bit in zip(axes, bits) if x_mask >> bit & 1)
        corner_bits = [[0, 1 << bit] for bit in bits]
        paired = same and bool(flipped)
        half = None
        if paired:  # keep c with the first flipped qubit 0
            half = tuple(slice(0, 1) if a == flipped[0] else slice(None) for a in range(len(shape)))
            corner_bits[axes.index(flipped[0])] = [0]
        # the corner indices (one, 0, for a group of identity strings: no support)
        corners = np.array(np.meshgrid(*corner_bits, indexing="ij")).reshape(len(bits), -1).sum(axis=0) if bits else np.zeros(1, np.int64)
        signs = np.stack([parity_signs(0, int(z), corners) for z in self.z_masks[members]]).T
        pair_signs = parity_signs(0, x_mask, self.z_masks[members]) if paired else None
        plan = self._support_plans[key] = (shape, tuple(axes), flipped, half, signs, pair_signs)
        return plan

    def _support_sums(self, psi, bra_conj, x_mask: int, members: np.ndarray, support: int, same: bool) -> np.ndarray:
        """sum_c conj(bra[c]) psi[c xor x] (-1)^{|c & z_s|} for a group whose strings touch only
        the qubits in ``support`` (s of them): with those qubits as axes of the views, one
        two-operand einsum sums over every other axis, leaving the 2^s corner sums P[k], and the
        signs finish it as a (members, 2^s) product (no product vector, no sign tensor in the pass;
        the signs and views are planned once per group, ``_support_plan``).

        For ``bra = psi`` and x != 0 the indices c and c xor x give conjugate terms, so only half the state
        is read: with S_s the sum over c whose highest flipped qubit is 0,
        sum_c = S_s + (-1)^{|x & z_s|} conj(S_s) (timings: benchmarks/NOTES.md)."""
        head = psi.shape[:-1]
        shape, axes, flipped, half, signs, pair_signs = self._support_plan(x_mask, members, support, same)
        bra_view = bra_conj.reshape(head + shape)
        ket_view = np.flip(psi.reshape(head + shape), axis=tuple(len(head) + a for a in flipped))
        if half is not None:
            bra_view, ket_view = bra_view[(Ellipsis, *half)], ket_view[(Ellipsis, *half)]
        index = list(range(len(shape)))
        corner_sums = np.einsum(bra_view, [Ellipsis, *index], ket_view, [Ellipsis, *index], [Ellipsis, *axes])
        sums = corner_sums.reshape(head + (-1,)) @ signs
        if pair_signs is not None:
            sums = sums + pair_signs * np.conj(sums)  # (-1)^{|x & z_s|}
        return sums

    def _native_expectations(self, psi: np.ndarray, strings: np.ndarray | None) -> np.ndarray | None:
        """``expectations(psi, strings=strings)`` from the native kernel (``qeqprop/native/pauli_expectations.cc``:
        one C call for the batch, half the basis per flip group, products folded to the corner sums of
        the bits the group's signs read); None where it does not apply: the kernels are not loaded,
        or more than NATIVE_EXPECTATIONS_QUBITS qubits (there the numpy path is as fast or faster:
        benchmarks/NOTES.md), or a dtype other than float64 / complex128."""
        if self.n_qubits > NATIVE_EXPECTATIONS_QUBITS or psi.dtype not in (np.float64, np.complex128) or not len(self.strings):
            return None
        from ..config import usable_cores
        from ..native import native_library

        library = native_library()
        if library is None:
            return None
        wanted = None if strings is None else np.asarray(strings, dtype=np.int64)
        key = None if wanted is None else tuple(wanted.tolist())  # the groups to compute, planned once per selection
        plan = self._native_plans.get(key)
        if plan is None:
            groups = [(x, members) for x, members in self.groups.items() if wanted is None or np.isin(members, wanted).any()]
            members = [m for _, m in groups]
            flat = np.concatenate(members) if members else np.zeros(0, np.int64)
            phases = np.ascontiguousarray(np.stack([self.phases[flat].real, self.phases[flat].imag], axis=-1), np.float64)
            plan = self._native_plans[key] = (
                np.array([x for x, _ in groups], np.int64), np.cumsum([0] + [len(m) for m in members]).astype(np.int64),
                np.ascontiguousarray(self.z_masks[flat], np.int64), np.ascontiguousarray(flat, np.int64), phases)
        x, offsets, z, index, phases = plan
        head = psi.shape[:-1]
        flat_psi = np.ascontiguousarray(psi.reshape(-1, self.dim))
        out = np.zeros((flat_psi.shape[0], len(self.strings)))
        threads = usable_cores() if flat_psi.size >= NATIVE_EXPECTATIONS_PARALLEL else 1
        status = library.qeqprop_pauli_expectations(flat_psi.view(np.float64), flat_psi.shape[0], self.n_qubits,
                                                    int(flat_psi.dtype == np.complex128), len(x), x, offsets, z, index,
                                                    phases, len(self.strings), out, threads)
        if status != 0:
            raise RuntimeError(f"qeqprop_pauli_expectations refused the table's groups (status {status})")
        out = out.reshape(head + (len(self.strings),))
        return out if wanted is None else out[..., wanted]

    def walsh(self, x_mask: int) -> WalshSplit:
        """The Walsh sums over the z masks of flip group ``x_mask`` (built once per group)."""
        split = self._splits.get(x_mask)
        if split is None:
            split = self._splits[x_mask] = WalshSplit(self.n_qubits, self.z_masks[self.groups[x_mask]])
        return split

    def support(self, x_mask: int) -> int:
        """The qubit bits flip group ``x_mask``'s factor depends on: the union of its strings' z masks
        (d_x[c] = sum_s v_s (-1)^{|c & z_s|} is a function of c & support)."""
        return int(np.bitwise_or.reduce(self.z_masks[self.groups[x_mask]]))

    def _compact_signs(self, x_mask: int, bits: int) -> np.ndarray:
        """(members, points) signs (-1)^{|c & z_s|} at the compact points of group ``x_mask`` (cached)."""
        key = (x_mask, bits)
        signs = self._compact.get(key)
        if signs is None:
            points = compact_points(self.n_qubits, self.support(x_mask), bits)
            signs = self._compact[key] = np.stack([parity_signs(0, int(z), points) for z in self.z_masks[self.groups[x_mask]]])
        return signs

    @one_blas_thread
    def compile(self, coeffs: np.ndarray, compact_bits: int | None = None) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """The grouped form of sum_s coeffs[..., s] P_s: the diagonal (..., 2^n) and, per flip
        mask x, its factor d_x: shape (...) when constant over the basis, (..., 2^n) otherwise.

        With ``compact_bits`` L a non-constant factor is stored compact: only its values at
        ``compact_points(n, support(x), L)``, (..., 2^h min(2^L, 2^n)) for the h support bits above
        the lowest L (``compact_index`` expands it). The sensor model's flip groups touch 2-3
        qubits, so at 10 qubits and L = 5 a factor is 32-256 values instead of 1024.

        Factors are real when the table is real. Leading axes of ``coeffs`` are batch axes.
        """
        self.check_vectors()
        coeffs = np.asarray(coeffs, dtype=np.float64)
        head = coeffs.shape[:-1]
        diagonal = None  # the x = 0 group's Walsh sum itself (no zeros + sum: one state vector, not two)
        flips = []
        for x_mask, members in self.groups.items():
            values = coeffs[..., members] * self.phases[members]
            if self.is_real:
                values = values.real
            if x_mask == 0:
                diagonal = self.walsh(x_mask).values(values.real)
            elif np.all(self.z_masks[members] == 0):
                flips.append((int(x_mask), values.sum(axis=-1)))
            elif compact_bits is not None:
                signs = self._compact_signs(int(x_mask), int(compact_bits))
                flips.append((int(x_mask), values.real @ signs + 1j * (values.imag @ signs) if values.dtype.kind == "c"
                               else values @ signs))
            else:
                flips.append((int(x_mask), self.walsh(x_mask).values(values)))
        return (np.zeros(head + (self.dim,)) if diagonal is None else diagonal), flips

    def operator(self, coeffs: np.ndarray) -> "PauliOperator":
        return PauliOperator(self, coeffs)

    @one_blas_thread
    def expectations(self, psi: np.ndarray, bra: np.ndarray | None = None, strings: np.ndarray | None = None) -> np.ndarray:
        """<bra|P_s|psi> for every string s (``bra = psi`` by default); leading axes of
        ``psi`` (..., 2^n) are batch axes, the result has shape (..., n_strings).

        ``strings``: indices of the only strings wanted (result (..., len(strings))): flip groups
        holding none of them are not computed (the outputs of a model read a few strings).
        Real (float64) when ``bra`` is None; complex otherwise.
        """
        self.check_vectors()
        psi = np.asarray(psi)
        if psi.shape[-1:] != (self.dim,):
            raise ValueError(f"state vector must have shape (..., {self.dim}), got {psi.shape}")
        if bra is None:
            native = self._native_expectations(psi, strings)
            if native is not None:
                return native
        same = bra is None
        bra = psi if same else np.asarray(bra)
        if bra.shape != psi.shape:
            raise ValueError(f"bra must have shape {psi.shape}, got {bra.shape}")
        head = psi.shape[:-1]
        bra = np.conj(bra) if np.iscomplexobj(bra) else bra  # no copy of a real state
        out = np.zeros(head + (len(self.strings),), dtype=np.complex128)
        wanted = None
        if strings is not None:
            strings = np.asarray(strings, dtype=np.int64)
            wanted = np.zeros(len(self.strings), bool)
            wanted[strings] = True
        for x_mask, members in self.groups.items():
            if wanted is not None and not wanted[members].any():
                continue
            support = x_mask | int(np.bitwise_or.reduce(self.z_masks[members]))
            if np.bitwise_count(support) <= _EINSUM_SUPPORT_MAX:
                sums = self._support_sums(psi, bra, x_mask, members, support, same)
            else:
                flip = _flipped(psi, self.n_qubits, x_mask)
                sums = self.walsh(x_mask).sums((bra.reshape(flip.shape) * flip).reshape(psi.shape))
            out[..., members] = self.phases[members] * sums
        if strings is not None:
            out = out[..., strings]
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
        table.check_vectors()  # refused here, not at the first use of its (lazily compiled) grouped form
        self.table = table
        self.coeffs = coeffs.astype(np.float64)
        self.n_qubits = table.n_qubits
        self.dim = table.dim
        self.dtype = np.float64 if table.is_real else np.complex128
        self.shape = (self.dim, self.dim)
        self._compiled: dict[int | None, tuple[np.ndarray, list]] = {}  # compact_bits -> table.compile's output
        self._views = None

    def compiled(self, compact_bits: int | None = None) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """The grouped form (diagonal, flips) of ``PauliTable.compile(coeffs, compact_bits)``, made at
        first use and kept: an operator used only through compact factors (the native kernel's) never
        holds the full 2^n vector of each Z-dependent flip group (26 qubits of XXZ bonds: 512 MiB each)."""
        if compact_bits not in self._compiled:
            self._compiled[compact_bits] = self.table.compile(self.coeffs, compact_bits=compact_bits)
        return self._compiled[compact_bits]

    @property
    def diagonal(self) -> np.ndarray:
        """d_0: the sum of the diagonal strings (2^n,) (from whichever grouped form exists)."""
        return next(iter(self._compiled.values()))[0] if self._compiled else self.compiled()[0]

    @property
    def flips(self) -> list[tuple[int, np.ndarray]]:
        """[(x_mask, d_x)]: each flip group's factor, a scalar or a full vector (2^n,)."""
        return self.compiled()[1]

    def matvec(self, psi: np.ndarray) -> np.ndarray:
        """H psi for psi of shape (2^n,) or (2^n, k)."""
        psi = np.asarray(psi)
        if psi.shape[0] != self.dim or psi.ndim > 2:
            raise ValueError(f"state must have shape ({self.dim},) or ({self.dim}, k), got {psi.shape}")
        tail = psi.shape[1:]
        out_dtype = np.result_type(self.dtype, psi.dtype)
        diag = self.diagonal.reshape((-1,) + (1,) * len(tail))
        out = (diag * psi).astype(out_dtype, copy=False)
        if self._views is None:  # (shape, flipped axes) per flip group
            self._views = [split_view(self.n_qubits, x_mask) for x_mask, _ in self.flips]
        for (_, factor), (shape, axes) in zip(self.flips, self._views):
            view = out.reshape(shape + tail)  # a view: += writes into out
            view += (factor.reshape(shape + (1,) * len(tail)) if factor.ndim else factor) * np.flip(
                psi.reshape(shape + tail), axis=axes)
        return out

    __matmul__ = matvec

    def __str__(self) -> str:
        """The Pauli sum with its nonzero terms, e.g. "-1.0 * Z0 Z1 + 0.5 * X2"."""
        from .observables import format_sum

        return format_sum([(repr(float(c)), str(p)) for c, p in zip(self.coeffs, self.table.strings) if c != 0.0])

    def __repr__(self) -> str:
        return f"PauliOperator(n_qubits={self.n_qubits}: {self})"

    def to_dense(self) -> np.ndarray:
        """The 2^n x 2^n matrix, built by applying H to the identity (small n only)."""
        return self.matvec(np.eye(self.dim, dtype=self.dtype))

