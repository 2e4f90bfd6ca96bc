"""The command's torch threads: ``NST_THREADS`` when set, else as many as torch's
default (the cores, or ``OMP_NUM_THREADS``), fewer while other programs keep cores busy
(:class:`nst.threads.FitThreads`), each change said in a line."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import process
from ..threads import FitThreads, change_line, set_threads


def command_threads(on_change: Callable[[str], None] | None = None) -> FitThreads | None:
    """For a command's run: ``NST_THREADS``'s number set (None returned), else the handler
    that fits the threads to the load, telling ``on_change`` each change in a line."""
    fixed = process.current().threads
    if fixed is not None:
        set_threads(fixed)
        return None
    most = torch.get_num_threads()
    keeps = f"NST_THREADS={most}"
    said = None if on_change is None else (lambda now: on_change(change_line(now, most, keeps)))
    return FitThreads(most, on_change=said)
