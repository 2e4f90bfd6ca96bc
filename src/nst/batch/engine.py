"""The batch engine on Ray: long-lived painter actors, one dispatch loop.

* With no address, a local Ray starts on this machine (no set-up); ``"auto"`` or
  ``"ray://HOST:10001"`` joins an existing cluster.
* Each worker is an actor that keeps its network between jobs and runs one job at a time
  with ``threads`` torch threads (``num_cpus=threads``, ``num_gpus=gpus``).
* Inputs travel as bytes through Ray's object store (each file put once while jobs need
  it), results come back as PNG bytes, and the driver writes every output atomically:
  no shared storage is needed, and a worker that dies leaves nothing half-written. Its job
  goes to a fresh worker, up to ``retries`` more times.
* The driver drains each busy worker's events about once a second (the actor runs two
  threads: the job, and the calls that read its events or stop it).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import ConfigError, NstError, one_line
from .auth import client_missing, join_failure, use_token_if_any
from .jobs import BatchJob, Records

INSTALL_HINT = "nst batch needs Ray: pip install 'nst[batch]' (or: pip install ray)"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


# -- what the driver reports ------------------------------------------------------------------
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


# -- the worker ----------------------------------------------------------------------------------
class Painter:
    """A Ray actor: paints jobs one at a time, keeping the network between them."""

    def __init__(self, threads: int, max_pixels: int) -> None:
        import torch

        from .. import process

        torch.set_num_threads(threads)
        # the driver's limit, whatever this node's environment; the autotuner as the CLI's
        process.configure(max_pixels=max_pixels, tune_convolutions=True)
        self.threads = threads
        self.stop_flag = threading.Event()
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def identity(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def node(self) -> str:
        """The Ray node this worker lives on (its id's first 12 hex digits)."""
        import ray

        return str(ray.get_runtime_context().get_node_id())[:12]

    def on_cpu(self, config: Any) -> bool:
        from ..runtime import resolve_device

        return resolve_device(config.device).type == "cpu"

    def memory_share(self) -> str:
        """``--memory-limit auto`` for a worker: its share of the machine's budget, as its
        threads are of the machine's cores (several workers share one machine)."""
        from ..memory import auto_limit

        share = min(1.0, self.threads / max(1, os.cpu_count() or 1))
        return f"{max(256, int(auto_limit() * share) >> 20)}M"

    def pid(self) -> int:
        return os.getpid()

    def warm(self, config: dict[str, Any]) -> str:
        """Import everything and load the network a job with ``config`` needs."""
        from .. import runtime
        from ..config import Config
        from ..layers import deepest

        c = Config.from_dict(config)
        device = runtime.resolve_device(c.device)
        _, dtype = runtime.resolve_precision(c.precision, device)
        layers = [n for n, _ in c.content_layers] + [n for n, _ in c.style_layers]
        runtime.network(c.weights, c.pooling, c.normalize, [deepest(layers)], device, dtype)
        return self.identity()

    def drain(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.events = self.events, []
        return out

    def cancel(self) -> None:
        self.stop_flag.set()

    def run(self, spec: dict[str, Any], blobs: dict[str, Any]) -> dict[str, Any]:
        """Paint one job; returns the PNG bytes and figures, or the error's one line."""
        import io
        import tempfile

        import ray

        from ..config import Config
        from ..events import Step
        from ..execution import execute
        from ..imageio import load_image, to_pil, to_tensor
        from ..planning import plan_stylize

        self.stop_flag.clear()
        start = time.perf_counter()
        data = {path: ray.get(ref) for path, ref in blobs.items()}
        last: dict[str, Any] = {}
        continued: dict[str, int] | None = None

        def on_event(event: Any) -> None:
            record = event.to_record()
            if isinstance(event, Step):
                last.update(record)
            with self.lock:
                self.events.append(record)

        try:
            with tempfile.TemporaryDirectory(prefix="nst-batch-") as tmp:

                def local(path: str) -> str:
                    """A file a config names: in place where this node has it (the
                    network cache keys on it), else its bytes written here."""
                    if path not in data or os.path.isfile(path):
                        return path
                    copy = os.path.join(tmp, f"{len(os.listdir(tmp))}_{os.path.basename(path)}")
                    with open(copy, "wb") as f:
                        f.write(data[path])
                    return copy

                config = Config.from_dict(spec["config"]).with_paths(local)
                if config.memory_limit.strip().lower() == "auto" and self.on_cpu(config):
                    config = config.replace(memory_limit=self.memory_share())

                def image(name: str) -> Any:
                    if name in data:
                        return to_tensor(load_image(data[name], name=name))
                    return name  # a built-in

                content = image(spec["content"])
                styles = [image(s) for s in spec["styles"]]
                plan = plan_stylize(
                    content, styles, config, labels=(spec["content"], spec["styles"])
                )
                work = job_checkpoints(spec, plan, data)
                state = work.continued()
                if state is not None:
                    continued = {"stage": state.stage, "iteration": state.iteration}
                result = execute(plan, on_event, stop=self.stop_flag, resume=state,
                                 checkpoint=work)  # fmt: skip
        except NstError as exc:
            return {"error": one_line(str(exc)), "worker": self.identity(), "node": self.node()}
        except Exception as exc:  # a bug: the job fails, the worker goes on
            return {
                "error": f"internal error: {type(exc).__name__}: {one_line(str(exc))[:200]}",
                "worker": self.identity(),
                "node": self.node(),
            }
        if self.stop_flag.is_set():  # its checkpoint is kept: the same command continues
            return {"cancelled": True, "worker": self.identity(), "node": self.node()}
        work.remove()
        buf = io.BytesIO()
        to_pil(result).save(buf, format="PNG")
        return {
            "continued": continued,
            "png": buf.getvalue(),
            "iterations": last.get("iteration"),
            "loss": last.get("loss"),
            "seconds": round(time.perf_counter() - start, 3),
            "worker": self.identity(),
            "node": self.node(),
        }


CHECKPOINTS = ".checkpoints"


def checkpoint_place(output: Path) -> Path:
    """Where a job's checkpoints go: ``OUT/.checkpoints/NAME.work`` (the batch's folder, so
    a retry on any node that shares it, and the next run of the same command, find them)."""
    return output.parent / CHECKPOINTS / output.name


def job_checkpoints(spec: dict[str, Any], plan: Any, data: dict[str, bytes]) -> Any:
    """The job's :class:`nst.checkpoints.WorkFolder`: in the batch's folder where this node
    can write it, else in the node's temporary folder (a retry here still finds it); its
    fingerprint is the job's settings and its inputs' bytes."""
    import hashlib
    import tempfile

    from ..checkpoints import WorkFolder, fingerprint

    place = Path(spec["work"])
    if not os.access(place.parent.parent, os.W_OK):
        place = Path(tempfile.gettempdir()) / "nst-batch-checkpoints" / place.name
    settings = {**plan.config.identity(), "seed": plan.seed}
    inputs = {name: {"path": name, "sha256": hashlib.sha256(blob).hexdigest()}
              for name, blob in sorted(data.items())}  # fmt: skip
    every = spec.get("checkpoint_every", 60.0)
    return WorkFolder(place, fingerprint(settings, {}) | {"inputs": inputs}, every=every)


# -- the driver ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _keeping_signal_handlers() -> Iterator[None]:
    """``ray.init`` installs its own SIGTERM handling (and its core's crash handler, which
    dumps and aborts); the caller's handlers for SIGINT, SIGTERM and SIGHUP are put back,
    so a signal stops a batch the way its caller asked (the CLI: like Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
    before = {sig: signal.getsignal(sig) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@dataclass(frozen=True)
class Cluster:
    """Where to run: no address = a local Ray on this machine."""

    address: str | None = None
    workers: int | None = None
    threads: int = 1
    gpus: float = 0.0
    retries: int = 2

    def start(self) -> tuple[Any, int, bool]:
        """(ray, number of workers, whether this call started Ray)."""
        ray = import_ray()
        started = False
        if self.address and (why := client_missing(self.address)):
            raise ConfigError(why)
        if not ray.is_initialized():
            import logging

            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
                "configure_logging": True,
            }
            try:
                with _keeping_signal_handlers():
                    if self.address:
                        use_token_if_any(self.address)
                        ray.init(address=self.address, **kwargs)
                    else:
                        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
                error = one_line(str(exc))
                if self.address:
                    raise ConfigError(join_failure(self.address, error)) from None
                raise ConfigError(f"cannot start a local Ray ({error[:160]})") from None
            started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = self.workers or max(1, cpus // self.threads)
        if self.gpus:
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus < self.gpus:
                raise ConfigError(f"gpus-per-worker {self.gpus:g}: the cluster has {gpus:g} GPUs")
            workers = min(workers, int(gpus / self.gpus)) or 1
        return ray, workers, started


def run_batch(
    jobs: list[BatchJob],
    records: Records,
    cluster: Cluster,
    on_event: Callable[[BatchEvent], None],
    skipped: list[BatchJob] | None = None,
    drain_every: float | None = None,
    checkpoint_every: float | None = 60.0,
) -> dict[str, int]:
    """Run the jobs; every outcome is recorded and reported. Returns the counts by status.

    KeyboardInterrupt stops dispatching, cancels the running jobs (their workers are
    stopped, their checkpoints kept) and is raised again once the finished outputs are
    safe. ``drain_every`` (seconds) reads the running jobs' events that often (None:
    never, the least work for the cluster when nobody reads them). A job keeps a
    checkpoint at most every ``checkpoint_every`` seconds (None: never): a retry after
    its worker died, or the next run of the batch, continues from it.
    """
    from ..imageio import save_image
    from ..process import current

    counts = {"ok": 0, "failed": 0, "skipped": 0}
    for job in skipped or []:
        counts["skipped"] += 1
        on_event(JobDone(job, records.write(job, "skipped")))
    if not jobs:
        return counts
    ray, n_workers, started = cluster.start()
    actor = ray.remote(num_cpus=cluster.threads, num_gpus=cluster.gpus, max_concurrency=2)(Painter)
    pending: deque[tuple[BatchJob, int]] = deque((j, 0) for j in jobs)
    uses: dict[str, int] = {}
    for job in jobs:
        for f in set(job.inputs):
            uses[f] = uses.get(f, 0) + 1
    blobs: dict[str, Any] = {}
    limit = current().max_pixels
    idle = [actor.remote(cluster.threads, limit) for _ in range(min(n_workers, len(jobs)) or 1)]
    warming = time.perf_counter()
    try:  # a worker that cannot even start says so once, here, not once per job
        ray.get([w.warm.remote(jobs[0].config.to_dict()) for w in idle])
    except ray.exceptions.RayError as exc:
        for w in idle:
            ray.kill(w)
        if started:
            ray.shutdown()
        raise ConfigError(f"the workers cannot start ({one_line(str(exc))[:200]})") from None
    on_event(WorkersReady(len(idle), time.perf_counter() - warming))
    busy: dict[Any, tuple[Any, BatchJob, int]] = {}
    # replacements of dead workers get jobs once started: one that cannot start (its node
    # is gone and the others' CPUs are taken) never holds a job
    starting: dict[Any, Any] = {}
    warm_config = jobs[0].config.to_dict()
    last_drain = time.monotonic()

    def replace_worker() -> None:
        fresh = actor.remote(cluster.threads, limit)
        starting[fresh.warm.remote(warm_config)] = fresh

    def blob(path: str) -> Any:
        if path not in blobs:
            with open(path, "rb") as f:
                blobs[path] = ray.put(f.read())
        return blobs[path]

    def release(job: BatchJob) -> None:
        for f in set(job.inputs):
            uses[f] -= 1
            if uses[f] <= 0:
                blobs.pop(f, None)

    def finish(job: BatchJob, status: str, **fields: Any) -> None:
        counts[status] += 1
        release(job)
        on_event(JobDone(job, records.write(job, status, **fields)))

    try:
        while pending or busy:
            while idle and pending:
                job, attempt = pending.popleft()
                worker = idle.pop()
                spec = {
                    "content": job.content,
                    "styles": list(job.styles),
                    "config": job.config.to_dict(),
                    # where the job keeps its checkpoints: a retry (a worker lost, the same
                    # command after Ctrl-C) continues from them where the node can reach it
                    "work": str(checkpoint_place(job.output)),
                    "checkpoint_every": checkpoint_every,
                }
                try:
                    refs = {f: blob(f) for f in set(job.inputs)}
                except OSError as exc:
                    idle.append(worker)
                    finish(job, "failed", error=f"{job.content}: cannot read ({exc.strerror})")
                    continue
                busy[worker.run.remote(spec, refs)] = (worker, job, attempt)
            waiting = [*busy, *starting]
            ready, _ = ray.wait(waiting, num_returns=1, timeout=drain_every or 1.0)
            if drain_every is not None and time.monotonic() - last_drain >= drain_every:
                last_drain = time.monotonic()
                _drain(ray, busy, on_event)
            for ref in ready:
                if ref in starting:
                    fresh = starting.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(fresh)
                    except ray.exceptions.RayError:  # it died starting: another one
                        replace_worker()
                    continue
                worker, job, attempt = busy.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    # the worker process died (killed, out of memory, its node lost): a fresh
                    # one takes over when it can start; the job goes to the next free worker
                    replace_worker()
                    why = "the worker died" + (f" ({type(exc).__name__})" if exc else "")
                    if attempt < cluster.retries:
                        on_event(Retry(job, attempt + 1, why))
                        pending.appendleft((job, attempt + 1))
                    else:
                        finish(
                            job, "failed", error=f"{why} {attempt + 1} times", attempts=attempt + 1
                        )
                    continue
                except ray.exceptions.RayError as exc:
                    idle.append(worker)
                    finish(job, "failed", error=f"ray: {one_line(str(exc))[:200]}")
                    continue
                idle.append(worker)
                if "error" in result:
                    finish(
                        job,
                        "failed",
                        error=result["error"],
                        worker=result.get("worker"),
                        node=result.get("node"),
                        attempts=attempt + 1,
                    )
                    continue
                try:
                    save_image(Image.open(io.BytesIO(result["png"])), job.output)
                except NstError as exc:
                    finish(job, "failed", error=str(exc), worker=result.get("worker"))
                    continue
                continued = {"continued": result["continued"]} if result.get("continued") else {}
                finish(
                    job,
                    "ok",
                    iterations=result["iterations"],
                    loss=result["loss"],
                    seconds=result["seconds"],
                    worker=result["worker"],
                    node=result["node"],
                    attempts=attempt + 1,
                    **continued,
                )
    except KeyboardInterrupt:
        for worker, _, _ in busy.values():
            worker.cancel.remote()
        deadline = time.monotonic() + 5
        while busy and time.monotonic() < deadline:
            ready, _ = ray.wait(list(busy), num_returns=len(busy), timeout=0.5)
            for ref in ready:
                busy.pop(ref)
        raise
    finally:
        for worker in [w for w, _, _ in busy.values()] + list(starting.values()):
            ray.kill(worker)
        if started:
            ray.shutdown()
        with contextlib.suppress(OSError):  # no job left to continue: no folder either
            (records.path.parent / CHECKPOINTS).rmdir()
    return counts


def _drain(ray: Any, busy: dict[Any, tuple[Any, BatchJob, int]], on_event: Callable) -> None:
    calls = {w.drain.remote(): job for w, job, _ in busy.values()}
    try:
        done = ray.get(list(calls), timeout=2.0)
    except Exception:  # a worker that just died: its job is handled in the main loop
        return
    for records, job in zip(done, calls.values()):
        if records:
            on_event(JobEvents(job, records))
