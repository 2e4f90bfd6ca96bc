"""Every role of an option comes from its declaration: a server-only option and a path
option declared here, in the test alone, are handled by the CLI, the path checks, batch
jobs and names, the web form and a POST; batch names are stable across added options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nst.batch.jobs import cross, manifest, output_name
from nst.cli.options import config_parameters
from nst.cli.run import check_paths
from nst.config import Config
from nst.errors import ConfigError
from nst.options import INT, MODES, TEXT, declare, option
from tests.conftest import picture


@declare
@dataclass(frozen=True)
class Extended(Config):
    """Config as a later release might have it: two more options."""

    secret_dir: str | None = option(
        None, "A folder only the server's owner names.", TEXT, nullable=True, web="server"
    )
    guide: str = option(
        "none", "A guide image file (or none).", TEXT, path=True, keywords=("none",)
    )
    strokes: int = option(3, "A new setting with a default.", INT, lo=1, hi=9)


def _png(path: Path, seed: int = 0) -> Path:
    from PIL import Image

    Image.fromarray(picture(24, 20, seed)).save(path)
    return path


def test_the_declarations_say_which_options_name_files_and_which_are_server_only():
    assert set(Config.path_options()) == {"mask", "weights", "init"}
    assert Config.server_only() == {"mask", "weights", "device", "memory_limit", "tile"}
    assert set(Extended.path_options()) == {"mask", "weights", "init", "guide"}
    assert "secret_dir" in Extended.server_only() and "guide" not in Extended.server_only()
    c = Extended(guide="g.png", init="content", mask="m.png", regions=(("#ff0000", "1"),))
    assert c.input_paths() == {"mask": "m.png", "guide": "g.png"}
    assert Extended(guide="none").input_paths() == {}
    moved = c.with_paths(lambda p: "/w/" + p)
    assert (moved.guide, moved.mask, moved.init) == ("/w/g.png", "/w/m.png", "content")


def test_the_cli_offers_new_options_in_the_modes_they_declare():
    flags = {p.name for p in config_parameters(cls=Extended, mode="stylize")}
    assert {"secret_dir", "guide", "strokes", "mask"} <= flags
    content = {p.name for p in config_parameters(cls=Config, mode="content")}
    assert "style_layers" not in content and "mask" not in content and "init" in content
    video = {p.name for p in config_parameters(cls=Config, mode="video")}
    assert "mask" not in video and "regions" not in video and "tv_weight" in video
    metrics = {p.name for p in config_parameters(cls=Config, mode="metrics")}
    assert "seed" not in metrics and "init" not in metrics
    with pytest.raises(ValueError, match="unknown mode"):
        Config.options_for("paint")
    assert all(set(o.modes) <= set(MODES) for o in Config.OPTIONS.values())


def test_a_new_path_option_is_checked_against_the_output(tmp_path):
    guide = _png(tmp_path / "guide.png")
    config = Extended(guide=str(guide))
    with pytest.raises(ConfigError, match="is an input file"):
        check_paths(guide, ["builtin:chelsea", *config.input_paths().values()])


def test_batch_jobs_read_ship_and_resolve_a_new_path_option(tmp_path):
    content, style = _png(tmp_path / "c.png"), _png(tmp_path / "s.png", 1)
    guide = _png(tmp_path / "guide.png", 2)
    rows = tmp_path / "jobs.jsonl"
    rows.write_text(json.dumps({"content": "c.png", "style": "s.png", "guide": "guide.png"}))
    (job,) = manifest(rows, {}, tmp_path / "out", config_class=Extended)
    assert job.config.guide == str(guide)  # relative to the manifest, like content
    assert str(guide) in job.inputs  # shipped to the workers
    rows.write_text(json.dumps({"content": "c.png", "style": "s.png", "guide": "gone.png"}))
    with pytest.raises(ConfigError, match=r"line 1: guide .*gone.png: (no such file|not found)"):
        manifest(rows, {}, tmp_path / "out", config_class=Extended)
    (plain,) = cross([str(content)], [str(style)], {}, tmp_path / "out")
    assert plain.inputs == [str(content), str(style)]


def test_batch_names_survive_an_added_option_and_follow_the_settings(tmp_path):
    c, s = "builtin:chelsea", "builtin:swirls"
    before = output_name(c, (s,), Config(seed=0))
    assert output_name(c, (s,), Extended(seed=0)) == before  # a new release, same name
    assert output_name(c, (s,), Config(seed=0, device="cpu")) == before  # where, not what
    assert output_name(c, (s,), Config(seed=0, style_weight=10.0)) != before
    assert output_name(c, (s,), Extended(seed=0, strokes=5)) != before
    assert output_name(c, (s,), Config(seed=1)) != before
    assert output_name(c, (s,), Config(seed=0, init="content")) != before


def test_the_web_refuses_and_hides_what_the_declarations_say(make_client):
    from tests.web.helpers import submit

    client = make_client(config_class=Extended)
    r = submit(client, params={"size": 32, "iterations": 2, "secret_dir": "/etc"})
    assert r.status_code == 422
    assert r.json()["detail"] == "parameter(s) not settable here: secret_dir"
    r = submit(client, params={"size": 32, "iterations": 2, "guide": "/etc/passwd"})
    assert r.status_code == 422 and r.json()["detail"] == "guide must be one of none"
    r = submit(client, params={"size": 32, "iterations": 2, "guide": "none", "strokes": 4})
    assert r.status_code == 201, r.text
    assert "secret_dir" not in r.json()["params"] and r.json()["params"]["strokes"] == 4
    fields = {f["name"]: f for f in client.get("/api/config").json()["fields"]}
    assert "secret_dir" not in fields and fields["guide"]["choices"] == ["none"]
    assert "regions" not in fields  # the page paints them: settable, not in the form
    assert fields["size"]["max"] == 1024 and fields["scales"]["max"] == 1024
