"""The job manager of one server: the one owner of every job's state.

Jobs run outside the request handlers, on worker threads fed by a bounded queue. Every
change of a job (its state, progress, event records, queue place, result) happens here,
under the manager's one lock, so a cancel racing a start, two workers and the request
threads always see one consistent job:

* ``queued`` → ``running`` → ``done`` | ``cancelled`` | ``failed``, or ``queued`` →
  ``cancelled``; a job the server's stop ends (queued or running) is ``interrupted``, not
  ``cancelled``; a terminal state is never left, and ``running`` never follows a cancel;
* event records get consecutive sequence numbers; a running job keeps at most
  ``max_events``, a finished one a tail of ``event_tail`` (its loss curve is kept whole);
* a finished job drops its plan (the run's tensors) at once.

Event streams do not poll: :meth:`JobManager.watch` gives an ``asyncio.Event`` that a new
record (or the server stopping) sets from whichever thread made it. A finished job's
record (``job.json``) is written into its folder, so the history survives a restart; it
is capped (``history_jobs``, ``history_mb``, oldest first) and finished jobs expire after
``job_ttl`` seconds. Folders of unfinished jobs are swept at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ImageError, NstError, RunStopped, one_line
from ..events import Event, Progress, Stage, Started, Step, with_progress
from ..imageio import atomic_write, save_image
from ..load import EVERY as LOAD_EVERY
from ..load import MachineLoad, threads_for
from ..threads import set_threads
from .estimates import Measured, Speed, SpeedBook
from .jobs import JOB_ID, Job, PaintsElsewhere, Runner, api_runner, plan_again
from .settings import DIR_MODE, FILE_MODE, MARKER, WebSettings, make_private_dir

log = logging.getLogger("nst.web")


class QueueFull(Exception):
    """No room for a job: the queue is at its cap, or its visitor has as many jobs waiting
    or running as each may (the message says which; the API answers 429)."""


#: other programs want fewer cores than this: the machine is quiet
QUIET = 0.25


@dataclass(frozen=True)
class Estimated:
    """A run's estimate: the speed at the load now (a range once runs vary), the work
    (iterations × megapixels), the seconds it would wait for the runs before it."""

    speed: Speed
    work: float
    wait: float


def _kind(job: Job) -> str:
    """What a run's speed is kept by: its style loss (the cost of an iteration)."""
    return str(job.params.get("style_loss") or getattr(job.config, "style_loss", "") or "")


def _work_left(job: Job) -> float:
    """A queued or running stylization's work still to do (iterations × megapixels)."""
    stages: tuple[Stage, ...] = getattr(job.plan, "stages", ())  # (none: an Explore run)
    total = sum(s.iterations * s.work for s in stages) / 1e6
    done, of = job.progress.get("done"), job.progress.get("total")
    if job.state == "running" and done and of:
        return total * max(0.0, 1 - done / of)
    return total


class JobManager:
    """The queue, the workers and the job table of one server."""

    def __init__(
        self, settings: WebSettings, runner: Runner = api_runner, load: MachineLoad | None = None
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        # the jobs waiting, one line per visitor, the lines in turn (round robin): the
        # next job is the first of the first line, whose line then goes to the end
        self.lines: OrderedDict[str, deque[Job]] = OrderedDict()
        self.ready = threading.Condition(self.lock)  # a job is waiting, or the server stops
        self.threads: list[threading.Thread] = []  # the threads :meth:`stop` waits for
        self.unwaited: list[threading.Thread] = []  # the others (the start-up test run)
        self.closing = threading.Event()
        self.hurried = threading.Event()
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        #: the measured speeds, kept apart from the jobs (deleting runs keeps them)
        self.speeds = SpeedBook(settings.data_dir)
        self.load = load or MachineLoad(reader=None if settings.measure_load else lambda: None)
        self.run_threads = torch.get_num_threads()  # the most threads one run computes with
        self.threads_now = self.run_threads  # what the running jobs compute with now
        self._aside: dict[str, Job] = {}  # jobs run outside the table (the test run)
        self._here: set[str] = set()  # the running jobs that compute in this process
        self.measuring = False  # the start-up test run is on its way

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        make_private_dir(self.settings.data_dir)
        self.restore_history()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"nst-worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        self.spawn(self._expire_loop, "nst-expiry")
        self.spawn(self._load_loop, "nst-load")

    def begin_stop(self) -> None:
        """The server is stopping: event streams end, every job is stopped (no wait).
        Queued jobs end ``interrupted`` at once (their record kept for the history); a
        running one ends ``interrupted`` at its next step, keeping its last image."""
        self.closing.set()
        with self.lock:
            waiting = [j for j in self.jobs.values() if j.state == "queued"]
            ended = [j for j in waiting if self._end(j, "interrupted")]
            for job in (*self.jobs.values(), *self._aside.values()):
                job.cancel.set()
            for job_id in list(self._watchers):
                self._notify(job_id)
            self.lines.clear()
            self.ready.notify_all()  # the idle workers see it now
        for job in ended:
            self._settle(job)

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel every job and wait for the workers (a running job ends at its next step,
        keeping its last image), unless :meth:`hurry` is called meanwhile."""
        self.begin_stop()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            while t.is_alive() and not self.hurried.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                t.join(min(0.1, left))

    def hurry(self) -> None:
        """Stop waiting for the jobs to end (a second Ctrl-C): :meth:`stop` returns now."""
        self.hurried.set()

    def restore_history(self) -> int:
        """Load the finished jobs of earlier runs (``job.json``) and remove the folders of
        unfinished ones (only folders this app made); then apply the history's cap.
        Returns how many were restored."""
        restored = []
        for child in self.settings.data_dir.iterdir():
            if child.is_dir() and JOB_ID.fullmatch(child.name) and (child / MARKER).exists():
                job = Job.restore(child)
                if job is None:
                    shutil.rmtree(child, ignore_errors=True)
                    continue
                restored.append(job)
        with self.lock:
            for job in restored:
                self.jobs[job.id] = job
        self.speeds.restore([Measured(j.finished_at or 0.0, v, _kind(j), 0.0, j.share())
                             for j in restored
                             if j.state == "done" and (v := j.speed()) is not None])  # fmt: skip
        self.trim_history()
        return len(restored)

    def _keep_speed(self, job: Job) -> None:
        """A finished run's speed, with the machine's load while it ran."""
        speed = job.speed() if job.state == "done" else None
        if speed is None or job.started_at is None or job.finished_at is None:
            return
        busy = self.load.busy_during(job.started_at, job.finished_at)
        self.speeds.keep(Measured(job.finished_at, speed, _kind(job), busy, job.share()))

    def trim_history(self) -> list[str]:
        """Remove the oldest finished jobs beyond ``history_jobs`` or ``history_mb``."""
        with self.lock:
            done = sorted(
                (j for j in self.jobs.values() if j.ended),
                key=lambda j: j.finished_at or j.created,
                reverse=True,
            )
        budget = self.settings.history_mb * 2**20
        used = 0.0
        gone = []
        for k, job in enumerate(done):
            used += _folder_bytes(job.folder)
            if k >= self.settings.history_jobs or used > budget:
                gone.append(job)
        with self.lock:
            idle = [job for job in gone if self._take_out(job)]
        _remove_folders(idle)
        return [j.id for j in gone]

    def expect_calibration(self, on: bool) -> None:
        """Whether the start-up test run is on its way (estimates wait for it)."""
        with self.lock:
            self.measuring = on

    def estimate(self, work: float, kind: str = "", owner: str = "") -> Estimated | None:
        """How long a run of ``work`` (iterations × megapixels) of ``kind`` (its style
        loss) would take if ``owner`` asked for it now, and how long it would wait for the
        runs before it: those running and those its turn comes after (None: no speed
        measured yet)."""
        speed = self.speeds.speed(kind, self.load.busy)
        if speed is None:
            return None
        with self.lock:
            running = [j for j in self.jobs.values() if j.state == "running"]
            lines: dict[str, list[Job | None]] = {o: list(ln) for o, ln in self.lines.items()}
            lines.setdefault(owner, []).append(None)  # where a new job of theirs would go
            order = _in_turn(lines)
            queued = order[: order.index(None)]
            ahead = sum(_work_left(j) for j in (*running, *queued) if j is not None)
        workers = self.settings.workers
        full = len(running) + len(queued) >= workers
        wait = speed.median * ahead * speed.share / workers if full else 0.0
        return Estimated(speed, work * speed.share, wait)  # (runs that converge stop early)

    def run_aside(self, job: Job) -> tuple[float, float] | None:
        """Run ``job`` (a small stylization, never listed: the start-up test run) on the
        calling thread like any job. A stop of the server stops it like a job; so does a
        job starting (its speed is measured then). Returns its speed (seconds per
        iteration per megapixel) and the cores other programs wanted meanwhile (None: it
        did not finish)."""
        with self.lock:
            if self.closing.is_set():
                return None
            self._aside[job.id] = job
            job.users += 1  # let go by :meth:`_run`
        start = time.time()
        try:
            self._run(job)
        finally:
            with self.lock:
                self._aside.pop(job.id, None)
        others = max(self.load.busy_during(start, time.time()), self.load.busy)
        with self.lock:
            speed = job.speed() if job.state == "done" else None
        return None if speed is None else (speed, others)

    def quiet(self) -> bool:
        """No run of this server's and the machine not busy (a test run measures well)."""
        with self.lock:
            if any(j.state in ("queued", "running") for j in self.jobs.values()):
                return False
        return self.load.busy < QUIET

    def _running(self) -> int:
        """How many runs of this server's compute in its process now (the table's and a
        test run; not those a cluster paints)."""
        with self.lock:
            return len(self._here)

    def _computes_here(self, job: Job) -> bool:
        runner = self.runner
        return not isinstance(runner, PaintsElsewhere) or runner.computes_here(job)

    def _own_threads(self) -> int:
        return self._running() * self.threads_now

    def _fit_threads(self) -> None:
        """On a job's thread: compute with the cores other programs leave (at the job's
        start and at each step; the load is sampled every few seconds)."""
        want = threads_for(self.load.busy, self.run_threads, self.load.cores, self._running())
        set_threads(want)
        self.threads_now = want

    def _give_back_threads(self) -> None:
        """On a job's thread once its run ended: the server's own number of threads again
        (a thread started later begins with the last number set)."""
        set_threads(self.run_threads)
        self.threads_now = self.run_threads

    def _load_loop(self) -> None:
        self.load.sample(0)
        while not self.closing.wait(LOAD_EVERY):
            self.load.sample(self._own_threads())

    def spawn(self, target: Callable[[], object], name: str, wait: bool = True) -> threading.Thread:
        """Run ``target`` on a thread of the manager's, joined by :meth:`stop` if ``wait``
        (a thread with nothing to keep, such as the start-up test run, is not waited for:
        it may be loading the network, where no stop is seen)."""
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        (self.threads if wait else self.unwaited).append(t)
        return t

    def computing(self) -> bool:
        """Whether a thread of the manager's is still alive (after :meth:`stop`: the start-up
        test run, which is not waited for, or a job's after a hurried stop): then the
        process must not run the interpreter's finalization under it
        (:func:`nst.cli.output.exit_now`)."""
        return any(t.is_alive() for t in (*self.threads, *self.unwaited))

    def expire(self, now: float | None = None) -> list[str]:
        """Forget finished jobs older than the TTL and delete their folders."""
        now = time.time() if now is None else now
        with self.lock:
            gone = [
                j
                for j in self.jobs.values()
                if j.ended and j.finished_at and now - j.finished_at > self.settings.job_ttl
            ]
            idle = [job for job in gone if self._take_out(job)]
        _remove_folders(idle)
        return [j.id for j in gone]

    def _expire_loop(self) -> None:
        while not self.closing.wait(min(60.0, max(1.0, self.settings.job_ttl / 4))):
            self.expire()

    # -- jobs --------------------------------------------------------------------------------
    def new_folder(self, owner: str = "") -> tuple[str, Path]:
        """A new job's id and private folder; its marker file names the visitor (for
        ``nst serve --list-jobs`` while the job has no record yet)."""
        job_id = secrets.token_hex(16)
        folder = self.settings.data_dir / job_id
        folder.mkdir(mode=DIR_MODE)
        fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        return job_id, folder

    def submit(self, job: Job) -> dict[str, Any]:
        """Queue a job; returns its view. Raises QueueFull when the line is at its cap."""
        with self.lock:
            self._queue(job)
            self.jobs[job.id] = job
            self._places()
            return job.view()

    def continue_job(self, job: Job) -> dict[str, Any]:
        """Queue an interrupted stylization again, to go on from its checkpoint. Raises
        QueueFull, or ConfigError when it cannot continue (not interrupted, no checkpoint,
        its inputs gone)."""
        with self.lock:
            if not job.continuable:
                raise ConfigError("only a run the server's stop interrupted can continue")
        plan = plan_again(job)  # reads its files: outside the lock
        with self.lock:
            if not job.continuable or self.closing.is_set():
                raise ConfigError("only a run the server's stop interrupted can continue")
            self._queue(job)
            job.plan, job.config, job.resume = plan, plan.config, True
            job.checkpointed = False
            job.state, job.error, job.finished_at = "queued", None, None
            job.cancel.clear()
            job.position = 0
            self._places()
            return job.view()

    def get(self, job_id: str, visitor: str | None = None) -> Job | None:
        """The job ``job_id`` if ``visitor`` may see it (None: everyone's, the person who
        runs a server without sign-in); another visitor's job is not there."""
        if not JOB_ID.fullmatch(job_id):
            return None
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None or (visitor is not None and job.owner != visitor):
            return None
        return job

    def all(self, visitor: str | None = None) -> list[dict[str, Any]]:
        """The views of ``visitor``'s jobs (None: every job), oldest first."""
        with self.lock:
            mine = [j for j in self.jobs.values() if visitor is None or j.owner == visitor]
            return [j.view() for j in sorted(mine, key=lambda j: j.created)]

    def view(self, job: Job) -> dict[str, Any]:
        """One job's view, read under the lock."""
        with self.lock:
            return job.view()

    def has_result(self, job: Job) -> bool:
        with self.lock:
            return job.has_result

    def cancel(self, job: Job) -> dict[str, Any]:
        """Stop a job: a queued one is cancelled at once, a running one at its next step."""
        with self.lock:
            job.cancel.set()
            finished = job.state == "queued" and self._end(job, "cancelled")
            self._unqueue(job)
            view = job.view()
        if finished:
            self._settle(job)
        return view

    def delete(self, job: Job) -> None:
        with self.lock:
            job.cancel.set()
            self._unqueue(job)
            idle = self._take_out(job)
            self._notify(job.id)
        _remove_folders([job] if idle else [])

    # -- event streams -------------------------------------------------------------------------
    def events_since(self, job: Job, seq: int) -> tuple[list[dict[str, Any]], int, bool]:
        """(records from ``seq`` on, the next sequence number, whether the job has ended and
        every record was given). Records dropped from the tail are skipped."""
        with self.lock:
            start = max(0, seq - job.first_seq)
            batch = job.events[start:]
            after = job.next_seq
            return batch, after, job.ended and seq <= after

    def watch(self, job: Job, waiter: asyncio.Event | None = None) -> asyncio.Event:
        """An event set (on the calling loop) whenever ``job`` gets a record or the server
        stops (``waiter``: one already watching other jobs, so a stream of several jobs
        waits on one); give it back with :meth:`unwatch`."""
        loop = asyncio.get_running_loop()
        waiter = waiter or asyncio.Event()
        with self.lock:
            self._watchers.setdefault(job.id, set()).add((loop, waiter))
        return waiter

    def unwatch(self, job: Job, waiter: asyncio.Event) -> None:
        with self.lock:
            entries = self._watchers.get(job.id, set())
            for entry in [e for e in entries if e[1] is waiter]:
                entries.discard(entry)
            if not entries:
                self._watchers.pop(job.id, None)

    # -- changes, always under the lock -------------------------------------------------------
    def _record(self, job: Job, record: dict[str, Any]) -> None:
        record["seq"] = job.next_seq
        record["at"] = round(time.time(), 3)  # when the server made it (delivery delays)
        job.events.append(record)
        excess = len(job.events) - self.settings.max_events
        if excess > 0:
            del job.events[:excess]
            job.first_seq += excess
        self._notify(job.id)

    def _notify(self, job_id: str) -> None:
        for loop, waiter in list(self._watchers.get(job_id, ())):
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(waiter.set)

    def _end(self, job: Job, state: str, error: str | None = None) -> bool:
        """The terminal transition (once): records it, drops the plan, trims the events.
        When it ends the job, the caller holds its folder (to write its record) until
        :meth:`_settle`."""
        if job.ended:
            return False
        job.users += 1
        job.state = state
        job.error = error
        job.finished_at = time.time()
        job.position = 0
        if error:
            self._record(job, {"type": "failed", "error": error})
        self._record(job, {"type": "state", "state": state, "elapsed": job.elapsed})
        job.plan = None  # the run's tensors
        keep = self.settings.event_tail
        if len(job.events) > keep:
            drop = len(job.events) - keep
            del job.events[:drop]
            job.first_seq += drop
        return True

    def _after_end(self, job: Job) -> None:
        """Outside the lock: the history record of a finished stylization, its speed, the
        cap; its checkpoints kept only when the server's stop interrupted it (to continue)."""
        with self.lock:
            if job.kind != "stylize" or job.id not in self.jobs:
                return
        self._keep_speed(job)
        with self.lock:
            data = json.dumps(job.history_record()).encode()
            keep = job.state == "interrupted"
        if not keep:
            shutil.rmtree(job.checkpoints, ignore_errors=True)
        kept = keep and job.has_checkpoint()
        with self.lock:
            job.checkpointed = kept
        try:
            atomic_write(job.folder / "job.json", lambda f: f.write(data), FILE_MODE)
        except ImageError:
            log.warning("job %s: could not write its record", job.id)
        self.trim_history()

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        with self.lock:
            finished = self._end(job, state, error)
        if finished:
            self._settle(job)

    def _settle(self, job: Job) -> None:
        """After :meth:`_end` said it ended ``job``: its record written, its folder let go."""
        try:
            self._after_end(job)
        finally:
            self._let_go(job)

    # -- a job's folder: removed when nothing writes into it any more ---------------------------
    def _take_out(self, job: Job) -> bool:
        """Remove ``job`` from the table (locked). Returns whether its folder can go now;
        else its last user (its run, or whoever is writing its record) removes it."""
        self.jobs.pop(job.id, None)
        job.removed = True
        return job.users == 0

    def _let_go(self, job: Job) -> None:
        """A thread is done writing into ``job``'s folder; the last one removes the folder
        if the job was removed meanwhile (a run deleted mid-way, a record just written)."""
        with self.lock:
            job.users -= 1
            last = job.removed and job.users == 0
        _remove_folders([job] if last else [])

    # -- the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.ready:
                while not self.lines and not self.closing.is_set():
                    self.ready.wait()
                if self.closing.is_set():
                    return
                job = self._next()
                started = self._begin(job)
                self._places()  # the others move up the queue
            if started:
                self._run(job)
            else:
                self._finish(job, "cancelled")

    # -- the queue: visitors in turn, always under the lock ------------------------------------
    def _queue(self, job: Job) -> None:
        """Put ``job`` at the end of its visitor's line, or raise QueueFull (the queue at
        its cap, or the visitor at theirs: ``visitor_jobs``, with sign-in on)."""
        waiting = sum(len(line) for line in self.lines.values())
        if waiting >= self.settings.max_waiting:
            raise QueueFull(
                f"the queue is full ({self.settings.max_waiting} jobs waiting); try later"
            )
        most = self.settings.visitor_jobs
        if job.owner and most:
            active = sum(
                j.owner == job.owner and j.state in ("queued", "running") and j is not job
                for j in self.jobs.values()
            )
            if active >= most:
                raise QueueFull(
                    f"you have {active} runs waiting or running, the most this server allows "
                    "each person; wait for one to end or cancel one"
                )
        self.lines.setdefault(job.owner, deque()).append(job)
        self.ready.notify()

    def _unqueue(self, job: Job) -> None:
        line = self.lines.get(job.owner)
        if line is not None and job in line:
            line.remove(job)
            if not line:
                del self.lines[job.owner]
            self._places()

    def _next(self) -> Job:
        """The next job to run: the first of the first visitor's line (that visitor's
        line then goes to the end: one job of each visitor in turn)."""
        owner, line = next(iter(self.lines.items()))
        job = line.popleft()
        if line:
            self.lines.move_to_end(owner)
        else:
            del self.lines[owner]
        return job

    def order(self) -> list[Job]:
        """The waiting jobs in the order they will start (locked)."""
        return _in_turn({o: list(line) for o, line in self.lines.items()})

    def _places(self) -> None:
        """Each waiting job's place (1 = next) and the seconds until it may start: the
        ``queued`` state record of a job just queued, a ``place`` record of one that moved."""
        running = [j for j in self.jobs.values() if j.state == "running"]
        ahead = sum(_work_left(j) for j in running)
        free = len(running) < self.settings.workers
        for k, job in enumerate(self.order()):
            if job.position != k + 1:
                first = job.position == 0  # just queued: its state record says it
                job.position = k + 1
                job.wait = self._wait(job, ahead, free and k < self.settings.workers - len(running))
                where = {"position": k + 1, "wait": job.wait}
                self._record(job, {"type": "state", "state": "queued", **where}
                             if first else {"type": "place", **where})  # fmt: skip
            ahead += _work_left(job)

    def _wait(self, job: Job, ahead: float, starts_now: bool) -> float | None:
        """Seconds until ``job`` may start: the work before it at the measured speed,
        shared by the workers (None: nothing measured yet)."""
        if starts_now:
            return 0.0
        speed = self.speeds.speed(_kind(job), self.load.busy)
        if speed is None:
            return None
        return round(speed.median * speed.share * ahead / self.settings.workers, 1)

    def _begin(self, job: Job) -> bool:
        """queued -> running, unless the job was cancelled or deleted meanwhile (locked)."""
        if job.state != "queued" or job.cancel.is_set() or job.id not in self.jobs:
            return False
        job.state = "running"
        job.position = 0
        job.started_at = time.time()
        job.users += 1  # the run writes into its folder until :meth:`_run` lets go
        for aside in self._aside.values():  # a test run sharing the machine would mismeasure
            aside.cancel.set()
        self._record(job, {"type": "state", "state": "running"})
        return True

    def _run(self, job: Job) -> None:
        """Run a started job to its end; its folder, held since it started, let go after."""
        try:
            self._paint(job)
        finally:
            self._let_go(job)

    def _paint(self, job: Job) -> None:
        progress = Progress()
        here = self._computes_here(job)  # a cluster's painter fits its own threads

        def on_event(event: Event) -> None:
            if here and isinstance(event, Step):
                self._fit_threads()
            progress.update(event)
            record = event.to_record()
            if isinstance(event, Step):
                record = with_progress(record, progress)
            with self.lock:
                if isinstance(event, Started):
                    work = sum(s.iterations * s.pixels for s in event.plan) / 1e6
                    job.progress.update(seed=event.seed, total=progress.total, work=work)
                elif isinstance(event, Step):
                    job.losses.append(float(event.loss))
                    job.progress.update({k: v for k, v in record.items() if k != "type"})
                self._record(job, record)
            if isinstance(event, Step) and event.preview is not None:
                try:
                    save_image(event.preview, job.folder / "preview.png", mode=FILE_MODE)
                except ImageError:
                    return  # a preview that cannot be written (full disk) is skipped
                with self.lock:
                    job.preview_version += 1
                    url = job.preview_url()
                    self._record(job, {"type": "preview", "iteration": event.iteration, "url": url})

        if here:
            with self.lock:
                self._here.add(job.id)
            self._fit_threads()
        try:
            try:
                image = self.runner(job, on_event, job.cancel, self.settings.preview_every)
            finally:
                if here:
                    with self.lock:
                        self._here.discard(job.id)
                    self._give_back_threads()
        except RunStopped as exc:
            self._save_result(job, exc.image)
            self._finish(job, "failed", self._public(job, str(exc)))
            return
        except NstError as exc:
            self._finish(job, "failed", self._public(job, str(exc)))
            return
        except Exception:  # a bug must not kill the worker; the server log gets the details
            log.exception("job %s failed", job.id)
            self._finish(job, "failed", "internal error (the server's log has the details)")
            return
        if not self._save_result(job, image):
            self._finish(job, "failed", "the result could not be saved on the server")
            return
        stopped = "interrupted" if self.closing.is_set() else "cancelled"
        self._finish(job, stopped if job.cancel.is_set() else "done")

    def _public(self, job: Job, message: str) -> str:
        """A message without the server's paths."""
        for place in (job.folder, self.settings.data_dir):
            message = message.replace(str(place) + os.sep, "").replace(str(place), "(data)")
        return one_line(message)

    def _save_result(self, job: Job, image: torch.Tensor) -> bool:
        with self.lock:
            if job.id not in self.jobs:
                return True  # deleted while running
        try:
            save_image(image, job.folder / "result.png", mode=FILE_MODE)
        except ImageError:
            log.exception("job %s: saving the result failed", job.id)
            return False
        with self.lock:
            job.has_result = True
        return True


def _remove_folders(jobs: list[Job]) -> None:
    for job in jobs:
        shutil.rmtree(job.folder, ignore_errors=True)


def _in_turn(lines: dict[str, list[Any]]) -> list[Any]:
    """The visitors' lines (in turn order) as the order their jobs start: the first of
    each line, then the second of each, and so on."""
    rows = list(lines.values())
    return [row[k] for k in range(max(map(len, rows), default=0)) for row in rows if k < len(row)]


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0
