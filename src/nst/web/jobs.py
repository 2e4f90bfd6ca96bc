"""A job of the web app: what it runs, its folder, state and event records.

Each job has a server-generated id and a folder under the data directory holding its
(re-encoded) inputs, its latest preview and its result. Its fields are changed only by
the :class:`~nst.web.manager.JobManager`, under its lock; this module reads them
(:meth:`Job.view`, the history record) and restores finished jobs from ``job.json``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from ..config import Config
from ..errors import ConfigError
from ..events import Event
from ..explain.config import VisualizeConfig
from ..explain.targets import Target
from ..planning import Plan
from .settings import MARKER, WebSettings

__all__ = [
    "MARKER", "TERMINAL", "AscentPlan", "Job", "PaintsElsewhere", "Runner", "WebSettings",
    "api_runner",
]  # fmt: skip

#: a stylization's result, and the full config its run can be planned again from
RESULT = "result.png"
CONFIG = "config.json"
#: a web job keeps a checkpoint at most this often (seconds), and at a server's stop
CHECKPOINT_EVERY = 60.0
JOB_ID = re.compile(r"[0-9a-f]{32}")  # matched whole (fullmatch): "$" lets a "\n" through
#: the input images a job keeps, by the names the API serves them under
INPUT_NAME = re.compile(r"(content|mask|style_[0-9]{1,2})\.png")
#: the end states; "interrupted": the server stopped while the job was queued or running
TERMINAL = ("done", "cancelled", "failed", "interrupted")


@dataclass(frozen=True)
class AscentPlan:
    """A gradient-ascent run (the Explore page): what to maximize and how."""

    target: Target
    config: VisualizeConfig


@dataclass
class Job:
    """A stylization (``plan`` a :class:`Plan`) or a gradient-ascent run (an
    :class:`AscentPlan`), with its folder, state and event records.

    ``plan`` (the run's tensors) is dropped when the job ends; ``config`` stays.
    ``events`` holds the records from sequence number ``first_seq`` on: a running job
    keeps at most ``max_events``, a finished one a short tail (its loss curve is kept
    whole in ``losses``).
    """

    id: str
    folder: Path
    plan: Plan | AscentPlan | None  # None: finished (released) or restored from the history
    content: Path | None
    styles: list[Path]
    params: dict[str, Any]
    kind: str = "stylize"
    config: Config | VisualizeConfig | None = None
    created: float = field(default_factory=time.time)
    state: str = "queued"
    error: str | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    first_seq: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    has_result: bool = False
    preview_version: int = 0
    started_at: float | None = None
    losses: list[float] = field(default_factory=list)
    position: int = 0  # place in the queue (1 = next), 0 when not queued
    resume: bool = False  # the next run continues from the job's checkpoint
    checkpointed: bool = False  # ended with a checkpoint kept (looked at once, not per view)
    owner: str = ""  # the visitor whose job it is ("": a server without sign-in)
    wait: float | None = None  # queued: seconds until it may start, as last estimated
    users: int = 0  # threads writing into its folder (its run; whoever ends it, until recorded)
    removed: bool = False  # out of the table: its folder goes when its last user lets go

    @property
    def checkpoints(self) -> Path:
        """The work folder of the job's checkpoints (beside its result)."""
        from ..checkpoints import work_folder

        return work_folder(self.folder / RESULT)

    def has_checkpoint(self) -> bool:
        """A checkpoint and the config to plan the run again are on disk (file I/O: asked
        once when the job ends or is restored)."""
        return (self.folder / CONFIG).is_file() and any(self.checkpoints.glob("checkpoint-*"))

    @property
    def continuable(self) -> bool:
        """Interrupted by a server stop with a checkpoint to go on from."""
        return self.kind == "stylize" and self.state == "interrupted" and self.checkpointed

    def __post_init__(self) -> None:
        if isinstance(self.plan, AscentPlan):
            self.kind = "visualize"
        if self.config is None and self.plan is not None:
            self.config = self.plan.config

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.events)

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

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

    def preview_url(self) -> str | None:
        if not self.preview_version:
            return None
        return f"/api/jobs/{self.id}/preview.png?v={self.preview_version}"

    def view(self) -> dict[str, Any]:
        """What the API shows of the job (:class:`~nst.web.schemas.JobView`); read it
        through the manager, which holds its lock meanwhile."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "created": self.created,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed": self.elapsed,
            "position": self.position if self.state == "queued" else 0,
            "wait": self.wait if self.state == "queued" else None,
            "error": self.error,
            "losses": self.curve(),
            "params": dict(self.params),
            "progress": dict(self.progress),
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
            "preview": self.preview_url(),
            "continuable": self.continuable,
        }

    def history_record(self) -> dict[str, Any]:
        """``job.json``: what the history shows after a restart."""
        return {
            "id": self.id, "kind": self.kind, "state": self.state, "error": self.error,
            "created": self.created, "started_at": self.started_at,
            "finished_at": self.finished_at, "params": self.params,
            "progress": self.progress, "losses": self.curve(), "has_result": self.has_result,
            "styles": [p.name for p in self.styles], "speed": self.speed(),
            "owner": self.owner,
        }  # fmt: skip

    def speed(self) -> float | None:
        """Seconds per iteration per megapixel of this run (None if it did not run)."""
        work, total = self.progress.get("work"), self.progress.get("total")
        seconds, done = self.progress.get("elapsed"), self.progress.get("done")
        if not work or not total or not seconds or not done:
            return None
        return float(seconds / (work * done / total))  # the optimization's time, no loading

    def share(self) -> float:
        """The share of its iterations the run made (a converged run stops early)."""
        total, done = self.progress.get("total"), self.progress.get("done")
        if not total or not done:
            return 1.0
        return float(min(1.0, max(0.0, done / total)))

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
                dict(r["params"]), kind=str(r.get("kind", "stylize")),
                created=float(r["created"]), state=r["state"],
                error=r.get("error"), finished_at=r.get("finished_at"),
                progress=dict(r.get("progress") or {}),
                has_result=bool(r.get("has_result")) and (folder / "result.png").is_file(),
                started_at=r.get("started_at"), losses=[float(x) for x in r.get("losses", [])],
                owner=str(r.get("owner") or ""),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None
        job.events.append({"type": "state", "state": job.state, "seq": 0})
        job.checkpointed = job.state == "interrupted" and job.has_checkpoint()
        return job


Runner = Callable[[Job, Callable[[Event], None], threading.Event, int], torch.Tensor]


@runtime_checkable
class PaintsElsewhere(Protocol):
    """A runner that computes (some) jobs outside the server's process (a cluster's): the
    server's threads then have nothing to fit for those."""

    def computes_here(self, job: Job) -> bool: ...


def api_runner(
    job: Job, on_event: Callable[[Event], None], stop: threading.Event, preview_every: int
) -> torch.Tensor:
    """Runs a job's plan (made when the job was submitted) through the library."""
    from ..execution import execute
    from ..explain import visualize

    plan = job.plan
    if isinstance(plan, AscentPlan):
        return visualize(plan.target, plan.config, on_event, stop=stop,
                         preview_every=preview_every).image  # fmt: skip
    if plan is None:
        raise ConfigError("this run is from the history and cannot run again")
    from ..checkpoints import WorkFolder, plan_fingerprint

    images = [str(p) for p in (job.content, *job.styles) if p is not None]
    work = WorkFolder(job.folder / RESULT, plan_fingerprint(plan, images), CHECKPOINT_EVERY)
    if not job.resume:
        work.discard()
    state = work.continued() if job.resume else None
    return execute(plan, on_event, stop, preview_every, resume=state, checkpoint=work)


def plan_again(job: Job) -> Plan:
    """A stylization's plan made again from its folder (its config and inputs as they were
    written when it was submitted), for a run that continues."""
    from ..planning import plan_stylize

    config = Config.from_dict(json.loads((job.folder / CONFIG).read_text()))
    if job.content is None:
        raise ConfigError("this run's inputs are gone")
    return plan_stylize(str(job.content), [str(p) for p in job.styles], config)


def safe_child(folder: Path, name: str) -> Path | None:
    """``folder/name`` if ``name`` is a plain file name inside ``folder``, else None."""
    if not name or "\x00" in name or name != os.path.basename(name) or name.startswith("."):
        return None
    try:  # a name too long for the file system, or a folder that just went away
        path = (folder / name).resolve()
        if path.parent != folder.resolve() or not path.is_file():
            return None
    except (OSError, ValueError):
        return None
    return path
