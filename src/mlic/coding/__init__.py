"""Entropy coding: integer symbols plus table indexes <-> bytes.

The coder knows nothing about neural networks. It receives integer values and,
for each value, the index of the integer CDF table (:mod:`mlic.coding.tables`)
that models it. Work is vectorised per table: values sharing a table are coded
by one call into constriction's ANS coder, so there is no per-symbol Python loop.
"""

from .ans import CdfTables, SymbolDecoder, SymbolEncoder

__all__ = ["CdfTables", "SymbolDecoder", "SymbolEncoder"]
