"""The job manager owns every job's state: cancel racing start, many threads, the released
tensors and bounded event tails of finished jobs, and streams woken by notifications."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from types import SimpleNamespace

import torch

from nst.config import Config
from nst.events import Finished, Stage, Started
from nst.web.jobs import TERMINAL, Job
from nst.web.manager import JobManager
from nst.web.settings import WebSettings
from tests.web.helpers import fake_step


def stepping_runner(steps: int, gate: threading.Event | None = None):
    """Emits ``steps`` steps (after ``gate`` opens, if given); stops when cancelled."""

    def run(job, on_event, stop, preview_every):
        if gate is not None:
            gate.wait(30)
        on_event(Started(0, (Stage(8, 8, steps),), "cpu", "fp32", 1))
        for i in range(steps + 1):
            if stop.is_set():
                on_event(Finished(i, i + 1, 1.0, 0.0, "cancelled"))
                return torch.zeros(3, 8, 8)
            on_event(fake_step(i, 1.0 / (i + 1)))
        on_event(Finished(steps, steps + 1, 1.0, 0.0, "completed"))
        return torch.zeros(3, 8, 8)

    return run


def new_job(m: JobManager) -> Job:
    job_id, folder = m.new_folder()
    plan = SimpleNamespace(config=Config(size=16, iterations=1))
    return Job(job_id, folder, plan, None, [], {})  # type: ignore[arg-type]


def wait_ended(m: JobManager, job: Job, limit: float = 120.0) -> dict:
    """Waits until the job has ended (a bound only against a hang, not a timing)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        view = m.view(job)
        if view["state"] in TERMINAL:
            return view
        time.sleep(0.002)
    raise AssertionError(f"job {job.id} did not end: {m.view(job)['state']}")


def states(job: Job) -> list[str]:
    return [e["state"] for e in job.events if e["type"] == "state"]


def check_history(job: Job) -> None:
    """One valid life: queued, maybe running, one terminal state, nothing after it."""
    seen = states(job)
    assert seen[0] == "queued", seen
    assert seen[-1] in TERMINAL and sum(s in TERMINAL for s in seen) == 1, seen
    assert seen in (["queued", "running", seen[-1]], ["queued", "cancelled"]), seen
    seqs = [e["seq"] for e in job.events]
    assert seqs == list(range(job.first_seq, job.first_seq + len(seqs))), seqs
    assert job.plan is None  # the run's tensors are released


def test_cancel_racing_start_leaves_one_valid_history(manager):
    rng = random.Random(5)
    m = manager(stepping_runner(3), workers=2, max_waiting=200)
    jobs = []
    for _ in range(150):
        job = new_job(m)
        m.submit(job)
        delay = rng.choice([0.0, 0.0, 0.0001, 0.0005, 0.002])
        t = threading.Thread(target=lambda j=job, d=delay: (time.sleep(d), m.cancel(j)))
        t.start()
        jobs.append((job, t))
    for job, t in jobs:
        t.join()
        view = wait_ended(m, job)
        check_history(job)
        assert view["state"] in ("cancelled", "done")
        if "running" not in states(job):
            assert view["state"] == "cancelled" and view["started_at"] is None
    outcomes = {m.view(j)["state"] for j, _ in jobs}
    assert "cancelled" in outcomes  # the race was really run both ways
    assert all(view["position"] == 0 for view in m.all())


def test_readers_and_cancels_from_many_threads_see_consistent_jobs(manager):
    gate = threading.Event()
    m = manager(stepping_runner(200, gate), workers=1, max_waiting=16, event_tail=1000)
    jobs = [new_job(m) for _ in range(6)]
    for job in jobs:
        m.submit(job)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(300):
                for view in m.all():
                    assert view["state"] in ("queued", "running", *TERMINAL)
                    assert view["state"] != "queued" or view["position"] >= 1
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for r in readers:
        r.start()
    gate.set()
    for job in jobs[::2]:
        m.cancel(job)
    for r in readers:
        r.join()
    assert not errors, errors
    for job in jobs:
        wait_ended(m, job)
        check_history(job)
    assert [m.view(j)["state"] for j in jobs[::2]] == ["cancelled"] * 3


def test_a_finished_job_keeps_a_bounded_tail_and_its_whole_curve(manager):
    m = manager(stepping_runner(400), event_tail=50)
    job = new_job(m)
    m.submit(job)
    view = wait_ended(m, job)
    assert view["state"] == "done"
    assert len(job.events) == 50 and job.first_seq > 0 and job.plan is None
    assert len(job.losses) == 401 and len(view["losses"]) <= 301
    batch, after, ended = m.events_since(job, 0)  # a reader from the start gets the tail
    assert ended and [e["seq"] for e in batch] == list(range(job.first_seq, after))
    assert batch[-1] == {"type": "state", "state": "done", "elapsed": batch[-1]["elapsed"],
                         "seq": after - 1, "at": batch[-1]["at"]}  # fmt: skip


def test_a_running_job_keeps_at_most_max_events(manager):
    m = manager(stepping_runner(300), max_events=100, event_tail=10)
    job = new_job(m)
    m.submit(job)
    wait_ended(m, job)
    assert job.next_seq > 300 and len(job.events) == 10


def test_a_watcher_is_woken_by_a_record_from_another_thread(manager):
    gate = threading.Event()
    m = manager(stepping_runner(2, gate))
    job = new_job(m)
    m.submit(job)

    async def follow() -> list[str]:
        waiter = m.watch(job)
        seen: list[str] = []
        seq = 0
        try:
            while True:
                waiter.clear()
                batch, seq, ended = m.events_since(job, seq)
                seen += [e["type"] for e in batch]
                if ended:
                    return seen
                if not gate.is_set():  # (the job may already read "running": not a test)
                    gate.set()  # the worker starts now; only its records can wake us
                await asyncio.wait_for(waiter.wait(), 60)
        finally:
            m.unwatch(job, waiter)

    seen = asyncio.run(follow())
    assert seen[0] == "state" and seen[-1] == "state" and seen.count("step") == 3
    assert not m._watchers  # given back


def test_a_stop_ends_running_and_queued_jobs_interrupted_and_keeps_them(tmp_path):
    def until_stopped(job, on_event, stop, preview_every):
        on_event(Started(0, (Stage(8, 8, 1000),), "cpu", "fp32", 1))
        on_event(fake_step(0, 1.0))
        stop.wait(60)
        return torch.zeros(3, 8, 8)

    settings = WebSettings(data_dir=tmp_path / "data", workers=1)
    m = JobManager(settings, until_stopped)
    m.start()
    running, waiting = new_job(m), new_job(m)
    m.submit(running)
    m.submit(waiting)
    while m.view(running)["state"] != "running":
        time.sleep(0.002)
    m.stop(timeout=60)
    assert m.view(running)["state"] == "interrupted" and m.view(waiting)["state"] == "interrupted"
    assert states(waiting) == ["queued", "interrupted"]
    assert states(running) == ["queued", "running", "interrupted"]
    again = JobManager(settings, stepping_runner(1))
    assert again.restore_history() == 2  # both kept, for the history and "run again"
    assert {j.state for j in again.jobs.values()} == {"interrupted"}
    assert again.jobs[running.id].progress["done"] == 0  # how far it came, kept
    assert again.jobs[waiting.id].progress == {}


def test_a_second_stop_signal_stops_waiting_for_a_job_that_does_not_step(manager):
    """A job stuck before its next step (loading a network) holds the stop until
    ``hurry`` (the server's second Ctrl-C)."""
    gate, entered = threading.Event(), threading.Event()

    def stuck(job, on_event, stop, preview_every):
        entered.set()
        gate.wait(60)  # sees no stop meanwhile
        return torch.zeros(3, 8, 8)

    m = manager(stuck)
    m.submit(new_job(m))
    assert entered.wait(30)
    stopper = threading.Thread(target=m.stop, kwargs={"timeout": 120})
    stopper.start()
    stopper.join(0.3)
    assert stopper.is_alive()  # the first stop waits for the job
    m.hurry()
    stopper.join(30)
    assert not stopper.is_alive()  # the second does not
    gate.set()


def test_the_start_up_test_run_is_not_waited_for(manager, monkeypatch):
    from nst.web import calibration

    gate, entered = threading.Event(), threading.Event()

    def loading(shared):
        entered.set()
        gate.wait(60)  # the test run loading its network: it sees no stop
        return None

    m = manager(stepping_runner(1))
    monkeypatch.setattr(calibration, "_test_run", loading)
    try:
        thread = calibration.start_calibration(SimpleNamespace(manager=m))  # type: ignore[arg-type]
        assert entered.wait(30)
        m.stop(timeout=120)  # returns although the test run has not ended
        assert thread.is_alive()
        assert m.computing()  # so `nst serve` exits without finalizing under it
    finally:
        gate.set()
    thread.join(30)
    assert not m.computing()
