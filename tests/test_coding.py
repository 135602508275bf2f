"""The entropy coder: exact round trips, escapes, and rate close to the tables' ideal."""

import numpy as np
import pytest

from mlic.coding import CdfTables, SymbolDecoder, SymbolEncoder
from mlic.entropy import GaussianConditional
from mlic.coding.tables import table_probabilities
from mlic.errors import CodingError, TableError


@pytest.fixture(scope="module")
def gaussian_tables():
    gc = GaussianConditional()
    gc.update()
    return gc, gc.coder_tables()


def test_round_trip_with_far_out_of_range_values(gaussian_tables):
    _, tables = gaussian_tables
    rng = np.random.default_rng(1)
    n = 20_000
    idx = rng.integers(0, len(tables), n)
    values = np.round(rng.normal(0, 3, n)).astype(np.int64)
    outliers = rng.choice(n, 300, replace=False)
    values[outliers] = rng.integers(-(2**31), 2**31 - 1, 300)
    values[:4] = [2**31 - 1, -(2**31), 5000, -5000]
    idx[:4] = 0  # the narrowest table: all four must escape
    enc = SymbolEncoder()
    enc.encode(values, idx, tables)
    second = rng.integers(-3, 4, (7, 5))
    enc.encode(second, np.full((7, 5), 3), tables)
    data = enc.flush()
    dec = SymbolDecoder(data)
    np.testing.assert_array_equal(dec.decode(idx, tables), values)
    np.testing.assert_array_equal(dec.decode(np.full((7, 5), 3), tables), second)
    assert dec.is_empty()


def test_empty_and_single_symbol_streams(gaussian_tables):
    _, tables = gaussian_tables
    enc = SymbolEncoder()
    enc.encode(np.zeros(0, np.int64), np.zeros(0, np.int64), tables)
    enc.encode(np.array([7]), np.array([10]), tables)
    dec = SymbolDecoder(enc.flush())
    assert dec.decode(np.zeros(0, np.int64), tables).size == 0
    assert dec.decode(np.array([10]), tables).tolist() == [7]


def test_coded_size_close_to_table_ideal_for_one_million_gaussian_symbols(gaussian_tables):
    gc, tables = gaussian_tables
    rng = np.random.default_rng(2)
    n = 1_000_000
    scale_table = gc.scale_table.numpy().astype(np.float64)
    idx = rng.integers(0, len(tables), n)
    values = np.round(rng.normal(0.0, scale_table[idx])).astype(np.int64)
    enc = SymbolEncoder()
    enc.encode(values, idx, tables)
    data = enc.flush()
    ideal_bits = -np.log2(table_probabilities(tables.cdf, tables.cdf_length, tables.offset, values, idx)).sum()
    coded_bits = 8 * len(data)
    assert coded_bits >= ideal_bits * 0.999
    assert coded_bits <= ideal_bits * 1.005, (coded_bits, ideal_bits)
    np.testing.assert_array_equal(SymbolDecoder(data).decode(idx, tables), values)


def test_invalid_inputs_are_refused(gaussian_tables):
    _, tables = gaussian_tables
    enc = SymbolEncoder()
    with pytest.raises(ValueError):
        enc.encode(np.array([1, 2]), np.array([0]), tables)
    with pytest.raises(ValueError):
        enc.encode(np.array([1]), np.array([len(tables)]), tables)
    with pytest.raises(ValueError):
        enc.encode(np.array([2**40]), np.array([0]), tables)
    with pytest.raises(CodingError):
        SymbolDecoder(b"\x01\x02\x03")
    bad = np.array([[0, 10, 10, 65536]])
    with pytest.raises(TableError):
        CdfTables(bad, np.array([4]), np.array([0]))
