"""Running a job from the command line: the JSON-lines log (a term added to the objective
shows up by its name with no other edit)."""

import json

from nst import execution, planning
from nst.cli.run import run_job
from nst.config import Config
from tests.conftest import sharpness_spec


def test_an_added_term_reaches_the_json_log(images, tmp_path, tiny_network):
    plan = planning.plan_stylize(images["content"], images["style"], Config(size=32, iterations=3))
    plan = plan.with_term(sharpness_spec(0.25))
    log = tmp_path / "run.jsonl"
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        tmp_path / "out.png", quiet=True, log=log, save_every=0,
    )  # fmt: skip
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 4
    assert all(r["factors"]["sharpness"] == 0.25 and r["sharpness_loss"] > 0 for r in records)


def test_a_log_is_appended_after_a_restarted_record_never_truncated(tmp_path):
    from nst.cli.progress import JsonLog

    log = tmp_path / "run.jsonl"
    log.write_text('{"type": "step", "iteration": 0}\n{"type": "step", "iter')  # a cut line
    first = JsonLog(log)
    first.write({"type": "step", "iteration": 0})
    first.close()
    lines = log.read_text().splitlines()
    assert lines[:2] == ['{"type": "step", "iteration": 0}', '{"type": "step", "iter']
    restarted = json.loads(lines[2])
    assert restarted["type"] == "restarted" and restarted["records_before"] == 2
    assert json.loads(lines[3]) == {"type": "step", "iteration": 0}
    fresh = tmp_path / "new.jsonl"
    JsonLog(fresh).close()
    assert fresh.read_text() == ""  # a new log starts with no restarted record


def test_without_a_terminal_a_line_comes_every_tenth_and_every_ten_seconds():
    import io

    from nst.cli.progress import LINE_EVERY, ProgressBar
    from nst.events import Stage, Started, Step

    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: now[0])
    plan = (Stage(32, 48, 1000),)
    bar(Started(0, plan, "cpu", "fp32", 1))
    shown = []
    for i in range(0, 150):
        now[0] = i * LINE_EVERY / 4  # four iterations per interval
        bar(Step(i, i + 1, 1.0, {}, {}, {}, now[0], 0))
        shown.append(out.getvalue().count("\n"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("48x32 px, 1000 iterations on cpu (fp32)")
    assert lines[1].startswith("[") and " 0/1000 " in lines[1]  # at once
    assert " 4/1000 " in lines[2] and " 8/1000 " in lines[3]  # then every ten seconds
    assert any(" 100/1000 " in line for line in lines)  # and every tenth


def test_the_progress_says_a_stage_is_lean_to_fit_the_memory_limit():
    import io

    from nst.cli.progress import ProgressBar
    from nst.events import Stage, Started

    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: 0.0)
    plan = (Stage(32, 48, 10, memory=3 << 29, lean=True), Stage(32, 48, 10, tile=16, lean=True))
    bar(Started(0, plan, "cpu", "bf16", 1))
    bar(Started(1, plan, "cpu", "bf16", 1))
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "stage 1/2: 48x32 px, 10 iterations on cpu (bf16), lean to fit the memory limit "
        "(~5% slower), ~1.5 GB peak, seed 1"
    )
    assert lines[1] == "stage 2/2: 48x32 px, 10 iterations on cpu (bf16), in tiles of 16 px, seed 1"
    assert plan[0].to_record()["lean"] is True and "lean" not in plan[1].to_record()


def test_the_progress_says_an_auto_stages_most_and_why_it_ended():
    import io

    from nst.cli.progress import ProgressBar
    from nst.events import Finished, Stage, Started

    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: 0.0)
    bar(Started(0, (Stage(32, 48, 1000),), "cpu", "fp32", 1, auto=True))
    bar(Finished(230, 260, 1.5, 75.0, "settled"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("48x32 px, auto iterations (at most 1000) on cpu (fp32)")
    assert lines[-1] == (
        "settled (the picture stopped changing): 230 iterations, 260 loss evaluations, "
        "loss 1.5, 1:15"
    )
