"""What every ``mlic`` verb shares: exit codes, the argument parser, usage errors, threads."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_INTERRUPT = 0, 1, 2, 130
DEFAULT_MODEL = "mlic-plus"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 by default; usage errors are 1 here
        self.print_usage(sys.stderr)
        print(f"mlic: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class UsageError(Exception):
    """Wrong combination of arguments (exit code 1)."""


def step_count(text: str) -> int:
    """argparse type for ``--refine``: a whole number of steps, 0 or more (else exit 1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of steps") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more steps")
    return value


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        if n < 1:
            raise UsageError("--threads must be at least 1")
        torch.set_num_threads(n)


def _progress(items: list, desc: str):
    if len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", file=sys.stderr, leave=False)
