"""A Ray painter's calls run on pooled threads that live on; its torch work (a job, the
network's warm-up, a poster's tiles) runs on threads of its own that end with it, so no
pooled thread keeps an OpenMP team (which made w2 runs 1.9x slower in a batch)."""

from __future__ import annotations

import threading

from nst.batch.engine import Painter
from nst.spread import Tiles
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
