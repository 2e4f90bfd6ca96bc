"""The command's torch threads: ``NST_THREADS`` when set, else as many as torch's
default (the cores, or ``OMP_NUM_THREADS``), fewer while other programs keep cores busy.

A thread beyond the free cores waits at every OpenMP barrier for one: beside one CPU hog
on 2 cores, a run with 2 threads took 16.7x as long as on a quiet machine, one with 1
thread 2x (docs/PERFORMANCE.md). So, as a web job does (:mod:`nst.web.manager`), the
command samples the machine's load (:class:`nst.load.MachineLoad`) at most every few
seconds, at a step of its run, on the thread that computes, and computes with the cores
the others leave (:func:`nst.load.threads_for`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from .. import process
from ..events import Step
from ..load import EVERY, MachineLoad, threads_for

#: seconds of the run before its first look at the load (its start-up is in it)
FIRST_LOOK = 0.5


class FitThreads:
    """An event handler (on the computing thread): at a step, once ``FIRST_LOOK`` then
    every ``EVERY`` seconds, the load sampled and the threads fitted to it, between 1 and
    ``most``; ``on_change`` is told each change in a line. :meth:`close` gives ``most``
    back."""

    def __init__(
        self,
        most: int,
        load: MachineLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.most = most
        self.load = load or MachineLoad()
        self.clock = clock
        self.on_change = on_change
        self.load.sample(0)  # the interval's start
        self.next = clock() + FIRST_LOOK

    def __call__(self, event: Any) -> None:
        if not isinstance(event, Step) or self.clock() < self.next:
            return
        self.next = self.clock() + EVERY
        self.load.sample(torch.get_num_threads())
        want = threads_for(self.load.busy, self.most, self.load.cores)
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
            if self.on_change is not None:
                self.on_change(change_line(want, self.most))

    def close(self) -> None:
        if torch.get_num_threads() != self.most:
            torch.set_num_threads(self.most)


def change_line(now: int, most: int) -> str:
    """What a change of threads says (the numbers then depend on the load: a run with
    another number of threads rounds differently and ends elsewhere)."""
    if now >= most:
        return f"computing with all {most} threads again"
    return (f"other programs keep cores busy: computing with {now} of {most} threads "
            f"(NST_THREADS={most} keeps them all)")  # fmt: skip


def command_threads(on_change: Callable[[str], None] | None = None) -> FitThreads | None:
    """For a command's run: ``NST_THREADS``'s number set (None returned), else the handler
    that fits the threads to the load, telling ``on_change`` each change."""
    fixed = process.current().threads
    if fixed is not None:
        if torch.get_num_threads() != fixed:
            torch.set_num_threads(fixed)
        return None
    return FitThreads(torch.get_num_threads(), on_change=on_change)
