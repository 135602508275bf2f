"""``--jobs N``: the files of one command shared out to N worker processes.

Each worker is a fresh interpreter (``spawn``: nothing of the parent's torch thread pool is
inherited), sets its own thread count, builds its own work function once with the verb's
factory (options parsed, model loaded) and then takes one task after another. Results come
back in input order. Workers ignore Ctrl-C: the parent stops handing out work and the
files already in progress finish (each is written atomically), so nothing is left half written.
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

from .common import timed_call

_WORK: Callable | None = None


def _start(factory: Callable, args, threads: int) -> None:
    global _WORK
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)
    _WORK = factory(args, False)


def _run(task: tuple) -> tuple:
    return timed_call(_WORK, *task)


def pool_map(factory: Callable, args, tasks: Iterable[tuple], jobs: int, threads: int) -> Iterator[tuple]:
    """``factory(args, False)(*task)`` for every task in ``jobs`` processes of ``threads`` threads:
    ``(result, error, seconds)`` per task (:func:`~mlic.cli.common.timed_call`), in order. ``factory`` must be a module-level function
    and ``args`` picklable (an argparse namespace is)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start,
                             initargs=(factory, args, threads)) as pool:  # fmt: skip
        try:
            yield from pool.map(_run, tasks)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
