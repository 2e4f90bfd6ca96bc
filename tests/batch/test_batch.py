"""nst batch on a real local Ray (2 workers, 1 thread each, 32-48 px, a few iterations)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.cli import app
from tests.conftest import picture, requires_weights
from tests.robustness import corpus

ray = pytest.importorskip("ray", reason="make test installs nst[batch]")
pytestmark = requires_weights
runner = CliRunner()
FAST = ["--size", "32", "--iterations", "4"]


@pytest.fixture(scope="module")
def local_ray():
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def inputs(tmp_path):
    c, s = tmp_path / "contents", tmp_path / "styles"
    c.mkdir()
    s.mkdir()
    for i in range(3):
        Image.fromarray(picture(48, 36, i)).save(c / f"photo{i}.png")
    for i in range(2):
        Image.fromarray(picture(40, 40, 5 + i)).save(s / f"paint{i}.jpg")
    return c, s


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]


def batch(*args):
    return runner.invoke(app, ["batch", *[str(a) for a in args]])


def test_contents_times_styles_then_everything_skipped(local_ray, inputs, tmp_path):
    c, s = inputs
    out = tmp_path / "out"
    r = batch("--contents", c, "--styles", f"{s}/*.jpg", "-o", out, *FAST, "--workers", 2)
    assert r.exit_code == 0, r.output
    made = sorted(p.name for p in out.glob("*.png"))
    assert len(made) == 6 and all(Image.open(out / m).size == (32, 24) for m in made)
    recs = records(out)
    assert [x["status"] for x in recs] == ["ok"] * 6
    assert sorted(x["output"] for x in recs) == made
    first = recs[0]
    keys = {"content", "styles", "options", "iterations", "loss", "seconds", "worker", "node"}
    assert keys <= set(first) and first["nst"] and first["seed"] == 0
    assert first["iterations"] == 4 and first["loss"] > 0
    # the full effective options: the command line's and the defaults, not only a row's
    assert first["options"]["size"] == 32 and first["options"]["iterations"] == 4
    assert first["options"]["style_weight"] == 1000.0 and first["row_options"] == {}
    assert "throughput per worker:" in r.stderr and " on node " in r.stderr
    assert "6 ok, 0 failed, 0 skipped" in r.stderr
    stamps = {m: (out / m).stat().st_mtime_ns for m in made}
    r = batch("--contents", c, "--styles", f"{s}/*.jpg", "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    assert [x["status"] for x in records(out)[6:]] == ["skipped"] * 6
    assert {m: (out / m).stat().st_mtime_ns for m in made} == stamps  # nothing recomputed
    assert "0 ok, 0 failed, 6 skipped" in r.stderr
    # other options: other names; --force redoes
    r = batch(
        "--contents",
        c / "photo0.png",
        "--styles",
        s / "paint0.jpg",
        "-o",
        out,
        *FAST,
        "--style-weight",
        "1e4",
        "--force",
    )
    assert r.exit_code == 0 and len(list(out.glob("*.png"))) == 7


def test_a_corrupt_content_fails_only_its_jobs(local_ray, inputs, tmp_path):
    c, s = inputs
    (c / "photo1.png").write_bytes(corpus.png_truncated_data())
    out = tmp_path / "out"
    r = batch("--contents", c, "--styles", s, "-o", out, *FAST)
    assert r.exit_code == 1, r.output
    recs = {x["output"]: x for x in records(out)}
    failed = [x for x in recs.values() if x["status"] == "failed"]
    assert len(failed) == 2 and all(x["content"].endswith("photo1.png") for x in failed)
    assert all("photo1.png: truncated or corrupt image data" in x["error"] for x in failed)
    assert sum(x["status"] == "ok" for x in recs.values()) == 4
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("nst: error:")]
    assert line.startswith("nst: error: 2 of 6 jobs failed")


def _painter_pids() -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::Painter"):
                pids.append(int(d))
    return pids


def test_a_killed_worker_is_replaced_and_its_job_retried(local_ray, inputs, tmp_path):
    from nst.batch import Cluster, JobEvents, Records, cross, expand, run_batch

    c, s = inputs
    out = tmp_path / "out"
    out.mkdir()
    jobs = cross(
        expand([str(c)], "c"), expand([str(s)], "s"), {"size": 48, "iterations": 60, "seed": 0}, out
    )
    killed: list[int] = []
    lock = threading.Lock()

    def on_event(event):
        if isinstance(event, JobEvents) and not killed:
            with lock:
                pids = _painter_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])

    counts = run_batch(jobs, Records(out), Cluster(workers=2, retries=2), on_event, drain_every=0.2)
    assert killed, "no worker was running"
    assert counts == {"ok": 6, "failed": 0, "skipped": 0}
    recs = records(out)
    assert sorted(x["output"] for x in recs) == sorted(j.name for j in jobs)  # each once
    assert any(x["attempts"] == 2 for x in recs)
    for j in jobs:
        with Image.open(j.output) as im:
            im.load()
            assert im.size == (48, 36)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_retried_job_continues_from_its_checkpoint(local_ray, inputs, tmp_path):
    """A worker killed once its job has a checkpoint: the retry goes on from there (the
    record says from where) and paints the picture of a run that never stopped (fp32)."""
    from nst.batch import Cluster, JobEvents, Records, cross, expand, run_batch
    from nst.batch.engine import CHECKPOINTS

    c, s = inputs
    out = tmp_path / "out"
    out.mkdir()
    options = {"size": 48, "iterations": 120, "seed": 0, "init": "noise", "precision": "fp32"}
    jobs = cross(expand([str(c / "photo0.png")], "c"), expand([str(s / "paint0.jpg")], "s"),
                 options, out)  # fmt: skip
    killed: list[int] = []

    def on_event(event):
        saved = list((out / CHECKPOINTS).glob("*/checkpoint-*.nst"))
        if isinstance(event, JobEvents) and not killed and len(saved) == 2:
            pids = _painter_pids()
            if pids:
                for pid in pids:  # whichever worker has the job
                    os.kill(pid, signal.SIGKILL)
                killed.append(pids[0])

    counts = run_batch(jobs, Records(out), Cluster(workers=1, retries=2), on_event,
                       drain_every=0.1, checkpoint_every=0.0)  # fmt: skip
    assert killed, "the job ended before its worker could be killed"
    assert counts == {"ok": 1, "failed": 0, "skipped": 0}
    (rec,) = records(out)
    assert rec["attempts"] == 2 and rec["continued"]["iteration"] >= 1, rec
    assert not (out / CHECKPOINTS).exists()  # a finished batch leaves no checkpoints
    # the same job run through without a stop, on a worker like the first (its threads)
    again = tmp_path / "again"
    again.mkdir()
    twin = cross(expand([str(c / "photo0.png")], "c"), expand([str(s / "paint0.jpg")], "s"),
                 options, again)  # fmt: skip
    run_batch(twin, Records(again), Cluster(workers=1), lambda e: None, checkpoint_every=None)
    expected = np.asarray(Image.open(twin[0].output), dtype=np.int16)
    got = np.asarray(Image.open(jobs[0].output), dtype=np.int16)
    assert int(np.abs(expected - got).max()) <= 1


def test_ctrl_c_keeps_finished_outputs_and_the_next_run_finishes(local_ray, inputs, tmp_path):
    from nst.batch import Cluster, JobDone, Records, cross, expand, run_batch

    c, s = inputs
    out = tmp_path / "out"
    out.mkdir()
    jobs = cross(
        expand([str(c)], "c"), expand([str(s)], "s"), {"size": 32, "iterations": 40, "seed": 0}, out
    )

    def on_event(event):
        if isinstance(event, JobDone):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, Records(out), Cluster(workers=2), on_event)
    done = [x["output"] for x in records(out) if x["status"] == "ok"]
    assert 1 <= len(done) < 6
    assert sorted(p.name for p in out.glob("*.png")) == sorted(done)
    r = batch("--contents", c, "--styles", s, "-o", out, "--size", 32, "--iterations", 40)
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.png"))) == 6


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "content,style,colour\n{c},{s},red\n",
            "manifest jobs.csv row 2: unknown parameter(s): colour",
        ),
        (
            "content,style,size\n{c},{s},32\n{c},{s},big\n",
            "manifest jobs.csv row 3: size: 'big' is not an integer",
        ),
        (
            "content,style\n{c},missing.jpg\n",
            "manifest jobs.csv row 2: style {d}/missing.jpg: no such file",
        ),
        (
            "content,style,output\n{c},{s},a.png\n{c},{s},a.png\n",
            "manifest jobs.csv row 3: writes a.png like manifest jobs.csv row 2",
        ),
        (
            "content,style,output\n{c},{s},../a.png\n",
            "row 2: output '../a.png' must be a plain file name",
        ),
        ("content,style\n{c},\n", "manifest jobs.csv row 2: no style image"),
    ],
)
def test_manifest_errors_are_named_by_row_before_any_work(inputs, tmp_path, rows, message):
    c, s = inputs
    d = tmp_path
    manifest = d / "jobs.csv"
    manifest.write_text(rows.format(c=c / "photo0.png", s=s / "paint0.jpg"))
    out = tmp_path / "out"
    r = batch("--manifest", manifest, "-o", out)
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert line == "nst: error: " + message.format(d=d) or message.format(d=d) in line
    assert not list(out.glob("*.png")) and not (out / "batch.jsonl").exists()


def test_a_jsonl_manifest_with_row_options(local_ray, inputs, tmp_path):
    c, s = inputs
    manifest = tmp_path / "jobs.jsonl"
    rows = [
        {"content": str(c / "photo0.png"), "style": str(s / "paint0.jpg"), "output": "a.png"},
        {
            "content": "contents/photo1.png",
            "styles": [str(s / "paint0.jpg"), str(s / "paint1.jpg")],
            "size": 40,
            "style_blend": [0.7, 0.3],
        },
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out"
    r = batch("--manifest", manifest, "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    recs = records(out)  # two workers: the jobs finish in either order
    assert sorted(x["output"] == "a.png" for x in recs) == [False, True]
    assert Image.open(out / "a.png").size == (32, 24)
    second = next(x for x in recs if x["output"] != "a.png")
    assert second["output"].startswith("photo1_paint0+1_") and second["options"]["size"] == 40
    assert Image.open(out / second["output"]).size == (40, 30)


def test_without_ray_one_line_says_what_to_install(inputs, tmp_path, monkeypatch):
    import builtins as py

    real = py.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(py, "__import__", no_ray)
    c, s = inputs
    r = batch("--contents", c, "--styles", s, "-o", tmp_path / "out", *FAST)
    assert r.exit_code == 2
    assert (
        r.stderr.strip()
        == "nst: error: nst batch needs Ray: pip install 'nst[batch]' (or: pip install ray)"
    )
    time.sleep(0)


def test_dry_run_lists_the_jobs_and_estimates_from_measured_speed(inputs, tmp_path, monkeypatch):
    import nst.batch.engine as engine

    def no_ray():
        raise AssertionError("a dry run started Ray")

    monkeypatch.setattr(engine, "import_ray", no_ray)
    c, s = inputs
    out = tmp_path / "out"
    r = batch("--dry-run", "--contents", c, "--styles", s / "paint0.jpg", "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "dry run: 3 jobs to run, 0 recorded as done (skipped)"
    assert all(" x " in x and "32 px, 4 iterations, ~" in x for x in lines[1:4])
    assert (
        lines[4].startswith("estimate: ")
        and "(measured: a test run here (1 thread(s)))" in lines[4]
    )
    assert lines[4].endswith("worker(s) on machines like this one")
    assert not out.exists()  # a dry run makes nothing, not even the folder
    assert "nst: warning: 4 iterations are too few to paint from noise" in r.output
    # with earlier records in the folder, their speed is the measurement
    from nst.batch import cross, expand
    from nst.batch.jobs import Records

    job = cross(expand([str(c / "photo0.png")], "c"), expand([str(s / "paint0.jpg")], "s"),
                {"size": 32, "iterations": 4, "seed": 0}, out)[0]  # fmt: skip
    out.mkdir(exist_ok=True)
    Image.fromarray(picture(32, 24, 0)).save(job.output)
    Records(out).write(job, "ok", seconds=2.0, iterations=4)
    r = batch("--dry-run", "--contents", c, "--styles", s / "paint0.jpg", "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "dry run: 2 jobs to run, 1 recorded as done (skipped)"
    work = 4 * 32 * 24 / 1e6
    assert f"at {2.0 / work:.3g} s per iteration-megapixel" in lines[-1]
    assert f"(measured: 1 earlier job in {out / 'batch.jsonl'})" in lines[-1]


def test_a_poster_spreads_its_tiles_over_both_workers_with_the_one_worker_losses(
    local_ray, tmp_path
):
    """A row of --spread-from px or more runs last on both workers at once (its tiles on
    both): its loss is that of the same row painted by one worker (fp32, 1e-5)."""
    photo, paint = tmp_path / "photo.png", tmp_path / "paint.png"
    Image.fromarray(picture(128, 96, 1)).save(photo)
    Image.fromarray(picture(64, 64, 7)).save(paint)
    small = tmp_path / "small.png"
    Image.fromarray(picture(48, 36, 2)).save(small)
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"content,style,size,output\n{photo},{paint},128,poster.png\n"
                        f"{small},{paint},32,small.png\n")  # fmt: skip
    common = ["--iterations", "4", "--tile", "64", "--precision", "fp32", "--workers", "2"]
    r = batch("--manifest", manifest, "-o", tmp_path / "spread", *common, "--spread-from", 128)
    assert r.exit_code == 0, r.output
    spread = {Path(x["output"]).name: x for x in records(tmp_path / "spread")}
    assert [Path(x["output"]).name for x in records(tmp_path / "spread")] == [
        "small.png", "poster.png"]  # fmt: skip
    assert spread["poster.png"]["workers"] == 2 and "workers" not in spread["small.png"]
    r = batch("--manifest", manifest, "-o", tmp_path / "alone", *common, "--spread-from", 0)
    assert r.exit_code == 0, r.output
    alone = {Path(x["output"]).name: x for x in records(tmp_path / "alone")}
    assert "workers" not in alone["poster.png"]
    a, b = spread["poster.png"]["loss"], alone["poster.png"]["loss"]
    assert abs(a - b) <= 1e-5 * abs(b), (a, b)
    with Image.open(tmp_path / "spread" / "poster.png") as im:
        assert im.size == (128, 96)
