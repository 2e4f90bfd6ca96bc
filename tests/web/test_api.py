"""The web API through FastAPI's test client: life cycle, limits, attacks."""

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from nst.web.jobs import MARKER
from tests.conftest import requires_weights, sharpness_spec
from tests.web.helpers import BASE, fake_runner, noise_png, png, submit, wait_state


def test_job_life_cycle_with_events_preview_and_result(make_client):
    client = make_client()
    r = submit(client)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "queued" and len(job["id"]) == 32
    done = wait_state(client, job["id"])
    assert done["state"] == "done" and done["result"] == f"/api/jobs/{job['id']}/result.png"
    assert done["params"]["size"] == 32 and done["progress"]["total"] == 4
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    kinds = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[:3] == ["state", "state", "started"]
    assert "step" in kinds and "preview" in kinds and kinds[-3:] == ["finished", "state", "end"]
    steps = [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and '"type": "step"' in line
    ]
    assert [s["iteration"] for s in steps] == [0, 1, 2, 3, 4]
    result = client.get(done["result"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    download = client.get(done["result"] + "?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/api/jobs/{job['id']}/inputs/content.png").status_code == 200
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]
    # replay from the middle (Last-Event-ID)
    with client.stream(
        "GET", f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "5"}
    ) as stream:
        later = "".join(stream.iter_text())
    assert "id: 5\n" not in later and "id: 6\n" in later


def test_a_job_may_ask_for_auto_iterations_within_the_servers_cap(make_client):
    client = make_client()
    r = submit(client, params={"size": 32, "iterations": "auto", "max_iterations": 6})
    assert r.status_code == 201, r.text
    done = wait_state(client, r.json()["id"])
    assert done["state"] == "done", done
    assert done["params"]["iterations"] == "auto" and done["params"]["max_iterations"] == 6
    assert done["progress"]["total"] == 6  # the most it may take


def test_cancel_keeps_the_last_image(make_client):
    client = make_client(runner=fake_runner(delay=0.05))
    job = submit(client, params={"size": 32, "iterations": 1000}).json()
    wait_state(client, job["id"], states=("running",))
    while client.get(f"/api/jobs/{job['id']}").json()["preview"] is None:  # the event: a preview
        time.sleep(0.02)
    r = client.post(f"/api/jobs/{job['id']}/cancel", headers={"Origin": BASE})
    assert r.status_code == 202
    done = wait_state(client, job["id"])
    assert done["state"] == "cancelled" and done["result"]
    assert client.get(done["result"]).status_code == 200


def test_queue_cap_answers_429(make_client):
    client = make_client(runner=fake_runner(delay=0.05), max_waiting=1)
    first = submit(client, params={"size": 32, "iterations": 400}).json()
    wait_state(client, first["id"], states=("running",))
    assert submit(client).status_code == 201  # waits
    r = submit(client)
    assert r.status_code == 429
    assert r.json()["detail"] == "the queue is full (1 jobs waiting); try later"
    client.post(f"/api/jobs/{first['id']}/cancel", headers={"Origin": BASE})


def test_body_cap_answers_413(make_client):
    client = make_client(max_body=20_000)
    r = submit(client, content=noise_png(200, 100))
    assert r.status_code == 413 and r.json()["detail"] == "request body over 20 KB"
    client2 = make_client(max_pixels=1000)
    r = submit(client2, content=png(100, 100))
    assert r.status_code == 413
    assert r.json()["detail"] == ("c.png: too many pixels (100×100 = 10,000 > 1,000)")


def test_a_header_declaring_too_many_pixels_says_so(make_client):
    from tests.robustness.corpus import png_bomb_header

    r = submit(make_client(), content=png_bomb_header())  # past Pillow's own limit too
    assert r.status_code == 413
    assert r.json()["detail"] == "c.png: too many pixels (60000×60000 = 3,600,000,000 > 40,000,000)"


def test_builtins_come_with_inlined_thumbnails(make_client):
    items = make_client().get("/api/builtins").json()
    assert {i["kind"] for i in items} == {"photo", "painting"}
    for item in items:
        head, data = item["thumb"].split(",", 1)
        assert head == "data:image/jpeg;base64"
        im = Image.open(io.BytesIO(base64.b64decode(data)))
        assert max(im.size) == 160 and im.format == "JPEG"


def test_without_a_test_run_the_estimate_waits_for_a_first_run(make_client):
    e = make_client().get("/api/estimate?size=256&iterations=100").json()
    assert e == {"seconds": None, "low": None, "high": None, "wait": 0.0, "slowdown": 1.0,
                 "seconds_per_iteration_megapixel": None, "basis": None,
                 "measuring": False}  # fmt: skip


def test_a_start_up_test_run_gives_estimates_before_any_run(make_client, tmp_path, tiny_network):
    from nst.web.jobs import api_runner

    client = make_client(runner=api_runner, calibrate=True)
    deadline = time.monotonic() + 120  # against a hang only: the test run takes seconds
    while (e := client.get("/api/estimate?size=256&iterations=100").json())["basis"] is None:
        assert time.monotonic() < deadline, "no test run result"
        time.sleep(0.05)
    assert e["basis"] == "calibration" and e["seconds_per_iteration_megapixel"] > 0
    assert e["measuring"] is False
    work = 100 * 256 * 192 / 1e6  # iterations × megapixels at aspect 0.75
    assert e["seconds"] == pytest.approx(e["seconds_per_iteration_megapixel"] * work, rel=1e-6)
    assert client.get("/api/jobs").json() == []  # never listed
    folders = [p for p in (tmp_path / "data").iterdir() if p.is_dir()]
    assert folders == []  # its folder is gone


def test_wrong_media_answers_415(make_client):
    client = make_client()
    r = client.post("/api/jobs", json={"size": 32}, headers={"Origin": BASE})
    assert r.status_code == 415 and r.json()["detail"] == "send the job as multipart/form-data"
    r = submit(client, content=b"GIF89a but not really")
    assert r.status_code == 415
    assert r.json()["detail"] == "c.png: not an image file, or a format nst cannot read"


@pytest.mark.parametrize(
    ("params", "detail", "field"),
    [
        ({"size": 4096}, "size: at most 1024 px on this server", "size"),
        # the server's cap, not the declared range (16..16384), for a value past both
        ({"size": 20000}, "size: at most 1024 px on this server", "size"),
        ({"iterations": 10**5}, "iterations: at most 2000 on this server", "iterations"),
        (
            {"iterations": "auto", "max_iterations": 10**5},
            "max-iterations: at most 2000 on this server",
            "max_iterations",
        ),
        ({"iterations": "often"}, "iterations: 'often' is not an integer", "iterations"),
        ({"colour": 1}, "unknown parameter(s): colour", None),
        ({"weights": "/etc/passwd"}, "parameter(s) not settable here: weights", None),
        ({"init": "/etc/passwd"}, "init must be one of auto, noise, content, style", "init"),
        ({"pooling": "sum"}, "pooling must be one of avg, max (got 'sum')", "pooling"),
        ({"style_scale": 0}, "style-scale must be > 0 and at most 8 (got 0)", "style_scale"),
        ({"lr": -3}, "lr must be > 0 and at most 10000 (got -3)", "lr"),
        ({"size": 1.5}, "size: 1.5 is not an integer", "size"),
        (
            {"seed": 2**63},
            "seed must be between 0 and 9223372036854775807 (got 9223372036854775808)",
            "seed",
        ),
        ({"style_blend": "1,1,1"}, "style-blend has 3 weights for 1 style image(s)", None),
    ],
)
def test_bad_parameters_answer_422_naming_their_field(make_client, params, detail, field):
    r = submit(make_client(), params=params)
    assert r.status_code == 422
    assert r.json() == {"detail": detail, "field": field}


def test_bad_requests_answer_422_and_leave_no_files(make_client, tmp_path):
    client = make_client()
    assert submit(client, styles=()).json()["detail"] == "give 1 to 4 style images"
    r = submit(client, raw_params="{not json")
    assert r.json()["detail"] == (
        "params: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    good = png(64, 48)
    r = submit(client, content=good[: len(good) // 2])
    assert r.status_code == 422 and "truncated or corrupt image data" in r.json()["detail"]
    r = submit(client, builtin_content="builtin:nothing")
    assert r.status_code == 422
    assert [p for p in (tmp_path / "data").iterdir() if p.is_dir()] == []


def test_path_traversal_is_refused(make_client, tmp_path):
    client = make_client()
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    job = submit(client).json()
    wait_state(client, job["id"])
    jid = job["id"]
    for url in [
        f"/api/jobs/{jid}/inputs/../../secret.png",
        f"/api/jobs/{jid}/inputs/..%2F..%2Fsecret.png",
        f"/api/jobs/{jid}/inputs/%2e%2e%2f%2e%2e%2fsecret.png",
        f"/api/jobs/{jid}/inputs/{secret}",
        f"/api/jobs/{jid}/inputs//etc/passwd",
        f"/api/jobs/{jid}/inputs/job.json",
        f"/api/jobs/{jid}/inputs/.nst-job",
        "/api/jobs/..%2F..%2Fetc/result.png",
        "/api/jobs/../../etc/passwd",
        f"/api/jobs/{jid.upper()}/result.png",
        "/static/../../../etc/passwd",
        "/static/..%2F..%2Fapp.py",
    ]:
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"PNG" not in r.content[:8]


def test_foreign_host_and_origin_are_refused(make_client):
    client = make_client()
    r = client.get("/api/jobs", headers={"Host": "evil.example:8000"})
    assert r.status_code == 400 and r.json()["detail"] == "invalid Host header"
    assert client.get("/api/jobs", headers={"Host": "localhost:8000"}).status_code == 200
    files = [("content", ("c.png", png(), "image/png")), ("style", ("s.png", png(), "image/png"))]
    r = client.post(
        "/api/jobs", files=files, data={"params": "{}"}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403 and r.json()["detail"] == "cross-origin request refused"
    r = client.post(
        "/api/jobs",
        files=files,
        data={"params": "{}"},
        headers={"Referer": "http://evil.example/page"},
    )
    assert r.status_code == 403
    r = client.delete("/api/jobs/" + "0" * 32, headers={"Origin": "http://127.0.0.1:9999"})
    assert r.status_code == 403
    assert "access-control-allow-origin" not in client.get("/api/jobs").headers


def test_jobs_expire_and_startup_sweeps_old_folders(make_client, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    stale = data / ("a" * 32)
    stale.mkdir()
    (stale / MARKER).touch()
    foreign = data / "keep-me"
    foreign.mkdir()
    client = make_client(job_ttl=60)
    assert not stale.exists() and foreign.exists()
    job = submit(client).json()
    wait_state(client, job["id"])
    manager = client.app.state.manager
    assert manager.expire(now=time.time() + 30) == []
    assert manager.expire(now=time.time() + 120) == [job["id"]]
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    # the job shows done before its worker has written its record: the folder goes
    # when the worker lets go of it, before the worker (one) starts the next job
    wait_state(client, submit(client).json()["id"])
    assert not (data / job["id"]).exists()


def test_a_run_deleted_midway_leaves_no_folder_behind(make_client, tmp_path):
    """The run goes on writing until it sees the stop (a checkpoint makes its folder
    again): the folder goes when the run lets go of it, not at the delete."""
    from nst.checkpoints import work_folder

    seen = threading.Event()
    quick = fake_runner()

    def run(job, on_event, stop, preview_every):
        if job.params.get("iterations") != 7:
            return quick(job, on_event, stop, preview_every)
        seen.set()
        stop.wait(300)
        late = work_folder(job.folder / "result.png") / "checkpoint-1"
        late.parent.mkdir(parents=True, exist_ok=True)
        late.write_bytes(b"written after the delete")
        return torch.full((3, 30, 40), 0.25)

    client = make_client(runner=run)
    job = submit(client, params={"size": 32, "iterations": 7}).json()
    assert seen.wait(60)
    folder = tmp_path / "data" / job["id"]
    assert client.delete(f"/api/jobs/{job['id']}", headers={"Origin": BASE}).status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    wait_state(client, submit(client).json()["id"])  # the worker is through with the first
    assert not folder.exists()


def test_result_as_next_init_and_delete(make_client):
    client = make_client()
    first = submit(client).json()
    wait_state(client, first["id"])
    second = submit(client, init_job=first["id"]).json()
    assert second["params"]["init"] == "previous result"
    job = client.app.state.manager.get(second["id"])
    assert job.config.init == str(job.folder / "init.png")
    assert submit(client, init_job="f" * 32).json()["detail"] == "init_job: no such job"
    wait_state(client, second["id"])
    assert client.delete(f"/api/jobs/{first['id']}", headers={"Origin": BASE}).status_code == 204
    assert client.get(f"/api/jobs/{first['id']}").status_code == 404


def test_page_static_builtins_and_openapi(make_client):
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
    # the page's modules, each served as JavaScript (a module with another type is refused)
    for name in ("app", "state", "images", "form", "mask", "jobs", "common", "zoom", "explore"):
        r = client.get(f"/static/{name}.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], name
    names = [b["name"] for b in client.get("/api/builtins").json()]
    assert "builtin:chelsea" in names and "builtin:swirls" in names
    img = client.get("/api/builtins/swirls.png")
    assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
    schema = client.get("/api/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/cancel"} <= set(
        schema["paths"]
    )
    docs = client.get("/api/docs")  # the page's own, drawn from openapi.json: no CDN
    assert (
        docs.status_code == 200 and '<script type="module" src="/static/apidocs.js">' in docs.text
    )
    assert "cdn" not in docs.text.lower() and "swagger" not in docs.text.lower()
    fields = {f["name"]: f for f in client.get("/api/config").json()["fields"]}
    assert "size" in fields and "weights" not in fields and "device" not in fields
    assert fields["init"]["choices"] == ["auto", "noise", "content", "style"]
    assert fields["pooling"]["choices"] == ["avg", "max"] and fields["size"]["max"] == 1024
    assert fields["tv_weight"]["min"] == 0 and fields["tv_weight"]["max"] == 1e4


@requires_weights
def test_a_real_job_runs_to_the_end(make_client):
    from nst.web.jobs import api_runner

    client = make_client(runner=api_runner)
    job = submit(client, params={"size": 32, "iterations": 3, "seed": 0}).json()
    done = wait_state(client, job["id"], timeout=120)
    assert done["state"] == "done", done
    with Image.open(io.BytesIO(client.get(done["result"]).content)) as im:
        assert im.size == (32, 24)
    assert done["progress"]["seed"] == 0


def test_serve_refuses_a_reachable_address_without_allow_remote():
    from typer.testing import CliRunner

    from nst.cli import app

    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2
    assert r.output.strip() == (
        "nst: error: host 0.0.0.0 can be reached from other machines; add --allow-remote"
    )


def test_the_eta_of_a_two_stage_run_weights_each_stage_by_its_pixels(make_client):
    """Stage 2 has 4x the pixels and costs ~4.5x per iteration: at mid-run the ETA the web
    reports is within 20% of the time really left."""
    from nst.events import Finished, Stage, Started
    from tests.web.helpers import fake_step

    plan = (Stage(16, 24, 20), Stage(32, 48, 10))
    cost = [0.01, 0.045]  # seconds per iteration in each stage

    def run(job, on_event, stop, preview_every):
        elapsed = 0.0
        for k, stage in enumerate(plan):
            on_event(Started(k, plan, "cpu", "fp32", 7))
            for i in range(stage.iterations + 1):
                on_event(fake_step(i, 1.0 / (i + 1), elapsed, k))
                if i < stage.iterations:
                    elapsed += cost[k]
        on_event(Finished(30, 31, 1.0, elapsed, "completed"))
        return torch.full((3, 32, 48), 0.5)

    client = make_client(runner=run)
    job = submit(client).json()
    assert wait_state(client, job["id"])["state"] == "done"
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    steps = [json.loads(line[6:]) for line in text.splitlines()
             if line.startswith("data: ") and '"type": "step"' in line]  # fmt: skip
    total = steps[-1]["elapsed"]
    mid = min(steps, key=lambda s: abs(s["elapsed"] - total / 2))
    assert mid["stage"] == 1 and mid["total"] == 30
    true_left = total - mid["elapsed"]
    assert abs(mid["eta"] - true_left) <= 0.2 * true_left, (mid["eta"], true_left)


def test_an_added_term_reaches_the_event_stream(images, tiny_network, make_client):
    def runner(job, on_event, stop, preview_every):
        from nst import execution

        plan = job.plan.with_term(sharpness_spec(0.25))
        return execution.execute(plan, on_event, stop, preview_every)

    client = make_client(runner=runner)
    job = submit(client, params={"size": 32, "iterations": 2, "seed": 0}).json()
    assert wait_state(client, job["id"])["state"] == "done"
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    steps = [json.loads(line[6:]) for line in text.splitlines()
             if line.startswith("data: ") and '"type": "step"' in line]  # fmt: skip
    assert [s["iteration"] for s in steps] == [0, 1, 2]
    assert all("sharpness_loss" in s and s["factors"]["sharpness"] == 0.25 for s in steps)


def test_the_config_lists_the_presets_and_the_page_starts_from_fast(make_client):
    from nst.config import PRESETS

    schema = make_client().get("/api/config").json()
    assert schema["presets"] == PRESETS
    mrf = {"style_layers": "conv3_1:0.5,conv4_1:0.5", "optimizer": "adam"}
    assert schema["implied"] == {"style_loss": {"mrf": mrf}}
    # the page reads the states a job ends in from here, not from a copy of its own
    assert schema["ended"] == ["done", "cancelled", "failed", "interrupted"]
    preset = next(f for f in schema["fields"] if f["name"] == "preset")
    assert preset["default"] == "fast" and preset["choices"] == list(PRESETS)
    r = submit(make_client(), params={"size": 32, "preset": "fast", "iterations": 3})
    assert r.status_code == 201
    assert r.json()["params"]["iterations"] == 3  # given explicitly: wins
    assert r.json()["params"]["style_loss"] == PRESETS["fast"]["style_loss"]


def test_a_run_the_servers_stop_interrupted_continues_where_it_was(make_client, tiny_network):
    """Stopped by the server's stop, a run keeps its checkpoint; after a restart its
    "Continue" (POST .../continue) goes on from there and ends with the picture of the
    same run never stopped (fp32), and its checkpoint goes."""
    from nst.checkpoints import work_folder
    from nst.web.jobs import api_runner

    params = {"size": 48, "iterations": 300, "seed": 3, "init": "noise", "precision": "fp32"}
    first = make_client(runner=api_runner)
    job = submit(first, params=params).json()
    while first.get(f"/api/jobs/{job['id']}").json()["progress"].get("done", 0) < 5:
        time.sleep(0.02)
    first.app.state.manager.stop()  # the server stops mid-run
    again = make_client(runner=api_runner)  # and starts again on the same data
    view = again.get(f"/api/jobs/{job['id']}").json()
    assert view["state"] == "interrupted" and view["continuable"] is True
    assert view["progress"]["done"] >= 5
    r = again.post(f"/api/jobs/{job['id']}/continue", headers={"Origin": BASE})
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running")
    done = wait_state(again, job["id"], timeout=180)
    assert done["state"] == "done" and done["continuable"] is False
    folder = again.app.state.manager.get(job["id"]).folder
    # the checkpoints go just after the job shows done (outside the manager's lock)
    gone = time.monotonic() + 120  # a bound against a hang, not a timing
    while work_folder(folder / "result.png").exists() and time.monotonic() < gone:
        time.sleep(0.05)
    assert not work_folder(folder / "result.png").exists()
    twin = wait_state(again, submit(again, params=params).json()["id"], timeout=180)
    mine = np.asarray(Image.open(io.BytesIO(again.get(done["result"]).content)), dtype=np.int16)
    same = np.asarray(Image.open(io.BytesIO(again.get(twin["result"]).content)), dtype=np.int16)
    assert int(np.abs(mine - same).max()) <= 1
    r = again.post(f"/api/jobs/{job['id']}/continue", headers={"Origin": BASE})
    assert r.status_code == 409
    assert r.json()["detail"] == "only a run the server's stop interrupted can continue"


def test_the_measured_speed_outlives_its_runs_and_a_restart(make_client):
    """Deleting every finished run keeps what they measured; so does a restart."""
    client = make_client()
    job_id = submit(client).json()["id"]
    wait_state(client, job_id)
    after_run = client.get("/api/estimate?size=256&iterations=100").json()
    assert after_run["basis"] == "runs" and after_run["seconds"] > 0
    assert client.delete(f"/api/jobs/{job_id}", headers={"Origin": BASE}).status_code == 204
    assert client.get("/api/jobs").json() == []
    assert client.get("/api/estimate?size=256&iterations=100").json() == after_run
    again = make_client()  # the same data folder: the server started again
    assert again.get("/api/estimate?size=256&iterations=100").json() == after_run
