"""docs/LOG.md cannot drift: real runs write their records (stylize one stage, tiled and
coarse to fine with ``--log``, continued after a stop; a video with passes; a feature
visualization's events), and every record type and every field they hold, nested ones
included, is described in docs/LOG.md's section of that type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.cli import app
from tests.conftest import picture

LOG_MD = Path(__file__).parent.parent / "docs" / "LOG.md"
#: fields whose values are maps keyed by data (layer and term names), not by field names
DATA_KEYED = {"content_losses", "style_losses", "factors", "temporal_losses"}
runner = CliRunner()


def documented() -> dict[str, set[str]]:
    """Record type -> the names its section of docs/LOG.md writes in backticks or uses as
    keys of its JSON examples."""
    sections = re.split(r"^## ", LOG_MD.read_text(), flags=re.M)[1:]
    out: dict[str, set[str]] = {}
    for section in sections:
        head = re.match(r"`(\w+)`", section)
        if head is None:
            continue
        words = set(re.findall(r"`([\w.]+)", section)) | set(re.findall(r'"(\w+)":', section))
        out[head.group(1)] = words
    return out


def fields(record: dict, prefix: str = "") -> set[str]:
    """Every field name of ``record``: those of dicts in lists (a plan's stages) too."""
    names = set()
    for key, value in record.items():
        names.add(key)
        if key in DATA_KEYED:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                names |= fields(item)
    return names


def undocumented(records: list[dict]) -> list[str]:
    docs = documented()
    missing = []
    for record in records:
        kind = record["type"]
        if kind not in docs:
            missing.append(f"record type {kind!r} has no section")
            continue
        missing += [f"{kind}.{name}" for name in sorted(fields(record) - docs[kind] - {"type"})]
    return sorted(set(missing))


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def photos(tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(picture(48, 32, 0)).save(content)
    Image.fromarray(picture(40, 40, 1)).save(style)
    return content, style


def test_the_records_of_stylize_and_visualize_are_all_in_docs_log(
    tiny_network, photos, tmp_path, monkeypatch
):
    from nst import VisualizeConfig, visualize
    from nst.cli.progress import JsonLog

    content, style = photos
    log = tmp_path / "run.jsonl"
    base = ["stylize", str(content), str(style), "--seed", "1", "-q", "--log", str(log),
            "--precision", "fp32"]  # fmt: skip
    runs = [
        ["--size", "48", "--iterations", "4"],
        ["--size", "48", "--tile", "32", "--iterations", "3"],
        ["--size", "48", "--scales", "24,48", "--iterations", "3", "--tv-weight", "1e-3"],
    ]
    for i, extra in enumerate(runs):
        r = runner.invoke(app, [*base, "-o", str(tmp_path / f"o{i}.png"), *extra])
        assert r.exit_code == 0, r.output
    # a run stopped by Ctrl-C after its third step, then continued, writes `resumed`
    write = JsonLog.__call__

    def interrupted(self, event):
        write(self, event)
        if getattr(event, "iteration", None) == 3 and not getattr(self, "once", False):
            self.once = True
            raise KeyboardInterrupt

    monkeypatch.setattr(JsonLog, "__call__", interrupted)
    args = [*base, "-o", str(tmp_path / "cont.png"), "--size", "48", "--iterations", "6",
            "--checkpoint-every", "0"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 130
    monkeypatch.setattr(JsonLog, "__call__", write)
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    records = read_log(log)
    kinds = {r["type"] for r in records}
    assert {"step", "restarted", "resumed"} <= kinds
    # the events a front end streams: started, step, finished; the explain commands' too
    events: list[dict] = []
    visualize("conv2_1:3", VisualizeConfig(size=24, iterations=3), lambda e: events.append(
        e.to_record()))  # fmt: skip
    from nst import Config, stylize

    stylize(str(content), str(style), Config(size=24, iterations=2, seed=1),
            lambda e: events.append(e.to_record()))  # fmt: skip
    assert {"started", "step", "finished"} <= {e["type"] for e in events}
    assert not (missing := undocumented(records + events)), missing


@pytest.mark.video
def test_the_records_of_a_video_are_all_in_docs_log(tiny_network, photos, tmp_path):
    pytest.importorskip("av")
    from nst.video.sample import sample_frames, write_clip

    _, style = photos
    clip, log = tmp_path / "clip.mp4", tmp_path / "video.jsonl"
    write_clip(clip, sample_frames(48, 32, 3), fps=12, tone=None)
    r = runner.invoke(app, ["video", str(clip), str(style), "-o", str(tmp_path / "o.mp4"),
                            "--size", "32", "--iterations", "3", "--passes", "2",
                            "--seed", "0", "-q", "--log", str(log)])  # fmt: skip
    assert r.exit_code == 0, r.output
    records = read_log(log)
    assert {"step", "frame"} <= {r["type"] for r in records}
    assert not (missing := undocumented(records)), "; ".join(missing)


def test_the_check_finds_an_undocumented_field():
    """The check itself can fail: a field or a type the docs do not name is reported."""
    step = {"type": "step", "iteration": 0, "loss": 1.0, "wobble": 2}
    assert undocumented([step, {"type": "mystery"}]) == [
        "record type 'mystery' has no section", "step.wobble"]  # fmt: skip
    plan = {"type": "started", "plan": [{"width": 1, "height": 1, "zorp": 0}]}
    assert undocumented([plan]) == ["started.zorp"]
