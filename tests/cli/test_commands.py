"""The command line end to end on the real weights at 32-64 px."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from nst.cli import app
from tests.conftest import picture, requires_weights

pytestmark = requires_weights
runner = CliRunner()
LOG_KEYS = {
    "type",
    "factors",
    "iteration",
    "evaluations",
    "loss",
    "content_loss",
    "style_loss",
    "tv_loss",
    "content_losses",
    "style_losses",
    "elapsed",
    "stage",
}


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_stylize_writes_the_image_and_the_log(images, tmp_path):
    out, log = tmp_path / "out.png", tmp_path / "l.jsonl"
    r = nst(
        "stylize",
        images["content"],
        images["style"],
        "-o",
        out,
        "--size",
        40,
        "--iterations",
        5,
        "--seed",
        0,
        "--log",
        log,
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (40, 27)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert set(records[0]) == LOG_KEYS
    assert records[0]["evaluations"] == 1 and records[-1]["evaluations"] >= 6
    assert set(records[0]["style_losses"]) == {f"conv{b}_1" for b in range(1, 6)}
    assert records[0]["content_losses"].keys() == {"conv4_2"}
    assert records[-1]["loss"] < records[0]["loss"]
    assert "seed 0" in r.output and "completed: 5 iterations" in r.output


def _independent_style_losses(content_path, style_path):
    """E_l from the weight file with plain F.conv2d in float64 (no nst model code)."""
    from nst.model.weights import builtin_weights_path

    raw = torch.load(builtin_weights_path(), weights_only=True)
    mean = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)

    def feats(path):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        x = torch.from_numpy(rgb[:, :, ::-1].copy()).permute(2, 0, 1)[None] - mean
        out = {}
        for block, convs in enumerate([2, 2, 4, 4, 4], start=1):
            for i in range(1, convs + 1):
                key = f"block{block}_conv{i}"
                w = raw[key + "_W_table"].double()[raw[key + "_W_q"].long()]
                x = torch.relu(F.conv2d(x, w, raw[key + "_b"].double(), padding=1))
                out[f"conv{block}_{i}"] = x
            x = F.max_pool2d(x, 2)
        return out

    fx, fa = feats(content_path), feats(style_path)
    losses = {}
    for name in [f"conv{b}_1" for b in range(1, 6)]:
        n = fx[name].shape[1]
        m = fx[name].shape[2] * fx[name].shape[3]
        g = fx[name].reshape(n, m) @ fx[name].reshape(n, m).T
        a = fa[name].reshape(n, m) @ fa[name].reshape(n, m).T
        losses[name] = float(((g - a) ** 2).sum() / (4 * n**2 * m**2))
    return losses


def test_logged_iteration_0_style_losses_are_the_papers_E_l(tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(picture(64, 48, 3)).save(content)  # both already at the working size
    Image.fromarray(picture(64, 48, 4)).save(style)
    log = tmp_path / "l.jsonl"
    r = nst(
        "stylize",
        content,
        style,
        "-o",
        tmp_path / "o.png",
        "--size",
        64,
        "--init",
        "content",
        "--no-normalize",
        "--pooling",
        "max",
        "--iterations",
        1,
        "--precision",
        "fp32",
        "--log",
        log,
    )
    assert r.exit_code == 0, r.output
    logged = json.loads(log.read_text().splitlines()[0])["style_losses"]
    expected = _independent_style_losses(content, style)
    for name, value in expected.items():
        assert logged[name] == pytest.approx(value, rel=5e-3), name


def test_save_every_writes_intermediate_images(images, tmp_path):
    out = tmp_path / "o.png"
    r = nst(
        "stylize",
        images["content"],
        images["style"],
        "-o",
        out,
        "--size",
        32,
        "--iterations",
        4,
        "--save-every",
        2,
        "--init",
        "content",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in tmp_path.glob("o_*.png"))
    assert names == ["o_00000.png", "o_00002.png", "o_00004.png"]
    assert r.output == ""


def test_help_says_what_iterations_count():
    r = runner.invoke(app, ["stylize", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "L-BFGS iterations; each may evaluate the loss several times" in text


def test_demo_command_runs_small(tmp_path):
    out = tmp_path / "demo.png"
    r = nst("demo", "-o", out, "--size", 32, "--iterations", 2, "--quiet")
    assert r.exit_code == 0, r.output
    assert out.exists() and (tmp_path / "demo_style.png").exists()
    assert f"result:  {out}" in r.output


def test_divergence_writes_the_last_finite_image_and_exits_3(images, tmp_path, monkeypatch):
    from nst import execution
    from nst.errors import Diverged

    def diverge(plan, on_event=None, stop=None, preview_every=0, **checkpoints):
        raise Diverged(
            "the loss became NaN or infinite after iteration 3; try ...",
            image=torch.full((3, 21, 32), 0.5),
            iteration=3,
        )

    monkeypatch.setattr(execution, "execute", diverge)
    out = tmp_path / "o.png"
    r = nst("stylize", images["content"], images["style"], "-o", out, "--size", 32)
    assert r.exit_code == 3
    assert r.output.strip().splitlines()[-1] == (
        "nst: stopped: the loss became NaN or infinite after iteration 3; try ...; "
        f"wrote the last image to {out}"
    )
    assert Image.open(out).size == (32, 21)


def test_the_server_drops_asyncios_closed_tab_noise_only():
    import logging

    from nst.cli.commands.serve import ClosedTabNoise

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.WARNING, __file__, 1, message, (), None)

    noise = ClosedTabNoise()
    assert noise.filter(record("socket.send() raised exception.")) is False
    assert noise.filter(record("Task exception was never retrieved")) is True
