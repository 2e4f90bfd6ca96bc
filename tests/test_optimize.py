"""The optimisation loop on objectives whose minimum is known."""

import itertools
import math

import pytest
import torch

from nst.errors import Diverged, Interrupted
from nst.optimize import minimize

TARGET = torch.linspace(20, 200, 48).view(1, 3, 4, 4)
SCALE = torch.linspace(0.5, 3.0, 48).view(1, 3, 4, 4)


def quadratic(x):
    value = (SCALE * (x - TARGET) ** 2).sum()
    return value, value.detach().view(1)


def rosenbrock(x):
    a, b = x.view(-1)[0::2], x.view(-1)[1::2]
    value = ((1 - a) ** 2 + 100 * (b - a**2) ** 2).sum()
    return value, value.detach().view(1)


def test_lbfgs_converges_and_reports_every_iteration_from_zero():
    steps = []
    result = minimize(quadratic, torch.zeros(1, 3, 4, 4), iterations=50, on_step=steps.append)
    assert torch.allclose(result.x, TARGET, atol=1e-3)
    assert steps[0].iteration == 0 and steps[0].evaluations == 1
    assert [s.iteration for s in steps] == list(range(len(steps)))
    losses = [s.loss for s in steps]
    assert all(
        b < a for a, b in itertools.pairwise(losses)
    )  # the line search only accepts decrease
    assert result.evaluations >= result.iterations + 1
    assert result.reason in ("converged", "completed")


def test_lbfgs_solves_rosenbrock():
    x0 = torch.full((1, 2, 2, 2), -1.0, dtype=torch.float64)
    result = minimize(rosenbrock, x0, iterations=500)
    assert torch.allclose(result.x, torch.ones_like(x0), atol=1e-4)


def test_adam_decreases_the_loss_and_respects_the_clamp():
    steps = []
    result = minimize(
        quadratic,
        torch.zeros(1, 3, 4, 4),
        iterations=300,
        method="adam",
        lr=5.0,
        on_step=steps.append,
        clamp=(0.0, 150.0),
    )
    assert steps[-1].loss < steps[0].loss / 20  # the clamp keeps targets above 150 out of reach
    assert float(result.x.max()) <= 150.0
    assert result.evaluations == 301 and result.iterations == 300


def test_steps_below_low_precision_resolution_still_progress():
    # the value sees x rounded to steps of 0.5 (like bf16 inputs around 100), the gradient is
    # straight-through: a first step of ~1e-5 pixel would change nothing and stall
    def coarse(x):
        xq = x + (torch.round(x * 2) / 2 - x).detach()
        value = ((xq - TARGET) ** 2).sum() * 1e-3
        return value, value.detach().view(1)

    x0 = torch.full((1, 3, 4, 4), 100.0)
    result = minimize(coarse, x0, iterations=30)
    assert result.iterations > 5
    assert coarse(result.x)[0].item() < coarse(x0)[0].item() / 100


def test_stop_request_keeps_the_current_image():
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    result = minimize(quadratic, torch.zeros(1, 3, 4, 4), iterations=50, should_stop=stop)
    assert result.reason == "cancelled" and result.iterations == 3


def test_non_finite_loss_raises_with_the_last_finite_image():
    def explodes(x):
        value = (x**2).sum()
        if float(x.detach().mean()) < 50:  # finite near the start, NaN once the image darkens
            value = value * math.nan
        return value, value.detach().view(1)

    x0 = torch.full((1, 3, 4, 4), 100.0)
    steps = []
    with pytest.raises(Diverged) as exc:  # progress until every decrease lies in the NaN region
        minimize(explodes, x0, iterations=50, on_step=steps.append)
    assert exc.value.iteration == steps[-1].iteration > 0
    assert torch.isfinite(exc.value.image).all() and float(exc.value.image.mean()) >= 50
    with pytest.raises(Diverged) as exc:
        minimize(lambda x: explodes(x * 0), x0, iterations=5)
    assert torch.equal(exc.value.image, x0) and exc.value.iteration == 0
    assert "NaN or infinite" in str(exc.value)


def test_keyboard_interrupt_keeps_the_last_iterate():
    seen = []

    def interrupted(x):
        if len(seen) == 4:
            raise KeyboardInterrupt
        value = ((x - TARGET) ** 2).sum()
        seen.append(x.detach().clone())
        return value, value.detach().view(1)

    states = []
    with pytest.raises(Interrupted) as exc:
        minimize(interrupted, torch.zeros(1, 3, 4, 4), iterations=50, on_step=states.append)
    last = states[-1]
    assert exc.value.iteration == last.iteration
    assert torch.equal(exc.value.image, last.x)
    assert not torch.equal(exc.value.image, torch.zeros(1, 3, 4, 4))


def test_input_is_not_modified():
    x0 = torch.zeros(1, 3, 4, 4)
    minimize(quadratic, x0, iterations=5)
    assert torch.equal(x0, torch.zeros(1, 3, 4, 4))


def test_history_is_capped_in_bytes():
    from nst import optimize

    class Run:
        def __init__(self, n: int) -> None:
            self.x = torch.zeros(1, 3, n, n)

    small = optimize.LBFGS(Run(64), lr=1.0, history=50)  # type: ignore[arg-type]
    assert small.memory.capacity == 50
    side = 1024
    big = optimize.LBFGS(Run(side), lr=1.0, history=50)  # type: ignore[arg-type]
    pair = 2 * 3 * side * side * 4
    assert big.memory.capacity == optimize.HISTORY_BYTES // pair
    assert big.memory.capacity * pair <= 384 * 2**20


def test_a_history_stored_in_bf16_takes_half_the_bytes_and_still_converges():
    from nst import optimize

    class Run:
        def __init__(self, n: int) -> None:
            self.x = torch.zeros(1, 3, n, n)

    side = 1024
    half = optimize.LBFGS(Run(side), lr=1.0, history=50, history_dtype=torch.bfloat16)  # type: ignore[arg-type]
    assert half.memory.capacity == optimize.HISTORY_BYTES // (2 * 3 * side * side * 2)
    steps = []
    result = minimize(quadratic, torch.zeros(1, 3, 4, 4), iterations=60,
                      history_dtype=torch.bfloat16, on_step=steps.append)  # fmt: skip
    assert torch.allclose(result.x, TARGET, atol=1e-2)
    history = optimize.History(5, torch.bfloat16)
    history.push(torch.ones(4), torch.full((4,), 2.0))
    assert history.s[0].dtype == torch.bfloat16
    assert torch.allclose(history.direction(torch.ones(4)), torch.full((4,), -0.5))


class CountingSquare(torch.autograd.Function):
    """x**2 that counts its backward passes."""

    backwards = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        CountingSquare.backwards += 1
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def test_trials_that_fail_sufficient_decrease_skip_their_backward_pass():
    def objective(x):
        a, b = x.view(-1)[0::2], x.view(-1)[1::2]
        value = (CountingSquare.apply(1 - a) + 100 * CountingSquare.apply(b - a**2)).sum()
        return value, value.detach().view(1)

    CountingSquare.backwards = 0
    x0 = torch.full((1, 2, 2, 2), -1.0, dtype=torch.float64)
    result = minimize(objective, x0, iterations=500)
    assert torch.allclose(result.x, torch.ones_like(x0), atol=1e-4)
    # each backward pass runs both squares' backward
    backwards = CountingSquare.backwards // 2
    assert result.iterations + 1 <= backwards < result.evaluations


@pytest.mark.parametrize("fused", [False, True])
def test_the_compact_history_gives_the_two_loop_direction(fused):
    from nst.optimize import CompactHistory, History

    g0 = torch.Generator().manual_seed(3)
    n, capacity = 200, 5
    two_loop, compact = History(capacity), CompactHistory(capacity)
    for k in range(9):  # wraps around the buffer; one pair of negative curvature is skipped
        s = torch.randn(n, generator=g0, dtype=torch.float64)
        y = 0.5 * s + 0.3 * torch.randn(n, generator=g0, dtype=torch.float64)
        if k == 4:
            y = -s
        g = torch.randn(n, generator=g0, dtype=torch.float64)
        two_loop.push(s, y)
        compact.push(s, y, g if fused else None)
        assert len(compact) == len(two_loop)
        expected = two_loop.direction(g)
        actual = compact.direction(g)
        # History takes y.s and y.y in float32: agreement to float32's digits
        scale = float(expected.abs().max())
        assert float((actual - expected).abs().max()) <= 1e-6 * scale
    assert len(compact) == capacity == compact.capacity
    compact.clear()
    assert torch.equal(compact.direction(g), -g)


def _copy(value):
    """A deep copy of a snapshot's tensors (the optimizer's own are changed afterwards)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "lr", "history_dtype"),
    [("lbfgs", 1.0, None), ("lbfgs", 1.0, torch.bfloat16), ("adam", 0.05, None)],
)
@pytest.mark.parametrize("at", [0, 1, 7])
def test_a_run_resumed_from_a_snapshot_is_the_uninterrupted_run(method, lr, history_dtype, at):
    """Every iteration after the snapshot, its loss, its evaluations and the final iterate
    are those of the run that never stopped (bit for bit: the same kernels, same order)."""
    import dataclasses

    x0 = torch.full((1, 3, 4, 4), 0.5)
    whole, saved = [], {}

    def keep(step):
        whole.append((step.iteration, step.evaluations, step.loss))
        if step.iteration == at:
            state = step.snapshot()
            saved["state"] = dataclasses.replace(
                state, x=state.x.clone(), grad=state.grad.clone(), memory=_copy(state.memory)
            )

    options = dict(iterations=15, method=method, lr=lr, history=4, history_dtype=history_dtype)
    full = minimize(rosenbrock, x0, on_step=keep, **options)
    rest = []
    again = minimize(rosenbrock, torch.zeros_like(x0), resume=saved["state"],
                     on_step=lambda s: rest.append((s.iteration, s.evaluations, s.loss)),
                     **options)  # fmt: skip
    assert rest == whole[at + 1 :]
    assert torch.equal(again.x, full.x)
    assert (again.iterations, again.evaluations, again.reason) == (
        full.iterations, full.evaluations, full.reason)  # fmt: skip


def test_no_snapshot_while_an_update_is_under_way():
    """Adam evaluates after it has moved the iterate and its moments: a checkpoint asked
    then (a signal during that evaluation) gets None, never a half-updated state."""
    seen = []
    snaps = []

    def objective(x):
        seen.append(snaps[-1]() if snaps else "none yet")
        return rosenbrock(x)

    minimize(objective, torch.full((1, 3, 4, 4), 0.5), iterations=3, method="adam", lr=0.05,
             on_step=lambda s: snaps.append(s.snapshot))  # fmt: skip
    assert seen == ["none yet", None, None, None]
    assert snaps[-1]().iteration == 3  # after the report, the state of iteration 3


@pytest.mark.parametrize("lazy,compact", [(False, False), (True, False), (False, True)])
def test_each_variant_of_lbfgs_takes_the_same_steps(lazy, compact):
    """The variants an argument chooses (no module switch) compute the same iterates:
    eager trial gradients compute more, the two-loop memory the same direction."""
    from nst.optimize import Variant

    x0 = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    runs = {}
    for variant in (Variant(), Variant(lazy, compact)):
        steps = []
        result = minimize(quadratic, x0, iterations=8, on_step=steps.append, variant=variant)
        runs[variant] = ([s.loss for s in steps], result.x, result.evaluations)
    (losses, x, evaluations), (other_losses, other_x, other_evaluations) = runs.values()
    assert len(losses) == 9 and losses[-1] < losses[0] * 1e-3  # they made progress
    assert other_losses == pytest.approx(losses, rel=1e-6, abs=1e-9 * losses[0])
    assert torch.allclose(other_x, x, rtol=1e-6, atol=1e-6)
    assert other_evaluations == evaluations  # a trial's gradient is not an evaluation


def _first_still(pictures, levels, window):
    """The first check (every ``window`` iterations) at which the 8-bit picture changed by
    less than ``levels`` per pixel since the check before (computed here from the
    reported iterates)."""
    for k in range(window, len(pictures), window):
        change = float((pictures[k].int() - pictures[k - window].int()).abs().float().mean())
        if change < levels:
            return k
    return None


@pytest.mark.parametrize(("method", "lr"), [("lbfgs", 1.0), ("adam", 3.0)])
def test_settle_ends_when_the_saved_picture_stops_changing(method, lr):
    from nst.optimize import Settle

    settle = Settle(levels=1.0, window=3)
    pictures = []

    def keep(step):
        pictures.append(settle.picture(step.x.clone()))

    x0 = torch.zeros(1, 3, 4, 4)
    alone = minimize(quadratic, x0, iterations=400, method=method, lr=lr)
    result = minimize(quadratic, x0, iterations=400, method=method, lr=lr, on_step=keep,
                      settle=settle)  # fmt: skip
    expected = _first_still(pictures, 1.0, 3)
    assert expected is not None and result.reason == "settled"
    assert result.iterations == expected == len(pictures) - 1
    assert result.iterations < alone.iterations  # it did end early


@pytest.mark.parametrize(("method", "lr"), [("lbfgs", 1.0), ("adam", 3.0)])
def test_a_settling_run_resumed_from_a_snapshot_ends_where_the_whole_run_ended(method, lr):
    import dataclasses

    from nst.optimize import Settle

    settle = Settle(levels=0.5, window=3)
    x0 = torch.zeros(1, 3, 4, 4)
    saved = []

    def keep(step):
        state = step.snapshot()
        saved.append(dataclasses.replace(state, x=state.x.clone(), grad=state.grad.clone(),
                                         memory=_copy(state.memory)))  # fmt: skip

    options = dict(iterations=400, method=method, lr=lr, settle=settle)
    full = minimize(quadratic, x0, on_step=keep, **options)
    assert full.reason == "settled" and full.iterations >= 4
    for at in (2, full.iterations - 1, full.iterations):  # in the window; at the end
        again = minimize(quadratic, torch.zeros_like(x0), resume=saved[at], **options)
        assert (again.iterations, again.reason) == (full.iterations, "settled"), at
        assert torch.equal(again.x, full.x)


def test_a_line_search_stops_when_the_loss_cannot_tell_its_trials_apart():
    """At the end of a bf16 run a step of ~1e-5 levels rounds away and the loss repeats
    its value exactly: the search ends there (no acceptable point) instead of narrowing
    the bracket for all its evaluations."""
    from nst.optimize import MAX_LINE_EVALUATIONS, _Point, line_search

    slope = -1e-9  # a descent direction, too shallow to gain anything the loss can show

    def loss(t: float) -> float:
        return round((1.0 + t * t + slope * t) / 1e-6) * 1e-6  # resolution 1e-6

    trials: list[float] = []

    def phi(t: float) -> _Point:
        trials.append(t)
        g = torch.tensor([2 * t + slope], dtype=torch.float64)
        return _Point(t, loss(t), g, float(g), None)

    start = _Point(0.0, loss(0.0), torch.tensor([slope], dtype=torch.float64), slope, None)
    d = torch.ones(1, dtype=torch.float64)
    assert line_search(phi, start, 1.0, d) is None
    assert loss(trials[-1]) == start.f  # it stopped at the first trial that repeated f0
    assert all(loss(t) != start.f for t in trials[:-1])
    assert len(trials) < MAX_LINE_EVALUATIONS // 2
