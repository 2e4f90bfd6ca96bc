"""A run computes with the cores other programs leave (nst.threads): at a step, once a
first look is due then every few seconds, from the machine's load."""

from __future__ import annotations

import pytest
import torch

from nst.events import Step
from nst.load import EVERY, CpuTimes, MachineLoad
from nst.threads import FIRST_LOOK, FitThreads, PainterThreads, set_threads


class Machine:
    """A 2-core machine's CPU times, advanced by hand: each second the whole machine is
    busy ``busy`` cores, this process ``own`` of them."""

    def __init__(self) -> None:
        self.now, self.busy, self.own, self.reads = 0.0, 0.0, 0.0, 0

    def run(self, seconds: float, busy: float, own: float) -> None:
        self.now += seconds
        self.busy += busy * seconds
        self.own += own * seconds

    def read(self) -> CpuTimes:
        self.reads += 1
        return CpuTimes(self.now, self.busy, self.own)


def step(i: int) -> Step:
    return Step(i, i, 1.0, {}, {}, {}, 0.0)


def test_a_hog_takes_a_thread_and_its_end_gives_it_back(two_threads):
    m = Machine()
    changes: list[int] = []
    fit = FitThreads(2, MachineLoad(2, m.read, clock=lambda: m.now), lambda: m.now, changes.append)
    assert m.reads == 1  # the interval's start
    m.run(0.2, busy=2.0, own=1.0)
    fit(step(1))  # before the first look: nothing read
    fit(step(2))
    assert m.reads == 1 and torch.get_num_threads() == 2
    # a hog on one core: both cores saturated, this run got one core's time for 2 threads
    m.run(FIRST_LOOK, busy=2.0, own=1.0)
    fit(step(3))
    assert m.reads == 2 and torch.get_num_threads() == 1
    m.run(EVERY / 2, busy=2.0, own=1.0)
    fit(step(4))  # not yet due
    assert m.reads == 2
    # the hog ends: one core busy (ours); the load's average falls below half a core
    looks = 0
    while torch.get_num_threads() == 1:
        m.run(EVERY, busy=1.0, own=1.0)
        fit(step(5))
        looks += 1
        assert looks < 20
    assert torch.get_num_threads() == 2 and looks > 1  # averaged, not the last sample alone
    m.run(EVERY, busy=2.0, own=1.0)
    fit(step(6))
    assert torch.get_num_threads() == 1
    fit.close()  # the run ended: the command's number back
    assert torch.get_num_threads() == 2
    assert changes == [1, 2, 1]


def test_a_quiet_machine_keeps_every_thread(two_threads):
    m = Machine()
    fit = FitThreads(2, MachineLoad(2, m.read, clock=lambda: m.now), lambda: m.now)
    for i in range(10):
        m.run(EVERY, busy=2.0, own=2.0)  # both cores ours
        fit(step(i))
    assert m.reads == 11 and torch.get_num_threads() == 2


def test_set_threads_sets_the_number_on_this_thread(two_threads):
    set_threads(1)
    assert torch.get_num_threads() == 1
    set_threads(2)
    assert torch.get_num_threads() == 2


def test_a_load_sampled_before_fits_the_threads_at_once(two_threads):
    """A painter's load lives across its jobs: a job starts with the threads the load
    leaves, before its set-up (a fresh load waits for its first look)."""
    m = Machine()
    load = MachineLoad(2, m.read, clock=lambda: m.now)
    FitThreads(2, load, lambda: m.now)  # a fresh load: nothing known yet
    assert torch.get_num_threads() == 2
    m.run(3.0, busy=1.0, own=0.0)  # the painter idle, a hog on one core
    fit = FitThreads(2, load, lambda: m.now)
    assert torch.get_num_threads() == 1 and m.reads == 2
    fit.close()
    assert torch.get_num_threads() == 2


def test_a_painter_fits_its_jobs_threads_only_where_there_are_threads_to_fit(two_threads):
    """A painter of one thread, or one whose threads the driver fixed, samples nothing and
    hands its jobs' events on as they are; one of 2 threads fits each job and gives 2
    back at its end, also when the job fails."""
    assert PainterThreads.fitted(1).load is None
    assert PainterThreads.fitted(2, fit=False).load is None
    assert PainterThreads.fitted(2).load is not None
    m = Machine()
    painter = PainterThreads(2, MachineLoad(2, m.read, clock=lambda: m.now))
    assert m.reads == 1  # sampled from the painter's start
    m.run(3.0, busy=1.0, own=0.0)  # idle beside a hog on one core
    seen: list[object] = []
    with pytest.raises(RuntimeError, match="the job failed"), painter.job(seen.append) as on_event:
        assert torch.get_num_threads() == 1  # before the job's set-up
        on_event(step(1))
        raise RuntimeError("the job failed")
    assert seen == [step(1)] and torch.get_num_threads() == 2
