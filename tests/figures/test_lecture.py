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
                                "top patches", "inversion (prior)", "texture (Gram)"]  # fmt: skip
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
