"""A Ray painter's calls run on pooled threads that live on; its torch work (a job, the
network's warm-up, a poster's tiles) runs on threads of its own that end with it, so no
pooled thread keeps an OpenMP team (which made w2 runs 1.9x slower in a batch)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from nst import execution
from nst import threads as fitting
from nst.batch.engine import Painter
from nst.events import Notice, Step
from nst.load import CpuTimes, MachineLoad
from nst.spread import Tiles
from nst.threads import PainterThreads
from nst.web import cluster
from nst.web.cluster import WebPainter


def _recorder(seen: list[threading.Thread], answer: object):
    def record(self, *args):
        seen.append(threading.current_thread())
        return answer

    return record


def _ended_own_threads(seen: list[threading.Thread], calls: int) -> bool:
    return len(seen) == calls and all(
        t.name == "nst-own-thread" and not t.is_alive() and t is not threading.current_thread()
        for t in seen
    )


def test_a_painters_job_and_warm_up_run_on_threads_that_end(monkeypatch):
    seen: list[threading.Thread] = []
    monkeypatch.setattr(Painter, "_paint", _recorder(seen, "painted"))
    monkeypatch.setattr(Painter, "_warm", _recorder(seen, "warm"))
    painter = Painter.__new__(Painter)  # no __init__: it sets the process's torch threads
    assert painter.run({}, {}) == "painted"
    assert painter.warm({}) == "warm"
    assert _ended_own_threads(seen, 2)


def test_a_painters_tile_calls_run_on_threads_that_end(monkeypatch):
    seen: list[threading.Thread] = []
    monkeypatch.setattr(Tiles, "bind", _recorder(seen, None))
    monkeypatch.setattr(Tiles, "stats", _recorder(seen, {"conv1_1": []}))
    monkeypatch.setattr(Tiles, "grad", _recorder(seen, (None, {})))
    for kind in (Painter, WebPainter):
        painter = kind.__new__(kind)
        painter.bind("spec")
        assert painter.stats(1, "xt", "win", (0, 0), False) == {"conv1_1": []}
        assert painter.grad(1, None, "win", (0, 0), False, {}) == (None, {})
    assert _ended_own_threads(seen, 6)


def test_a_web_painters_job_runs_on_a_thread_that_ends(monkeypatch):
    seen: list[threading.Thread] = []
    monkeypatch.setattr(WebPainter, "_paint", _recorder(seen, "the picture"))
    painter = WebPainter.__new__(WebPainter)
    assert painter.run("job") == "the picture"
    assert _ended_own_threads(seen, 1)


class Hogged:
    """A 2-core machine's load with a hog on one core beside a run that got one core."""

    def __init__(self) -> None:
        self.now = 0.0

    def read(self) -> CpuTimes:
        self.now += 1.0
        return CpuTimes(self.now, 2.0 * self.now, 1.0 * self.now)

    def load(self) -> MachineLoad:
        return MachineLoad(2, self.read, clock=lambda: self.now)


def _stepping(seen: list[int]):
    """An ``execute`` that reports three steps and records the threads at its start and
    after each step."""

    def execute(plan, on_event, *args, **kwargs):
        seen.append(torch.get_num_threads())  # at the run's start
        for i in range(3):
            on_event(Step(i, i, 1.0, {}, {}, {}, 0.0))
            seen.append(torch.get_num_threads())
        return "the picture"

    return execute


@pytest.mark.parametrize("fit", [True, False])
def test_a_painters_job_computes_with_the_cores_other_programs_leave(two_threads, monkeypatch, fit):
    """A batch painter with 2 threads beside a hog computes with 1 from its job's start
    (its load sampled since the painter's start) and gives its 2 back at the end; with the
    driver's threads fixed (NST_THREADS) it keeps its 2."""
    monkeypatch.setattr(fitting, "FIRST_LOOK", 0.0)
    seen: list[int] = []
    monkeypatch.setattr(execution, "execute", _stepping(seen))
    monkeypatch.setattr(Painter, "identity", lambda self: "host:1")
    painter = Painter.__new__(Painter)
    painter.threads, painter.told, painter.stop_flag = 2, 2, threading.Event()
    painter.fitting = PainterThreads(2, Hogged().load() if fit else None)
    events: list[object] = []
    assert painter.execute("plan", events.append, None, None, ()) == "the picture"
    notices = [e.message for e in events if isinstance(e, Notice)]
    if fit:
        assert seen == [1, 1, 1, 1] and notices == [
            "worker host:1: other programs keep cores busy: computing with 1 of 2 threads "
            "(NST_THREADS set where nst batch runs keeps them all)"
        ]
    else:
        assert seen == [2, 2, 2, 2] and notices == []
    assert torch.get_num_threads() == 2  # given back at the job's end
    # the next job starts with the load's one thread at once, and says nothing new
    events.clear()
    seen.clear()
    painter.execute("plan", events.append, None, None, ())
    assert seen == ([1, 1, 1, 1] if fit else [2, 2, 2, 2]) and len(events) == 3


def test_a_web_painters_job_computes_with_the_cores_other_programs_leave(two_threads, monkeypatch):
    monkeypatch.setattr(fitting, "FIRST_LOOK", 0.0)
    seen: list[int] = []
    monkeypatch.setattr(execution, "execute", _stepping(seen))
    monkeypatch.setattr(cluster, "_planned", lambda job, tmp: ("plan", _NoWork()))
    painter = WebPainter.__new__(WebPainter)
    painter.threads, painter.fitting = 2, PainterThreads(2, Hogged().load())
    painter.stop_flag, painter.lock, painter.events = threading.Event(), threading.Lock(), []
    job = SimpleNamespace(resume=False, tile_workers=0, preview_every=0)
    assert painter._paint(job) == "the picture"
    assert seen == [1, 1, 1, 1] and len(painter.events) == 3
    assert torch.get_num_threads() == 2


class _NoWork:
    def discard(self) -> None:
        pass
