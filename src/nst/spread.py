"""One picture over several workers: a tiled stage's tiles on Ray (``nst stylize
--workers N`` on this machine, ``--address HOST:PORT`` on a cluster).

The tiled objective (``nst.objective.tiling``) is a sum over tiles: its statistics pass
and its gradient pass each compute every tile on its own. :class:`RaySpread` hands those
tiles to :class:`TileWorker` actors, each of which loads the network once and keeps it,
and gets a stage's feature terms (their targets) once per stage through Ray's object
store. Per evaluation a tile sends only its padded region, a statistics pass brings back
its float64 statistics, and a gradient pass gets the small derivatives of the terms by
their statistics (put once per evaluation) and brings back the gradient of its padded
region. The driver sums everything in the order the one-process path does, so the
losses and the picture are those of the one-process tiled run (up to the workers'
convolutions using other thread counts: within 1e-5 relative in fp32).

Tiles go to the worker with the least in flight (two each at most, so a worker never
waits for its next tile). A worker lost mid-evaluation (its node gone) is replaced and
its tiles run again elsewhere: the evaluation's result is the same. With no worker left
the run stops with a sentence; its checkpoint continues it. A Ctrl-C cancels the tiles
waiting and :meth:`RaySpread.close` (the command's ``finally``) ends the workers at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .batch.cluster import Cluster
from .errors import WorkersLost
from .objective.tiling import (
    FeatureTerm,
    Kept,
    Window,
    gathers,
    tile_backward,
    tile_forward,
    tile_grad,
    tile_stats,
)
from .own_thread import on_own_thread

#: tiles one worker holds at a time (the next one is there when it finishes one)
IN_FLIGHT = 2
#: workers replaced during one run before it gives up
MOST_LOST = 8
#: seconds a replacement worker may take to start (load its network)
REPLACE_WITHIN = 120.0
#: seconds a tile call waits for its stage's terms, sent just before it
STAGE_WITHIN = 120.0


NoWorkers = WorkersLost  # the cluster has no worker left for a run's tiles


@dataclass(frozen=True)
class NetworkSpec:
    """Which network a worker loads (the run's, as ``runtime.network`` takes it)."""

    weights: str | None
    pooling: str
    normalize: bool
    layers: tuple[str, ...]
    dtype: str  # "float32" | "bfloat16" | "float16"

    @classmethod
    def of(cls, plan: Any) -> NetworkSpec:
        """The network of a run's plan (its weights, pooling, precision, layers)."""
        from . import runtime

        c = plan.config
        _, dtype = runtime.resolve_precision(c.precision, runtime.resolve_device(c.device))
        return cls(c.weights, c.pooling, c.normalize, tuple(plan.layers),
                   str(dtype or torch.float32).removeprefix("torch."))  # fmt: skip


class _Net:
    """What the tile functions read of an objective: its extractor."""

    def __init__(self, extractor: Any) -> None:
        self.extractor = extractor


class Tiles:
    """What a tile worker does, as a mixin: the network (bound once), the current stage's
    feature terms, and the tiles of an evaluation. :class:`TileWorker` is one alone; a
    batch ``Painter`` is one too, so the workers of a batch can spread a poster's tiles.
    Tile calls run one at a time (an actor with several threads serializes them here)."""

    net: _Net

    def bind(self, spec: NetworkSpec) -> None:
        """Load the network ``spec`` names (cached in this process) and forget any stage."""
        import threading

        from . import runtime

        dtype = getattr(torch, spec.dtype)
        self.net = _Net(runtime.network(spec.weights, spec.pooling, spec.normalize,
                                        list(spec.layers), "cpu", dtype))  # fmt: skip
        self.key = -1
        self.terms: list[FeatureTerm] = []
        #: (evaluation, tile) -> its region, or its whole forward (``keep_graph``)
        self.kept: dict[tuple[int, int], torch.Tensor | Kept] = {}
        if not hasattr(self, "tile_lock"):
            self.tile_lock = threading.Lock()
            #: a tile waits here for its stage's terms: an actor with several threads (a
            #: painter) may run a tile call before the ``stage`` call sent ahead of it
            self.staged = threading.Condition(self.tile_lock)

    def release(self) -> None:
        """Let the stage's terms and the kept tiles go (a run ended)."""
        with self.tile_lock:
            self.key, self.terms, self.kept = -1, [], {}

    def ready(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def stage(self, key: int, terms: list[FeatureTerm]) -> None:
        with self.staged:
            self.key, self.terms, self.kept = key, terms, {}
            self.staged.notify_all()

    def _staged(self, key: int) -> None:
        """Wait (holding the tile lock after) until this worker has stage ``key``."""
        self.staged.wait_for(lambda: self.key >= key, timeout=STAGE_WITHIN)
        assert key == self.key, "a tile of another stage"

    def stats(self, key: int, xt: torch.Tensor, win: Window, tag: tuple[int, int],
              keep_graph: bool) -> dict[str, list[torch.Tensor]]:  # fmt: skip
        """A tile's statistics. Its region is kept for the same evaluation's gradient
        pass (``tag``: the evaluation and the tile), which then need not send it again;
        with ``keep_graph`` its whole forward is kept, and that pass runs no forward."""
        with self.staged:
            self._staged(key)
            if any(t[0] != tag[0] for t in self.kept):
                self.kept = {}  # an earlier evaluation's regions
            wanted = [t for t in self.terms if not t.module.local or gathers(t.module)]
            if keep_graph:
                stats, forward = tile_forward(self.net, xt, win, self.terms)  # type: ignore[arg-type]
                self.kept[tag] = forward
                return stats
            self.kept[tag] = xt
            return tile_stats(self.net, xt, win, wanted)  # type: ignore[arg-type]

    def grad(
        self, key: int, xt: torch.Tensor | None, win: Window, tag: tuple[int, int],
        keep_graph: bool, coefficients: dict[str, tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:  # fmt: skip
        """A tile's share of the gradient (``xt`` None: from what its statistics pass
        kept here)."""
        with self.staged:
            self._staged(key)
            backward = [t for t in self.terms
                        if not t.module.local and t.name in coefficients]  # fmt: skip
            backward += [t for t in self.terms if t.module.local]
            kept = self.kept.pop(tag) if xt is None else xt
            if isinstance(kept, Kept):
                return tile_backward(kept, win, backward, coefficients)
            return tile_grad(self.net, kept, win, backward, coefficients)  # type: ignore[arg-type]


class PooledTiles(Tiles):
    """:class:`Tiles` for an actor whose calls run on several pooled threads (a painter):
    each tile call computes on a thread of its own that ends with it, so no pooled thread
    keeps an OpenMP team beside the one the job computes on (:mod:`nst.own_thread`)."""

    def bind(self, spec: NetworkSpec) -> None:
        on_own_thread(super().bind, spec)

    def stats(self, key: int, xt: torch.Tensor, win: Window, tag: tuple[int, int],
              keep_graph: bool) -> dict[str, list[torch.Tensor]]:  # fmt: skip
        return on_own_thread(super().stats, key, xt, win, tag, keep_graph)

    def grad(
        self, key: int, xt: torch.Tensor | None, win: Window, tag: tuple[int, int],
        keep_graph: bool, coefficients: dict[str, tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:  # fmt: skip
        return on_own_thread(super().grad, key, xt, win, tag, keep_graph, coefficients)


class TileWorker(Tiles):
    """A Ray actor that only computes tiles: the network loaded once, at its start."""

    def __init__(self, threads: int, spec: NetworkSpec, max_pixels: int) -> None:
        from . import process

        torch.set_num_threads(threads)
        process.configure(max_pixels=max_pixels)
        self.bind(spec)


@dataclass
class Traffic:
    """One pass of one evaluation: tiles, bytes each way, seconds in all and waiting for
    the slowest tile once every other had come back."""

    kind: str
    tiles: int = 0
    sent: int = 0
    received: int = 0
    seconds: float = 0.0
    slowest: float = 0.0


def _bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_bytes(v) for v in obj)
    return 0


@dataclass
class RaySpread:
    """The tiles of tiled stages on Ray workers (:class:`nst.objective.tiling.Spread`)."""

    cluster: Cluster
    spec: NetworkSpec
    workers: int | None = None  # None: the cluster's CPUs over the threads per worker
    ray: Any = None
    actor: Any = None
    pool: list[Any] = field(default_factory=list)
    started: bool = False
    key: int = 0
    terms_ref: Any = None
    _terms_id: tuple[int, ...] = ()
    lost: int = 0
    traffic: list[Traffic] = field(default_factory=list)
    evaluation: int = 0
    placed: dict[int, Any] = field(default_factory=dict)  # tile -> the worker that keeps it
    replace_within: float = REPLACE_WITHIN  # seconds a new worker may take to start
    keep_graph: bool = False  # a tile's forward kept for its gradient pass (tiles for workers)
    given: bool = False  # workers lent by the caller (a batch's painters): not started here
    dead: set[int] = field(default_factory=set)  # slots of lent workers that were lost
    owned: list[Any] = field(default_factory=list)  # tile workers started for one run

    @classmethod
    def over(cls, ray: Any, workers: Sequence[Any], threads: int, spec: NetworkSpec) -> RaySpread:
        """Tiles on workers that already run (a batch's painters, which are
        :class:`Tiles` too), each with ``threads`` threads: they load ``spec``'s network
        now. A lost one is not replaced (its owner replaces it): its tiles go to the
        others, and the run stops only when none is left."""
        spread = cls(Cluster(threads_per_worker=threads), spec, len(workers), ray=ray,
                     pool=list(workers), given=True)  # fmt: skip
        ray.get([w.bind.remote(spec) for w in spread.pool])
        return spread

    @classmethod
    def beside(cls, ray: Any, me: Any, count: int, threads: int, spec: NetworkSpec,
               within: float) -> RaySpread:  # fmt: skip
        """Tiles on ``me`` (a :class:`Tiles` actor running the run) and up to ``count``
        tile workers started now on the cluster's free CPUs: those started within
        ``within`` seconds take part, the rest are let go; all end with :meth:`close`."""
        from .process import current

        actor = ray.remote(num_cpus=threads)(TileWorker)
        started = [actor.remote(threads, spec, current().max_pixels) for _ in range(count)]
        calls = {w.ready.remote(): w for w in started}
        ready, _ = ray.wait(list(calls), num_returns=len(calls), timeout=within)
        took = [calls[c] for c in ready]
        for w in started:
            if w not in took:
                ray.kill(w)
        spread = cls.over(ray, [me, *took], threads, spec)
        spread.owned = took
        return spread

    def open(self) -> int:
        """Join the cluster (or start a local Ray) and start the workers; how many."""
        from .batch.engine import start_cluster
        from .process import current

        self.ray, workers, self.started = start_cluster(self.cluster)
        count = self.workers or workers
        c = self.cluster
        self.actor = self.ray.remote(num_cpus=c.threads, num_gpus=c.gpus)(TileWorker)
        self.max_pixels = current().max_pixels
        self.pool = [self._spawn() for _ in range(count)]
        self.ray.get([w.ready.remote() for w in self.pool])  # the networks loaded
        return count

    def close(self) -> None:
        if self.given:  # lent: only what the run left on them goes (and those it started)
            for w in self.pool:
                with contextlib.suppress(Exception):
                    if w in self.owned:
                        self.ray.kill(w)
                    else:
                        w.release.remote()
            self.pool, self.owned = [], []
            return
        for w in self.pool:
            self.ray.kill(w)
        self.pool = []
        if self.started:
            self.ray.shutdown()
            self.started = False

    def _spawn(self) -> Any:
        worker = self.actor.remote(self.cluster.threads, self.spec, self.max_pixels)
        if self.terms_ref is not None:
            worker.stage.remote(self.key, self.terms_ref)
        return worker

    # -- the Spread protocol --------------------------------------------------------------------
    @property
    def count(self) -> int:
        """The workers taking part."""
        return len(self.pool) - len(self.dead)

    @property
    def threads(self) -> int:
        """Their torch threads, all together."""
        return self.count * self.cluster.threads

    def begin(self, terms: Sequence[FeatureTerm]) -> None:
        """A stage's terms go to every worker once (through the object store)."""
        ident = tuple(id(t.module) for t in terms)
        if ident == self._terms_id:
            return
        self.key += 1
        self._terms_id = ident
        self.terms_ref = self.ray.put(list(terms))
        for w in self.pool:
            w.stage.remote(self.key, self.terms_ref)

    def stats(
        self, x: torch.Tensor, windows: Sequence[Window]
    ) -> list[dict[str, list[torch.Tensor]]]:
        self.evaluation += 1
        self.placed = {}
        return self._run("stats", x, windows, ())

    def grads(
        self, x: torch.Tensor, windows: Sequence[Window],
        coefficients: dict[str, tuple[torch.Tensor, ...]],
    ) -> list[tuple[torch.Tensor | None, dict[str, torch.Tensor]]]:  # fmt: skip
        shared = self.ray.put(coefficients)
        return self._run("grad", x, windows, (shared,), _bytes(coefficients))

    # -- dispatch -------------------------------------------------------------------------------
    def _run(self, kind: str, x: torch.Tensor, windows: Sequence[Window], extra: tuple,
             shared_bytes: int = 0) -> list[Any]:  # fmt: skip
        """Every window's tile on the workers; the results in the windows' order. A
        gradient pass gives a tile to the worker that kept its region from the statistics
        pass when it can (nothing to send), else to the least busy one with the region."""
        ray = self.ray
        report = Traffic(kind, len(windows), sent=shared_bytes * len(self.pool))
        start = time.perf_counter()
        todo = list(range(len(windows)))
        results: dict[int, Any] = {}
        flying: dict[Any, tuple[int, int]] = {}  # call -> (window, worker slot)
        load = [0] * len(self.pool)
        last = start
        try:
            while len(results) < len(windows):
                while todo and (pick := self._pick(kind, todo, load)) is not None:
                    k, slot, resend = pick
                    todo.remove(k)
                    xt = windows[k].crop(x).detach().cpu().contiguous() if resend else None
                    report.sent += _bytes(xt)
                    worker = self.pool[slot]
                    tag = (self.evaluation, k)
                    call = getattr(worker, kind).remote(self.key, xt, windows[k], tag,
                                                        self.keep_graph, *extra)  # fmt: skip
                    if kind == "stats":
                        self.placed[k] = worker
                    flying[call] = (k, slot)
                    load[slot] += 1
                ready, _ = ray.wait(list(flying), num_returns=1)
                call = ready[0]
                k, slot = flying.pop(call)
                load[slot] -= 1
                try:
                    results[k] = ray.get(call)
                except ray.exceptions.RayActorError:
                    self._replace(slot, flying, todo, load)
                    todo.insert(0, k)
                    continue
                report.received += _bytes(results[k])
                now = time.perf_counter()
                if len(results) == len(windows):
                    report.slowest = now - last
                last = now
        except BaseException:  # Ctrl-C, a stop: the tiles not started go (close() ends the rest)
            for call in flying:
                with contextlib.suppress(Exception):  # a call that has just ended
                    ray.cancel(call)
            raise
        report.seconds = time.perf_counter() - start
        self.traffic.append(report)
        return [results[k] for k in range(len(windows))]

    def _pick(self, kind: str, todo: list[int], load: list[int]) -> tuple[int, int, bool] | None:
        """The next tile, its worker, and whether its region must be sent; None when
        every worker that could take one is full."""
        free = [s for s in range(len(self.pool)) if load[s] < IN_FLIGHT and s not in self.dead]
        if not free:
            return None
        if kind == "grad":
            for k in todo:  # a tile whose region a free worker kept
                keeper = self.placed.get(k)
                for s in free:
                    if self.pool[s] is keeper:
                        return k, s, False
            waiting = {id(self.placed.get(k)) for k in todo}
            idle = [s for s in free if id(self.pool[s]) not in waiting or load[s] == 0]
            if not idle:
                return None  # the keepers are busy: they take theirs next
            free = idle
        slot = min(free, key=load.__getitem__)
        return todo[0], slot, True

    def _replace(self, slot: int, flying: dict[Any, tuple[int, int]], todo: list[int],
                 load: list[int]) -> None:  # fmt: skip
        """A worker was lost: its other tiles go back in the queue, a new worker takes
        its place (or the run stops: none can be placed)."""
        self.lost += 1
        for call, (k, s) in list(flying.items()):
            if s == slot:
                del flying[call]
                todo.insert(0, k)
        load[slot] = 0
        if self.given:
            self.dead.add(slot)
            if self.count < 1:
                raise NoWorkers(
                    "every worker holding this picture's tiles was lost; the same command "
                    "continues from its checkpoint"
                )
            return
        cpus = self.ray.cluster_resources().get("CPU", 0)
        if self.lost > MOST_LOST or cpus < self.cluster.threads:
            raise NoWorkers(
                "the cluster has no worker left for this picture's tiles; start workers and "
                "give the same command again"
            )
        self.pool[slot] = self._spawn()
        ready, _ = self.ray.wait([self.pool[slot].ready.remote()], timeout=self.replace_within)
        if not ready:
            raise NoWorkers(
                f"no new worker for this picture's tiles started within "
                f"{self.replace_within:.0f} "
                "s; give the same command again when the cluster has room"
            )
