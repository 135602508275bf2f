"""Integer CDF tables: the part of an entropy model that encoder and decoder must share bit for bit.

A table set holds ``T`` discrete distributions. Table ``t`` covers the integer
values ``offset[t] .. offset[t] + n_t - 1`` (``n_t`` regular symbols) plus one
escape symbol carrying the tail mass; values outside the range are coded as the
escape followed by their exact value (see :mod:`mlic.coding`). Probabilities are
integers out of ``2**PRECISION`` and every symbol gets at least one count, so any
value can be coded.

Layout of the buffers (all ``int32``):

- ``cdf``: ``[T, max_len]``; row ``t`` is ``0 = c_0 < c_1 < ... < c_{n_t+1} = 2**16``
  (``n_t + 2`` entries), zero padded;
- ``cdf_length``: ``[T]``, ``n_t + 2``;
- ``offset``: ``[T]``, the value of regular symbol 0.
"""

from __future__ import annotations

import numpy as np

PRECISION = 16
TOTAL = 1 << PRECISION


def quantize_pmf(pmf: np.ndarray, tail: float) -> np.ndarray:
    """Turn a pmf over ``n`` regular symbols plus a tail mass into an integer CDF.

    Returns ``n + 2`` cumulative counts from 0 to ``2**16``; every symbol, the
    escape included, gets a count of at least 1. ``n + 1`` must be below ``2**16``.
    """
    probs = np.concatenate([np.asarray(pmf, dtype=np.float64).ravel(), [float(tail)]])
    probs = np.nan_to_num(np.clip(probs, 0.0, None), nan=0.0)
    n = probs.size
    if n >= TOTAL:
        raise ValueError(f"a table of {n} symbols does not fit {PRECISION}-bit precision")
    total = probs.sum()
    if not total > 0:
        probs = np.ones_like(probs)
        total = float(n)
    counts = np.maximum(np.round(probs / total * TOTAL).astype(np.int64), 1)
    # Give the rounding residue to (or take it from) the most probable symbols.
    excess = int(counts.sum()) - TOTAL
    order = np.argsort(-counts, kind="stable")
    i = 0
    while excess != 0:
        j = order[i % n]
        if excess > 0:
            step = min(excess, int(counts[j]) - 1)
            counts[j] -= step
            excess -= step
        else:
            counts[j] -= excess
            excess = 0
        i += 1
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


def pack_tables(cdfs: list[np.ndarray], offsets: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack per-table CDFs (from :func:`quantize_pmf`) into the padded buffer layout."""
    lengths = np.array([c.size for c in cdfs], dtype=np.int32)
    cdf = np.zeros((len(cdfs), int(lengths.max(initial=0))), dtype=np.int32)
    for t, c in enumerate(cdfs):
        cdf[t, : c.size] = c
    return cdf, lengths, np.asarray(offsets, dtype=np.int32)


def table_probabilities(cdf: np.ndarray, cdf_length: np.ndarray, offset: np.ndarray, values: np.ndarray, indexes: np.ndarray) -> np.ndarray:
    """Probability the tables assign to each value (escaped values get the escape's mass).

    This is the ideal code length reference: ``-log2`` of it summed over the
    symbols is what a perfect coder would spend on them (escape payload excluded).
    """
    idx = np.asarray(indexes, dtype=np.int64).ravel()
    s = np.asarray(values, dtype=np.int64).ravel() - offset[idx]
    n_regular = cdf_length[idx].astype(np.int64) - 2
    s = np.where((s < 0) | (s >= n_regular), n_regular, s)
    return (cdf[idx, s + 1] - cdf[idx, s]).astype(np.float64) / TOTAL
