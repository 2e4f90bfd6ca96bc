"""``--style-loss mrf``: nearest style patches against a brute-force search, its value and
gradient, the banded matching, the style patches' stride, the style's turned and scaled
views, and its options."""

from __future__ import annotations

import math

import pytest
import torch

from nst.config import MRF_STYLE_LAYERS, PAPER_STYLE_LAYERS, Config
from nst.errors import ConfigError
from nst.model.vgg import build_extractor
from nst.objective import Objective, StyleSource, add_style, mrf
from nst.objective.mrf import MRFTarget, patches, scaled, style_patches, style_views, turned
from tests.conftest import gen, tiny_weights


def feats(c: int, h: int, w: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(1, c, h, w, generator=gen(seed), dtype=torch.float64) * scale


def picture_patches(x: torch.Tensor) -> list[torch.Tensor]:
    """The 3x3 patches of (1, C, H, W) one by one, row by row (unfold's order within a
    patch: channel, row, column)."""
    h, w = x.shape[2:]
    return [x[0, :, i : i + 3, j : j + 3].reshape(-1) for i in range(h - 2) for j in range(w - 2)]


def brute_force(x: torch.Tensor, style: torch.Tensor, weights: torch.Tensor,
                coverage: bool = False) -> float:  # fmt: skip
    """Each 3x3 patch's squared distance to its style patch, one by one: the one of
    highest normalized cross-correlation with it, or (``coverage``) of least cosine
    distance over COVERAGE_EPS plus that style patch's least cosine distance to any of
    the picture's patches."""
    ps = picture_patches(x)
    cos = [[float(p @ s / (p.norm() * s.norm())) for s in style] for p in ps]
    inside = [i for i in range(len(ps)) if weights[i] > 0]  # only these cover a style patch
    near = [min(1 - cos[i][j] for i in inside) for j in range(len(style))]
    total = 0.0
    for k, p in enumerate(ps):
        if coverage:
            best = min(range(len(style)),
                       key=lambda j: (1 - cos[k][j]) / (mrf.COVERAGE_EPS + near[j]))  # fmt: skip
        else:
            best = max(range(len(style)), key=cos[k].__getitem__)
        total += float(weights[k]) * float((p - style[best]).pow(2).sum())
    return total / (float(weights.sum()) * 9 * x.shape[1])


def test_the_value_is_the_mean_distance_to_the_nearest_style_patch():
    x, s = feats(4, 6, 7, 1), feats(4, 5, 6, 2, scale=1.5)
    rows = style_patches([(s, 1.0)])
    assert rows.shape == (3 * 4, 36)
    target = MRFTarget(rows.double(), matching="nearest")
    expected = brute_force(x, rows.double(), torch.ones(20, dtype=torch.float64))
    assert target(x).item() == pytest.approx(expected, rel=1e-6)
    guide = torch.rand(1, 1, 6, 7, generator=gen(3), dtype=torch.float64)
    guided = MRFTarget(rows.double(), guide, "nearest")
    centres = guide[0, 0, 1:5, 1:6].reshape(-1)  # each patch weighed by its centre
    assert guided(x).item() == pytest.approx(brute_force(x, rows.double(), centres), rel=1e-6)


def test_coverage_matching_divides_by_how_near_the_picture_already_is_to_a_style_patch(
    monkeypatch,
):
    x, s = feats(4, 7, 8, 21), feats(4, 6, 6, 22, scale=1.5)
    rows = style_patches([(s, 1.0)]).double()
    ones = torch.ones(30, dtype=torch.float64)
    target = MRFTarget(rows)  # coverage: the default
    covered = brute_force(x, rows, ones, coverage=True)
    assert target(x).item() == pytest.approx(covered, rel=1e-6)
    whole, nearest = target.match(x), MRFTarget(rows, matching="nearest").match(x)
    assert (whole != nearest).sum() >= 3  # not the nearest patches: more of the style's
    assert len(set(whole.tolist())) > len(set(nearest.tolist()))
    # a guide: patches outside its region (weight 0) neither count in the value nor
    # cover a style patch for the others
    guide = (torch.rand(1, 1, 7, 8, generator=gen(23), dtype=torch.float64) > 0.4).double()
    centres = guide[0, 0, 1:6, 1:7].reshape(-1)
    assert 0 < centres.sum() < 30
    guided = MRFTarget(rows, guide)
    assert guided(x).item() == pytest.approx(brute_force(x, rows, centres, True), rel=1e-6)
    inner = guided.match(x)[centres > 0]
    monkeypatch.setattr(mrf, "MATCH_ROWS", 1)  # one row of patches per product, the
    assert torch.equal(target.match(x), whole)  # cosines kept between the passes ...
    assert torch.equal(guided.match(x)[centres > 0], inner)
    monkeypatch.setattr(mrf, "KEEP_COSINES", 0)  # ... or computed again
    assert torch.equal(target.match(x), whole)
    assert torch.equal(guided.match(x)[centres > 0], inner)


def test_a_style_patch_is_its_own_nearest_and_the_matching_goes_by_bands(monkeypatch):
    s = feats(3, 7, 8, 4)
    target = MRFTarget(style_patches([(s, 1.0)]), matching="nearest")
    assert target.match(s).tolist() == list(range(5 * 6))
    assert MRFTarget(style_patches([(s, 1.0)])).match(s).tolist() == list(range(5 * 6))
    assert target(s).item() == pytest.approx(0.0, abs=1e-12)
    x = feats(3, 9, 6, 5)
    whole = target.match(x)
    monkeypatch.setattr(mrf, "MATCH_ROWS", 1)  # one row of patches per product
    assert torch.equal(target.match(x), whole)
    p, st = patches(x.float()), target.style
    ncc = (p @ st.T) / (p.norm(dim=1)[:, None] * st.norm(dim=1)[None, :])
    assert torch.equal(whole, ncc.argmax(dim=1))


@pytest.mark.parametrize("rows", [1, 7, 12, 1 << 20])
def test_the_matched_patches_are_folded_a_band_at_a_time_as_all_at_once(monkeypatch, rows):
    """T, the weighted matched patches added onto the grid, folded ``MATCH_ROWS`` patches
    at a time (one row of 6, a band of 1 row, of 2, everything) equals one fold of them
    all; the value does not move either."""
    style = style_patches([(feats(3, 6, 7, 14), 1.0)]).double()
    target = MRFTarget(style, matching="nearest")
    index = torch.randint(0, len(style), (7 * 6,), generator=gen(15))
    weights = torch.rand(7 * 6, generator=gen(16), dtype=torch.float64)
    cols = (style[index] * weights[:, None]).T.unsqueeze(0)
    expected = torch.nn.functional.fold(cols, (9, 8), 3)
    x = feats(3, 9, 8, 17)
    before = target(x)
    monkeypatch.setattr(mrf, "MATCH_ROWS", rows)
    assert torch.allclose(target.folded(index, weights, (9, 8)), expected, rtol=1e-12, atol=0)
    assert target(x).item() == pytest.approx(before.item(), rel=1e-12)


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
    # larger maps, strides that cross from one map into the next at every phase: the kept
    # patches copied one by one are those of the whole unfolded blend on the stride
    c, d, e = feats(3, 9, 12, 11), feats(3, 7, 8, 12), feats(3, 3, 3, 13)
    pooled = torch.cat([patches(x.float()) for x in (c, d, e)])  # 70 + 30 + 1
    for most in (1, 2, 7, 33, 50, 101, 500):
        monkeypatch.setattr(mrf, "MOST_STYLE_PATCHES", most)
        step = math.ceil(101 / most)
        assert torch.equal(style_patches([(c, 1.0), (d, 1.0), (e, 1.0)]), pooled[::step]), most
    with pytest.raises(ConfigError, match="smaller than a 3x3 patch"):
        style_patches([(feats(2, 2, 9, 11), 1.0)])


def test_a_turned_view_is_the_image_turned_about_its_centre_and_cut_inside_it():
    x = torch.rand(1, 3, 9, 9, generator=gen(20)) * 255
    assert torch.equal(turned(x, 0.0), x)
    assert torch.allclose(turned(x, 90.0), torch.rot90(x, 1, (2, 3)), atol=1e-3)  # square
    # a ramp across (its value: the column) turned by 15 degrees: each output position
    # (u, v) from the centre reads column cx + cos(a) u - sin(a) v (torch's bicubic, a =
    # -0.75, is off a ramp by < 0.05 of a step between pixels); 40 x 60 keeps 0.7385 of
    # its sides (by hand: the largest 2:3 rectangle inside the turned one is bound by its
    # height, 40 / (60 sin a + 40 cos a))
    ramp = torch.arange(60, dtype=torch.float32).expand(1, 3, 40, 60).clone()
    out = turned(ramp, 15.0)
    assert out.shape[-2:] == (29, 44)
    a = math.radians(15.0)
    v = (torch.arange(29.0) - 14)[:, None]
    u = (torch.arange(44.0) - 21.5)[None, :]
    expected = 29.5 + math.cos(a) * u - math.sin(a) * v
    inner = (slice(3, -3), slice(3, -3))
    assert torch.allclose(out[0, 0][inner], expected[inner], atol=0.05)


def test_the_style_views_are_two_turns_and_two_sizes():
    x = torch.rand(1, 3, 40, 60, generator=gen(21)) * 255
    views = style_views(x)
    assert [tuple(v.shape[-2:]) for v in views] == [(29, 44), (29, 44), (36, 54), (44, 66)]
    assert torch.equal(views[1], turned(x, 15.0)) and torch.equal(views[3], scaled(x, 1.1))
    assert torch.equal(views[0], turned(x, -15.0)) and torch.equal(views[2], scaled(x, 0.9))
    flat = torch.full((1, 3, 40, 60), 77.0)  # a flat image stays flat at every view
    assert all(torch.allclose(v, torch.full_like(v, 77.0), atol=1e-3) for v in style_views(flat))


@pytest.mark.parametrize("views", [True, False])
def test_the_views_patches_join_the_styles_unless_turned_off(views):
    ex = build_extractor(tiny_weights(), ["conv4_1"], channels_last=False)
    style = torch.rand(1, 3, 40, 60, generator=gen(22)) * 255
    obj = Objective(ex)
    add_style(obj, [StyleSource(style)], MRF_STYLE_LAYERS, 1.0, (32, 32), "mrf", views=views)
    images = [style, *style_views(style)] if views else [style]
    for name in ("conv3_1", "conv4_1"):
        with torch.no_grad():
            rows = torch.cat([patches(ex(img, [name])[name].float()) for img in images])
        (term,) = [t for t in obj.terms if t.name == f"style:{name}"]
        (target,) = term.module
        assert torch.equal(target.style, rows)
        assert target.matching == "coverage"


def test_the_style_images_features_are_held_one_image_at_a_time_while_encoding(monkeypatch):
    # a style image and its four views: each image's features are reduced to its kept
    # patches before the next image's are computed, and the target is the one the whole
    # features give (a stride that crosses from one image into the next)
    import weakref

    ex = build_extractor(tiny_weights(), ["conv4_1"], channels_last=False)
    style = torch.rand(1, 3, 40, 60, generator=gen(23)) * 255
    obj = Objective(ex)
    monkeypatch.setattr(mrf, "MOST_STYLE_PATCHES", 37)
    computed = obj.features
    alive: list[list[weakref.ref[torch.Tensor]]] = []

    def features(x: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        assert all(r() is None for refs in alive for r in refs), "an earlier image's features"
        out = computed(x, layers)
        alive.append([weakref.ref(t) for t in out.values()])
        return out

    monkeypatch.setattr(obj, "features", features)
    add_style(obj, [StyleSource(style)], MRF_STYLE_LAYERS, 1.0, (32, 32), "mrf")
    assert len(alive) == 5
    images = [style, *style_views(style)]
    for name in ("conv3_1", "conv4_1"):
        with torch.no_grad():
            whole = [(ex(img, [name])[name], 1.0) for img in images]
        (term,) = [t for t in obj.terms if t.name == f"style:{name}"]
        (target,) = term.module
        assert torch.equal(target.style, style_patches(whole))
        assert len(target.style) <= 37


def test_the_patch_match_option_reaches_the_targets(images, tiny_network):
    from nst import planning, runtime
    from nst.execution import build_objective

    config = Config.from_dict({"style_loss": "mrf", "patch_match": "nearest", "size": 48})
    assert config.patch_match == "nearest" and Config(style_loss="mrf").patch_match == "coverage"
    for run, expected in (
        (config, "nearest"),
        (config.replace(patch_match="coverage"), "coverage"),
    ):
        plan = planning.plan_stylize(images["content"], images["style"], run)
        net = runtime.network(None, "avg", True, plan.layers, torch.device("cpu"), None)
        objective = build_objective(plan, 0, net)
        for name in ("conv3_1", "conv4_1"):
            (target,) = objective.modules_[f"style__{name}"]
            assert target.matching == expected
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"style_loss": "mrf", "patch_match": "closest"})
    assert str(err.value) == "patch-match must be one of coverage, nearest (got 'closest')"


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
    assert Config.from_dict({"style_loss": "mrf", "style_views": "false"}).style_views is False


def test_a_picture_too_small_for_a_patch_at_conv4_1_is_refused_before_work(images):
    from nst import planning

    with pytest.raises(ConfigError, match=r"need at least 24 px on each side"):
        planning.plan_stylize(images["content"], images["style"],
                              Config(size=30, style_loss="mrf"))  # fmt: skip


def test_a_stage_in_tiles_is_planned_with_the_halo_grown_by_the_patch(images, tiny_network):
    """mrf is no longer refused where a stage needs tiles: the plan reads one position
    beyond a core, the stage's tiling has one more stride of halo than gram's would, and
    the tiled evaluation gives the untiled value."""
    from nst import planning, runtime
    from nst.execution import build_objective, start_image

    tiled = Config.from_dict({"style_loss": "mrf", "size": 64, "tile": 32})
    plan = planning.plan_stylize(images["content"], images["style"], tiled)
    gram = planning.plan_stylize(
        images["content"], images["style"], tiled.replace(style_loss="gram")
    )
    assert (plan.reach, gram.reach) == (1, 0) and plan.stages[0].tile == 32
    net = runtime.network(None, "avg", True, plan.layers, torch.device("cpu"), torch.float32)
    objective = build_objective(plan, 0, net)
    assert objective.tiling is not None and objective.tiling.halo == 48  # conv4_2's 38 + 8
    x = start_image(plan, (plan.stages[0].height, plan.stages[0].width))
    x = x + torch.rand(x.shape, generator=gen(7)) * 20
    total, _, _ = objective.value_and_grad(x)
    objective.tiling = None
    whole, _, _ = objective.value_and_grad(x)
    assert float(total) == pytest.approx(float(whole), rel=1e-5)
