"""Helpers of the web tests: small images, a fake runner, submitting and waiting."""

import io
import json
import time
import warnings
from collections.abc import Callable

import torch
from PIL import Image

from nst.events import Finished, Stage, Started, Step
from nst.web import WebSettings, create_app
from tests.conftest import picture

with warnings.catch_warnings():  # starlette's notice about httpx2, at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BASE = "http://127.0.0.1:8000"


def png(width=40, height=30, seed=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(picture(width, height, seed)).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(width, height) -> bytes:
    """A PNG that does not compress (for size limits)."""
    import numpy as np

    arr = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def fake_step(i, loss, elapsed=0.0, stage=0, preview=None) -> Step:
    terms = {"content:conv4_2": 1.0, "style:conv1_1": loss, "tv": 0.0}
    weights = {"content:conv4_2": 1.0, "style:conv1_1": 1.0, "tv": 1.0}
    factors = {"content:conv4_2": 1.0, "style:conv1_1": 1.0, "tv": 0.0}
    return Step(i, i + 1, 1.0 + loss, terms, weights, factors, elapsed, stage, preview)


def fake_runner(delay: float = 0.0, steps: int = 6) -> Callable:
    """Emits the library's events like a real run; honours the stop event."""

    def run(job, on_event, stop, preview_every):
        total = job.plan.config.iterations or steps
        plan = (Stage(30, 40, total),)
        on_event(Started(0, plan, "cpu", "fp32", 7))
        for i in range(total + 1):
            if stop.is_set():
                on_event(Finished(i, i + 1, 1.0, 0.1, "cancelled"))
                return torch.full((3, 30, 40), 0.25)
            preview = torch.full((3, 30, 40), i / (total + 1)) if i % preview_every == 0 else None
            on_event(fake_step(i, 10.0 / (i + 1), 0.01 * i, 0, preview))
            time.sleep(delay)
        on_event(Finished(total, total + 1, 1.0, 0.1, "completed"))
        return torch.full((3, 30, 40), 0.5)

    return run


def held_runner(hold_over: int = 100, steps: int = 3) -> Callable:
    """Like :func:`fake_runner` (no delay), but a job of more than ``hold_over``
    iterations stops after ``steps`` steps (with a preview) and stays running until it
    is stopped: a running job for as long as a test needs one, no clock involved."""
    quick = fake_runner()

    def run(job, on_event, stop, preview_every):
        total = job.plan.config.iterations or steps
        if total <= hold_over:
            return quick(job, on_event, stop, preview_every)
        on_event(Started(0, (Stage(30, 40, total),), "cpu", "fp32", 7))
        for i in range(steps):
            on_event(fake_step(i, 10.0 / (i + 1), 0.5 * (i + 1), 0, torch.full((3, 30, 40), 0.3)))
        stop.wait(300)
        on_event(Finished(steps, steps, 1.0, 0.1, "cancelled"))
        return torch.full((3, 30, 40), 0.25)

    return run


def submit(
    client,
    content=None,
    styles=(("style", png(20, 20, 1)),),
    builtin_content=None,
    params=None,
    raw_params=None,
    files_extra=(),
    **extra,
):
    files = list(files_extra)
    data = {"params": raw_params or json.dumps(params or {"size": 32, "iterations": 4})}
    if builtin_content:
        data["content_builtin"] = builtin_content
    else:
        files.append(("content", ("c.png", content if content is not None else png(), "image/png")))
    for field, blob in styles:
        files.append((field, ("s.png", blob, "image/png")))
    data.update({k: v for k, v in extra.items() if v is not None})
    return client.post("/api/jobs", files=files, data=data, headers={"Origin": BASE})


def wait_state(client, job_id, states=("done", "cancelled", "failed"), timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']}")


def client_factory(tmp_path, clients):
    """make(runner=None, **settings) -> a started TestClient of a fresh app."""

    def make(runner=None, config_class=None, **overrides) -> TestClient:
        overrides = {"calibrate": False, "measure_load": False, **overrides}  # no test run, load 0
        settings = WebSettings(data_dir=tmp_path / "data", preview_every=2, **overrides)
        extra = {"config_class": config_class} if config_class is not None else {}
        app = create_app(settings, runner or fake_runner(), **extra)
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    return make
