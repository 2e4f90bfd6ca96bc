"""Estimates that hold on a busy machine: speeds kept with the load they were measured
at, the load's effect learnt from them and read at the load now, a range once runs vary,
the wait for the runs before it, and a start-up test run on a busy machine not used but
measured again once the machine is quiet."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from nst.config import Config
from nst.events import Finished, Stage, Started
from nst.load import MachineLoad
from nst.web import calibration
from nst.web.estimates import SPEEDS, Measured, Speed, SpeedBook
from nst.web.jobs import Job
from nst.web.manager import JobManager
from tests.web.helpers import fake_step
from tests.web.test_manager import stepping_runner


def timed_runner(job, on_event, stop, preview_every):
    """Four iterations of 100×100 px taking half a second each (by their events)."""
    on_event(Started(0, (Stage(100, 100, 4),), "cpu", "fp32", 1))
    for i in range(5):
        on_event(fake_step(i, 1.0, elapsed=0.5 * i))
    on_event(Finished(4, 5, 1.0, 2.0, "completed"))
    return torch.zeros(3, 8, 8)


class FixedLoad(MachineLoad):
    """A machine whose other programs want ``others`` cores, always."""

    def __init__(self, others: float, cores: int = 2) -> None:
        super().__init__(cores, lambda: None)
        self.others = others


def test_a_speed_is_kept_with_the_load_it_was_measured_at(tmp_path):
    book = SpeedBook(tmp_path)
    book.keep(Measured(1.0, 3.0, "w2", 1.0))
    assert book.speed("w2") == Speed(3.0, 3.0, 3.0, "runs")
    assert json.loads((tmp_path / SPEEDS).read_text()) == [[1.0, 3.0, "w2", 1.0, 1.0]]


def test_runs_that_stop_early_shorten_the_estimate(make_client):
    """The default run converged at iteration 252 of 300: the time asked for is the
    median share of their iterations the recent runs made."""
    client = make_client()
    manager = client.app.state.manager
    for t, share in enumerate([0.84, 0.8, 1.0]):
        manager.speeds.keep(Measured(float(t), 2.0, "gram", 0.0, share))
    e = client.get("/api/estimate?size=100&iterations=100&aspect=1&style_loss=gram").json()
    assert e["seconds"] == pytest.approx(2.0 * 100 * 0.01 * 0.84)


def test_a_range_once_the_recent_runs_vary(tmp_path):
    book = SpeedBook(tmp_path)
    for t, v in enumerate([2.0, 2.1, 2.05]):
        book.keep(Measured(float(t), v))
    speed = book.speed()
    assert speed is not None and not speed.varies  # within 15 % of the median
    book.keep(Measured(9.0, 3.0))
    speed = book.speed()
    assert speed is not None and speed.varies
    assert (speed.low, speed.median, speed.high) == (2.0, 2.1, 3.0)


def test_the_loads_effect_is_learnt_from_runs_at_different_loads(tmp_path):
    book = SpeedBook(tmp_path)
    # 2 s/it/Mpx on a quiet machine, 3 with one core wanted elsewhere, 4 with two
    for t, (busy, v) in enumerate([(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (0.0, 2.0)]):
        book.keep(Measured(float(t), v, "gram", busy))
    quiet, busy = book.speed("gram", 0.0), book.speed("gram", 1.5)
    assert quiet is not None and busy is not None
    assert quiet.median == pytest.approx(2.0) and quiet.slowdown == pytest.approx(1.0)
    assert busy.median == pytest.approx(3.5) and busy.slowdown == pytest.approx(1.75)
    assert not busy.varies  # the line fits every run
    far = book.speed("gram", 10.0)  # read no further than a core past the loads seen
    assert far is not None and far.median == pytest.approx(5.0)


def test_runs_at_one_load_teach_nothing_about_another(tmp_path):
    """A hog beside the server was measured not to slow its runs: nothing is assumed."""
    book = SpeedBook(tmp_path)
    for t, v in enumerate([2.0, 2.2]):
        book.keep(Measured(float(t), v, "", 0.1))
    busy = book.speed("", 1.0)
    assert busy is not None and busy.median == 2.2 and busy.slowdown == 1.0


def test_a_busier_machine_is_never_estimated_faster(tmp_path):
    book = SpeedBook(tmp_path)
    book.keep(Measured(1.0, 3.0, "", 0.0))
    book.keep(Measured(2.0, 2.0, "", 1.0))  # faster when busy: noise, not a law
    busy = book.speed("", 1.0)
    assert busy is not None and busy.slowdown == 1.0 and busy.median == pytest.approx(2.5)


def test_the_start_up_test_run_is_the_speed_until_a_run_is_measured(tmp_path):
    book = SpeedBook(tmp_path)
    assert book.speed() is None
    book.calibrate(2.0)
    assert book.speed() == Speed(2.0, 2.0, 2.0, "calibration")
    book.keep(Measured(1.0, 1.0))
    assert book.speed() == Speed(1.0, 1.0, 1.0, "runs")


def test_an_older_data_folder_without_the_file_takes_its_runs_speeds(tmp_path):
    book = SpeedBook(tmp_path)
    book.restore([Measured(2.0, 5.0, "gram"), Measured(1.0, 4.0, "w2")])
    assert book.runs == [Measured(1.0, 4.0, "w2"), Measured(2.0, 5.0, "gram")]
    (tmp_path / SPEEDS).write_text("[[3.0, 1.0]]")  # as an earlier version wrote it
    book.restore([Measured(2.0, 5.0, "gram")])
    assert book.runs == [Measured(3.0, 1.0)]  # the file wins
    (tmp_path / SPEEDS).write_text('[[3.0, -1.0, "", 0]]')  # damaged: the runs' own
    book.restore([Measured(2.0, 5.0, "gram")])
    assert book.runs == [Measured(2.0, 5.0, "gram")]


def test_speeds_are_kept_by_the_runs_style_loss(tmp_path):
    book = SpeedBook(tmp_path)
    book.keep(Measured(1.0, 2.0, "gram"))
    assert book.speed("w2") == Speed(2.0, 2.0, 2.0, "runs")  # none of its own yet: all
    book.keep(Measured(2.0, 4.0, "w2"))
    assert book.speed("w2") == Speed(4.0, 4.0, 4.0, "runs")
    assert book.speed("gram") == Speed(2.0, 2.0, 2.0, "runs")


def a_job(m: JobManager, iterations: int = 10) -> Job:
    job_id, folder = m.new_folder()
    plan = SimpleNamespace(config=SimpleNamespace(iterations=iterations))
    return Job(job_id, folder, plan, None, [], {})  # type: ignore[arg-type]


def test_a_run_is_kept_with_the_load_while_it_ran(manager):
    load = FixedLoad(1.0)  # a CPU hog on two cores
    m = manager(timed_runner, load)
    job = a_job(m)
    m.submit(job)
    while m.view(job)["state"] != "done":
        time.sleep(0.01)
    assert job.speed() == pytest.approx(2.0 / (4 * 0.01))  # 2 s for 4 × 0.01 Mpx
    kept = m.speeds.runs[-1]
    assert (kept.speed, kept.busy, kept.kind) == (pytest.approx(50.0), 1.0, "")
    got = m.estimate(2.0)
    assert got is not None and got.speed.median == pytest.approx(50.0) and got.wait == 0.0


def test_the_wait_counts_the_runs_before_it(manager):
    gate = threading.Event()
    m = manager(stepping_runner(4, gate), FixedLoad(0.0))
    m.run_threads = 2
    m.speeds.calibrate(10.0)  # 10 s per iteration per megapixel
    running, queued = a_job(m), a_job(m)
    running.plan = SimpleNamespace(config=running.plan.config, stages=(Stage(1000, 1000, 3),))
    queued.plan = SimpleNamespace(config=queued.plan.config, stages=(Stage(500, 1000, 4),))
    assert m.estimate(1.0).wait == 0.0  # nothing before it
    m.submit(running)
    while m.view(running)["state"] != "running":
        time.sleep(0.01)
    m.submit(queued)
    got = m.estimate(1.0)
    # 3 iterations of 1 Mpx (none done yet) and 4 of 0.5 Mpx, one worker, 10 s each
    # (the test run's share: all its iterations)
    assert got is not None and got.wait == pytest.approx(10.0 * (3 * 1.0 + 4 * 0.5))
    gate.set()


def test_a_job_without_stages_counts_as_no_work(manager):
    from nst.web.manager import _work_left

    m = manager(stepping_runner(1), FixedLoad(0.0))
    assert _work_left(a_job(m)) == 0.0  # an Explore run: too small to count


def test_a_test_run_on_a_busy_machine_is_measured_again_once_quiet(monkeypatch, manager):
    m = manager(stepping_runner(1), FixedLoad(0.0))
    loads = [1.0, 0.1]  # the cores other programs wanted during each test run
    runs = []

    def test_run(shared):
        runs.append(1)
        return loads[len(runs) - 1]

    monkeypatch.setattr(calibration, "_test_run", test_run)
    monkeypatch.setattr(calibration, "QUIET_POLL", 0.01)
    shared = SimpleNamespace(manager=m)
    assert calibration.calibrate(shared) == 0.1  # type: ignore[arg-type]
    assert len(runs) == 2
    # on a quiet machine it runs once
    runs.clear()
    loads[:] = [0.2]
    assert calibration.calibrate(shared) == 0.2  # type: ignore[arg-type]
    assert len(runs) == 1


def test_a_busy_test_run_is_not_repeated_once_a_real_run_was_measured(monkeypatch, manager):
    m = manager(stepping_runner(1), FixedLoad(1.5))  # never quiet
    runs = []
    monkeypatch.setattr(calibration, "_test_run", lambda shared: runs.append(1) or 1.5)
    monkeypatch.setattr(calibration, "QUIET_POLL", 0.01)
    m.speeds.keep(Measured(1.0, 2.0))
    assert calibration.calibrate(SimpleNamespace(manager=m)) == 1.5  # type: ignore[arg-type]
    assert runs == [1]


def test_the_estimate_route_gives_the_range_the_load_and_the_wait(make_client):
    client = make_client()
    manager = client.app.state.manager
    manager.load = FixedLoad(1.0)
    for t, (v, busy) in enumerate([(1.0, 0.0), (2.0, 1.0), (1.1, 0.0), (2.4, 1.0)]):
        manager.speeds.keep(Measured(float(t), v, "gram", busy))
    manager.speeds.keep(Measured(9.0, 9.0, "w2"))  # another loss: not in gram's estimate
    e = client.get("/api/estimate?size=100&iterations=100&aspect=1&style_loss=gram").json()
    work = 100 * 0.01  # iterations × megapixels
    # the line through (0, 1.05) and (1, 2.2), read at one core
    assert e["basis"] == "runs" and e["wait"] == 0.0
    assert e["slowdown"] == pytest.approx(2.2 / 1.05, abs=1e-3)
    assert e["seconds"] == pytest.approx(2.2 * work)
    assert e["low"] == pytest.approx(2.0 / 2.2 * 2.2 * work, rel=0.05)
    assert e["high"] == pytest.approx(2.4 * work, rel=0.05)
    assert e["seconds_per_iteration_megapixel"] == pytest.approx(2.2)


def test_the_estimate_follows_the_preset(make_client):
    """quality runs coarse to fine: more work than one stage of the same size, and its
    style loss (w2) is the one whose speed counts."""
    client = make_client()
    manager = client.app.state.manager
    manager.speeds.keep(Measured(1.0, 1.0, "gram"))
    manager.speeds.keep(Measured(2.0, 3.0, "w2"))
    ask = "/api/estimate?size=256&iterations=100&aspect=1"
    paper = client.get(ask + "&preset=paper").json()
    quality = client.get(ask + "&preset=quality").json()
    assert paper["seconds_per_iteration_megapixel"] == 1.0
    assert quality["seconds_per_iteration_megapixel"] == 3.0
    assert paper["seconds"] == pytest.approx(100 * 256 * 256 / 1e6)
    q = Config.from_dict({"size": 256, "iterations": 100, "preset": "quality"})
    assert len(q.stage_sizes) > 1  # (coarse to fine)
    work = sum(n * s * s / 1e6 for s, n in zip(q.stage_sizes, q.stage_iterations))
    assert quality["seconds"] == pytest.approx(3.0 * work)
    bad = client.get(ask + "&preset=slow")
    assert bad.status_code == 422 and "preset" in bad.json()["detail"]


def test_a_job_computes_with_the_cores_other_programs_leave_and_gives_them_back(manager):
    """Set on the job's thread at its start and at each step, from the load then; the
    server's own number again once it ends (a thread started later begins with it)."""
    load = FixedLoad(1.0)  # a CPU hog on two cores
    seen: list[int] = []

    def run(job, on_event, stop, preview_every):
        seen.append(torch.get_num_threads())
        on_event(Started(0, (Stage(8, 8, 2),), "cpu", "fp32", 1))
        on_event(fake_step(0, 1.0))
        seen.append(torch.get_num_threads())
        load.others = 0.0  # the hog ended
        on_event(fake_step(1, 0.5))
        seen.append(torch.get_num_threads())
        load.others = 1.0  # and came back: the run ends on one thread
        on_event(fake_step(2, 0.25))
        on_event(Finished(2, 3, 0.25, 0.0, "completed"))
        return torch.zeros(3, 8, 8)

    m = manager(run, load)
    own = m.run_threads = max(2, torch.get_num_threads())
    m.submit(job := a_job(m))
    while m.view(job)["state"] != "done":
        time.sleep(0.01)
    assert seen == [1, 1, 2]  # two cores: the hog's one left to it, then both
    later: list[int] = []
    fresh = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    fresh.start()
    fresh.join()
    assert later == [own] and m.threads_now == own


class PaintsOnCluster:
    """A cluster's runner: computes the jobs of ``here`` in the server, the others
    elsewhere; records the server's threads and its count of runs computing in it."""

    def __init__(self, here: set[str]) -> None:
        self.here = here
        self.manager: JobManager | None = None
        self.seen: dict[str, list[tuple[int, int]]] = {}

    def computes_here(self, job: Job) -> bool:
        return job.id in self.here

    def __call__(self, job, on_event, stop, preview_every):
        assert self.manager is not None
        seen = self.seen.setdefault(job.id, [])
        seen.append((torch.get_num_threads(), self.manager._running()))
        on_event(Started(0, (Stage(8, 8, 1),), "cpu", "fp32", 1))
        on_event(fake_step(0, 1.0))
        seen.append((torch.get_num_threads(), self.manager._running()))
        on_event(Finished(0, 1, 1.0, 0.0, "completed"))
        return torch.zeros(3, 8, 8)


def test_a_job_a_cluster_paints_leaves_the_servers_threads_alone(manager, two_threads):
    """Beside a hog, a job painted on the cluster neither changes the server's threads
    nor counts as a run computing in it; one the server computes (the Explore page's)
    fits them as any."""
    runner = PaintsOnCluster(set())
    m = runner.manager = manager(runner, FixedLoad(1.0))  # a CPU hog on two cores
    m.run_threads = 2
    elsewhere, here = a_job(m), a_job(m)
    runner.here.add(here.id)
    for job in (elsewhere, here):
        m.submit(job)
        while m.view(job)["state"] != "done":
            time.sleep(0.01)
    assert runner.seen == {elsewhere.id: [(2, 0), (2, 0)], here.id: [(1, 1), (1, 1)]}
    assert m._running() == 0 and m.threads_now == 2
