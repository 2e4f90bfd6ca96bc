"""The paper's figures: layout from a fast fake engine, skipping, and real reconstructions."""

import hashlib

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import nst
from nst.cli import app
from nst.config import Config
from nst.events import Step
from nst.figures import Job, Roles, make_figures, plan_sheets, sheet_layout
from tests.conftest import picture, requires_weights

PAPER = ["fig1", "fig3", "fig4", "fig5", "fig6", "fig7"]


@pytest.fixture
def paper_dir(tmp_path):
    """A folder with the paper's file names, small synthetic pictures inside."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, name in enumerate(["tubingen.jpg", "starry_night.jpg", "the_scream.jpg"]):
        Image.fromarray(picture(48, 36, i)).save(folder / name)
    return folder


def fake_engine(calls):
    """Deterministic like the real engine: fixed inits ignore the seed, noise does not."""

    def engine(job: Job) -> torch.Tensor:
        calls.append(job)
        c = job.config
        key = (
            job.kind,
            job.source,
            job.style,
            c.content_layers,
            c.style_layers,
            c.content_weight,
            c.style_weight,
            c.init,
            c.seed if c.init == "noise" else None,
        )
        seed = int(hashlib.sha256(repr(key).encode()).hexdigest()[:8], 16)
        h, w = job.size or (27, 36)
        return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))

    return engine


def test_sheets_are_named_after_the_papers_figures_and_have_its_layout(paper_dir):
    roles = Roles.from_dir(paper_dir)
    sheets, skipped = plan_sheets(roles, Config(size=36, iterations=2, seed=0), only=PAPER)
    layouts = {s.name: sheet_layout(s, (36, 27)) for s in sheets}
    assert list(layouts) == ["fig1", "fig3", "fig4", "fig5", "fig6"]
    assert skipped == ["fig7: skipped, no photo content and no photo style image"]
    fig1 = layouts["fig1"]
    assert (fig1["rows"], fig1["columns"]) == (2, 6)
    assert fig1["labels"][0][1:] == ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
    assert fig1["labels"][1][1] == "conv1_1" and fig1["labels"][1][5] == "conv1_1 … conv5_1"
    fig3 = layouts["fig3"]
    assert fig3["labels"][0][1:] == ["starry_night", "the_scream"]
    assert fig3["labels"][1][1:] == ["alpha/beta 8e-4", "alpha/beta 5e-3"]
    fig4 = layouts["fig4"]
    assert (fig4["rows"], fig4["columns"]) == (4, 5)
    assert fig4["row_labels"] == [f"alpha/beta 1e-{k}" for k in (5, 4, 3, 2)]
    assert fig4["labels"][0] == ["conv1_1", "… conv2_1", "… conv3_1", "… conv4_1", "… conv5_1"]
    assert layouts["fig5"]["labels"][0][2:] == ["content conv2_2", "content conv4_2"]
    assert len(layouts["fig6"]["labels"][0]) == 7
    assert all(s.title.endswith(f"(paper Fig. {s.name[3:]})") for s in sheets)


def test_fig4_jobs_carry_the_grid_parameters(paper_dir):
    sheets, _ = plan_sheets(Roles.from_dir(paper_dir), Config(size=36), only=["fig4"])
    job = sheets[0].rows[1][2].job
    assert job.config.content_weight / job.config.style_weight == pytest.approx(1e-4)
    assert [n for n, _ in job.config.style_layers] == ["conv1_1", "conv2_1", "conv3_1"]


def test_a_missing_image_skips_only_its_figures(tmp_path):
    folder = tmp_path / "only_style"
    folder.mkdir()
    Image.fromarray(picture(40, 30)).save(folder / "starry_night.jpg")
    Image.fromarray(picture(40, 30, 1)).save(folder / "golden_gate.jpg")
    Image.fromarray(picture(40, 30, 2)).save(folder / "hoovertowernight.jpg")
    calls = []
    made, skipped = make_figures(
        Roles.from_dir(folder), tmp_path / "out", Config(size=32), engine=fake_engine(calls)
    )
    assert [s.name for s in made] == ["fig7", "inversion", "lecture"]
    assert skipped[0] == "fig1: skipped, no content image"
    assert len(skipped) == 5 and (tmp_path / "out" / "fig7.png").exists()


def test_figures_are_drawn_indexed_and_fig6_reports_repeats(paper_dir, tmp_path):
    calls, out = [], tmp_path / "figs"
    made, _ = make_figures(
        Roles.from_dir(paper_dir), out, Config(size=36, iterations=2), PAPER, fake_engine(calls)
    )
    for sheet in made:
        img = Image.open(out / f"{sheet.name}.png")
        assert img.width >= 36 * len(sheet.rows[0]) and img.height >= 27 * len(sheet.rows)
    index = (out / "index.html").read_text()
    assert index.count("<img src=") == 5 and "paper Fig. 4" in index and "α=1 β=100000" in index
    notes = [c.note for c in next(s for s in made if s.name == "fig6").rows[0]]
    assert notes[:4] == ["first of its kind", "identical", "first of its kind", "identical"]
    assert notes[5].startswith("mean diff") and notes[6].startswith("mean diff")
    kinds = {j.kind for j in calls}
    assert kinds == {"stylize", "content", "texture"}
    # fig1, fig3 … fig6; identical jobs run once, across sheets too (the panel cache)
    assert len(calls) == len(set(calls)) == 40


@requires_weights
def test_content_reconstruction_loss_falls_by_a_large_factor(images):
    steps = []
    img = nst.reconstruct_content(
        images["content"],
        Config(size=48, iterations=40, seed=0, content_layers=(("conv2_2", 1.0),)),
        steps.append,
    )
    losses = [e.content_loss for e in steps if isinstance(e, Step)]
    assert losses[-1] < losses[0] / 50
    assert img.shape == (3, 32, 48)


@requires_weights
def test_texture_synthesis_loss_falls_and_takes_any_size(images):
    steps = []
    img = nst.synthesize_texture(
        images["style"],
        Config.from_dict(
            {"size": 40, "iterations": 40, "seed": 0, "style_layers": "conv1_1,conv2_1,conv3_1"}
        ),
        steps.append,
        size=(24, 56),
    )
    losses = [e.style_loss for e in steps if isinstance(e, Step)]
    assert losses[-1] < losses[0] / 20
    assert img.shape == (3, 24, 56)
    assert all(e.content_loss == 0 for e in steps if isinstance(e, Step))
    assert all("content_loss" not in e.to_record() for e in steps if isinstance(e, Step))


@requires_weights
def test_reconstruct_and_figures_commands(images, paper_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "rc.png"
    r = runner.invoke(
        app,
        [
            "reconstruct",
            "content",
            str(images["content"]),
            "-o",
            str(out),
            "--layer",
            "relu3_2",
            "--size",
            "32",
            "--iterations",
            "3",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    out2 = tmp_path / "rs.png"
    r = runner.invoke(
        app,
        [
            "reconstruct",
            "style",
            str(images["style"]),
            "-o",
            str(out2),
            "--size",
            "40x20",
            "--iterations",
            "3",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out2).size == (40, 20)
    r = runner.invoke(
        app, ["reconstruct", "style", str(images["style"]), "-o", str(out2), "--size", "big"]
    )
    assert r.exit_code == 2
    assert "nst: error: size: 'big' is neither N nor WxH (e.g. 512 or 640x480)" in r.output
    figs = tmp_path / "figs"
    r = runner.invoke(
        app,
        [
            "figures",
            "--images",
            str(paper_dir),
            "--out",
            str(figs),
            "--size",
            "32",
            "--iterations",
            "2",
            "--only",
            "fig5",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (figs / "fig5.png").exists() and (figs / "index.html").exists()
    assert "1 sheet(s), 0 skipped" in r.output
    r = runner.invoke(app, ["figures", "--only", "fig9"])
    assert r.exit_code == 2 and "unknown figure fig9" in r.output
