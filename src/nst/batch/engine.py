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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NstError, one_line
from ..own_thread import on_own_thread
from ..spread import PooledTiles
from .auth import client_missing, join_failure, use_token_if_any
from .cluster import Cluster
from .dispatch import (
    CHECKPOINTS,
    BatchEvent,
    Dispatch,
    PaintCancelled,
    Painted,
    PaintFailed,
    PaintResult,
    TaskFailed,
    WorkerLost,
)
from .jobs import BatchJob, Records

INSTALL_HINT = "nst batch needs Ray: pip install 'nst[batch]' (or: pip install ray)"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


# -- the worker ----------------------------------------------------------------------------------
class Painter(PooledTiles):
    """A Ray actor: paints jobs one at a time, keeping the network between them. It is a
    tile worker too (:class:`nst.spread.PooledTiles`): a poster's painter spreads its tiles over
    itself and the painters the dispatch lends it (``run``'s ``helpers``)."""

    def __init__(self, threads: int, max_pixels: int, fit: bool = True) -> None:
        from .. import process
        from ..threads import PainterThreads

        # the driver's limit, whatever this node's environment; the autotuner and the kept
        # freed memory as the CLI's
        process.configure(max_pixels=max_pixels, tune_convolutions=True, keep_freed_memory=True)
        self.threads = threads
        #: a job computes with the cores other programs leave on this node (at most
        #: ``threads``), as the ``nst`` command does; not where the driver fixed its
        #: threads (``NST_THREADS``)
        self.fitting = PainterThreads.fitted(threads, fit)
        self.told = threads  # the threads the driver was last told this painter computes with
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
        """Import everything and load the network a job with ``config`` needs (on a
        thread of its own, as all of this actor's torch work: ``run``)."""
        return on_own_thread(self._warm, config)

    def _warm(self, config: dict[str, Any]) -> str:
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

    def run(self, spec: dict[str, Any], blobs: dict[str, Any], helpers: Sequence[Any] = ()
            ) -> PaintResult:  # fmt: skip
        """Paint one job: the picture and its figures, or the error's one line. With
        ``helpers`` (other painters, idle meanwhile) its tiled stages are spread over them
        and this one. On a thread of its own: this actor's call threads are pooled, and
        one that kept an OpenMP team made w2's eigenvalues 4.5x slower on the job's
        (:mod:`nst.own_thread`; the batch ran fast at 256 px 1.9x slower than a loop)."""
        return on_own_thread(self._paint, spec, blobs, helpers)

    def _paint(self, spec: dict[str, Any], blobs: dict[str, Any], helpers: Sequence[Any]
               ) -> PaintResult:  # fmt: skip
        import tempfile

        import ray

        from ..config import Config
        from ..events import Started, Step
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
            elif isinstance(event, Started) and event.workers:
                last["workers"] = max(event.workers, last.get("workers", 0))
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
                result = self.execute(plan, on_event, state, work, helpers)
        except NstError as exc:
            return PaintFailed(one_line(str(exc)), self.identity(), self.node())
        except Exception as exc:  # a bug: the job fails, the worker goes on
            error = f"internal error: {type(exc).__name__}: {one_line(str(exc))[:200]}"
            return PaintFailed(error, self.identity(), self.node())
        if self.stop_flag.is_set():  # its checkpoint is kept: the same command continues
            return PaintCancelled(self.identity(), self.node())
        work.remove()
        buf = io.BytesIO()
        to_pil(result).save(buf, format="PNG")
        seconds = round(time.perf_counter() - start, 3)
        return Painted(buf.getvalue(), last.get("iteration"), last.get("loss"), seconds,
                       self.identity(), self.node(), continued,
                       last.get("workers", 0))  # fmt: skip

    def execute(self, plan: Any, on_event: Callable[[Any], None], state: Any, work: Any,
                helpers: Sequence[Any]) -> Any:  # fmt: skip
        """The run of ``plan``; with ``helpers``, its tiled stages' tiles on this painter
        and them."""
        import ray

        from ..events import Notice
        from ..execution import execute
        from ..spread import NetworkSpec, RaySpread
        from ..threads import change_line

        spread = None
        if helpers:
            me = ray.get_runtime_context().current_actor
            spread = RaySpread.over(ray, [me, *helpers], self.threads, NetworkSpec.of(plan))

        def tell(now: int) -> None:
            """A change of threads, said once (not at every job's start)."""
            if now != self.told:
                self.told = now
                line = change_line(now, self.threads, "NST_THREADS set where nst batch runs")
                on_event(Notice(f"worker {self.identity()}: {line}"))

        try:
            with self.fitting.job(on_event, tell) as on_step:
                return execute(plan, on_step, stop=self.stop_flag, resume=state,
                               checkpoint=work, spread=spread)  # fmt: skip
        finally:
            if spread is not None:
                spread.close()


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


def start_cluster(cluster: Cluster) -> tuple[Any, int, bool]:
    """Reach the cluster (or start a local Ray): (ray, number of workers, whether this
    call started Ray)."""
    ray = import_ray()
    started = False
    if cluster.address and (why := client_missing(cluster.address)):
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
                if cluster.address:
                    use_token_if_any(cluster.address)
                    ray.init(address=cluster.address, **kwargs)
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
            error = one_line(str(exc))
            if cluster.address:
                raise ConfigError(join_failure(cluster.address, error)) from None
            raise ConfigError(f"cannot start a local Ray ({error[:160]})") from None
        started = True
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = cluster.workers or max(1, cpus // cluster.threads)
    if cluster.gpus:
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus < cluster.gpus:
            raise ConfigError(f"gpus-per-worker {cluster.gpus:g}: the cluster has {gpus:g} GPUs")
        workers = min(workers, int(gpus / cluster.gpus)) or 1
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
    dispatch = Dispatch(RayPool(cluster), records, on_event, cluster.retries, drain_every,
                        checkpoint_every, cluster.spread_from)  # fmt: skip
    try:
        return dispatch.run(jobs, skipped or [])
    finally:
        with contextlib.suppress(OSError):  # no job left to continue: no folder either
            (records.path.parent / CHECKPOINTS).rmdir()


class RayPool:
    """:class:`nst.batch.dispatch.Pool` on Ray: workers are :class:`Painter` actors."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.ray: Any = None
        self.actor: Any = None
        self.started = False
        self.max_pixels = 0
        self.fit = True

    def open(self) -> int:
        from ..process import current

        self.ray, workers, self.started = start_cluster(self.cluster)
        c = self.cluster
        # threads for: the job; its tiles (and a poster's, lent), which wait their turn
        # on one lock; the calls that read its events, stop it, check it
        self.actor = self.ray.remote(num_cpus=c.threads, num_gpus=c.gpus,
                                     max_concurrency=6)(Painter)  # fmt: skip
        self.max_pixels = current().max_pixels  # the driver's limit, on every node
        self.fit = current().threads is None  # NST_THREADS fixes the painters' threads too
        return workers

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()

    def spawn(self) -> Any:
        return self.actor.remote(self.cluster.threads, self.max_pixels, self.fit)

    def warm(self, worker: Any, config: dict[str, Any]) -> Any:
        return worker.warm.remote(config)

    def share(self, path: str) -> Any:
        with open(path, "rb") as f:
            return self.ray.put(f.read())

    def paint(self, worker: Any, spec: dict[str, Any], inputs: dict[str, Any],
              helpers: Sequence[Any] = ()) -> Any:  # fmt: skip
        return worker.run.remote(spec, inputs, list(helpers))

    def wait(self, calls: list[Any], timeout: float) -> list[Any]:
        if not calls:
            return []
        ready, _ = self.ray.wait(calls, num_returns=1, timeout=timeout)
        return list(ready)

    def result(self, call: Any) -> Any:
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(call)
        except exceptions.RayActorError as exc:
            raise WorkerLost(type(exc).__name__) from None
        except exceptions.RayError as exc:
            raise TaskFailed(one_line(str(exc))) from None

    def events(self, workers: list[Any]) -> list[list[dict[str, Any]]] | None:
        try:
            return list(self.ray.get([w.drain.remote() for w in workers], timeout=2.0))
        except Exception:  # a worker that just died: its job is handled when its call ends
            return None

    def cancel(self, worker: Any) -> None:
        worker.cancel.remote()

    def kill(self, worker: Any) -> None:
        self.ray.kill(worker)
