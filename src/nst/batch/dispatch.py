"""Batch dispatch: which job runs on which worker, what happens when one ends, fails or its
worker dies, and how a Ctrl-C drains; the scheduling core, without Ray.

:class:`Dispatch` talks to workers through a :class:`Pool` (``engine.RayPool`` on a Ray
cluster; the tests' fake cluster scripts deaths and failures). What a worker returns is
one of three typed results (:data:`PaintResult`), never a dict a caller has to guess the
shape of.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from ..errors import ConfigError, NstError, one_line
from .jobs import BatchJob, Records


# -- what a worker returns -------------------------------------------------------------------
@dataclass(frozen=True)
class Painted:
    """A job painted: the picture as PNG bytes and its figures."""

    png: bytes
    iterations: int | None
    loss: float | None
    seconds: float
    worker: str
    node: str
    #: where it went on from a checkpoint (stage, iteration), if it did
    continued: dict[str, int] | None = None
    #: the workers its tiles were spread over (0: its own worker alone)
    workers: int = 0


@dataclass(frozen=True)
class PaintFailed:
    """A job that cannot be painted (bad input, a bug): its error in one line."""

    error: str
    worker: str
    node: str


@dataclass(frozen=True)
class PaintCancelled:
    """A job stopped by ``cancel`` (its checkpoint kept)."""

    worker: str
    node: str


PaintResult = Painted | PaintFailed | PaintCancelled


CHECKPOINTS = ".checkpoints"


def checkpoint_place(output: Path) -> Path:
    """Where a job's checkpoints go: ``OUT/.checkpoints/NAME.work`` (the batch's folder, so
    a retry on any node that shares it, and the next run of the same command, find them)."""
    return output.parent / CHECKPOINTS / output.name


# -- what the driver reports -----------------------------------------------------------------
@dataclass(frozen=True)
class JobDone:
    """A job ended: ``record`` is what batch.jsonl got (status ok, failed or skipped)."""

    job: BatchJob
    record: dict[str, Any]


@dataclass(frozen=True)
class JobEvents:
    """Event records of a running job (its Started/Step/Finished, as JSON)."""

    job: BatchJob
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class WorkersReady:
    """Every worker has started and loaded its network (``seconds`` after Ray was up)."""

    workers: int
    seconds: float


@dataclass(frozen=True)
class Retry:
    job: BatchJob
    attempt: int
    reason: str


BatchEvent = JobDone | JobEvents | Retry | WorkersReady


# -- what dispatch needs of a cluster --------------------------------------------------------
class WorkerLost(Exception):
    """The worker's process is gone (killed, out of memory, its node lost)."""


class TaskFailed(Exception):
    """The cluster could not run or return a call (the worker may live on)."""


class Pool(Protocol):
    """Workers and the calls on them; a call returns a handle (``Hashable``) to wait on."""

    def open(self) -> int:
        """Reach the cluster; how many workers it holds."""

    def close(self) -> None:
        """Let the cluster go (a local one this pool started is stopped)."""

    def spawn(self) -> Any:
        """A new worker, not started yet."""

    def warm(self, worker: Any, config: dict[str, Any]) -> Hashable:
        """Start ``worker`` and load the network of ``config``."""

    def share(self, path: str) -> Any:
        """The bytes of an input file, put where every worker can read them (OSError if
        it cannot be read)."""

    def paint(self, worker: Any, spec: dict[str, Any], inputs: dict[str, Any],
              helpers: Sequence[Any] = ()) -> Hashable:  # fmt: skip
        """Paint the job ``spec`` on ``worker`` (its tiles spread over it and ``helpers``)."""

    def wait(self, calls: list[Hashable], timeout: float) -> list[Hashable]:
        """The calls that have ended (at least one, unless ``timeout`` seconds pass)."""

    def result(self, call: Hashable) -> Any:
        """An ended call's value; raises :class:`WorkerLost` or :class:`TaskFailed`."""

    def events(self, workers: list[Any]) -> list[list[dict[str, Any]]] | None:
        """The event records each of ``workers`` gathered since asked last (None: not now)."""

    def cancel(self, worker: Any) -> None:
        """Ask ``worker`` to stop its job (the job's call then ends, cancelled)."""

    def kill(self, worker: Any) -> None:
        """End ``worker`` at once."""


@dataclass
class _Running:
    worker: Any
    job: BatchJob
    attempt: int
    helpers: list[Any] = field(default_factory=list)  # workers lent to a poster


@dataclass
class Dispatch:
    """One batch run over a pool of workers: each job goes to the next free worker; a job
    whose worker died goes to the next free one up to ``retries`` more times (a fresh
    worker replaces the dead one once it has started); every outcome is a record.

    A *poster* (a job of ``spread_from`` px or more; 0: none) runs after the other jobs,
    once no other job runs, on every free worker at once: its painter spreads its tiles
    over itself and the others (instead of one worker taking it for hours). The lent
    workers are started again (checked) when it ends, as a replacement is."""

    pool: Pool
    records: Records
    on_event: Callable[[BatchEvent], None]
    retries: int = 2
    drain_every: float | None = None
    checkpoint_every: float | None = 60.0
    spread_from: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "skipped": 0})

    def __post_init__(self) -> None:
        self.pending: deque[tuple[BatchJob, int]] = deque()
        self.idle: list[Any] = []
        self.busy: dict[Hashable, _Running] = {}
        self.starting: dict[Hashable, Any] = {}  # a replacement's start -> the worker
        self.checking: set[Hashable] = set()  # the starts of workers a poster had lent
        self.shared: dict[str, Any] = {}
        self.uses: dict[str, int] = {}
        self.warm_config: dict[str, Any] = {}
        self.last_drain = time.monotonic()

    def run(self, jobs: list[BatchJob], skipped: Sequence[BatchJob] = ()) -> dict[str, int]:
        """Run ``jobs`` on the pool's workers (``skipped`` are recorded as such); returns the
        counts by status. KeyboardInterrupt cancels the running jobs (checkpoints kept) and
        is raised again."""
        for job in skipped:
            self.counts["skipped"] += 1
            self.on_event(JobDone(job, self.records.write(job, "skipped")))
        if not jobs:
            return self.counts
        self.pending.extend((job, 0) for job in jobs if not self.poster(job))
        self.pending.extend((job, 0) for job in jobs if self.poster(job))
        for job in jobs:
            for f in set(job.inputs):
                self.uses[f] = self.uses.get(f, 0) + 1
        self.warm_config = jobs[0].config.to_dict()
        workers = self.pool.open()
        try:
            posters = any(self.poster(job) for job in jobs)  # a poster takes them all
            self.start((workers if posters else min(workers, len(jobs))) or 1)
            while self.pending or self.busy:
                self.assign()
                self.collect(self.pool.wait([*self.busy, *self.starting], self.drain_every or 1.0))
        except KeyboardInterrupt:
            self.interrupt()
            raise
        finally:
            running = [w for r in self.busy.values() for w in (r.worker, *r.helpers)]
            for worker in running + list(self.starting.values()):
                self.pool.kill(worker)
            self.pool.close()
        return self.counts

    def start(self, n: int) -> None:
        """Start ``n`` workers; one that cannot even start says so once, here, not once per
        job (:class:`ConfigError`)."""
        began = time.perf_counter()
        workers = [self.pool.spawn() for _ in range(n)]
        try:
            for call in [self.pool.warm(w, self.warm_config) for w in workers]:
                self.pool.result(call)
        except (WorkerLost, TaskFailed) as exc:
            for w in workers:
                self.pool.kill(w)
            raise ConfigError(f"the workers cannot start ({one_line(str(exc))[:200]})") from None
        self.idle.extend(workers)
        self.on_event(WorkersReady(n, time.perf_counter() - began))

    def poster(self, job: BatchJob) -> bool:
        """Whether ``job`` spreads its tiles over every free worker."""
        return 0 < self.spread_from <= job.config.size

    def assign(self) -> None:
        """Give the waiting jobs to the free workers (a poster, once no job runs, to all
        of them)."""
        while self.idle and self.pending:
            job, attempt = self.pending[0]
            lend = self.poster(job) and len(self.idle) + len(self.busy) + len(self.starting) > 1
            if lend and (self.busy or self.checking):
                return  # the others end (the lent come back) first, then it has them all
            self.pending.popleft()
            try:
                inputs = {f: self.share(f) for f in set(job.inputs)}
            except OSError as exc:
                self.finish(job, "failed", error=f"{job.content}: cannot read ({exc.strerror})")
                continue
            worker = self.idle.pop()
            helpers, self.idle = (self.idle, []) if lend else ([], self.idle)
            call = self.pool.paint(worker, self.spec(job), inputs, helpers)
            self.busy[call] = _Running(worker, job, attempt, helpers)

    def spec(self, job: BatchJob) -> dict[str, Any]:
        return {
            "content": job.content,
            "styles": list(job.styles),
            "config": job.config.to_dict(),
            # where the job keeps its checkpoints: a retry (a worker lost, the same command
            # after Ctrl-C) continues from them where the node can reach it
            "work": str(checkpoint_place(job.output)),
            "checkpoint_every": self.checkpoint_every,
        }

    def share(self, path: str) -> Any:
        if path not in self.shared:
            self.shared[path] = self.pool.share(path)
        return self.shared[path]

    def collect(self, ended: list[Hashable]) -> None:
        """Take what the ``ended`` calls returned (and the running jobs' events when due)."""
        if self.drain_every is not None and time.monotonic() - self.last_drain >= self.drain_every:
            self.last_drain = time.monotonic()
            self.drain()
        for call in ended:
            if call in self.starting:
                self.started(call)
            else:
                self.ended(call, self.busy.pop(call))

    def started(self, call: Hashable) -> None:
        fresh = self.starting.pop(call)
        self.checking.discard(call)
        try:
            self.pool.result(call)
        except (WorkerLost, TaskFailed):  # it died starting: another one
            self.replace()
            return
        self.idle.append(fresh)

    def replace(self) -> None:
        """A fresh worker for a dead one; it gets jobs once started (one that cannot start,
        its node gone and the other CPUs taken, never holds a job)."""
        fresh = self.pool.spawn()
        self.starting[self.pool.warm(fresh, self.warm_config)] = fresh

    def ended(self, call: Hashable, run: _Running) -> None:
        job, attempt = run.job, run.attempt
        for helper in run.helpers:  # lent: checked (started again) before the next job
            check = self.pool.warm(helper, self.warm_config)
            self.starting[check] = helper
            self.checking.add(check)
        try:
            result = self.pool.result(call)
        except WorkerLost as exc:
            self.replace()
            why = f"the worker died ({exc})" if str(exc) else "the worker died"
            if attempt < self.retries:
                self.on_event(Retry(job, attempt + 1, why))
                self.pending.appendleft((job, attempt + 1))
            else:
                self.finish(job, "failed", error=f"{why} {attempt + 1} times",
                            attempts=attempt + 1)  # fmt: skip
            return
        except TaskFailed as exc:
            self.idle.append(run.worker)
            self.finish(job, "failed", error=f"ray: {one_line(str(exc))[:200]}")
            return
        self.idle.append(run.worker)
        self.painted(job, result, attempt)

    def painted(self, job: BatchJob, result: PaintResult, attempt: int) -> None:
        from ..imageio import save_image

        if isinstance(result, PaintCancelled):  # only after an interrupt: nothing to record
            return
        if isinstance(result, PaintFailed):
            self.finish(job, "failed", error=result.error, worker=result.worker,
                        node=result.node, attempts=attempt + 1)  # fmt: skip
            return
        try:
            save_image(Image.open(io.BytesIO(result.png)), job.output)
        except NstError as exc:
            self.finish(job, "failed", error=str(exc), worker=result.worker)
            return
        extra: dict[str, Any] = {"continued": result.continued} if result.continued else {}
        if result.workers:
            extra["workers"] = result.workers
        self.finish(job, "ok", iterations=result.iterations, loss=result.loss,
                    seconds=result.seconds, worker=result.worker, node=result.node,
                    attempts=attempt + 1, **extra)  # fmt: skip

    def finish(self, job: BatchJob, status: str, **fields: Any) -> None:
        self.counts[status] += 1
        for f in set(job.inputs):  # an input no job waits for any more is let go
            self.uses[f] -= 1
            if self.uses[f] <= 0:
                self.shared.pop(f, None)
        self.on_event(JobDone(job, self.records.write(job, status, **fields)))

    def drain(self) -> None:
        running = list(self.busy.values())
        gathered = self.pool.events([r.worker for r in running])
        for records, run in zip(gathered or [], running):
            if records:
                self.on_event(JobEvents(run.job, records))

    def interrupt(self, grace: float = 5.0) -> None:
        """Cancel the running jobs and wait up to ``grace`` seconds for them to stop (their
        checkpoints are written as they do)."""
        for run in self.busy.values():
            self.pool.cancel(run.worker)
        deadline = time.monotonic() + grace
        while self.busy and time.monotonic() < deadline:
            for call in self.pool.wait(list(self.busy), 0.5):
                with contextlib.suppress(KeyError):
                    self.busy.pop(call)
