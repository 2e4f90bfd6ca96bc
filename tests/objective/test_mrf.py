"""``--style-loss mrf``: nearest style patches against a brute-force search, its value and
gradient, the banded matching, the style patches' stride, and its options."""

from __future__ import annotations

import pytest
import torch

from nst.config import MRF_STYLE_LAYERS, PAPER_STYLE_LAYERS, Config
from nst.errors import ConfigError
from nst.objective import mrf
from nst.objective.mrf import MRFTarget, patches, style_patches
from tests.conftest import gen


def feats(c: int, h: int, w: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(1, c, h, w, generator=gen(seed), dtype=torch.float64) * scale


def brute_force(x: torch.Tensor, style: torch.Tensor, weights: torch.Tensor) -> float:
    """Each 3x3 patch's squared distance to the style patch of highest normalized
    cross-correlation with it, one by one."""
    c, h, w = x.shape[1:]
    total = 0.0
    k = 0
    for i in range(h - 2):
        for j in range(w - 2):
            p = x[0, :, i : i + 3, j : j + 3].reshape(-1)  # unfold's order: channel, row, column
            ncc = [float(p @ s / (p.norm() * s.norm())) for s in style]
            best = style[max(range(len(style)), key=ncc.__getitem__)]
            total += float(weights[k]) * float((p - best).pow(2).sum())
            k += 1
    return total / (float(weights.sum()) * 9 * c)


def test_the_value_is_the_mean_distance_to_the_nearest_style_patch():
    x, s = feats(4, 6, 7, 1), feats(4, 5, 6, 2, scale=1.5)
    rows = style_patches([(s, 1.0)])
    assert rows.shape == (3 * 4, 36)
    target = MRFTarget(rows.double())
    expected = brute_force(x, rows.double(), torch.ones(20, dtype=torch.float64))
    assert target(x).item() == pytest.approx(expected, rel=1e-6)
    guide = torch.rand(1, 1, 6, 7, generator=gen(3), dtype=torch.float64)
    guided = MRFTarget(rows.double(), guide)
    centres = guide[0, 0, 1:5, 1:6].reshape(-1)  # each patch weighed by its centre
    assert guided(x).item() == pytest.approx(brute_force(x, rows.double(), centres), rel=1e-6)


def test_a_style_patch_is_its_own_nearest_and_the_matching_goes_by_bands(monkeypatch):
    s = feats(3, 7, 8, 4)
    target = MRFTarget(style_patches([(s, 1.0)]))
    assert target.match(s).tolist() == list(range(5 * 6))
    assert target(s).item() == pytest.approx(0.0, abs=1e-12)
    x = feats(3, 9, 6, 5)
    whole = target.match(x)
    monkeypatch.setattr(mrf, "MATCH_ROWS", 1)  # one row of patches per product
    assert torch.equal(target.match(x), whole)
    p, st = patches(x.float()), target.style
    ncc = (p @ st.T) / (p.norm(dim=1)[:, None] * st.norm(dim=1)[None, :])
    assert torch.equal(whole, ncc.argmax(dim=1))


def test_the_gradient_is_right():
    s = feats(3, 5, 5, 6)
    target = MRFTarget(style_patches([(s, 1.0)]).double(), feats(1, 5, 6, 8))
    x = feats(3, 5, 6, 7).requires_grad_(True)
    assert torch.autograd.gradcheck(target, (x,), eps=1e-6, atol=1e-6)


def test_a_blend_pools_the_patches_and_many_are_taken_on_a_stride(monkeypatch):
    a, b = feats(2, 4, 4, 9), feats(2, 5, 3, 10)
    rows = style_patches([(a, 0.3), (b, 0.7)])
    assert torch.equal(rows, torch.cat([patches(a.float()), patches(b.float())]))
    monkeypatch.setattr(mrf, "MOST_STYLE_PATCHES", 2)  # 7 patches: every 4th
    assert torch.equal(style_patches([(a, 0.3), (b, 0.7)]), rows[::4])
    with pytest.raises(ConfigError, match="smaller than a 3x3 patch"):
        style_patches([(feats(2, 2, 9, 11), 1.0)])


def test_its_own_style_layers_and_adam_unless_given_and_no_layer_shallower_than_conv3():
    mrf_run = Config(style_loss="mrf")
    assert (mrf_run.style_layers, mrf_run.optimizer) == (MRF_STYLE_LAYERS, "adam")
    paper = Config.from_dict({"preset": "paper", "style_loss": "mrf"})
    assert (paper.style_layers, paper.optimizer) == (MRF_STYLE_LAYERS, "lbfgs")  # the preset's
    given = Config.from_dict({"style_loss": "mrf", "style_layers": "conv4_1"})
    assert (given.style_layers, given.optimizer) == ((("conv4_1", 1.0),), "adam")
    assert Config().replace(style_loss="mrf").style_layers == MRF_STYLE_LAYERS
    w2 = Config(style_loss="w2")
    assert (w2.style_layers, w2.optimizer) == (PAPER_STYLE_LAYERS, "lbfgs")
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"style_loss": "mrf", "style_layers": "conv4_1,relu2_1"})
    assert str(err.value) == (
        "style-layers: style-loss mrf works at conv3_1 or deeper (got conv2_1: too many "
        "patches to match); e.g. conv3_1:0.5,conv4_1:0.5"
    )
    Config(style_loss="mrf", mask="m.png", regions=(("#ff0000", "1"),))  # masks are taken


def test_a_picture_too_small_for_a_patch_at_conv4_1_is_refused_before_work(images):
    from nst import planning

    with pytest.raises(ConfigError, match=r"need at least 24 px on each side"):
        planning.plan_stylize(images["content"], images["style"],
                              Config(size=30, style_loss="mrf"))  # fmt: skip
