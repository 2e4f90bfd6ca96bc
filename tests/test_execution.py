"""Running plans end to end on the tiny network, in fp32 and bf16 (no weight file needed)."""

import itertools
import json
import threading

import pytest
import torch

import nst
from nst import controls, execution, planning
from nst.config import Config
from nst.errors import TermError
from nst.events import Finished, Started, Step
from nst.options import AUTO
from tests.conftest import assert_close, sharpness_spec

FAST = dict(size=40, iterations=8, seed=1, init="noise")  # the paper's start, however short


@pytest.fixture
def run(tiny_network, precision):
    """stylize on the tiny network at this test's precision; returns (image, events)."""

    def go(content, style, **options):
        events = []
        config = Config(**{**FAST, "precision": precision, **options})
        image = nst.stylize(content, style, config, events.append)
        return image, events

    return go


def steps_of(events):
    return [e for e in events if isinstance(e, Step)]


def test_events_tell_the_whole_run_with_named_terms(images, run, precision):
    img, events = run(images["content"], images["style"])
    assert img.shape == (3, 27, 40) and img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert events[0].plan[0].iterations == 8 and events[0].precision == precision
    steps = steps_of(events)
    assert [s.iteration for s in steps] == list(range(9))
    assert steps[0].evaluations == 1
    assert all(b.evaluations > a.evaluations for a, b in itertools.pairwise(steps))
    assert steps[-1].loss < steps[0].loss
    names = list(steps[0].terms)
    assert names == ["content:conv4_2", *(f"style:conv{b}_1" for b in range(1, 6)), "tv"]
    first = steps[0]
    # the loss is the sum of the terms times their factors
    assert_close(sum(first.factors[n] * v for n, v in first.terms.items()), first.loss, 1e-4)
    assert first.style_loss == pytest.approx(
        sum(0.2 * first.terms[f"style:conv{b}_1"] for b in range(1, 6)), rel=1e-9
    )
    record = first.to_record()
    assert record["style_losses"].keys() == {f"conv{b}_1" for b in range(1, 6)}
    assert record["content_losses"] == {"conv4_2": first.terms["content:conv4_2"]}
    assert record["tv_loss"] == first.terms["tv"] and record["factors"]["tv"] == 0.0
    assert events[-1].iterations == 8 and events[-1].reason == "completed"


def test_same_seed_same_image_other_seed_other_image(images, run):
    a, _ = run(images["content"], images["style"])
    b, _ = run(images["content"], images["style"])
    c, _ = run(images["content"], images["style"], seed=2)
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.01


def test_fixed_initialisations_do_not_depend_on_the_seed(images, run):
    for init in ("content", "style", str(images["style2"])):
        x, _ = run(images["content"], images["style"], init=init)
        y, _ = run(images["content"], images["style"], init=init, seed=9)
        assert torch.equal(x, y), init


def test_unseeded_runs_report_the_seed_they_drew(images, run):
    _, events = run(images["content"], images["style"], seed=None, iterations=1)
    seed = events[0].seed
    _, again = run(images["content"], images["style"], seed=seed, iterations=1)
    assert steps_of(events)[-1].loss == steps_of(again)[-1].loss


def test_stop_keeps_the_image_and_previews_arrive(images, tiny_network, precision):
    stop = threading.Event()
    events = []

    def on_event(e):
        events.append(e)
        if isinstance(e, Step) and e.iteration == 3:
            stop.set()

    config = Config(**{**FAST, "iterations": 50, "precision": precision})
    img = nst.stylize(images["content"], images["style"], config, on_event, stop=stop,
                      preview_every=2)  # fmt: skip
    assert events[-1].reason == "cancelled" and events[-1].iterations == 3
    previews = [e.iteration for e in events if isinstance(e, Step) and e.preview is not None]
    assert previews == [0, 2]
    assert img.shape == (3, 27, 40)


def test_adam_runs(images, run):
    _, events = run(images["content"], images["style"], optimizer="adam")
    steps = steps_of(events)
    assert len(steps) == 9 and steps[-1].loss < steps[0].loss


def test_style_image_is_scaled_to_the_output_unless_told(images, tiny_network, monkeypatch):
    sizes = []
    real = execution.resize_longest

    def spy(t, longest):
        sizes.append(longest)
        return real(t, longest)

    monkeypatch.setattr(execution, "resize_longest", spy)
    for extra in ({}, {"style_size": 24}, {"style_scale": 0.5}):
        nst.stylize(images["content"], images["style"], Config(size=40, iterations=1, **extra))
    assert sizes == [40, 24, 20]


def test_several_styles_blend_1_0_equals_the_single_style(images, run):
    one, _ = run(images["content"], images["style"])
    blend, _ = run(images["content"], [images["style"], images["style2"]], style_blend=(1.0, 0.0))
    assert torch.allclose(one, blend, atol=1e-6)


def test_luminance_mode_keeps_the_contents_chroma(images, run):
    img, _ = run(images["content"], images["style"], preserve_colors="luminance")
    content = planning.load(images["content"])
    content = nst.imageio.resize_longest(content, 40)
    chroma_out = controls.rgb_to_yiq(img)[1:]
    chroma_in = controls.rgb_to_yiq(content)[1:]
    inside = ((img > 0.01) & (img < 0.99)).all(dim=0)  # where no channel was clipped
    assert torch.allclose(chroma_out[:, inside], chroma_in[:, inside], atol=2e-3)


def test_coarse_to_fine_runs_each_stage_and_started_carries_the_plan(images, run):
    _, events = run(images["content"], images["style"], size=48, scales=(24,), iterations=4)
    starts = [e for e in events if isinstance(e, Started)]
    assert [(s.width, s.height, s.iterations) for s in starts] == [(24, 16, 4), (48, 32, 2)]
    records = [s.to_record() for s in starts[0].plan]
    assert [{k: r[k] for k in ("width", "height", "iterations", "tile")} for r in records] == [
        {"width": 24, "height": 16, "iterations": 4, "tile": None},
        {"width": 48, "height": 32, "iterations": 2, "tile": None},
    ]
    assert all(r["memory_mb"] > 0 for r in records)  # the planned peak
    assert events[-1].iterations == 6


def test_a_term_added_to_the_objective_reaches_the_events(images, tiny_network):
    plan = planning.plan_stylize(images["content"], images["style"], Config(**FAST))
    events = []
    nst.execute(plan.with_term(sharpness_spec(0.5)), events.append)
    step = steps_of(events)[-1]
    record = json.loads(json.dumps(step.to_record()))
    assert record["sharpness_loss"] == pytest.approx(step.terms["sharpness"])
    assert record["factors"]["sharpness"] == 0.5
    assert_close(sum(step.factors[n] * v for n, v in step.terms.items()), step.loss, 1e-4)


def test_a_content_region_keeps_the_photo(images, tmp_path, run):
    from tests.test_planning import two_region_mask

    mask = two_region_mask(tmp_path / "mask.png")
    img, _ = run(images["content"], images["style"], size=48, iterations=5, mask=str(mask),
                 regions=(("#ff0000", "1"), ("#0000ff", "content")))  # fmt: skip
    content = planning.load(images["content"])
    assert torch.allclose(img[:, :, 30:], content[:, :, 30:], atol=1e-6)
    assert not torch.allclose(img[:, :, :18], content[:, :, :18], atol=0.05)


def test_a_term_on_a_deeper_layer_than_the_configs_runs(images, tiny_network):
    config = Config(**{**FAST, "content_layers": (("conv1_1", 1.0),)}).replace(
        style_layers=(("conv1_1", 1.0),)
    )
    plan = planning.plan_stylize(images["content"], images["style"], config)
    assert plan.layers == ["conv1_1"]
    plan = plan.with_term(sharpness_spec(2.0, layer="conv3_1"))
    assert plan.layers == ["conv1_1", "conv3_1"]  # the network is cut after conv3_1
    events = []
    nst.execute(plan, events.append)
    step = steps_of(events)[-1]
    assert step.factors["sharpness"] == 2.0 and step.terms["sharpness"] > 0
    with pytest.raises(TermError, match="two term specs are named 'sharpness'"):
        plan.with_term(sharpness_spec(1.0))


def test_iterate_average_is_the_bias_corrected_ema():
    from nst.execution import IterateAverage

    avg = IterateAverage(0.5)
    assert avg.value() is None
    avg.update(torch.tensor([1.0]))
    assert avg.value().item() == 1.0  # the first update is the iterate itself
    avg.update(torch.tensor([3.0]))
    assert avg.value().item() == pytest.approx((0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25))


def test_with_average_the_saved_and_shown_image_is_the_average(images, tiny_network):
    config = Config(**FAST)
    plain_events, avg_events = [], []
    plan = planning.plan_stylize(images["content"], images["style"], config)
    plain = nst.execute(plan, plain_events.append, preview_every=1)
    plan = planning.plan_stylize(images["content"], images["style"], config.replace(average=0.9))
    averaged = nst.execute(plan, avg_events.append, preview_every=1)
    a, b = steps_of(plain_events), steps_of(avg_events)
    assert [s.loss for s in a] == [s.loss for s in b]  # the same optimization
    assert torch.equal(averaged, b[-1].preview)  # shown = saved = the average
    assert torch.equal(plain, a[-1].preview) and not torch.allclose(plain, averaged, atol=1e-3)
    shown = [s.preview for s in b[1:]]  # iterations 1..: the average of the iterates so far
    iterates = [s.preview for s in a[1:]]
    inside = torch.stack([(x > 0) & (x < 1) for x in iterates]).all(0)  # never clamped
    assert inside.float().mean() > 0.5
    ema = torch.zeros_like(iterates[0])
    for t, x in enumerate(iterates, 1):
        ema = 0.9 * ema + 0.1 * x
        expected = ema / (1 - 0.9**t)
        assert torch.allclose(shown[t - 1][inside], expected[inside], atol=1e-5)


def test_zero_content_and_style_weights_run_and_keep_the_start_image(images, run):
    """Nothing to optimize is not an error: the run converges at once on its start."""
    image, events = run(images["content"], images["style"], size=32, iterations=5,
                        content_weight=0.0, style_weight=0.0, init="content")  # fmt: skip
    finished = events[-1]
    assert finished.reason == "converged" and finished.iterations == 0
    content = nst.planning.load(images["content"])
    assert float((image - nst.imageio.resize_to(content, image.shape[1:])).abs().max()) < 1e-6


def test_a_run_stopped_in_an_earlier_stage_gives_the_asked_size(images, tiny_network):
    """Cancelled or interrupted in coarse-to-fine stage 1, the picture is that stage's
    upscaled to the output's size, and the message says so."""
    config = Config(**{**FAST, "size": 64, "scales": (32, 64), "iterations": 30})

    def stop_in_stage_1(e):
        if isinstance(e, Step) and e.stage == 0 and e.iteration == 2:
            stop.set()

    stop = threading.Event()
    img = nst.stylize(images["content"], images["style"], config, stop_in_stage_1, stop=stop)
    assert img.shape == (3, 43, 64)

    def interrupt(e):
        if isinstance(e, Step) and e.stage == 0 and e.iteration == 2:
            raise KeyboardInterrupt

    with pytest.raises(nst.Interrupted) as info:
        nst.stylize(images["content"], images["style"], config, interrupt)
    assert info.value.image.shape == (3, 43, 64)
    assert str(info.value) == (
        "interrupted after iteration 2; stopped in coarse-to-fine stage 1 of 2 (32x22 px), the "
        "picture upscaled to the asked 64x43 px"
    )


def test_a_short_run_by_default_paints_from_the_photo_and_says_so(images, tiny_network):
    config = Config(size=40, iterations=5, seed=1)
    with pytest.warns(nst.NstWarning, match="5 iterations are too few to paint from noise"):
        plan = nst.plan_stylize(images["content"], images["style"], config)
        nst.stylize(images["content"], images["style"], config)
    assert plan.init is not None and torch.equal(plan.init, plan.content)
    noise = nst.plan_stylize(images["content"], images["style"], config.replace(iterations=100))
    assert noise.init is None and noise.advice == ()


class Keeper:
    """A checkpointer that keeps a deep copy of every state (every iteration is due)."""

    def __init__(self):
        self.states = []

    def due(self):
        return True

    def save(self, state):
        import copy

        self.states.append(copy.deepcopy(state))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"scales": (32, 64)},
        {"scales": (32, 64), "tile": 32},
        {"style_loss": "swd"},
        {"style_loss": "w2", "average": 0.9},
        {"optimizer": "adam", "scales": (32, 64)},
        {"iterations": AUTO, "max_iterations": 300, "scales": (32, 64)},
    ],
    ids=["one stage", "coarse to fine", "tiled", "swd", "w2 averaged", "adam", "auto"],
)
def test_a_run_continued_from_any_saved_state_makes_the_same_picture(images, tiny_network,
                                                                     options):  # fmt: skip
    """Continued from a state in the middle of a stage, at a stage boundary, or from the
    last one, every later event and the final picture are those of the run that never
    stopped."""
    # fp32: bf16's kernels are not deterministic under CPU contention (docs/RELIABILITY.md)
    config = Config(**{"size": 64, "iterations": 6, "seed": 2, "init": "noise",
                       "precision": "fp32", **options})  # fmt: skip
    plan = planning.plan_stylize(images["content"], images["style"], config)
    keeper, events = Keeper(), []
    whole = execution.execute(plan, events.append, checkpoint=keeper)
    steps = [(e.stage, e.iteration, e.loss, e.evaluations) for e in steps_of(events)]
    assert len(keeper.states) >= len(steps) - len(plan.stages)
    picks = {len(keeper.states) // 3, len(keeper.states) // 2, len(keeper.states) - 1}
    boundary = [k for k, st in enumerate(keeper.states) if st.optimizer is None]
    assert len(boundary) == len(plan.stages) - 1  # each stage boundary saved
    for k in sorted(picks | set(boundary)):
        state = keeper.states[k]
        later = []
        again = execution.execute(plan, later.append, resume=state)
        assert torch.equal(again, whole), (k, state.stage, state.iteration)
        rest = [(e.stage, e.iteration, e.loss, e.evaluations) for e in steps_of(later)]
        assert rest == [s for s in steps if (s[0], s[1]) > (state.stage, state.iteration)
                        or (state.optimizer is None and s[0] == state.stage)]  # fmt: skip
        assert later[-1].iterations == events[-1].iterations


def test_an_interrupted_run_saves_its_last_whole_iteration(images, tiny_network):
    config = Config(size=40, iterations=20, seed=2, init="noise", precision="fp32")
    plan = planning.plan_stylize(images["content"], images["style"], config)

    class OnlyAtTheEnd(Keeper):
        def due(self):
            return False

    keeper = OnlyAtTheEnd()

    def interrupt(e):
        if isinstance(e, Step) and e.iteration == 4:
            raise KeyboardInterrupt

    with pytest.raises(nst.Interrupted):
        execution.execute(plan, interrupt, checkpoint=keeper)
    (state,) = keeper.states
    assert state.iteration == 4 and state.stage == 0
    whole = execution.execute(plan)
    assert torch.equal(execution.execute(plan, resume=state), whole)


@pytest.mark.parametrize("how", ["stop", "interrupt in a line search"])
def test_a_run_stopped_between_checkpoints_goes_on_exactly(images, tiny_network, how,
                                                           monkeypatch):  # fmt: skip
    """Stopped (the web's cancel, a server's stop) or interrupted while a line search
    evaluates, the state saved is that of the last whole iteration, with what the next
    direction needs, and the run continued from it is the run that never stopped."""
    config = Config(size=40, iterations=12, seed=2, init="noise", precision="fp32")
    plan = planning.plan_stylize(images["content"], images["style"], config)
    whole = execution.execute(plan)

    class OnlyAtTheEnd(Keeper):
        def due(self):
            return False

    keeper, stop = OnlyAtTheEnd(), threading.Event()
    seen = []
    if how == "stop":

        def on_event(e):
            if isinstance(e, Step) and e.iteration == 5:
                stop.set()

        execution.execute(plan, on_event, stop=stop, checkpoint=keeper)
    else:
        from nst.objective.objective import Objective

        real = Objective.forward

        def forward(self, x):
            seen.append(1)
            if len(seen) == 9:  # inside iteration 6's line search, at the latest
                raise KeyboardInterrupt
            return real(self, x)

        monkeypatch.setattr(Objective, "forward", forward)
        with pytest.raises(nst.Interrupted):
            execution.execute(plan, checkpoint=keeper)
        monkeypatch.setattr(Objective, "forward", real)
    (state,) = keeper.states
    assert state.iteration >= 1
    assert torch.equal(execution.execute(plan, resume=state), whole)


@pytest.mark.parametrize(
    ("raised", "becomes"),
    [
        (MemoryError(), "not enough memory for a 40x27 px image"),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't "
                      "allocate memory: you tried to allocate 9 bytes"),
         "not enough memory for a 40x27 px image"),
        (torch.cuda.OutOfMemoryError("CUDA out of memory."), "not enough memory for a"),
        # another runtime error that speaks of allocation is not taken for a lack of memory
        (RuntimeError("could not allocate a descriptor"), None),
    ],
)  # fmt: skip
def test_a_failed_allocation_is_told_by_its_type_not_any_word(
    images, tiny_network, monkeypatch, raised, becomes
):
    from nst.errors import ResourceError

    def failing(*args, **kwargs):
        raise raised

    monkeypatch.setattr(execution, "minimize", failing)
    config = Config(**FAST, precision="fp32")
    expected = ResourceError if becomes else RuntimeError
    with pytest.raises(expected) as caught:
        nst.stylize(images["content"], images["style"], config)
    if becomes:
        assert str(caught.value).startswith(becomes)
    else:
        assert caught.value is raised


def test_iterations_auto_ends_each_stage_when_its_picture_settles(images, tiny_network):
    from nst.optimize import SETTLE

    events = []
    config = Config(size=48, scales=(24,), iterations=AUTO, max_iterations=400, seed=1,
                    init="noise", precision="fp32")  # fmt: skip
    nst.stylize(images["content"], images["style"], config, events.append)
    starts = [e for e in events if isinstance(e, Started)]
    assert [(s.auto, s.iterations) for s in starts] == [(True, 400), (True, 200)]
    per_stage = [[s for s in steps_of(events) if s.stage == k] for k in (0, 1)]
    made = [stage[-1].iteration for stage in per_stage]
    # each stage ended by itself, well before its most, after at least a window
    assert all(SETTLE.window <= n < most for n, most in zip(made, (400, 200))), made
    assert events[-1].reason == "settled" and events[-1].iterations == sum(made)


@pytest.mark.parametrize(
    ("allowed", "options", "kept"),
    [
        (False, {}, False),
        (True, {}, True),
        (True, {"memory_limit": "none"}, True),
        (True, {"memory_limit": "100G"}, False),  # the peak its estimate was measured for
        (True, {"tile": 16}, False),
    ],
)
def test_freed_memory_is_kept_only_in_untiled_runs_under_the_automatic_limit(
    images, tiny_network, monkeypatch, allowed, options, kept
):
    from nst import process, runtime

    monkeypatch.setattr(process, "_current", process.ProcessSettings(keep_freed_memory=allowed))
    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append(1) or True)
    config = Config(**{**FAST, "iterations": 1, **options})
    plan = planning.plan_stylize(images["content"], images["style"], config)
    assert [s.tile is not None for s in plan.stages] == ["tile" in options]
    assert execution.keeps_freed_memory(plan) is kept
    nst.stylize(images["content"], images["style"], config)
    assert calls == ([1] if kept else [])


def test_a_lean_stage_rectifies_in_place_and_gives_the_same_loss_and_gradient(images, tiny_network):
    """A stage planned lean (its whole image fits the memory limit only so) evaluates with
    the network rectifying in place: the same value and gradient, the convolutions'
    outputs rectified in their own tensors (bf16, where they are not otherwise)."""
    from dataclasses import replace

    from nst import runtime

    plan = planning.plan_stylize(images["content"], images["style"], Config(**FAST))
    assert not plan.stages[0].lean  # no limit asks for it
    net = runtime.network(None, "avg", True, plan.layers, "cpu", torch.bfloat16)
    s = plan.stages[0]
    x = torch.rand(1, 3, s.height, s.width, generator=torch.Generator().manual_seed(3)) * 255
    results = []
    outs: list[torch.Tensor] = []
    for lean in (False, True):
        objective = execution.build_objective(
            replace(plan, stages=(replace(s, lean=lean),)), 0, net
        )
        assert objective.lean is lean
        outs.clear()
        hooks = [
            c.register_forward_hook(lambda m, i, o: outs.append(o)) for c in net.convs.values()
        ]
        try:
            value, grad = objective.value_and_grad(x)[:2]
        finally:
            for h in hooks:
                h.remove()
        assert all(bool((o >= 0).all()) for o in outs) is lean
        results.append((float(value), grad))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert_close(results[1][1], results[0][1], rel=1e-5)
