"""A loss term added to the objective shows up, by its name, in the JSON log and in the
web app's event stream, with no edit anywhere else."""

import json

from nst import execution, planning
from nst.cli.run import run_job
from nst.config import Config
from nst.objective import TVLoss
from tests.web.conftest import make_client, submit, wait_state  # noqa: F401 (fixture)


def add_sharpness(objective, size):
    objective.add_term("sharpness", TVLoss(), factor=0.25)


def test_an_added_term_reaches_the_json_log(images, tmp_path, tiny_network):
    plan = planning.plan_stylize(images["content"], images["style"], Config(size=32, iterations=3))
    plan = plan.with_terms(add_sharpness)
    log = tmp_path / "run.jsonl"
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        tmp_path / "out.png", quiet=True, log=log, save_every=0,
    )  # fmt: skip
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 4
    assert all(r["factors"]["sharpness"] == 0.25 and r["sharpness_loss"] > 0 for r in records)


def test_an_added_term_reaches_the_event_stream(images, tiny_network, make_client):
    def runner(job, on_event, stop, preview_every):
        return execution.execute(job.plan.with_terms(add_sharpness), on_event, stop, preview_every)

    client = make_client(runner=runner)
    job = submit(client, params={"size": 32, "iterations": 2, "seed": 0}).json()
    assert wait_state(client, job["id"])["state"] == "done"
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    steps = [json.loads(line[6:]) for line in text.splitlines()
             if line.startswith("data: ") and '"type": "step"' in line]  # fmt: skip
    assert [s["iteration"] for s in steps] == [0, 1, 2]
    assert all("sharpness_loss" in s and s["factors"]["sharpness"] == 0.25 for s in steps)
