"""A run's torch threads: set (:func:`set_threads`) and fitted to the machine's load at
its steps (:class:`FitThreads`).

A thread beyond the free cores waits at every OpenMP barrier for one: beside one CPU hog
on 2 cores, a run with 2 threads took 16.7x as long as on a quiet machine, one with 1
thread 2x (docs/PERFORMANCE.md). So a run samples the machine's load
(:class:`nst.load.MachineLoad`) at most every few seconds, at a step, on the thread that
computes, and computes with the cores the others leave (:func:`nst.load.threads_for`).
Used by the ``nst`` command (:mod:`nst.cli.threads`) and, through :class:`PainterThreads`,
the batch's and the web cluster's painters (:mod:`nst.batch.engine`,
:mod:`nst.web.cluster`); the web's own jobs share one sampler (:mod:`nst.web.manager`)
and set their threads with :func:`set_threads`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .events import Step
from .load import EVERY, MachineLoad, threads_for

#: seconds of the run before its first look at the load (its start-up is in it)
FIRST_LOOK = 0.5


def set_threads(count: int) -> None:
    """Compute with ``count`` torch threads on this thread (and threads started later);
    nothing is done when that is the number already (setting it rebuilds MKL's and
    OpenMP's settings)."""
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


class FitThreads:
    """An event handler (on the computing thread): at a step, once ``FIRST_LOOK`` then
    every ``EVERY`` seconds, the load sampled and the threads fitted to it, between 1 and
    ``most``; ``on_change`` is told each new number. :meth:`close` gives ``most`` back."""

    def __init__(
        self,
        most: int,
        load: MachineLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.most = most
        self.load = load or MachineLoad()
        self.clock = clock
        self.on_change = on_change
        self.next = clock() + FIRST_LOOK
        # a fresh load: the interval's start; one that lives across runs (a painter's,
        # sampled through its last job and idle since) knows the load now: the threads are
        # fitted at once, before the run's set-up (a painter's job spent most of its time
        # beside a hog in its set-up at every core's thread: its process is niced by Ray)
        if self.load.sample(0) is not None:
            self.fit()

    def __call__(self, event: Any) -> None:
        if not isinstance(event, Step) or self.clock() < self.next:
            return
        self.next = self.clock() + EVERY
        self.load.sample(torch.get_num_threads())
        self.fit()

    def fit(self) -> None:
        """The threads set to what the load, as last sampled, leaves (1 … ``most``)."""
        want = threads_for(self.load.busy, self.most, self.load.cores)
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
            if self.on_change is not None:
                self.on_change(want)

    def close(self) -> None:
        set_threads(self.most)


class PainterThreads:
    """A painter's threads across its jobs (a Ray actor's: the batch's, the web
    cluster's): ``most`` set at its start; with a ``load`` (sampled from then on, so a
    job's start knows it), each :meth:`job` computes with the cores other programs leave
    and gives ``most`` back at its end. Without one (a painter of one thread, or threads
    fixed by ``NST_THREADS``), every job computes with ``most``."""

    def __init__(self, most: int, load: MachineLoad | None) -> None:
        set_threads(most)
        self.most = most
        self.load = load
        if load is not None:
            load.sample(0)

    @classmethod
    def fitted(cls, most: int, fit: bool = True) -> PainterThreads:
        """A painter's threads fitted to this machine's load where there is more than one
        to fit (and ``fit``)."""
        return cls(most, MachineLoad() if fit and most > 1 else None)

    @contextmanager
    def job(
        self, on_event: Callable[[Any], None], on_change: Callable[[int], None] | None = None
    ) -> Iterator[Callable[[Any], None]]:
        """A job's event handler: ``on_event`` with the threads fitted at its steps (and
        at once, before the job's set-up); ``on_change`` is told each new number."""
        if self.load is None:
            yield on_event
            return
        fit = FitThreads(self.most, self.load, on_change=on_change)

        def fitting(event: Any) -> None:
            fit(event)
            on_event(event)

        try:
            yield fitting
        finally:
            fit.close()


def change_line(now: int, most: int, keeps: str) -> str:
    """What a change of threads says; ``keeps``: what keeps every thread (the numbers then
    do not depend on the load: a run with another number of threads rounds differently
    and ends elsewhere)."""
    if now >= most:
        return f"computing with all {most} threads again"
    return (f"other programs keep cores busy: computing with {now} of {most} threads "
            f"({keeps} keeps them all)")  # fmt: skip
