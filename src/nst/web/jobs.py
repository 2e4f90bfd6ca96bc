"""Jobs of the web app: a bounded queue, worker threads, one folder per job.

Jobs run outside the request handlers. Each has a server-generated id, a folder
under the data directory holding its (re-encoded) inputs, its latest preview and
its result, and an append-only list of small event records that the events
stream replays and follows. A finished job's record (``job.json``: settings, state,
loss curve, speed) is written into its folder, so the history survives a restart;
it is capped (``history_jobs``, ``history_mb``, oldest first) and finished jobs expire
after ``job_ttl`` seconds. Folders of unfinished jobs are swept at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ImageError, NstError, RunStopped, one_line
from ..events import Event, Progress, Started, Step
from ..explain.ascent import VisualizeConfig
from ..explain.targets import Target
from ..imageio import atomic_write, save_image
from ..planning import Plan

log = logging.getLogger("nst.web")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TERMINAL = ("done", "cancelled", "failed")
#: marks a folder as made by this app (only such folders are swept)
MARKER = ".nst-job"
#: job folders and files are the server user's alone
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_data_dir() -> Path:
    """A per-user folder: ``$XDG_DATA_HOME/nst/web`` (``~/.local/share/nst/web``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "nst" / "web"


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700, or raise OSError."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


class QueueFull(Exception):
    pass


@dataclass(frozen=True)
class WebSettings:
    """Limits and places of one server."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_waiting: int = 8
    max_body: int = 20 * 2**20
    max_size: int = 1024
    max_iterations: int = 2000
    max_styles: int = 4
    max_pixels: int = 40_000_000  # decoded pixels of one upload
    max_request_pixels: int = 60_000_000  # decoded pixels of all uploads of one job
    header_timeout: float = 10.0  # seconds for a request's headers
    body_timeout: float = 30.0  # seconds between two parts of a request body
    job_ttl: float = 30 * 86400.0
    preview_every: int = 5
    history_jobs: int = 50  # finished jobs kept (across restarts), oldest removed first
    history_mb: float = 500.0  # and their folders' total size
    allowed_hosts: tuple[str, ...] = ()

    def limits(self) -> dict[str, float]:
        """The numeric limits by name: what options declare as their ``cap``."""
        out: dict[str, float] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f.name] = value
        return out


@dataclass(frozen=True)
class AscentPlan:
    """A gradient-ascent run (the Explore page): what to maximize and how."""

    target: Target
    config: VisualizeConfig


@dataclass
class Job:
    """A stylization (``plan`` a :class:`Plan`) or a gradient-ascent run (an
    :class:`AscentPlan`), with its folder, state and event records."""

    id: str
    folder: Path
    plan: Plan | AscentPlan | None  # None: restored from the history (finished)
    content: Path | None
    styles: list[Path]
    params: dict[str, Any]
    created: float = field(default_factory=time.time)
    state: str = "queued"
    error: str | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    has_result: bool = False
    preview_version: int = 0
    started_at: float | None = None
    losses: list[float] = field(default_factory=list)
    position: int = 0  # place in the queue (1 = next), 0 when not queued
    kind_name: str = ""  # kept for restored jobs

    def record(self, event: dict[str, Any]) -> None:
        event["seq"] = len(self.events)
        self.events.append(event)

    @property
    def kind(self) -> str:
        if self.kind_name:
            return self.kind_name
        return "visualize" if isinstance(self.plan, AscentPlan) else "stylize"

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def curve(self, points: int = 300) -> list[float]:
        """The loss per iteration, thinned to at most ``points`` values."""
        losses = self.losses
        if len(losses) <= points:
            return list(losses)
        step = len(losses) / points
        return [losses[int(i * step)] for i in range(points)] + [losses[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "created": self.created,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed": self.elapsed,
            "position": self.position if self.state == "queued" else 0,
            "error": self.error,
            "losses": self.curve(),
            "params": self.params,
            "progress": self.progress.copy(),  # the worker updates it concurrently
            "inputs": {
                "content": f"/api/jobs/{self.id}/inputs/content.png" if self.content else None,
                "styles": [f"/api/jobs/{self.id}/inputs/{p.name}" for p in self.styles],
                "mask": (
                    f"/api/jobs/{self.id}/inputs/mask.png"
                    if (self.folder / "mask.png").is_file()
                    else None
                ),
            },
            "result": f"/api/jobs/{self.id}/result.png" if self.has_result else None,
            "preview": (
                f"/api/jobs/{self.id}/preview.png?v={self.preview_version}"
                if self.preview_version
                else None
            ),
        }

    def save_record(self) -> None:
        """``job.json``: what the history shows after a restart (written atomically)."""
        record = {
            "id": self.id, "kind": self.kind, "state": self.state, "error": self.error,
            "created": self.created, "started_at": self.started_at,
            "finished_at": self.finished_at, "params": self.params,
            "progress": self.progress, "losses": self.curve(), "has_result": self.has_result,
            "styles": [p.name for p in self.styles], "speed": self.speed(),
        }  # fmt: skip
        data = json.dumps(record).encode()
        try:
            atomic_write(self.folder / "job.json", lambda f: f.write(data), FILE_MODE)
        except ImageError:
            log.warning("job %s: could not write its record", self.id)

    def speed(self) -> float | None:
        """Seconds per iteration per megapixel of this run (None if it did not run)."""
        work, total = self.progress.get("work"), self.progress.get("total")
        seconds, done = self.progress.get("elapsed"), self.progress.get("done")
        if not work or not total or not seconds or not done:
            return None
        return float(seconds / (work * done / total))  # the optimization's time, no loading

    @classmethod
    def restore(cls, folder: Path) -> Job | None:
        """A finished job from its folder's ``job.json`` (None if there is none)."""
        try:
            r = json.loads((folder / "job.json").read_text())
            if r["id"] != folder.name or r["state"] not in TERMINAL:
                return None
            styles = [folder / n for n in r.get("styles", []) if safe_child(folder, n)]
            content = folder / "content.png"
            job = cls(
                r["id"], folder, None, content if content.is_file() else None, styles,
                dict(r["params"]), created=float(r["created"]), state=r["state"],
                error=r.get("error"), finished_at=r.get("finished_at"),
                progress=dict(r.get("progress") or {}),
                has_result=bool(r.get("has_result")) and (folder / "result.png").is_file(),
                started_at=r.get("started_at"), losses=[float(x) for x in r.get("losses", [])],
                kind_name=str(r.get("kind", "stylize")),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None
        job.record({"type": "state", "state": job.state})
        return job


Runner = Callable[[Job, Callable[[Event], None], threading.Event, int], torch.Tensor]


def api_runner(
    job: Job, on_event: Callable[[Event], None], stop: threading.Event, preview_every: int
) -> torch.Tensor:
    """Runs a job's plan (made when the job was submitted) through the library."""
    from ..execution import execute
    from ..explain import visualize

    if isinstance(job.plan, AscentPlan):
        plan = job.plan
        return visualize(plan.target, plan.config, on_event, stop=stop,
                         preview_every=preview_every).image  # fmt: skip
    if job.plan is None:
        raise ConfigError("this run is from the history and cannot run again")
    return execute(job.plan, on_event, stop, preview_every)


class JobManager:
    """The queue, the workers and the job table of one server."""

    def __init__(self, settings: WebSettings, runner: Runner = api_runner) -> None:
        self.settings = settings
        self.runner = runner
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.waiting: queue.Queue[Job] = queue.Queue(maxsize=settings.max_waiting)
        self.threads: list[threading.Thread] = []
        self.closing = threading.Event()

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        make_private_dir(self.settings.data_dir)
        self.restore_history()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"nst-worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._expire_loop, name="nst-expiry", daemon=True)
        t.start()
        self.threads.append(t)

    def begin_stop(self) -> None:
        """The server is stopping: event streams end, every job is cancelled (no wait)."""
        self.closing.set()
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel every job and wait for the workers (a running job ends at its next step)."""
        self.begin_stop()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def restore_history(self) -> int:
        """Load the finished jobs of earlier runs (``job.json``) and remove the folders of
        unfinished ones (only folders this app made); then apply the history's cap.
        Returns how many were restored."""
        restored = 0
        for child in self.settings.data_dir.iterdir():
            if child.is_dir() and JOB_ID.match(child.name) and (child / MARKER).exists():
                job = Job.restore(child)
                if job is None:
                    shutil.rmtree(child, ignore_errors=True)
                    continue
                self.jobs[job.id] = job
                restored += 1
        self.trim_history()
        return restored

    def trim_history(self) -> list[str]:
        """Remove the oldest finished jobs beyond ``history_jobs`` or ``history_mb``."""
        with self.lock:
            done = sorted(
                (j for j in self.jobs.values() if j.state in TERMINAL),
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
            for job in gone:
                self.jobs.pop(job.id, None)
        for job in gone:
            shutil.rmtree(job.folder, ignore_errors=True)
        return [j.id for j in gone]

    def speed(self) -> float | None:
        """This machine's measured seconds per iteration per megapixel (recent runs)."""
        with self.lock:
            runs = sorted(
                (j for j in self.jobs.values() if j.state == "done" and j.speed()),
                key=lambda j: j.finished_at or 0,
            )[-5:]
        speeds = sorted(s for j in runs if (s := j.speed()) is not None)
        return speeds[len(speeds) // 2] if speeds else None

    def expire(self, now: float | None = None) -> list[str]:
        """Forget finished jobs older than the TTL and delete their folders."""
        now = time.time() if now is None else now
        gone = []
        with self.lock:
            for job in list(self.jobs.values()):
                ended = job.finished_at
                if job.state in TERMINAL and ended and now - ended > self.settings.job_ttl:
                    del self.jobs[job.id]
                    gone.append(job)
        for job in gone:
            shutil.rmtree(job.folder, ignore_errors=True)
        return [j.id for j in gone]

    def _expire_loop(self) -> None:
        while not self.closing.wait(min(60.0, max(1.0, self.settings.job_ttl / 4))):
            self.expire()

    # -- jobs --------------------------------------------------------------------------------
    def new_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(16)
        folder = self.settings.data_dir / job_id
        folder.mkdir(mode=DIR_MODE)
        (folder / MARKER).touch(mode=FILE_MODE)
        return job_id, folder

    def submit(self, job: Job) -> int:
        """Queue a job; raises QueueFull when the waiting line is at its cap."""
        with self.lock:
            try:
                self.waiting.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
            self.jobs[job.id] = job
            job.position = self.waiting.qsize()
            job.record({"type": "state", "state": "queued", "position": job.position})
            return job.position

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        with self.lock:
            return self.jobs.get(job_id)

    def all(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created)

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        if job.state == "queued":
            self._finish(job, "cancelled")

    def delete(self, job: Job) -> None:
        job.cancel.set()
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    # -- the worker --------------------------------------------------------------------------
    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        if job.state in TERMINAL:
            return
        job.state = state
        job.error = error
        job.finished_at = time.time()
        if error:
            job.record({"type": "failed", "error": error})
        job.record({"type": "state", "state": state, "elapsed": job.elapsed})
        if job.kind == "stylize" and job.id in self.jobs:
            job.save_record()
            self.trim_history()

    def _work(self) -> None:
        while not self.closing.is_set():
            try:
                job = self.waiting.get(timeout=0.5)
            except queue.Empty:
                continue
            with self.lock:  # the others move up the queue
                for other in self.jobs.values():
                    if other.state == "queued" and other.position > 1:
                        other.position -= 1
            if job.cancel.is_set() or job.id not in self.jobs:
                self._finish(job, "cancelled")
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state = "running"
        job.position = 0
        job.started_at = time.time()
        job.record({"type": "state", "state": "running"})
        progress = Progress()

        def on_event(event: Event) -> None:
            progress.update(event)
            record = event.to_record()
            if isinstance(event, Started):
                work = sum(s.iterations * s.pixels for s in event.plan) / 1e6
                job.progress.update(seed=event.seed, total=progress.total, work=work)
            elif isinstance(event, Step):
                job.losses.append(float(event.loss))
                record.update(progress.to_record())
                job.progress.update({k: v for k, v in record.items() if k != "type"})
            job.record(record)
            if isinstance(event, Step) and event.preview is not None:
                try:
                    save_image(event.preview, job.folder / "preview.png", mode=FILE_MODE)
                except ImageError:
                    return  # a preview that cannot be written (full disk) is skipped
                job.preview_version += 1
                url = job.to_dict()["preview"]
                job.record({"type": "preview", "iteration": event.iteration, "url": url})

        try:
            image = self.runner(job, on_event, job.cancel, self.settings.preview_every)
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
        saved = self._save_result(job, image)
        if not saved:
            self._finish(job, "failed", "the result could not be saved on the server")
            return
        self._finish(job, "cancelled" if job.cancel.is_set() else "done")

    def _public(self, job: Job, message: str) -> str:
        """A message without the server's paths."""
        for place in (job.folder, self.settings.data_dir):
            message = message.replace(str(place) + os.sep, "").replace(str(place), "(data)")
        return one_line(message)

    def _save_result(self, job: Job, image: torch.Tensor) -> bool:
        if job.id not in self.jobs:
            return True  # deleted while running
        try:
            save_image(image, job.folder / "result.png", mode=FILE_MODE)
        except ImageError:
            log.exception("job %s: saving the result failed", job.id)
            return False
        job.has_result = True
        return True


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0


def safe_child(folder: Path, name: str) -> Path | None:
    """``folder/name`` if ``name`` is a plain file name inside ``folder``, else None."""
    if not name or name != os.path.basename(name) or name.startswith("."):
        return None
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        return None
    return path
