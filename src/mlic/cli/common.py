"""What every ``mlic`` verb shares: exit codes, the argument parser, usage errors, threads."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from ..errors import MlicError
from ..models.config import PRECISIONS

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_BUG, EXIT_INTERRUPT = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` when its reader quits
DEFAULT_MODEL = "mlic-plus"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 by default; usage errors are 1 here
        self.print_usage(sys.stderr)
        print(f"mlic: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class UsageError(Exception):
    """Wrong combination of arguments (exit code 1)."""


def whole_number(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number of ``what``, at least ``minimum`` (else exit 1)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more {what}")
        return value

    return parse


step_count = whole_number(0, "steps")  # --refine
thread_count = whole_number(1, "threads")  # --threads
job_count = whole_number(1, "processes")  # --jobs


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """--threads, --jobs and --quiet: how a verb that works through many files uses the CPU."""
    parser.add_argument("--threads", type=thread_count, help="CPU threads for torch (per process with --jobs)")
    parser.add_argument("--jobs", type=job_count, default=1, metavar="N",
                        help="work on N files at once in N processes, one thread each unless --threads "
                             "(faster for many small photos; default 1)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def timed_call(fn: Callable, *task) -> tuple:
    """``(fn(*task), None, seconds)``, or ``(None, error, seconds)`` when it raises an
    MlicError (bad input: the caller reports it and goes on with the next file)."""
    t0 = time.perf_counter()
    try:
        return fn(*task), None, time.perf_counter() - t0
    except MlicError as exc:
        return None, exc, time.perf_counter() - t0


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="precision of the transforms g_a / g_s, never of the probability path: "
                             "auto (default) = bf16 where the CPU has native bf16 kernels, else fp32")  # fmt: skip


def check_precision(precision: str) -> None:
    """Warn (once, on stderr) when bf16 is asked for on a CPU that can only emulate it."""
    if precision == "bf16":
        from ..models.mlic import native_bf16

        if not native_bf16():
            print("mlic: warning: this CPU has no native bf16 kernels: --precision bf16 is emulated "
                  "(several times slower than fp32) and its pixels differ from a bf16 CPU's", file=sys.stderr)  # fmt: skip


PROGRESS_DELAY_S = 2.0  # work done sooner shows no bar at all
PROGRESS_INTERVAL_S = 0.1  # a bar redraws at most this often (tqdm's own default)


def show_progress(quiet: bool = False) -> bool:
    """Progress bars go to a terminal only: never into a log, a pipe or a file, never with --quiet."""
    return not quiet and sys.stderr.isatty()


def _progress(items: list, desc: str, quiet: bool = False):
    """A bar over several files (on a terminal, once they take more than PROGRESS_DELAY_S)."""
    if len(items) < 2 or not show_progress(quiet):
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", file=sys.stderr, leave=False, delay=PROGRESS_DELAY_S,
                mininterval=PROGRESS_INTERVAL_S)


class WorkBar:
    """A bar over one photo's codec work (``progress(done, total)`` of :mod:`mlic.codec`): on a
    terminal, from PROGRESS_DELAY_S after it was made, cleared when done; work that starts over
    (each trial encode of ``--target-*``) restarts it, numbered. Inactive (``None`` from
    :meth:`callback`) when ``show`` is false."""

    def __init__(self, desc: str, show: bool) -> None:
        self.bar, self.desc, self.passes = None, desc, 1
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=None, desc=desc, unit="step", file=sys.stderr, leave=False, delay=PROGRESS_DELAY_S,
                            mininterval=PROGRESS_INTERVAL_S,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}]")  # fmt: skip

    def callback(self) -> Callable[[int, int], None] | None:
        return None if self.bar is None else self._update

    def _update(self, done: int, total: int) -> None:
        if done < self.bar.n:  # the work started again (the trial encodes of a size or PSNR target)
            self.passes += 1
            self.bar.set_description_str(f"{self.desc} (encode {self.passes})", refresh=False)
            self.bar.reset(total=total)
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> WorkBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
