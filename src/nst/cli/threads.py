"""The command's torch threads: ``NST_THREADS`` when set, else as many as torch's
default (the cores, or ``OMP_NUM_THREADS``), fewer while other programs keep cores busy
(:class:`nst.threads.FitThreads`), each change said in a line."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import process
from ..threads import FitThreads, set_threads


def change_line(now: int, most: int) -> str:
    """What a change of threads says (the numbers then depend on the load: a run with
    another number of threads rounds differently and ends elsewhere)."""
    if now >= most:
        return f"computing with all {most} threads again"
    return (f"other programs keep cores busy: computing with {now} of {most} threads "
            f"(NST_THREADS={most} keeps them all)")  # fmt: skip


def command_threads(on_change: Callable[[str], None] | None = None) -> FitThreads | None:
    """For a command's run: ``NST_THREADS``'s number set (None returned), else the handler
    that fits the threads to the load, telling ``on_change`` each change in a line."""
    fixed = process.current().threads
    if fixed is not None:
        set_threads(fixed)
        return None
    most = torch.get_num_threads()
    said = None if on_change is None else (lambda now: on_change(change_line(now, most)))
    return FitThreads(most, on_change=said)
