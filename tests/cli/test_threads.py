"""The command computes with the cores other programs leave (nst.cli.threads): at a step,
once a first look is due then every few seconds, from the machine's load."""

from __future__ import annotations

import pytest
import torch

from nst import process
from nst.cli import threads
from nst.events import Step
from nst.load import EVERY, CpuTimes, MachineLoad
from tests.cli.test_usage import run_main
from tests.conftest import requires_weights


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


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_hog_takes_a_thread_and_its_end_gives_it_back(two_threads):
    m = Machine()
    lines: list[str] = []
    fit = threads.FitThreads(
        2, MachineLoad(2, m.read, clock=lambda: m.now), lambda: m.now, lines.append
    )
    assert m.reads == 1  # the interval's start
    m.run(0.2, busy=2.0, own=1.0)
    fit(step(1))  # before the first look: nothing read
    fit(step(2))
    assert m.reads == 1 and torch.get_num_threads() == 2
    # a hog on one core: both cores saturated, this run got one core's time for 2 threads
    m.run(threads.FIRST_LOOK, busy=2.0, own=1.0)
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
    busy = ("other programs keep cores busy: computing with 1 of 2 threads "
            "(NST_THREADS=2 keeps them all)")  # fmt: skip
    assert lines == [busy, "computing with all 2 threads again", busy]


def test_a_quiet_machine_keeps_every_thread(two_threads):
    m = Machine()
    fit = threads.FitThreads(2, MachineLoad(2, m.read, clock=lambda: m.now), lambda: m.now)
    for i in range(10):
        m.run(EVERY, busy=2.0, own=2.0)  # both cores ours
        fit(step(i))
    assert m.reads == 11 and torch.get_num_threads() == 2


def test_nst_threads_fixes_the_number_and_fits_nothing(two_threads, monkeypatch):
    monkeypatch.setattr(process, "_current", process.ProcessSettings(threads=1))
    assert threads.command_threads() is None
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(process, "_current", process.ProcessSettings(threads=None))
    torch.set_num_threads(2)
    fit = threads.command_threads()
    assert isinstance(fit, threads.FitThreads) and fit.most == 2


@requires_weights
def test_the_command_beside_a_hog_computes_with_fewer_threads_and_says_so(
    two_threads, monkeypatch, capsys, tmp_path
):
    """`nst stylize` with NST_THREADS=auto on a machine whose load (faked) shows a hog:
    one line when it drops a thread, and its number back once the run ended."""
    m = Machine()

    def hogged() -> CpuTimes:
        m.run(1.0, busy=2.0, own=1.0)
        return m.read()

    seen: list[int] = []
    monkeypatch.setattr(threads, "FIRST_LOOK", 0.0)
    monkeypatch.setattr(threads, "MachineLoad", lambda: MachineLoad(2, hogged, clock=lambda: m.now))
    monkeypatch.setattr(threads.FitThreads, "close", _recording_close(seen))
    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    monkeypatch.setenv("NST_THREADS", "auto")
    out = tmp_path / "x.png"
    code, _, err = run_main(capsys, "stylize", "builtin:chelsea", "builtin:swirls", "-o",
                            str(out), "--size", "24", "--iterations", "3")  # fmt: skip
    assert code == 0, err
    assert ("nst: other programs keep cores busy: computing with 1 of 2 threads "
            "(NST_THREADS=2 keeps them all)\n") in err  # fmt: skip
    assert seen == [1] and torch.get_num_threads() == 2 and out.is_file()


def _recording_close(seen: list[int]):
    close = threads.FitThreads.close

    def recording(self) -> None:
        seen.append(torch.get_num_threads())  # what the run computed with at its end
        close(self)

    return recording
