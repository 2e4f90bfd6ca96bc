"""The web's jobs on a Ray cluster (``nst serve --address HOST:PORT``).

The job manager stays in the server: its queue, visitors' turns, event records, previews,
history and estimates work as they do locally. Only the painting moves: each of the
manager's worker threads drives one :class:`WebPainter` actor on the cluster (joined as
``nst batch`` joins one: ``batch.engine.start_cluster``, its token handling included).

* The job's inputs travel as bytes (its re-encoded content and styles, and any file its
  settings name, such as a start image), its settings with the seed it was planned with.
* The actor keeps the run's events (steps with their previews); the server reads them
  every ``POLL`` seconds and hands them to the manager as if the run were local.
* Cancel and the server's stop reach the actor's stop flag; the run ends at its next step
  with its last image, as locally.
* Checkpoints go to the job's folder when the worker's node can write it (this machine, or
  a data folder shared over NFS), else to the node's temporary folder. A worker lost in
  the middle of a job (its node gone) is replaced, and the job continues from its last
  checkpoint where the new worker can read it; without one the job fails with a sentence.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..batch.cluster import Cluster
from ..errors import NstError, one_line
from ..events import Event, Notice
from ..own_thread import on_own_thread
from ..spread import PooledTiles
from .jobs import CHECKPOINT_EVERY, RESULT, AscentPlan, Job

#: seconds between two reads of a running job's events
POLL = 0.25
#: seconds a print-size job's tile workers may take to start (those later are let go)
TILE_WORKERS_WITHIN = 60.0
#: most tile workers one print-size job starts
MOST_TILE_WORKERS = 32


class ClusterError(NstError):
    """A job the cluster could not finish (its worker lost with nothing to go on from)."""


@dataclass(frozen=True)
class Shipped:
    """What a job sends to the cluster: its settings (the planned seed fixed), the names
    of its content and styles, the bytes of every file by the server's path, where its
    checkpoints go, how often, and whether it goes on from one."""

    config: dict[str, Any]
    content: str
    styles: tuple[str, ...]
    blobs: dict[str, bytes]
    work: str
    checkpoint_every: float | None
    resume: bool
    preview_every: int
    tile_workers: int = 0  # a print-size job: tile workers to start beside its painter


class WebPainter(PooledTiles):
    """A Ray actor: paints one web job at a time, keeping the network between jobs; its
    threads run the job, the calls that read its events or stop it, and the tiles of a
    print-size job (it is a tile worker too, :class:`nst.spread.PooledTiles`)."""

    def __init__(self, threads: int) -> None:
        from .. import process
        from ..threads import PainterThreads

        process.configure(keep_freed_memory=True)  # as the CLI's
        self.threads = threads
        #: a job computes with the cores other programs leave on this node (at most
        #: ``threads``), as the server's own jobs do
        self.fitting = PainterThreads.fitted(threads)
        self.stop_flag = threading.Event()
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def drain(self) -> list[Event]:
        with self.lock:
            out, self.events = self.events, []
        return out

    def cancel(self) -> None:
        self.stop_flag.set()

    def run(self, job: Shipped) -> torch.Tensor | str:
        """The picture, or an error's one line (a bad input, a bug: the job fails). On a
        thread of its own, as the tile calls: this actor's call threads are pooled
        (:mod:`nst.own_thread`)."""
        return on_own_thread(self._paint, job)

    def _paint(self, job: Shipped) -> torch.Tensor | str:
        self.stop_flag.clear()

        def kept(event: Event) -> None:
            with self.lock:
                self.events.append(event)

        try:
            with (
                self.fitting.job(kept) as on_event,
                tempfile.TemporaryDirectory(prefix="nst-web-") as tmp,
            ):
                plan, work = _planned(job, Path(tmp))
                state = work.continued() if job.resume else None
                if not job.resume:
                    work.discard()
                from ..execution import execute

                spread = self.spread(plan, job.tile_workers) if job.tile_workers else None
                try:
                    return execute(plan, on_event, self.stop_flag, job.preview_every,
                                   resume=state, checkpoint=work, spread=spread)  # fmt: skip
                finally:
                    if spread is not None:
                        spread.close()
        except NstError as exc:
            return one_line(str(exc))
        except Exception as exc:  # a bug: the job fails, the worker goes on
            return f"internal error: {type(exc).__name__}: {one_line(str(exc))[:200]}"

    def spread(self, plan: Any, count: int) -> Any:
        """This job's tiles on this painter and up to ``count`` tile workers started on
        the cluster's free CPUs now (those that start within ``TILE_WORKERS_WITHIN``)."""
        import ray

        from ..spread import NetworkSpec, RaySpread

        me = ray.get_runtime_context().current_actor
        return RaySpread.beside(ray, me, count, self.threads, NetworkSpec.of(plan),
                                TILE_WORKERS_WITHIN)  # fmt: skip


def _planned(job: Shipped, tmp: Path) -> tuple[Any, Any]:
    """The job's plan made on the worker from the shipped bytes, and its work folder."""
    from ..checkpoints import WorkFolder, fingerprint
    from ..config import Config
    from ..imageio import load_image, to_tensor
    from ..planning import plan_stylize

    def local(path: str) -> str:
        if path not in job.blobs:
            return path
        copy = tmp / f"{len(os.listdir(tmp))}_{Path(path).name}"
        copy.write_bytes(job.blobs[path])
        return str(copy)

    config = Config.from_dict(job.config).with_paths(local)
    content = to_tensor(load_image(job.blobs[job.content], name="content"))
    styles = [to_tensor(load_image(job.blobs[s], name="style")) for s in job.styles]
    plan = plan_stylize(content, styles, config, labels=("content", list(job.styles)))
    place = Path(job.work)
    if not os.access(place.parent, os.W_OK):  # not this node's disk nor shared: its own
        place = Path(tempfile.gettempdir()) / "nst-web-checkpoints" / place.parent.name / RESULT
        place.parent.mkdir(parents=True, exist_ok=True)
    settings = {**plan.config.identity(), "seed": plan.seed}
    inputs = {name: {"path": Path(name).name, "sha256": hashlib.sha256(blob).hexdigest()}
              for name, blob in sorted(job.blobs.items())}  # fmt: skip
    work = WorkFolder(place, fingerprint(settings, {}) | {"inputs": inputs}, job.checkpoint_every)
    return plan, work


def ship(job: Job, preview_every: int, checkpoint_every: float | None) -> Shipped:
    """A stylization as the cluster gets it (read from the job's folder)."""
    plan = job.plan
    if plan is None or isinstance(plan, AscentPlan) or job.content is None:
        raise ClusterError("only stylizations run on the cluster")
    config = plan.config.replace(seed=plan.seed)
    files = [str(job.content), *(str(p) for p in job.styles), *config.input_paths().values()]
    blobs = {path: Path(path).read_bytes() for path in files}
    return Shipped(config.to_dict(), str(job.content), tuple(str(p) for p in job.styles),
                   blobs, str(job.folder / RESULT), checkpoint_every, job.resume,
                   preview_every)  # fmt: skip


class ClusterRunner:
    """The manager's runner on a Ray cluster: :meth:`open` joins it (a one-line
    ConfigError when it cannot), each call runs one job on the calling thread's actor.
    Gradient-ascent jobs (the Explore page) run in the server with ``local``."""

    def __init__(
        self,
        cluster: Cluster,
        local: Callable[..., torch.Tensor] | None = None,
        checkpoint_every: float | None = CHECKPOINT_EVERY,
        retries: int = 2,
    ) -> None:
        self.cluster = cluster
        self.local = local
        self.checkpoint_every = checkpoint_every
        self.retries = retries
        self.ray: Any = None
        self.actor: Any = None
        self.started = False
        self._mine = threading.local()  # each manager worker's actor
        self.nodes: dict[str, list[str]] = {}  # job id -> the nodes it ran on, in order
        self.lock = threading.Lock()

    def open(self) -> int:
        """Join the cluster (or start a local Ray); returns how many workers it holds."""
        from ..batch.engine import start_cluster

        self.ray, workers, self.started = start_cluster(self.cluster)
        c = self.cluster
        self.actor = self.ray.remote(num_cpus=c.threads, num_gpus=c.gpus,
                                     max_concurrency=6)(WebPainter)  # fmt: skip
        return workers

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def computes_here(self, job: Job) -> bool:
        """Only the Explore page's jobs compute in the server (with ``local``)."""
        return isinstance(job.plan, AscentPlan)

    def _painter(self, fresh: bool = False) -> Any:
        painter = getattr(self._mine, "painter", None)
        if painter is None or fresh:
            painter = self.actor.remote(self.cluster.threads)
            self._mine.painter = painter
        return painter

    def __call__(
        self, job: Job, on_event: Callable[[Event], None], stop: threading.Event,
        preview_every: int,
    ) -> torch.Tensor:  # fmt: skip
        if isinstance(job.plan, AscentPlan):
            if self.local is None:
                raise ClusterError("this server runs no Explore jobs")
            return self.local(job, on_event, stop, preview_every)
        shipped = ship(job, preview_every, self.checkpoint_every)
        if 0 < self.cluster.spread_from <= shipped.config["size"]:
            free = self.ray.available_resources().get("CPU", 0)
            count = min(MOST_TILE_WORKERS, int(free // self.cluster.threads))
            shipped = Shipped(**{**shipped.__dict__, "tile_workers": count})
        lost = 0
        while True:
            painter = self._painter(fresh=lost > 0)
            try:
                return self._paint(job, painter, shipped, on_event, stop)
            except self.ray.exceptions.RayActorError:
                lost += 1
                if lost > self.retries:
                    raise ClusterError(
                        f"the cluster lost this job's worker {lost} times; start it again"
                    ) from None
                if not _has_checkpoint(job):
                    raise ClusterError(
                        "the cluster lost the worker running this job, and no checkpoint of "
                        "it was where another worker could read it; start it again"
                    ) from None
                notice: Any = Notice(
                    "the cluster lost this job's worker; it goes on from its "
                    "last checkpoint on another"
                )  # (recorded like a step)
                on_event(notice)
                shipped = Shipped(**{**shipped.__dict__, "resume": True})

    def _paint(
        self, job: Job, painter: Any, shipped: Shipped, on_event: Callable[[Event], None],
        stop: threading.Event,
    ) -> torch.Tensor:  # fmt: skip
        ray = self.ray
        node = str(ray.get(painter.node.remote()))
        with self.lock:
            self.nodes.setdefault(job.id, []).append(node)
        call = painter.run.remote(shipped)
        asked_to_stop = False
        while True:
            ready, _ = ray.wait([call], num_returns=1, timeout=POLL)
            if stop.is_set() and not asked_to_stop:
                painter.cancel.remote()
                asked_to_stop = True
            if not ready:
                for event in ray.get(painter.drain.remote()):
                    on_event(event)
                continue
            result = ray.get(call)  # raises RayActorError when the worker was lost
            for event in ray.get(painter.drain.remote()):  # the last ones
                on_event(event)
            if isinstance(result, str):
                raise ClusterError(result)
            return result


def _has_checkpoint(job: Job) -> bool:
    """A checkpoint of the job is in its folder (written by a worker that shares it)."""
    return any(job.checkpoints.glob("checkpoint-*"))
