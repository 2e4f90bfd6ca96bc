"""Event records and the progress (done, total, ETA) every front end shows."""

import json

import pytest

from nst.events import Finished, Progress, Stage, Started, Step


def step(i, elapsed, stage=0, loss=1.0):
    terms = {"content:conv4_2": 2.0, "style:conv1_1": 3.0, "style:conv2_1": 5.0, "tv": 0.5}
    weights = {"content:conv4_2": 1.0, "style:conv1_1": 0.5, "style:conv2_1": 0.5, "tv": 1.0}
    factors = {"content:conv4_2": 0.1, "style:conv1_1": 10.0, "style:conv2_1": 20.0, "tv": 0.0}
    return Step(i, i + 1, loss, terms, weights, factors, elapsed, stage)


def test_a_step_record_groups_terms_by_name():
    record = step(3, 1.23456).to_record()
    assert record == {
        "type": "step", "iteration": 3, "evaluations": 4, "loss": 1.0,
        "content_loss": 2.0, "style_loss": 0.5 * 3.0 + 0.5 * 5.0, "tv_loss": 0.5,
        "content_losses": {"conv4_2": 2.0}, "style_losses": {"conv1_1": 3.0, "conv2_1": 5.0},
        "factors": {"content:conv4_2": 0.1, "style:conv1_1": 10.0, "style:conv2_1": 20.0,
                    "tv": 0.0},
        "elapsed": 1.2346, "stage": 0,
    }  # fmt: skip
    assert json.loads(json.dumps(record)) == record


def test_started_and_finished_records():
    plan = (Stage(16, 24, 10), Stage(32, 48, 5))
    started = Started(1, plan, "cpu", "bf16", 42)
    assert (started.width, started.height, started.iterations, started.stages) == (48, 32, 5, 2)
    assert started.to_record() == {
        "type": "started", "stage": 1, "device": "cpu", "precision": "bf16", "seed": 42,
        "plan": [{"width": 24, "height": 16, "iterations": 10, "tile": None},
                 {"width": 48, "height": 32, "iterations": 5, "tile": None}],
    }  # fmt: skip
    tiled = Stage(32, 48, 5, tile=16, memory=3 << 20, history=7)
    assert tiled.to_record() == {"width": 48, "height": 32, "iterations": 5, "tile": 16,
                                 "memory_mb": 3}  # fmt: skip
    assert Finished(15, 17, 0.5, 3.0, "completed").to_record()["reason"] == "completed"


def test_progress_weights_each_stage_by_its_pixels():
    plan = (Stage(10, 10, 10), Stage(20, 20, 10))  # the second stage is 4x the work
    p = Progress()
    assert p.eta is None and p.fraction == 0.0
    p.update(Started(0, plan, "cpu", "fp32", 0))
    p.update(step(0, 0.0))
    assert p.eta is None  # no rate yet
    p.update(step(5, 5.0))  # 1 s per iteration at 100 px
    assert (p.done, p.total) == (5, 20)
    assert p.fraction == pytest.approx(500 / 5000)
    assert p.eta == pytest.approx(5 * 1.0 + 10 * 4.0)
    p.update(Started(1, plan, "cpu", "fp32", 0))
    p.update(step(0, 10.0, stage=1))
    assert p.eta == pytest.approx(40.0)  # carried from stage 1, per pixel
    p.update(step(2, 20.0, stage=1))  # measured: 5 s per iteration at 400 px
    assert p.done == 12 and p.eta == pytest.approx(8 * 5.0)
    p.update(Finished(20, 22, 1.0, 60.0, "completed"))
    assert p.done == p.total == 20 and p.fraction == 1.0 and p.eta == 0.0
    assert p.to_record() == {"done": 20, "total": 20, "fraction": 1.0, "eta": 0.0}


def test_a_tiled_stage_weighs_its_cost_per_pixel_in_the_eta():
    plan = (Stage(10, 10, 10), Stage(20, 20, 10, tile=16, cost=1.5))  # 6x the first's work
    p = Progress()
    p.update(Started(0, plan, "cpu", "fp32", 0))
    p.update(step(0, 0.0))
    p.update(step(5, 5.0))  # 1 s per iteration at 100 px
    assert p.eta == pytest.approx(5 * 1.0 + 10 * 6.0)
    assert p.fraction == pytest.approx(500 / (1000 + 6000))


def test_a_step_record_and_its_progress_never_overwrite_each_other():
    from nst.events import Progress, Stage, Started, with_progress

    progress = Progress()
    progress.update(Started(0, (Stage(8, 8, 4),), "cpu", "fp32", 1))
    merged = with_progress({"type": "step", "loss": 1.0}, progress)
    assert merged == {"type": "step", "loss": 1.0, "done": 0, "total": 4, "fraction": 0.0,
                      "eta": None}  # fmt: skip
    with pytest.raises(ValueError, match="event field.s. done, eta set by both"):
        with_progress({"type": "step", "done": 3, "eta": 1.0}, progress)


def test_events_print_as_one_short_line():
    """``on_event=print`` shows a line per event, not a dataclass with every term."""
    assert str(step(3, 1.25, loss=2.5)) == (
        "stage 1 iteration 3: loss 2.5 (content 2, style 4, tv 0.5), 1.2 s"
    )
    plan = (Stage(96, 128, 100), Stage(192, 256, 50))
    assert str(Started(1, plan, "cpu", "fp32", 7)) == (
        "stage 2/2: 256x192 px, 50 iterations on cpu (fp32), seed 7"
    )
    assert str(Finished(150, 170, 1.5, 12.34, "completed")) == (
        "completed: 150 iterations, 170 loss evaluations, loss 1.5, 12.3 s"
    )


def test_an_auto_stage_says_its_most_and_a_settled_run_why_it_ended():
    plan = (Stage(96, 128, 1000),)
    started = Started(0, plan, "cpu", "bf16", 0, auto=True)
    assert str(started) == "128x96 px, auto iterations (at most 1000) on cpu (bf16), seed 0"
    assert started.to_record()["auto"] is True
    assert "auto" not in Started(0, plan, "cpu", "bf16", 0).to_record()
    finished = Finished(231, 260, 1.5, 12.34, "settled")
    assert str(finished) == (
        "settled (the picture stopped changing): 231 iterations, 260 loss evaluations, "
        "loss 1.5, 12.3 s"
    )
    assert finished.to_record()["reason"] == "settled"
