"""Tiled evaluation: the same objective and gradient as the untiled one, term by term."""

from __future__ import annotations

import pytest
import torch

from nst import runtime
from nst.errors import ConfigError, TermError
from nst.layers import parse_layer_weights
from nst.model.vgg import build_extractor
from nst.objective import Objective, StyleSource, TVLoss, add_content, add_style
from nst.objective.tiling import Tiling, halo_for, stride_for
from nst.optimize import minimize
from nst.video.temporal import TemporalLoss
from tests.conftest import gen, tiny_weights

SHALLOW = "conv1_1:0.3,conv2_1:0.3,conv3_1:0.4"
MRF = "conv3_1,conv4_1"
DEEP = "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1"


def image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=gen(seed)) * 255


def extractor(dtype: torch.dtype = torch.float32):
    return build_extractor(tiny_weights(), ["pool5"], dtype=dtype)


def build(
    tile: int | None,
    size: tuple[int, int],
    style_layers: str,
    content_layer: str,
    *,
    loss: str = "gram",
    guided: bool = False,
    blend: bool = False,
    temporal: bool = False,
    dtype: torch.dtype = torch.float32,
    real: bool = False,
    match: str = "coverage",
    reach: int | None = None,
) -> Objective:
    """An objective with every kind of term; tiled with cores of ``tile`` px if given
    (the halo grown by ``reach`` strides: by default mrf's one position); on the real
    (normalized) weights with ``real``; ``match``: mrf's patch matching."""
    net = runtime.load_network(None, "avg", True, "cpu", dtype) if real else extractor(dtype)
    objective = Objective(net)
    layers = parse_layer_weights(style_layers)
    if tile is not None:
        names = [n for n, _ in layers] + [content_layer]
        reach = (1 if loss == "mrf" else 0) if reach is None else reach
        objective.tiling = Tiling.for_layers(names, tile, reach=reach)
    h, w = size
    add_content(objective, image(h, w, 1), parse_layer_weights(content_layer), 1.0)
    sources = [StyleSource(image(40, 56, 2), 1.0)]
    if blend:
        sources.append(StyleSource(image(48, 36, 3), 0.5))
    if guided:
        left = torch.zeros(1, 1, h, w)
        left[..., : w // 3] = 1.0
        left[..., w // 3 : w // 2] = 0.5  # a soft edge
        sources = [StyleSource(image(40, 56, 2), 1.0, left),
                   StyleSource(image(48, 36, 3), 1.0, 1.0 - left)]  # fmt: skip
    add_style(objective, sources, layers, 1e3, size, loss=loss, options={"patch_match": match})
    objective.add_term("tv", TVLoss(), factor=10.0)
    if temporal:
        weights = torch.rand(1, 1, h, w, generator=gen(5))
        objective.add_term("temporal", TemporalLoss(image(h, w, 4), weights), factor=0.1)
    return objective


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    scale = float(b.abs().max())
    assert float((a - b).abs().max()) <= rel * max(scale, 1e-30), (
        float((a - b).abs().max()),
        scale,
    )


CASES = [
    # (size, style layers, content layer, tile, options)
    ((64, 80), SHALLOW, "conv3_2", 32, {}),
    ((64, 80), SHALLOW, "conv3_2", 32, {"guided": True}),
    ((72, 64), SHALLOW, "conv2_2", 40, {"blend": True, "temporal": True}),
    ((64, 80), SHALLOW, "conv3_2", 32, {"loss": "w2"}),
    ((64, 72), SHALLOW, "conv3_2", 32, {"loss": "w2", "guided": True}),
    ((128, 112), DEEP, "conv4_2", 48, {"blend": True}),
    ((112, 128), DEEP, "conv4_2", 32, {"guided": True, "temporal": True}),
    # mrf: patches centred in each core, reading one position beyond it (the content at
    # conv3_2, so the halo is conv4_1's radius plus its stride); coverage gathers first
    ((64, 80), MRF, "conv3_2", 32, {"loss": "mrf"}),
    ((64, 80), MRF, "conv3_2", 32, {"loss": "mrf", "match": "nearest"}),
    ((80, 64), MRF, "conv3_2", 32, {"loss": "mrf", "guided": True}),
]


def evaluate(tile, size, style, content, options, dtype, real=False):
    objective = build(tile, size, style, content, dtype=dtype, real=real, **options)
    if tile is not None:
        assert objective.tiling is not None and len(objective.tiling.windows(size)) >= 4
    total, grad, values = objective.value_and_grad(image(*size, seed=9).to(dtype))
    return total.double(), grad.double(), values


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) / max(float(b.abs().max()), 1e-30)


@pytest.mark.parametrize(("size", "style", "content", "tile", "options"), CASES)
def test_tiled_and_untiled_give_the_same_terms_and_gradient(size, style, content, tile, options):
    """Against the exact (float64, untiled) evaluation: tiled in float64 agrees to 1e-7
    (the targets are kept in float32); tiled in float32 is within 1e-5 on the total, the
    gradient and every term, or, where float32 features cannot give 1e-5 (a w2 value is
    a difference of large traces: the untiled float32 value is itself ~3e-4 away), no
    further than twice the untiled float32 evaluation."""
    exact = evaluate(None, size, style, content, options, torch.float64)
    plain32 = evaluate(None, size, style, content, options, torch.float32)
    tiled64 = evaluate(tile, size, style, content, options, torch.float64)
    tiled32 = evaluate(tile, size, style, content, options, torch.float32)
    total_u, grad_u, values_u = exact
    assert float(grad_u.abs().max()) > 0
    for name in values_u:
        assert relative(tiled64[2][name], values_u[name]) <= 1e-7, name
        bound = max(1e-5, 2 * relative(plain32[2][name], values_u[name]))
        assert relative(tiled32[2][name], values_u[name]) <= bound, name
    assert tiled32[2].names == values_u.names
    for total, grad, _ in (tiled64, tiled32):
        close(total, total_u, 1e-5)
        close(grad, grad_u, 1e-5)
    close(tiled64[1], grad_u, 1e-7)


def test_on_the_real_weights_tiled_and_untiled_agree():
    size, style, content, tile = (96, 128), DEEP, "conv4_2", 48
    options = {"guided": True}
    exact = evaluate(None, size, style, content, options, torch.float64, real=True)
    tiled = evaluate(tile, size, style, content, options, torch.float32, real=True)
    plain = evaluate(None, size, style, content, options, torch.float32, real=True)
    for name in exact[2]:
        bound = max(1e-5, 2 * relative(plain[2][name], exact[2][name]))
        assert relative(tiled[2][name], exact[2][name]) <= bound, name
    close(tiled[0], exact[0], 1e-5)
    # the real network's float32 gradient is itself ~1e-4 from the exact one
    plain_error = relative(plain[1], exact[1])
    assert relative(tiled[1], exact[1]) <= max(1e-5, 2 * plain_error), plain_error


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_first_lbfgs_step_of_a_tiled_run_matches_the_untiled_one(dtype):
    size = (64, 80)
    x0 = image(*size, seed=11).to(dtype)
    runs = []
    for tile in (None, 32):
        objective = build(tile, size, SHALLOW, "conv3_2", guided=True, dtype=dtype)
        runs.append(minimize(objective, x0, iterations=1))
    plain, tiled = runs
    assert plain.iterations == tiled.iterations == 1
    assert plain.evaluations == tiled.evaluations
    # the step (up to ~1 pixel unit) to 1e-5 of itself, but float32 pixels near 255 round
    # to 1.5e-5: so the float32 images are compared to 1e-7 of their scale
    step = plain.x - x0
    assert float(step.abs().max()) > 0.1
    if dtype == torch.float64:
        close(tiled.x - x0, step, rel=1e-9)
    close(tiled.x, plain.x, rel=1e-7)
    # the loss after the step against the exact (float64, untiled) value at that point
    # (the float32 untiled total is itself ~1e-5 away: it sums ~1e8 in float32)
    exact = build(None, size, SHALLOW, "conv3_2", guided=True, dtype=torch.float64)
    value, _, _ = exact.value_and_grad(plain.x.double())
    assert tiled.loss == pytest.approx(float(value), rel=1e-5)


def test_mrf_in_tiles_needs_the_halo_grown_by_its_patch_and_the_gathered_best_cosines():
    """Without the halo's extra stride, the positions around a core are computed from
    zero padding and the value moves; without the whole image's best cosines, each tile
    would cover the painting on its own (its matches differ)."""
    size, x = (64, 80), image(64, 80, seed=9)
    _, _, exact = build(None, size, MRF, "conv3_2", loss="mrf").value_and_grad(x)
    _, _, short = build(32, size, MRF, "conv3_2", loss="mrf", reach=0).value_and_grad(x)
    assert relative(short["style:conv4_1"], exact["style:conv4_1"]) > 1e-3  # tiled: 1e-5
    objective = build(32, size, MRF, "conv3_2", loss="mrf")
    term = objective.modules_["style__conv3_1"]
    assert term.local and term.gathers and term.margin == 1
    assert build(32, size, MRF, "conv3_2", loss="mrf", match="nearest").modules_[
        "style__conv3_1"].gathers is False  # fmt: skip
    target = term[0]
    feats = objective.extractor(x, ["conv3_1"])["conv3_1"]
    (whole,) = target.gather(feats)
    halves = [target.gather(feats[..., :9, :])[0], target.gather(feats[..., 7:, :])[0]]
    # the patches centred on rows 1..7 and 8..14: all of them, in two parts
    assert torch.allclose(torch.maximum(*halves), whole, rtol=0, atol=1e-6)
    alone = target.match(feats[..., :9, :])  # the top half covering the painting by itself
    assert not torch.equal(alone, target.match(feats[..., :9, :], best=whole))


def test_the_halo_is_the_receptive_radius_rounded_to_the_stride():
    # conv1_1 sees one pixel around; conv2_1: 1 + 1 (conv1_1, conv1_2) at stride 1, then
    # the pooling and one convolution at stride 2 -> 2 + 2 + 1 ... checked by hand:
    assert halo_for(["conv1_1"]) == 1
    assert halo_for(["conv1_2"]) == 2
    assert halo_for(["conv2_1"]) == 4  # 2 (block 1) + 2 (conv2_1 at stride 2) - 0
    assert stride_for(["conv2_1"]) == 2
    assert stride_for(["conv5_1", "conv1_1"]) == 16
    t = Tiling.for_layers(["conv5_1"], 100)
    assert (t.tile, t.stride) == (112, 16) and t.halo % 16 == 0 and t.halo >= halo_for(["conv5_1"])
    # conv4_1's radius is 30 px; a term reading one position beyond the core needs 8 more
    assert halo_for(["conv4_1"]) == 30 and halo_for(["conv4_1"], reach=1) == 38
    assert Tiling.for_layers(["conv3_1", "conv4_1"], 32, reach=1).halo == 40


def test_cores_cover_the_image_once_and_are_aligned():
    t = Tiling(tile=48, halo=32, stride=16)
    size = (100, 130)
    cover = torch.zeros(size)
    for win in t.windows(size):
        top, bottom, left, right = win.core
        assert top % 16 == 0 and left % 16 == 0
        cover[top:bottom, left:right] += 1
        pt, pb, pl, pr = win.padded
        assert pt == max(0, top - 32) and pb == min(100, bottom + 32)
        assert pl == max(0, left - 32) and pr == min(130, right + 32)
    assert bool((cover == 1).all())


def test_swd_and_a_module_without_tile_stats_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="style-loss swd cannot be evaluated in tiles"):
        build(32, (64, 64), SHALLOW, "conv3_2", loss="swd")
    objective = Objective(extractor())
    objective.tiling = Tiling.for_layers(["conv2_1"], 32)

    class Mean(torch.nn.Module):
        def forward(self, f):
            return f.mean()

    objective.add_term("mine", Mean(), layer="conv2_1")
    with pytest.raises(TermError, match="'mine' cannot be evaluated in tiles"):
        objective.value_and_grad(image(32, 32, 0))


@pytest.mark.parametrize("tile", [None, 32])
def test_all_weights_zero_gives_a_zero_gradient_not_an_error(tile):
    objective = build(tile, (64, 64), SHALLOW, "conv3_2")
    for term in objective.terms:
        term.factor = 0.0
    total, grad, values = objective.value_and_grad(image(64, 64, 0))
    assert float(total) == 0.0 and float(grad.abs().max()) == 0.0
    assert all(v > 0 for v in values.floats().values())  # still measured, for the record
