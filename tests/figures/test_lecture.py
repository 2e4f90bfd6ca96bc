"""The inversion and lecture sheets: their layout and jobs, from a fast fake engine."""

import torch

from nst.config import Config
from nst.figures import FIGURES, Roles, make_figures, plan_sheets, sheet_layout
from nst.figures.lecture import SaliencySpec
from tests.figures.test_paper import fake_engine, paper_dir  # noqa: F401 (fixture)


def test_inversion_has_a_row_without_and_one_with_the_prior(paper_dir):  # noqa: F811
    (sheet,), _ = plan_sheets(Roles.from_dir(paper_dir), Config(size=36, iterations=2),
                              only=["inversion"])  # fmt: skip
    layout = sheet_layout(sheet, (36, 27))
    assert layout["row_labels"] == ["no prior", "TV + alpha-norm"]
    assert layout["labels"][0][1:] == [f"conv{b}_1" for b in range(1, 6)]
    bare = [c.job.config for c in sheet.rows[0] if c.job]
    prior = [c.job.config for c in sheet.rows[1] if c.job]
    assert all(c.tv_weight == 0 and c.alpha_weight == 0 for c in bare)
    assert all(c.tv_weight == 10 and c.alpha_weight == 1 and c.alpha_norm == 6 for c in prior)
    assert [c.content_layers for c in prior] == [((f"conv{b}_1", 1.0),) for b in range(1, 6)]


def test_the_lecture_sheet_follows_the_lecture(paper_dir, tmp_path):  # noqa: F811
    calls = []
    base = fake_engine(calls)

    def engine(job):
        image = base(job)
        return (image, "conv5_1:7@1,2") if job.kind == "saliency" else image

    made, _ = make_figures(
        Roles.from_dir(paper_dir),
        tmp_path / "figs",
        Config(size=36, iterations=2),
        only=["lecture"],
        engine=engine,
    )
    (sheet,) = made
    assert sheet.row_labels == ["saliency, neuron 1", "saliency, neuron 2", "gradient ascent",
                                "ascent (Lucid)", "top patches", "inversion (prior)",
                                "texture (Gram)"]  # fmt: skip
    assert [c.job.spec.lucid for c in sheet.rows[3]] == [True] * 5
    assert [c.label for c in sheet.rows[0]] == ["photo", "gradient", "deconvnet", "guided"]
    assert [c.note for c in sheet.rows[0][1:]] == ["conv5_1:7@1,2"] * 3
    assert [c.label for c in sheet.rows[2]] == ["conv1_1:5", "conv2_1:10", "conv3_1:20",
                                                "conv4_1:12", "conv5_1:30"]  # fmt: skip
    kinds = {c.job.kind for row in sheet.rows for c in row if c.job}
    assert kinds == {"saliency", "ascent", "patch", "content", "texture"}
    assert (tmp_path / "figs" / "lecture.png").exists()
    assert "lecture" in FIGURES and "inversion" in FIGURES
    assert calls[0].spec == SaliencySpec("conv5_1", 0, "gradient", 36)
    assert torch.is_tensor(base(calls[0]))
    from nst.figures.sheets import RUNNERS

    assert set(RUNNERS) == {"stylize", "content", "texture", "saliency", "ascent", "patch"}


def test_every_lecture_panel_takes_the_size_and_iterations(paper_dir):  # noqa: F811
    from nst.figures.lecture import AscentSpec, PatchSpec

    (sheet,), _ = plan_sheets(Roles.from_dir(paper_dir), Config(size=64, iterations=20),
                              only=["lecture"])  # fmt: skip
    jobs = [c.job for row in sheet.rows for c in row if c.job]
    for job in jobs:
        if job.kind == "ascent":
            assert isinstance(job.spec, AscentSpec)
            assert (job.spec.size, job.spec.iterations) == (64, 20)
        elif job.kind == "patch":
            assert isinstance(job.spec, PatchSpec) and job.spec.size == 64
        elif job.kind == "saliency":
            assert job.spec.size == 64
        else:
            assert (job.config.size, job.config.iterations) == (64, 20)


def test_panels_are_cached_and_an_interruption_writes_the_sheet_so_far(paper_dir, tmp_path):  # noqa: F811
    import pytest

    from nst.figures.sheets import SheetInterrupted

    calls = []
    base = fake_engine(calls)
    stop_after = [7]

    def engine(job):
        if len(calls) == stop_after[0]:
            raise KeyboardInterrupt
        return base(job)

    out = tmp_path / "figs"
    roles, config = Roles.from_dir(paper_dir), Config(size=36, iterations=2)
    with pytest.raises(SheetInterrupted) as stopped:
        make_figures(roles, out, config, only=["lecture"], engine=engine)
    assert len(stopped.value.results) == 7
    assert (out / "lecture.png").is_file() and (out / "index.html").is_file()
    assert len(list((out / ".panels").glob("*.png"))) == 7
    first = list(calls)
    calls.clear()
    stop_after[0] = 10**6
    made, _ = make_figures(roles, out, config, only=["lecture"], engine=engine)
    jobs = {c.job for row in made[0].rows for c in row if c.job}
    assert len(calls) == len(jobs) - 7  # the 7 finished panels came from the cache
    assert not set(calls) & set(first)
    calls.clear()
    make_figures(roles, out, config.replace(iterations=3), only=["lecture"], engine=engine)
    assert len(calls) == len(jobs)  # other settings: nothing reused


def test_the_lecture_sheet_uses_the_given_photo_and_keeps_its_labels_whole(paper_dir):  # noqa: F811
    from PIL import Image, ImageDraw

    from nst.figures.sheets import _font, _wrap

    roles = Roles.from_dir(paper_dir)
    (sheet,), _ = plan_sheets(roles, Config(size=36, iterations=2), only=["lecture"])
    sources = {c.job.source for row in sheet.rows[:2] for c in row if c.job}
    assert sources == {roles.content} and sheet.rows[0][0].source == roles.content
    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), _font(12)
    assert _wrap(draw, "conv5_1:197@12,13", font, 80) == ["conv5_1:197", "@12,13"]
    assert _wrap(draw, "conv5_1:7", font, 200) == ["conv5_1:7"]
