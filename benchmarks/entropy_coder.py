"""Entropy-coder throughput and rate overhead.

Draws N symbols from the modelled Gaussians (scales from the 64-entry table,
zero means, rounded), codes them with ``mlic.coding`` through the tables of a
``GaussianConditional``, and prints encode / decode throughput (best of R runs)
and the overhead of the coded size over the ideal ``-log2 p`` of the integer tables.

    python benchmarks/entropy_coder.py [--symbols 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mlic.coding import SymbolDecoder, SymbolEncoder
from mlic.coding.tables import table_probabilities
from mlic.entropy import GaussianConditional


def _scale_indexes(kind: str, n: int, n_tables: int, rng) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(0, n_tables, n)
    # "latent": most latent elements sit at small scales (geometric over the table)
    return np.minimum(rng.geometric(0.12, n) - 1, n_tables - 1)


def run(n: int, repeats: int, kind: str, seed: int = 0) -> dict:
    gc = GaussianConditional()
    gc.update()
    tables = gc.coder_tables()
    rng = np.random.default_rng(seed)
    idx = _scale_indexes(kind, n, len(tables), rng)
    scales = gc.scale_table.double().numpy()[idx]
    values = np.round(rng.normal(0.0, scales)).astype(np.int32)

    enc_times, dec_times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc = SymbolEncoder()
        enc.encode(values, idx, tables)
        data = enc.flush()
        enc_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decoded = SymbolDecoder(data).decode(idx, tables)
        dec_times.append(time.perf_counter() - t0)
        if not np.array_equal(decoded, values):
            raise SystemExit("round trip failed")
    ideal = -np.log2(table_probabilities(tables.cdf, tables.cdf_length, tables.offset, values, idx)).sum()
    coded = 8 * len(data)
    return {
        "kind": kind,
        "symbols": n,
        "encode_msym_s": n / min(enc_times) / 1e6,
        "decode_msym_s": n / min(dec_times) / 1e6,
        "bits_per_symbol": coded / n,
        "overhead_pct": 100.0 * (coded - ideal) / ideal,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'scales':<8} {'symbols':>9} {'encode Msym/s':>14} {'decode Msym/s':>14} {'bits/sym':>9} {'overhead':>9}")
    for kind in ("latent", "uniform"):
        r = run(args.symbols, args.repeats, kind)
        print(
            f"{r['kind']:<8} {r['symbols']:>9} {r['encode_msym_s']:>14.1f} {r['decode_msym_s']:>14.1f}"
            f" {r['bits_per_symbol']:>9.3f} {r['overhead_pct']:>8.3f}%"
        )


if __name__ == "__main__":
    main()
