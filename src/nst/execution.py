"""Executing a :class:`~nst.planning.Plan`: stages, objective, optimizer, events.

For every coarse-to-fine stage: encode the targets at the stage's size, start from
the plan's start image (first stage) or the previous stage upsampled, minimise,
and report each iteration as a :class:`~nst.events.Step` with the objective's terms
by name. Returns the image; nothing here touches files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, Union

import torch
import torch.nn.functional as F

from . import controls, process, runtime
from .errors import ConfigError, Interrupted, ResourceError, RunStopped, TermError
from .events import EventHandler, Finished, Stage, Started, Step
from .imageio import resize_longest, resize_to
from .model.vgg import VGG19Features
from .model.weights import IMAGENET_MEAN_RGB
from .objective import Objective, StageTargets, StyleSource, build_terms
from .objective.tiling import Spread, Tiling, check_tileable
from .optimize import SETTLE, OptimizerState, StepState, Variant, minimize
from .planning import Plan

StopSignal = Union[Callable[[], bool], threading.Event, None]

#: the centre of the noise initialisation: the mean pixel of ImageNet (RGB, 0..255)
NOISE_MEAN = IMAGENET_MEAN_RGB
#: standard deviation of the noise initialisation (0..255 units): with it L-BFGS converged
#: steadily, where smaller amplitudes stalled (measured on these weights before the code
#: was written)
NOISE_STD = 50.0


@dataclass(frozen=True)
class RunState:
    """Everything the rest of a run depends on, at the end of an iteration (``optimizer``)
    or at the start of a coarse-to-fine stage (``x``: the previous stage's result at its
    own size): the stage, the averaging's sum and count, the states of the objective's
    random generators (the sliced Wasserstein directions) by module name, what the stages
    before counted, the run's seed and its planned stages (the tile and L-BFGS pairs
    chosen then are kept, so a continued run evaluates as the first did). Front ends
    write it to disk (:mod:`nst.checkpoints`); :func:`execute` continues from it."""

    stage: int
    seed: int
    stages: tuple[Stage, ...]
    optimizer: OptimizerState | None = None
    x: torch.Tensor | None = None
    average: tuple[torch.Tensor, int] | None = None
    generators: Mapping[str, torch.Tensor] = field(default_factory=dict)
    iterations: int = 0  # of the stages before
    evaluations: int = 0
    elapsed: float = 0.0  # seconds of optimization before this state, all stages

    @property
    def iteration(self) -> int:
        """The iteration of ``stage`` this state is after (0: the stage's start)."""
        return self.optimizer.iteration if self.optimizer is not None else 0


class Checkpointer(Protocol):
    """Where a run's states go (a front end's work folder): asked after every iteration
    whether a state is ``due``; given one then, at every stage boundary and when the run
    is interrupted."""

    def due(self) -> bool: ...

    def save(self, state: RunState) -> None: ...


def resumed(plan: Plan, state: RunState) -> Plan:
    """The plan a saved state continues: its seed and its stages as they were planned."""
    if len(state.stages) != len(plan.stages) or not 0 <= state.stage < len(plan.stages):
        raise ValueError("resume: a state of another plan")
    return replace(plan, seed=state.seed, stages=state.stages)


def _generators(objective: Objective) -> dict[str, torch.Generator]:
    return {
        name: m.generator
        for name, m in objective.named_modules()
        if isinstance(getattr(m, "generator", None), torch.Generator)
    }


def keeps_freed_memory(plan: Plan) -> bool:
    """Whether this run tells malloc to keep freed memory (:func:`nst.runtime.
    keep_freed_memory`), where the process's owner allows it
    (:attr:`nst.process.ProcessSettings.keep_freed_memory`): untiled and under the
    automatic memory limit, whose margin holds the peak's few percent more; a tiled run or
    one under a given ``--memory-limit`` keeps the peak its estimate was measured for."""
    return (
        process.current().keep_freed_memory
        and all(s.tile is None for s in plan.stages)
        and plan.config.memory_limit.strip().lower() in ("auto", "none")
    )


def stop_function(stop: StopSignal) -> Callable[[], bool] | None:
    """A stop signal (an event, a callable or None) as a callable (or None)."""
    if stop is None:
        return None
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


def start_image(plan: Plan, size: tuple[int, int]) -> torch.Tensor:
    """The first stage's start image (1, 3, h, w) in 0..255 on the CPU."""
    h, w = size
    if plan.init is None:
        gen = torch.Generator().manual_seed(plan.seed)
        mean = torch.tensor(NOISE_MEAN).view(1, 3, 1, 1)
        return torch.randn(1, 3, h, w, generator=gen) * NOISE_STD + mean
    return resize_to(plan.init, size).unsqueeze(0) * 255.0


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp_(0, 255)


def finish_image(plan: Plan, x: torch.Tensor) -> torch.Tensor:
    """An iterate (1, 3, h, w, 0..255) as the (3, h, w) result in [0, 1] on the CPU:
    clamped, the content's chroma restored (luminance mode), kept regions composited."""
    img = x.detach()[0].float().clamp(0, 255).div(255).cpu()
    if plan.color_reference is not None:
        img = controls.recombine_chroma(img, plan.color_reference).clamp(0, 1)
    if plan.keep is not None and plan.original is not None:
        keep, original = plan.keep, plan.original
        hw = (img.shape[1], img.shape[2])
        if keep.shape[-2:] != hw:  # an earlier coarse-to-fine stage (previews)
            keep = F.interpolate(keep[None], size=hw, mode="bilinear")[0]
            original = resize_to(plan.original, hw)
        img = keep * original + (1 - keep) * img
    return img


def build_objective(plan: Plan, stage: int, extractor: VGG19Features) -> Objective:
    """The objective of one stage: every term spec in use (:mod:`nst.objective.terms`), its
    targets encoded at the stage's size."""
    s = plan.stages[stage]
    size = (s.height, s.width)
    device = extractor.in_scale.device
    objective = Objective(extractor, plan.config.weighting).to(device)
    objective.lean = s.lean
    if s.tile is not None:  # before the terms: their targets are encoded in tiles too
        objective.tiling = Tiling.for_layers(plan.layers, s.tile, extractor.plan,
                                            reach=plan.reach)  # fmt: skip
    content = None
    if plan.content is not None:
        content = resize_to(plan.content, size).unsqueeze(0).mul(255).to(device)
    sources: list[StyleSource] = []
    if plan.styles:
        longest = plan.style_longest(stage)
        guides: dict[int, torch.Tensor] = {}
        for img, weight, guide in zip(plan.styles, plan.blend, plan.guides):
            g = None
            if guide is not None:
                if id(guide) not in guides:
                    guides[id(guide)] = F.interpolate(guide[None], size=size, mode="area").to(
                        device
                    )
                g = guides[id(guide)]
            s_img = resize_longest(img, longest).unsqueeze(0).mul(255).to(device)
            sources.append(StyleSource(s_img, weight, g))
    return build_terms(objective, plan, StageTargets(size, content, tuple(sources)), plan.added)


def execute(
    plan: Plan,
    on_event: EventHandler | None = None,
    stop: StopSignal = None,
    preview_every: int = 0,
    *,
    resume: RunState | None = None,
    checkpoint: Checkpointer | None = None,
    variant: Variant = Variant(),
    spread: Spread | None = None,
) -> torch.Tensor:
    """Run a plan; returns the (3, H, W) image in [0, 1] on the CPU. With ``resume`` (a
    state saved by an earlier run of the same plan) the run goes on from there and ends
    with the picture the uninterrupted run makes; ``checkpoint`` receives its states;
    ``variant`` is how the optimizer computes (benchmarks compare them); ``spread``:
    workers that compute the tiles of the stages large enough to pay (``nst.spread``)."""
    if resume is not None:
        plan = resumed(plan, resume)
    if not plan.layers:
        raise ConfigError("nothing to match: give a content or a style image")
    run = _Execution(plan, on_event, stop, preview_every, checkpoint, variant)
    run.spread = spread
    return run.run(resume)


#: a stage with fewer pixels stays in this process even with workers (benchmarks/
#: print_size.py --spread measures where spreading starts to pay)
SPREAD_PIXELS = 1024 * 768
#: a stage that fits in memory whole is cut in tiles for the workers only when their
#: threads, all together, are at least this many times this process's: a tile on a
#: worker costs ~1.6x its pixels' share of an untiled evaluation per thread here (a
#: statistics pass before the gradient pass, halos; benchmarks/print_size.py --spread),
#: plus the transfer and the wait for the slowest tile, so fewer cannot win
SPREAD_FACTOR = 2.0


def tile_for_workers(plan: Plan, size: tuple[int, int], workers: int, net_plan: tuple[str, ...]
                     ) -> Tiling:  # fmt: skip
    """The tiling of a spread stage: of the grids of up to ``4 x workers`` tiles, the one
    whose busiest worker has the least to compute (the tiles it gets, ``ceil(tiles /
    workers)``, times a tile's padded pixels); the fewer tiles when two tie."""
    h, w = size
    best: tuple[float, int, Tiling] | None = None
    for rows in range(1, 4 * workers + 1):
        for cols in range(1, 4 * workers // rows + 1):
            tiling = Tiling.for_layers(plan.layers, -(-h // rows), net_plan, -(-w // cols),
                                       plan.reach)  # fmt: skip
            windows = tiling.windows(size)
            padded = tiling.overhead(size) * h * w / len(windows)
            busiest = -(-len(windows) // workers) * padded
            if best is None or (busiest, len(windows)) < (best[0] * 0.999, best[1]):
                best = (busiest, len(windows), tiling)
    assert best is not None
    return best[2]


def spread_pays(threads: int, here: int | None = None) -> bool:
    """Whether workers with ``threads`` threads in all beat this process (``here``
    threads, default torch's) on a stage it could evaluate whole."""
    return threads >= SPREAD_FACTOR * (here or torch.get_num_threads())


def spread_stage(objective: Objective, plan: Plan, stage: int, spread: Spread | None) -> int:
    """Hand the stage's tiles to ``spread``'s workers when it pays: a stage already tiled
    for memory, or one of at least ``SPREAD_PIXELS`` when the workers have enough threads
    (:func:`spread_pays`; tiled for the workers then); the workers taking part (0: none)."""
    s = plan.stages[stage]
    if spread is None or spread.count < 1:
        return 0
    if objective.tiling is None:
        if s.height * s.width < SPREAD_PIXELS or not spread_pays(spread.threads):
            return 0
        try:
            check_tileable(objective.terms)
        except TermError:
            return 0  # a loss that cannot be cut in tiles: the driver alone
        objective.tiling = tile_for_workers(plan, (s.height, s.width), spread.count,
                                            objective.extractor.plan)  # fmt: skip
        spread.keep_graph = True  # a tile's forward fits where the whole stage does
    else:
        spread.keep_graph = False  # tiled for memory: a worker holds one pass at a time
    objective.spread = spread
    return spread.count


class _Execution:
    """One run of a plan: its network, the counters its stages carry on, and where its
    states go."""

    def __init__(
        self,
        plan: Plan,
        on_event: EventHandler | None,
        stop: StopSignal,
        preview_every: int,
        checkpoint: Checkpointer | None,
        variant: Variant,
    ) -> None:
        config = plan.config
        self.plan = plan
        self.variant = variant
        self.device = runtime.resolve_device(config.device)
        self.precision, self.dtype = runtime.resolve_precision(config.precision, self.device)
        self.extractor = runtime.network(
            config.weights, config.pooling, config.normalize, plan.layers, self.device,
            self.dtype,
        )  # fmt: skip
        if keeps_freed_memory(plan):
            runtime.keep_freed_memory()
        self.emit: EventHandler = on_event or (lambda event: None)
        self.should_stop = stop_function(stop)
        self.preview_every = preview_every
        self.checkpoint = checkpoint
        self.spread: Spread | None = None
        self.x: torch.Tensor | None = None
        self.iterations = self.evaluations = 0
        self.elapsed = 0.0
        self.loss = float("nan")
        self.reason = "completed"

    def run(self, resume: RunState | None) -> torch.Tensor:
        first = 0
        if resume is not None:
            first, self.iterations = resume.stage, resume.iterations
            self.evaluations, self.elapsed = resume.evaluations, resume.elapsed
            if resume.optimizer is None:  # a stage boundary: the previous stage's picture
                assert resume.x is not None
                self.x = resume.x.to(self.device)
        for stage in range(first, len(self.plan.stages)):
            if not self.stage(stage, resume if stage == first else None):
                break  # cancelled
        assert self.x is not None
        self.emit(Finished(self.iterations, self.evaluations, self.loss, self.elapsed,
                           self.reason))  # fmt: skip
        return finish_image(
            self.plan, to_output_size(self.plan, self.x)
        )  # an earlier stage: upscaled

    def _save(self, state: RunState | None) -> None:
        if self.checkpoint is not None and state is not None:
            self.checkpoint.save(state)

    def stage(self, stage: int, resume: RunState | None) -> bool:
        """Minimise one stage (from ``resume``'s state when it is in this stage); False
        when the run was cancelled in it."""
        plan, s = self.plan, self.plan.stages[stage]
        size = (s.height, s.width)
        config = plan.config
        average = IterateAverage(config.average) if config.average > 0 else None
        going_on = resume.optimizer if resume is not None else None
        reporter: _Reporter | None = None
        try:
            objective = build_objective(plan, stage, self.extractor)
            workers = spread_stage(objective, plan, stage, self.spread)
            if going_on is not None:
                assert resume is not None
                _restore(objective, average, resume)
            x = self.x
            x0 = start_image(plan, size).to(self.device) if x is None else _upsample(x, size)
            self.emit(Started(stage, plan.stages, str(self.device), self.precision, plan.seed,
                              workers, config.auto))  # fmt: skip
            before = RunState(stage, plan.seed, plan.stages, iterations=self.iterations,
                              evaluations=self.evaluations, elapsed=self.elapsed)  # fmt: skip
            reporter = _Reporter(plan, objective, self.emit, stage, self.preview_every,
                                 self.evaluations, self.elapsed, average, before,
                                 self.checkpoint)  # fmt: skip
            result = minimize(
                objective,
                x0,
                iterations=s.iterations,
                method=config.optimizer,
                lr=config.learning_rate,
                history=s.history or config.lbfgs_history,
                on_step=reporter,
                should_stop=self.should_stop,
                resume=going_on,
                variant=self.variant,
                settle=SETTLE if config.auto else None,
            )
        except RunStopped as exc:
            if isinstance(exc, Interrupted) and reporter is not None:
                self._save(reporter.state())  # the last whole iteration, to go on from
            raise self.stopped(exc, stage, average) from None
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
            raise ResourceError(
                f"not enough memory for a {s.width}x{s.height} px image on {self.device}; try "
                "a smaller --size" + (" or --precision bf16" if self.dtype is None else "")
            ) from None
        averaged = average.value() if average is not None else None
        self.x = result.x if averaged is None else averaged.to(result.x.dtype)
        self.iterations += result.iterations
        self.evaluations += result.evaluations
        self.elapsed += result.elapsed
        self.loss, self.reason = result.loss, result.reason
        if self.reason == "cancelled":
            self._save(reporter.state())  # to go on from later
            return False
        if stage + 1 < len(plan.stages):  # a stage boundary
            self._save(RunState(stage + 1, plan.seed, plan.stages, x=self.x.detach(),
                                iterations=self.iterations, evaluations=self.evaluations,
                                elapsed=self.elapsed))  # fmt: skip
        return True

    def stopped(self, exc: RunStopped, stage: int, average: IterateAverage | None) -> RunStopped:
        """The stop as the caller sees it: the last good image (the average's, if kept) at
        the output's size, and where the run was."""
        kept = average.value() if average is not None else None
        last = kept if kept is not None and bool(torch.isfinite(kept).all()) else exc.image
        image = finish_image(self.plan, to_output_size(self.plan, last))
        message = str(exc) + stopped_early(self.plan, stage)
        return type(exc)(message, image=image, iteration=exc.iteration)


def to_output_size(plan: Plan, x: torch.Tensor) -> torch.Tensor:
    """An iterate of an earlier coarse-to-fine stage upsampled to the output's size as the
    next stage would have started from it (the output's own size unchanged), so a stopped
    run's picture has the size asked for."""
    if tuple(x.shape[-2:]) == tuple(plan.out_size):
        return x
    return _upsample(x.detach().float(), plan.out_size)


def stopped_early(plan: Plan, stage: int) -> str:
    """What a message about a run stopped in ``stage`` adds when that is not the last."""
    n = len(plan.stages)
    if stage >= n - 1:
        return ""
    s, (h, w) = plan.stages[stage], plan.out_size
    return (
        f"; stopped in coarse-to-fine stage {stage + 1} of {n} ({s.width}x{s.height} px), the "
        f"picture upscaled to the asked {w}x{h} px"
    )


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says an allocation failed: a typed error where torch raises one
    (CUDA, MPS and Python's own), and for torch's CPU allocator, which raises a plain
    RuntimeError, the allocator's name in its message (the only mark it has)."""
    typed = (MemoryError, torch.cuda.OutOfMemoryError)
    return isinstance(exc, typed) or "DefaultCPUAllocator" in str(exc)


class IterateAverage:
    """An exponential moving average of the iterates with bias correction (Adam's): after
    t updates, sum_k (1 - d) d^(t-k) x_k / (1 - d^t), so the first update is x_1 itself."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.count = 0
        self._sum: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().float()
        if self._sum is None:
            self._sum = torch.zeros_like(x)
        self._sum.mul_(self.decay).add_(x, alpha=1 - self.decay)
        self.count += 1

    def value(self) -> torch.Tensor | None:
        """The bias-corrected average (None before the first update)."""
        if self._sum is None:
            return None
        return self._sum / (1 - self.decay**self.count)

    @property
    def total(self) -> torch.Tensor | None:
        """The running sum before bias correction (what a checkpoint keeps)."""
        return self._sum

    def restore(self, total: torch.Tensor, count: int) -> None:
        self._sum, self.count = total.detach().float().clone(), int(count)


def _restore(objective: Objective, average: IterateAverage | None, state: RunState) -> None:
    """The objective's random generators and the averaging as ``state`` saved them."""
    for name, generator in _generators(objective).items():
        if name in state.generators:
            generator.set_state(state.generators[name])
    if average is not None and state.average is not None:
        total, count = state.average
        average.restore(total, count)


class _Reporter:
    """Turns the optimizer's per-iteration state into :class:`Step` events for one stage,
    and gives its :class:`RunState` to the checkpointer when one is due."""

    def __init__(
        self,
        plan: Plan,
        objective: Objective,
        emit: EventHandler,
        stage: int,
        preview_every: int,
        evaluations_before: int,
        elapsed_before: float,
        average: IterateAverage | None = None,
        before: RunState | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> None:
        self.plan = plan
        self.names = objective.term_names
        self.weights = objective.term_weights
        self.factors = objective.term_factors
        self.emit = emit
        self.stage = stage
        self.last = plan.stages[stage].iterations
        self.preview_every = preview_every
        self.evaluations_before = evaluations_before
        self.elapsed_before = elapsed_before
        self.average = average
        self.before = before
        self.checkpoint = checkpoint
        self.generators = _generators(objective)
        self.latest: StepState | None = None

    def state(self) -> RunState | None:
        """The run's state after the last iteration reported (None: none yet, or an update
        under way)."""
        if self.latest is None or self.before is None:
            return None
        optimizer = self.latest.snapshot()
        if optimizer is None:
            return None
        average = None
        if self.average is not None and self.average.count:
            total = self.average.total
            assert total is not None
            average = (total, self.average.count)
        return replace(
            self.before,
            optimizer=optimizer,
            average=average,
            generators={n: g.get_state() for n, g in self.generators.items()},
            elapsed=self.elapsed_before + self.latest.elapsed,
        )

    def __call__(self, state: StepState) -> None:
        self.latest = state
        if self.average is not None and state.iteration > 0:
            self.average.update(state.x)
        preview = None
        every = self.preview_every
        if every and (state.iteration % every == 0 or state.iteration == self.last):
            shown = self.average.value() if self.average is not None else None
            preview = finish_image(self.plan, state.x if shown is None else shown)
        self.emit(
            Step(
                iteration=state.iteration,
                evaluations=self.evaluations_before + state.evaluations,
                loss=state.loss,
                terms=state.terms.floats(),
                weights=self.weights,
                factors=self.factors,
                elapsed=self.elapsed_before + state.elapsed,
                stage=self.stage,
                preview=preview,
            )
        )
        if self.checkpoint is not None and self.checkpoint.due():
            current = self.state()
            if current is not None:
                self.checkpoint.save(current)
