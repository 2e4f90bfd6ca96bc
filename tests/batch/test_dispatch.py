"""Batch dispatch against a fake cluster, without Ray: which worker gets which job, retries
after a worker's death, failures, inputs shared once, a start that fails, a Ctrl-C.

The fake pool ends calls in the order they were made, one per wait, so every run is
deterministic; what a job does on each attempt is scripted by its content's name.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from nst.batch.dispatch import (
    Dispatch,
    JobDone,
    JobEvents,
    PaintCancelled,
    Painted,
    PaintFailed,
    Retry,
    TaskFailed,
    WorkerLost,
    WorkersReady,
)
from nst.batch.jobs import BatchJob, Records
from nst.config import Config
from nst.errors import ConfigError


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buf, "PNG")
    return buf.getvalue()


class FakePool:
    """Workers are numbers; ``script[content]`` lists what each attempt of a job does:
    "ok", "died" (its worker's process ends), "error" (the job fails), "ray" (the call
    cannot be returned). ``start_fails`` makes every start fail; ``interrupt_at`` raises
    KeyboardInterrupt in that wait (counting from 1)."""

    def __init__(self, workers: int, script: dict[str, list[str]], start_fails: bool = False,
                 interrupt_at: int | None = None) -> None:  # fmt: skip
        self.workers = workers
        self.script = {k: list(v) for k, v in script.items()}
        self.start_fails = start_fails
        self.interrupt_at = interrupt_at
        self.spawned = 0
        self.calls: dict[int, tuple] = {}  # call -> (kind, worker, spec)
        self.order: list[int] = []
        self.shared: list[str] = []
        self.killed: list[int] = []
        self.cancelled: list[int] = []
        self.painted_on: list[tuple[str, int]] = []
        self.lent: dict[int, list[int]] = {}  # a paint call -> the workers lent to it
        self.lost_warm: set[int] = set()  # workers whose next start finds them dead
        self.die_when_lent: set[int] = set()  # ... once they were lent to a poster
        self.waits = 0
        self.opened = self.closed = False

    def open(self) -> int:
        self.opened = True
        return self.workers

    def close(self) -> None:
        self.closed = True

    def spawn(self) -> int:
        self.spawned += 1
        return self.spawned

    def _call(self, *what) -> int:
        call = len(self.calls) + 1
        self.calls[call] = what
        self.order.append(call)
        return call

    def warm(self, worker, config):
        assert config["size"] == 16
        return self._call("warm", worker, None)

    def share(self, path):
        self.shared.append(path)
        return f"ref:{path}"

    def paint(self, worker, spec, inputs, helpers=()):
        assert set(inputs) == {spec["content"], *spec["styles"]}
        assert all(ref == f"ref:{p}" for p, ref in inputs.items())
        self.painted_on.append((spec["content"], worker))
        call = self._call("paint", worker, spec)
        self.lent[call] = list(helpers)
        self.lost_warm |= self.die_when_lent & set(helpers)
        return call

    def wait(self, calls, timeout):
        self.waits += 1
        if self.waits == self.interrupt_at:
            raise KeyboardInterrupt
        for call in self.order:  # the oldest first
            if call in calls:
                self.order.remove(call)
                return [call]
        return []

    def result(self, call):
        kind, worker, spec = self.calls[call]
        if kind == "warm":
            if worker in self.lost_warm:
                raise WorkerLost("ActorDiedError")
            if self.start_fails:
                raise TaskFailed("no CPU left for a worker")
            return f"worker {worker}"
        if worker in self.cancelled:
            return PaintCancelled(f"w{worker}", "node")
        outcome = self.script[spec["content"]].pop(0)
        if outcome == "died":
            raise WorkerLost("ActorDiedError")
        if outcome == "ray":
            raise TaskFailed("the object was lost")
        if outcome == "error":
            return PaintFailed(f"{spec['content']}: not an image", f"w{worker}", "node")
        helpers = self.lent[call]
        return Painted(png("red"), 4, 1.5, 0.25, f"w{worker}", "node",
                       workers=1 + len(helpers) if helpers else 0)  # fmt: skip

    def events(self, workers):
        return [[{"type": "step", "worker": w}] for w in workers]

    def cancel(self, worker):
        self.cancelled.append(worker)

    def kill(self, worker):
        self.killed.append(worker)


def make_jobs(tmp_path: Path, names: list[str], style: str = "s.png") -> list[BatchJob]:
    for name in [*names, style]:
        (tmp_path / name).write_bytes(png("blue"))
    config = Config(size=16, iterations=4)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return [
        BatchJob(
            f"row {i + 2}",
            str(tmp_path / n),
            (str(tmp_path / style),),
            config,
            out / f"{Path(n).stem}.png",
        )
        for i, n in enumerate(names)
    ]


def dispatch(pool: FakePool, tmp_path: Path, **kw) -> tuple[Dispatch, list]:
    events: list = []
    return Dispatch(pool, Records(tmp_path / "out"), events.append, **kw), events


def records(tmp_path: Path) -> dict[str, dict]:
    lines = (tmp_path / "out" / "batch.jsonl").read_text().splitlines()
    return {Path(r["output"]).stem: r for r in map(json.loads, lines)}


def test_every_job_runs_once_on_the_next_free_worker(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png", "c.png"])
    pool = FakePool(2, {j.content: ["ok"] for j in jobs})
    d, events = dispatch(pool, tmp_path)
    assert d.run(jobs) == {"ok": 3, "failed": 0, "skipped": 0}
    assert isinstance(events[0], WorkersReady) and events[0].workers == 2
    assert pool.spawned == 2  # no more workers than asked
    # a, b on the two workers; c on the one whose job ended first (a's)
    assert [(Path(c).name, w) for c, w in pool.painted_on] == [("a.png", 2), ("b.png", 1),
                                                               ("c.png", 2)]  # fmt: skip
    got = records(tmp_path)
    assert {k: (r["status"], r["attempts"], r["worker"]) for k, r in got.items()} == {
        "a": ("ok", 1, "w2"), "b": ("ok", 1, "w1"), "c": ("ok", 1, "w2")}  # fmt: skip
    assert Image.open(tmp_path / "out" / "a.png").getpixel((0, 0)) == (255, 0, 0)
    assert pool.opened and pool.closed and pool.killed == []


def test_a_job_whose_worker_died_goes_to_the_next_worker_and_a_fresh_one_starts(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png"])
    script = {jobs[0].content: ["died", "ok"], jobs[1].content: ["died", "died", "died"]}
    pool = FakePool(1, script)
    d, events = dispatch(pool, tmp_path, retries=2)
    assert d.run(jobs) == {"ok": 1, "failed": 1, "skipped": 0}
    retries = [(Path(e.job.content).name, e.attempt, e.reason) for e in events
               if isinstance(e, Retry)]  # fmt: skip
    assert retries == [
        ("a.png", 1, "the worker died (ActorDiedError)"),
        ("b.png", 1, "the worker died (ActorDiedError)"),
        ("b.png", 2, "the worker died (ActorDiedError)"),
    ]
    got = records(tmp_path)
    assert (got["a"]["status"], got["a"]["attempts"]) == ("ok", 2)
    assert got["b"]["status"] == "failed"
    assert got["b"]["error"] == "the worker died (ActorDiedError) 3 times"
    # each death is replaced by a fresh worker, which gets a job once it has started; the
    # last replacement, started after the last job ended, is let go unused
    assert [(Path(c).name, w) for c, w in pool.painted_on] == [
        ("a.png", 1), ("a.png", 2), ("b.png", 2), ("b.png", 3), ("b.png", 4)]  # fmt: skip
    assert pool.spawned == 5 and pool.killed == [5]


def test_a_failed_job_is_recorded_and_its_worker_goes_on(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png"])
    pool = FakePool(1, {jobs[0].content: ["error"], jobs[1].content: ["ray"]})
    d, _ = dispatch(pool, tmp_path)
    assert d.run(jobs) == {"ok": 0, "failed": 2, "skipped": 0}
    got = records(tmp_path)
    assert got["a"]["error"] == f"{jobs[0].content}: not an image"
    assert (got["a"]["worker"], got["a"]["attempts"]) == ("w1", 1)
    assert got["b"]["error"] == "ray: the object was lost"
    assert pool.spawned == 1 and [w for _, w in pool.painted_on] == [1, 1]


def test_inputs_are_shared_once_and_let_go_when_no_job_needs_them(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png", "c.png"])
    pool = FakePool(1, {j.content: ["ok"] for j in jobs})
    d, _ = dispatch(pool, tmp_path)
    d.run(jobs)
    style = str(tmp_path / "s.png")
    assert pool.shared.count(style) == 1  # one copy for the three jobs
    assert sorted(pool.shared) == sorted([style, *(j.content for j in jobs)])
    assert d.shared == {}  # nothing kept once every job ended


def test_an_unreadable_input_fails_its_job_only(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png"])
    Path(jobs[0].content).unlink()

    class Reading(FakePool):
        def share(self, path):
            with open(path, "rb"):
                return super().share(path)

    pool = Reading(1, {jobs[1].content: ["ok"]})
    d, _ = dispatch(pool, tmp_path)
    assert d.run(jobs) == {"ok": 1, "failed": 1, "skipped": 0}
    assert records(tmp_path)["a"]["error"] == (
        f"{jobs[0].content}: cannot read (No such file or directory)")  # fmt: skip


def test_workers_that_cannot_start_say_so_once(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png"])
    pool = FakePool(2, {}, start_fails=True)
    d, events = dispatch(pool, tmp_path)
    with pytest.raises(ConfigError) as caught:
        d.run(jobs)
    assert str(caught.value) == "the workers cannot start (no CPU left for a worker)"
    assert sorted(pool.killed) == [1, 2] and pool.closed
    assert events == [] and not (tmp_path / "out" / "batch.jsonl").exists()


def test_skipped_jobs_are_recorded_without_reaching_the_cluster(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png"])
    pool = FakePool(1, {})
    d, events = dispatch(pool, tmp_path)
    assert d.run([], skipped=jobs) == {"ok": 0, "failed": 0, "skipped": 1}
    assert not pool.opened
    assert [type(e) for e in events] == [JobDone] and events[0].record["status"] == "skipped"


def test_ctrl_c_cancels_the_running_jobs_records_nothing_and_lets_the_cluster_go(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png", "b.png", "c.png"])
    pool = FakePool(2, {j.content: ["ok"] for j in jobs}, interrupt_at=2)
    d, _ = dispatch(pool, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        d.run(jobs)
    assert records(tmp_path)["a"]["status"] == "ok"  # ended before the Ctrl-C
    assert pool.cancelled == [1, 2]  # b's worker and c's, which got a's worker
    assert set(records(tmp_path)) == {"a"}  # the cancelled ones come back next run
    assert pool.closed and d.busy == {} and pool.killed == []


def test_the_running_jobs_events_are_read_when_asked(tmp_path):
    jobs = make_jobs(tmp_path, ["a.png"])
    pool = FakePool(1, {jobs[0].content: ["ok"]})
    d, events = dispatch(pool, tmp_path, drain_every=0.0)
    d.run(jobs)
    drained = [e for e in events if isinstance(e, JobEvents)]
    assert [(e.job, e.records) for e in drained] == [(jobs[0], [{"type": "step", "worker": 1}])]


def test_posters_run_last_on_every_worker_and_the_lent_ones_are_checked_between(tmp_path):
    import dataclasses

    jobs = make_jobs(tmp_path, ["p.png", "a.png", "b.png", "c.png", "q.png"])
    for k in (0, 4):
        jobs[k] = dataclasses.replace(jobs[k], config=Config(size=64, iterations=4))
    jobs = [jobs[1], jobs[0], *jobs[2:]]  # a poster second: it still goes after the others
    pool = FakePool(3, {j.content: ["ok"] for j in jobs})
    pool.die_when_lent = {2}  # it dies while lent: found when checked after
    d, _ = dispatch(pool, tmp_path, spread_from=32)
    assert d.run(jobs) == {"ok": 5, "failed": 0, "skipped": 0}
    order = [(Path(c).name, w) for c, w in pool.painted_on]
    assert [name for name, _ in order] == ["a.png", "b.png", "c.png", "p.png", "q.png"]
    p_call, q_call = sorted(c for c, h in pool.lent.items() if h)
    # p on all three workers (its own and two lent), none busy with another job meanwhile
    assert sorted([order[3][1], *pool.lent[p_call]]) == [1, 2, 3]
    assert sum(1 for helpers in pool.lent.values() if helpers) == 2
    # the lent workers were started again (checked) before q took them: the one that
    # died is replaced, and q has the two alive (the replacement was still starting)
    warmed = [pool.calls[c][1] for c in sorted(pool.calls)
              if pool.calls[c][0] == "warm" and p_call < c < q_call]  # fmt: skip
    assert sorted(warmed) == [2, 3, 4]
    assert 2 not in [order[4][1], *pool.lent[q_call]]
    assert len([order[4][1], *pool.lent[q_call]]) == 2
    got = records(tmp_path)
    assert got["p"]["workers"] == 3 and got["q"]["workers"] == 2 and "workers" not in got["a"]


def test_without_spread_from_a_large_job_is_a_job_like_any(tmp_path):
    import dataclasses

    jobs = make_jobs(tmp_path, ["p.png", "a.png"])
    jobs[0] = dataclasses.replace(jobs[0], config=Config(size=64, iterations=4))
    pool = FakePool(2, {j.content: ["ok"] for j in jobs})
    d, _ = dispatch(pool, tmp_path)
    assert d.run([jobs[1], jobs[0]]) == {"ok": 2, "failed": 0, "skipped": 0}
    assert [Path(c).name for c, _ in pool.painted_on] == ["a.png", "p.png"]
    assert not any(pool.lent.values()) and "workers" not in records(tmp_path)["p"]


def test_a_batch_of_one_poster_starts_every_worker_for_it(tmp_path):
    import dataclasses

    (job,) = make_jobs(tmp_path, ["p.png"])
    job = dataclasses.replace(job, config=Config(size=64, iterations=4))
    pool = FakePool(3, {job.content: ["ok"]})
    d, _ = dispatch(pool, tmp_path, spread_from=64)
    d.pool.warm = lambda worker, config: pool._call("warm", worker, None)  # size 64
    assert d.run([job]) == {"ok": 1, "failed": 0, "skipped": 0}
    assert pool.spawned == 3 and len(next(h for h in pool.lent.values())) == 2
    assert records(tmp_path)["p"]["workers"] == 3
