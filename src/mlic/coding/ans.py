"""Vectorised ANS coding of table-indexed integers, with an exact escape for outliers.

Stream syntax (the order in which a decoder pops symbols) for one call of
:meth:`SymbolEncoder.encode` with ``n`` values:

1. the regular symbols, grouped by table index in increasing order, each group
   in the original (row-major) order of its values. A value outside its table's
   range is coded as the table's escape symbol;
2. for the ``e`` escaped values, in their original order: the bit length ``b``
   (0..63) of ``u = 2 * excess + sign`` under a uniform model over 64, where
   ``excess >= 0`` is the distance beyond the table range;
3. the 16-bit chunks of every ``u``: first chunk 0 of every escaped value that
   has one, then chunk 1, and so on (``ceil(b / 16)`` chunks per value), each
   under a uniform model over ``2**16``.

Consecutive calls append to the same stream; the decoder must repeat the calls
with the same indexes in the same order. All calls share one ANS stack that is
flushed once; bytes are the coder's 32-bit words in little-endian order.
"""

from __future__ import annotations

import numpy as np
import constriction

from ..errors import CodingError, TableError
from .tables import TOTAL

_BITLEN_MODEL = constriction.stream.model.Uniform(64)
_CHUNK_BITS = 16
_CHUNK_MODEL = constriction.stream.model.Uniform(1 << _CHUNK_BITS)


class CdfTables:
    """Integer CDF tables as the coder uses them (see :mod:`mlic.coding.tables`).

    Construction validates the tables; coder models are built lazily per table
    and are a pure function of the integers, so encoder and decoder agree.
    """

    def __init__(self, cdf: np.ndarray, cdf_length: np.ndarray, offset: np.ndarray) -> None:
        cdf = np.ascontiguousarray(cdf, dtype=np.int64)
        cdf_length = np.ascontiguousarray(cdf_length, dtype=np.int64).ravel()
        offset = np.ascontiguousarray(offset, dtype=np.int64).ravel()
        if cdf.ndim != 2 or cdf.shape[0] == 0 or cdf_length.size != cdf.shape[0] or offset.size != cdf.shape[0]:
            raise TableError("entropy-coding tables are empty or malformed; call update() on the model")
        if (cdf_length < 3).any() or (cdf_length > cdf.shape[1]).any():
            raise TableError("entropy-coding table lengths are out of range")
        for t, n in enumerate(cdf_length):
            row = cdf[t, :n]
            if row[0] != 0 or row[-1] != TOTAL or (np.diff(row) <= 0).any():
                raise TableError(f"entropy-coding table {t} is not a valid 16-bit CDF")
        self.cdf = cdf
        self.cdf_length = cdf_length
        self.offset = offset
        self.n_regular = cdf_length - 2
        self._models: list = [None] * cdf.shape[0]

    def __len__(self) -> int:
        return self.cdf.shape[0]

    def min_bits(self) -> float:
        """The fewest bits any one symbol can cost: -log2 of the largest probability in any table.

        ``n`` symbols therefore need at least ``n * min_bits()`` bits (less the coder's
        64-bit state): a bound a reader checks before decoding what a header promises.
        """
        largest = max(int(np.diff(self.cdf[t, : n]).max()) for t, n in enumerate(self.cdf_length))
        return float(-np.log2(largest / TOTAL))

    def model(self, t: int):
        m = self._models[t]
        if m is None:
            counts = np.diff(self.cdf[t, : self.cdf_length[t]]).astype(np.float64)
            m = constriction.stream.model.Categorical(counts / TOTAL, perfect=False)
            self._models[t] = m
        return m


def _check_indexes(indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
    idx = np.asarray(indexes).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= len(tables)):
        raise ValueError("table index out of range")
    return idx.astype(np.int64, copy=False)


def _groups(idx: np.ndarray, n_tables: int):
    """Stable grouping by table: the permutation and ``(table, start, stop)`` slices."""
    # numpy's stable sort is a radix sort for 8/16-bit keys: ~8x faster than on int64
    key = idx.astype(np.uint8 if n_tables <= 256 else np.uint16 if n_tables <= 65536 else np.int64)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(idx, minlength=n_tables)
    stops = np.cumsum(counts)
    starts = stops - counts
    return order, [(t, int(starts[t]), int(stops[t])) for t in np.flatnonzero(counts)]


def _bit_length(u: np.ndarray) -> np.ndarray:
    bits = np.zeros(u.shape, dtype=np.int32)
    for k in range(64):
        bits += (u >> k) > 0
    return bits


class SymbolEncoder:
    """Collects table-indexed integers and turns them into one byte string."""

    def __init__(self) -> None:
        self._ops: list[tuple[np.ndarray, object]] = []

    def encode(self, values: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> None:
        """Append ``values`` (any integer array), each coded with table ``indexes[i]``."""
        vals = np.asarray(values).ravel().astype(np.int64)
        idx = _check_indexes(indexes, tables)
        if vals.size != idx.size:
            raise ValueError("values and indexes differ in size")
        if vals.size and (vals.min() < -(1 << 31) or vals.max() >= 1 << 31):
            raise ValueError("values must fit in 32-bit signed integers")
        s = vals - tables.offset[idx]
        n_reg = tables.n_regular[idx]
        below, above = s < 0, s >= n_reg
        escaped = below | above
        symbols = np.where(escaped, n_reg, s).astype(np.int32)
        order, groups = _groups(idx, len(tables))
        grouped = symbols[order]
        for t, a, b in groups:
            self._ops.append((grouped[a:b], tables.model(t)))
        if escaped.any():
            excess = np.where(below, -s - 1, s - n_reg)[escaped]
            u = (excess << 1) | below[escaped].astype(np.int64)
            nbits = _bit_length(u)
            self._ops.append((nbits, _BITLEN_MODEL))
            n_chunks = (nbits + _CHUNK_BITS - 1) // _CHUNK_BITS
            for j in range(int(n_chunks.max())):
                chunk = (u[n_chunks > j] >> (_CHUNK_BITS * j)) & ((1 << _CHUNK_BITS) - 1)
                self._ops.append((chunk.astype(np.int32), _CHUNK_MODEL))

    def flush(self) -> bytes:
        """Code everything appended so far and return the bytes."""
        coder = constriction.stream.stack.AnsCoder()
        for symbols, model in reversed(self._ops):  # a stack: last pushed is first popped
            if symbols.size:
                coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), model)
        self._ops.clear()
        return coder.get_compressed().astype("<u4").tobytes()


class SymbolDecoder:
    """Reads back what :class:`SymbolEncoder` wrote, call for call."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise CodingError("entropy-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction rejects e.g. a last word of zero
            raise CodingError(f"invalid entropy-coded stream: {exc}") from None

    def _pop(self, model, n: int) -> np.ndarray:
        try:
            return self._coder.decode(model, n)
        except Exception as exc:
            raise CodingError(f"corrupt entropy-coded stream: {exc}") from None

    def decode(self, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
        """Decode one :meth:`SymbolEncoder.encode` call; returns int64 values shaped like ``indexes``."""
        shape = np.shape(indexes)
        idx = _check_indexes(indexes, tables)
        order, groups = _groups(idx, len(tables))
        grouped = np.empty(idx.size, dtype=np.int64)
        for t, a, b in groups:
            grouped[a:b] = self._pop(tables.model(t), b - a)
        symbols = np.empty_like(grouped)
        symbols[order] = grouped
        n_reg = tables.n_regular[idx]
        values = symbols + tables.offset[idx]
        escaped = symbols == n_reg
        if escaped.any():
            nbits = self._pop(_BITLEN_MODEL, int(escaped.sum())).astype(np.int64)
            n_chunks = (nbits + _CHUNK_BITS - 1) // _CHUNK_BITS
            u = np.zeros(nbits.size, dtype=np.int64)
            for j in range(int(n_chunks.max(initial=0))):
                has = n_chunks > j
                chunk = self._pop(_CHUNK_MODEL, int(has.sum())).astype(np.int64)
                u[has] |= chunk << (_CHUNK_BITS * j)
            below = (u & 1).astype(bool)
            excess = u >> 1
            base = tables.offset[idx[escaped]]
            n = n_reg[escaped]
            values[escaped] = np.where(below, base - 1 - excess, base + n + excess)
        return values.reshape(shape)

    def is_empty(self) -> bool:
        """True when every coded symbol has been read (a check for stream integrity)."""
        return bool(self._coder.is_empty())

    def finish(self, what: str = "entropy-coded stream") -> None:
        """Raise :class:`CodingError` unless the stream was consumed exactly.

        An encoder's stream always ends in the coder's initial state once all its
        symbols are read back; leftover words or state mean trailing or corrupted data.
        """
        if not self.is_empty():
            raise CodingError(f"{what} is corrupted: data left after its last symbol")
