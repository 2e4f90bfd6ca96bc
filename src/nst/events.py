"""Progress events: the one stream the core reports through.

The CLI renders them as a progress bar, the web app streams them over SSE, and
``--log`` writes them as JSON lines; all three use :meth:`to_record`, and
:class:`Progress` turns the stream into done/total/ETA for every front end. The
core never prints.

Loss terms are named ``group:key`` (``content:conv4_2``, ``style:conv1_1``) or
``group`` (``tv``); a record sums each group (``style_loss``) and lists its keyed
terms (``style_losses``), so a new term shows up in every front end by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its image size and its number of iterations; planned against
    the memory limit (nst.memory): the tile it is evaluated in (None: untiled), its
    estimated peak memory in bytes and the L-BFGS pairs it keeps (0: not planned)."""

    height: int
    width: int
    iterations: int
    tile: int | None = None
    memory: int = 0
    history: int = 0
    #: an iteration's cost per pixel relative to an untiled one (the tiles' halos and
    #: their first pass), so that the ETA of a run with tiled stages stays honest
    cost: float = 1.0
    #: the network rectifies in place (the memory limit asks for it; tiles always do)
    lean: bool = False

    @property
    def lean_whole(self) -> bool:
        """Untiled and lean: what a front end tells apart (tiles are always lean)."""
        return self.lean and self.tile is None

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def work(self) -> float:
        """What an iteration of this stage costs, in untiled pixels."""
        return self.pixels * self.cost

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "width": self.width,
            "height": self.height,
            "iterations": self.iterations,
            "tile": self.tile,
        }
        if self.memory:
            record["memory_mb"] = round(self.memory / (1 << 20))
        if self.lean_whole:
            record["lean"] = True
        return record


@dataclass(frozen=True)
class Started:
    """A stage of a run begins; ``plan`` lists every stage of the run."""

    stage: int
    plan: tuple[Stage, ...]
    device: str
    precision: str
    seed: int
    workers: int = 0  # workers computing the stage's tiles (0: this process alone)
    auto: bool = False  # --iterations auto: the stage ends when the picture stops changing

    @property
    def iterations(self) -> int:
        """The stage's iterations (auto: the most it may take)."""
        return self.plan[self.stage].iterations

    @property
    def iterations_text(self) -> str:
        """``500 iterations``, or ``auto iterations (at most 1000)``."""
        if self.auto:
            return f"auto iterations (at most {self.iterations})"
        return f"{self.iterations} iterations"

    @property
    def height(self) -> int:
        return self.plan[self.stage].height

    @property
    def width(self) -> int:
        return self.plan[self.stage].width

    @property
    def stages(self) -> int:
        return len(self.plan)

    def __str__(self) -> str:
        where = f"stage {self.stage + 1}/{self.stages}: " if self.stages > 1 else ""
        spread = f", tiles on {self.workers} workers" if self.workers else ""
        return (
            f"{where}{self.width}x{self.height} px, {self.iterations_text} on "
            f"{self.device} ({self.precision}){spread}, seed {self.seed}"
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "started",
            "stage": self.stage,
            "plan": [s.to_record() for s in self.plan],
            "device": self.device,
            "precision": self.precision,
            "seed": self.seed,
            **({"workers": self.workers} if self.workers else {}),
            **({"auto": True} if self.auto else {}),
        }


def split_term(name: str) -> tuple[str, str | None]:
    """``style:conv1_1`` -> (``style``, ``conv1_1``); ``tv`` -> (``tv``, None)."""
    group, sep, key = name.partition(":")
    return group, (key if sep else None)


@dataclass(frozen=True)
class Step:
    """The state after ``iteration`` optimizer steps (0 = the initial image).

    ``terms`` holds every loss term by name in the paper's exact units (L_content,
    E_l, ...); ``weights`` the weight of each term within its group (w_l);
    ``factors`` what each term is multiplied by in ``loss``, the objective actually
    minimised: ``loss = sum(factors[n] * terms[n])``.
    """

    iteration: int
    evaluations: int
    loss: float
    terms: Mapping[str, float]
    weights: Mapping[str, float]
    factors: Mapping[str, float]
    elapsed: float
    stage: int = 0
    preview: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def group_loss(self, group: str) -> float:
        """sum of weight * value over a group's terms (``content`` is sum_l w_l L_l)."""
        return sum(
            self.weights.get(n, 1.0) * v for n, v in self.terms.items() if split_term(n)[0] == group
        )

    @property
    def content_loss(self) -> float:
        return self.group_loss("content")

    @property
    def style_loss(self) -> float:
        return self.group_loss("style")

    def __str__(self) -> str:
        """One short line (``print`` as an ``on_event`` handler): the stage, iteration, loss
        and its groups, time."""
        groups = dict.fromkeys(split_term(n)[0] for n in self.terms)
        parts = ", ".join(f"{g} {self.group_loss(g):.4g}" for g in groups)
        return (
            f"stage {self.stage + 1} iteration {self.iteration}: loss {self.loss:.4g} "
            f"({parts}), {self.elapsed:.1f} s"
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON record of this step (``--log`` lines, SSE; see docs/LOG.md)."""
        out: dict[str, Any] = {
            "type": "step",
            "iteration": self.iteration,
            "evaluations": self.evaluations,
            "loss": self.loss,
        }
        keyed: dict[str, dict[str, float]] = {}
        for name, value in self.terms.items():
            group, key = split_term(name)
            out[f"{group}_loss"] = (
                out.get(f"{group}_loss", 0.0) + self.weights.get(name, 1.0) * value
            )
            if key is not None:
                keyed.setdefault(group, {})[key] = value
        for group, values in keyed.items():
            out[f"{group}_losses"] = values
        out["factors"] = dict(self.factors)
        out["elapsed"] = round(self.elapsed, 4)
        out["stage"] = self.stage
        return out


#: how a stage ended by ``--iterations auto`` reads
SETTLED = "settled (the picture stopped changing)"


@dataclass(frozen=True)
class Finished:
    """A run ended; ``reason`` is ``completed``, ``converged`` or ``cancelled``."""

    iterations: int
    evaluations: int
    loss: float
    elapsed: float
    reason: str

    @property
    def why(self) -> str:
        """The reason as a person reads it."""
        return SETTLED if self.reason == "settled" else self.reason

    def __str__(self) -> str:
        return (
            f"{self.why}: {self.iterations} iterations, {self.evaluations} loss evaluations, "
            f"loss {self.loss:.4g}, {self.elapsed:.1f} s"
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "finished",
            "reason": self.reason,
            "iterations": self.iterations,
            "evaluations": self.evaluations,
            "loss": self.loss,
            "elapsed": round(self.elapsed, 4),
        }


@dataclass(frozen=True)
class FrameDone:
    """A video frame is finished (``index`` from 1; ``total`` 0 when unknown);
    ``resumed``: it was made by an earlier run and read back from the work folder;
    ``pass_index`` of ``passes`` (``--passes``), from 1."""

    index: int
    total: int
    iterations: int
    loss: float
    seconds: float
    resumed: bool = False
    pass_index: int = 1
    passes: int = 1

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "frame",
            "frame": self.index,
            "total": self.total,
            "iterations": self.iterations,
            "loss": self.loss,
            "seconds": round(self.seconds, 3),
            "resumed": self.resumed,
            "pass": self.pass_index,
            "passes": self.passes,
        }


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the run (e.g. a damaged frame
    of an earlier run that is painted again)."""

    message: str

    def to_record(self) -> dict[str, Any]:
        return {"type": "notice", "message": self.message}


Event = Union[Started, Step, Finished]
EventHandler = Callable[[Event], None]


def with_progress(record: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """A step's record with the run's progress (done, total, fraction, eta) added; a field
    both would set is refused rather than silently overwritten."""
    extra = progress.to_record()
    clash = sorted(set(record) & set(extra))
    if clash:
        raise ValueError(f"event field(s) {', '.join(clash)} set by both a step and its progress")
    return {**record, **extra}


class Progress:
    """Done, total and ETA of a whole run, from its events.

    Work is counted in iterations times pixels (times a tiled stage's cost per pixel), so
    a later coarse-to-fine stage (four times the pixels) weighs four times as much per
    iteration. The rate is measured on
    the current stage once it has done an iteration, else carried from the last one.
    """

    def __init__(self) -> None:
        self.plan: tuple[Stage, ...] = ()
        self.stage = 0
        self.iteration = 0
        self.elapsed = 0.0
        self._stage_start: tuple[float, int] | None = None  # (elapsed, iteration) at its start
        self._rate: float | None = None  # seconds per unit of work

    def update(self, event: Event) -> None:
        if isinstance(event, Started):
            self.plan = event.plan
            self.stage = event.stage
            self.iteration = 0
            self._stage_start = None
        elif isinstance(event, Step):
            self.stage, self.iteration, self.elapsed = event.stage, event.iteration, event.elapsed
            if self._stage_start is None:
                self._stage_start = (event.elapsed, event.iteration)
            t0, i0 = self._stage_start
            if event.iteration > i0 and self.plan:
                work = (event.iteration - i0) * self.plan[self.stage].work
                self._rate = (event.elapsed - t0) / work
        elif isinstance(event, Finished):
            self.elapsed = event.elapsed
            if self.plan:
                self.stage, self.iteration = len(self.plan) - 1, self.plan[-1].iterations

    @property
    def total(self) -> int:
        """Iterations of all stages."""
        return sum(s.iterations for s in self.plan)

    @property
    def done(self) -> int:
        return sum(s.iterations for s in self.plan[: self.stage]) + self.iteration

    def _work(self) -> tuple[float, float]:
        total = float(sum(s.iterations * s.work for s in self.plan))
        done = sum(s.iterations * s.work for s in self.plan[: self.stage])
        if self.plan:
            done += self.iteration * self.plan[self.stage].work
        return float(done), total

    @property
    def fraction(self) -> float:
        done, total = self._work()
        return min(1.0, done / total) if total else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, or None before the rate is known."""
        if self._rate is None:
            return None
        done, total = self._work()
        return max(0.0, (total - done) * self._rate)

    def to_record(self) -> dict[str, Any]:
        eta = self.eta
        return {
            "done": self.done,
            "total": self.total,
            "fraction": round(self.fraction, 4),
            "eta": None if eta is None else round(eta, 1),
        }
