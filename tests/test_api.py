"""The Python API on the real weights at tiny sizes (the rest runs on the tiny network)."""

import pytest
import torch

import nst
from nst import planning, runtime
from nst.config import Config
from nst.events import Step
from tests.conftest import requires_weights
from tests.test_planning import two_region_mask

pytestmark = requires_weights


def test_stylize_on_the_real_weights_lowers_every_style_term(images):
    events = []
    img = nst.stylize(images["content"], images["style"], Config(size=40, iterations=8, seed=1,
                      precision="fp32", init="noise"), events.append)  # fmt: skip
    assert img.shape == (3, 27, 40)
    steps = [e for e in events if isinstance(e, Step)]
    assert steps[-1].loss < steps[0].loss / 3
    for name in (f"style:conv{b}_1" for b in range(1, 6)):
        assert steps[-1].terms[name] < steps[0].terms[name], name


def test_masks_put_each_style_in_its_region(images, tmp_path):
    from nst.imageio import resize_longest
    from nst.objective import gram_matrix, guided_gram_matrix, style_layer_loss

    mask = two_region_mask(tmp_path / "mask.png")
    cfg = Config(size=48, iterations=40, seed=0, init="noise", mask=str(mask), style_weight=1e5,
                 regions=(("#ff0000", "1"), ("#0000ff", "2")), precision="fp32")  # fmt: skip
    styles = ["builtin:swirls", "builtin:mosaic"]
    img = nst.stylize(images["content"], styles, cfg)
    ex = runtime.network(None, "avg", True, ["conv2_1"])
    with torch.no_grad():
        feats = ex(img.unsqueeze(0) * 255, ["conv2_1"])["conv2_1"]
        targets = [
            gram_matrix(
                ex(resize_longest(planning.load(s), 48)[None] * 255, ["conv2_1"])["conv2_1"]
            )
            for s in styles
        ]
    h, w = feats.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    right = 1 - left
    own_left = style_layer_loss(guided_gram_matrix(feats, left), targets[0])
    other_left = style_layer_loss(guided_gram_matrix(feats, left), targets[1])
    own_right = style_layer_loss(guided_gram_matrix(feats, right), targets[1])
    other_right = style_layer_loss(guided_gram_matrix(feats, right), targets[0])
    assert own_left < other_left / 2 and own_right < other_right / 2


def test_bf16_terms_are_within_two_percent_of_fp32(images):
    """The same image (the content) measured in fp32 and bf16: every term within 2%."""
    first = {}
    for p in ("fp32", "bf16"):
        events = []
        cfg = Config(size=48, iterations=1, init="content", precision=p)
        nst.stylize(images["content"], images["style"], cfg, events.append)
        first[p] = next(e for e in events if isinstance(e, Step)).terms
    for name, value in first["fp32"].items():
        if name.startswith("style"):
            assert first["bf16"][name] == pytest.approx(value, rel=0.02), name
