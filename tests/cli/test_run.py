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
