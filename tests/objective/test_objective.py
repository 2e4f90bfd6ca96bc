"""The objective's weighting against independent formulations."""

import pytest
import torch

from nst.config import PAPER_STYLE_LAYERS
from nst.model.vgg import build_extractor
from nst.objective import Objective, StyleSource, TVLoss, add_content, add_style
from nst.objective.statistics import gram_units as style_units
from tests.conftest import gen, tiny_weights

STYLE = PAPER_STYLE_LAYERS
CONTENT = (("conv4_2", 1.0),)


def _setup(weighting, alpha=1.0, beta=1e3, style_size=(24, 20)):
    torch.manual_seed(0)
    ex = build_extractor(tiny_weights(), ["conv5_1"], channels_last=False)
    content = torch.rand(1, 3, 32, 32, generator=gen(11)) * 255
    style = torch.rand(1, 3, *style_size, generator=gen(12)) * 255
    obj = Objective(ex, weighting)
    add_content(obj, content, CONTENT, alpha)
    add_style(obj, [StyleSource(style)], STYLE, beta, (32, 32))
    obj.add_term("tv", TVLoss(), factor=0.0)
    x = torch.rand(1, 3, 32, 32, generator=gen(13)) * 255
    return ex, obj, content, style, x


def _feats(ex, img, layers):
    with torch.no_grad():
        return {k: v.double() for k, v in ex(img, layers).items()}


def _gram(f):
    n = f.shape[1]
    m = f.shape[2] * f.shape[3]
    fm = f.reshape(n, m)
    return fm @ fm.T / m


def test_reference_weighting_is_the_authors_released_objective():
    ex, obj, content, style, x = _setup("reference", alpha=1.0, beta=1e3)
    total, _ = obj(x)
    layers = [n for n, _ in STYLE]
    fx = _feats(ex, x, [*layers, "conv4_2"])
    fp = _feats(ex, content, ["conv4_2"])
    fa = _feats(ex, style, layers)
    # MSE content loss + 1e3 * sum_l 1/N_l^2 * MSE(G/M, A/M)
    expected = torch.mean((fx["conv4_2"] - fp["conv4_2"]) ** 2)
    for name in layers:
        n = fx[name].shape[1]
        expected += 1e3 / n**2 * torch.mean((_gram(fx[name]) - _gram(fa[name])) ** 2)
    assert total.item() == pytest.approx(expected.item(), rel=1e-4)


def test_paper_weighting_is_alpha_content_plus_beta_style_and_terms_are_exact():
    ex, obj, content, style, x = _setup("paper", alpha=2.0, beta=3.0)
    total, terms = obj(x)
    assert obj.term_names == ("content:conv4_2", *(f"style:{n}" for n, _ in STYLE), "tv")
    assert list(terms) == list(obj.term_names)  # a mapping by name
    layers = [n for n, _ in STYLE]
    fx = _feats(ex, x, [*layers, "conv4_2"])
    fp = _feats(ex, content, ["conv4_2"])
    fa = _feats(ex, style, layers)
    l_content = 0.5 * ((fx["conv4_2"] - fp["conv4_2"]) ** 2).sum()
    e = [((_gram(fx[n]) - _gram(fa[n])) ** 2).sum() / (4 * fx[n].shape[1] ** 2) for n in layers]
    assert terms["content:conv4_2"].item() == pytest.approx(l_content.item(), rel=1e-4)
    for name, e_l in zip(layers, e):
        assert terms[f"style:{name}"].item() == pytest.approx(e_l.item(), rel=1e-4)
    expected = 2.0 * l_content + 3.0 * sum(0.2 * v for v in e)
    assert total.item() == pytest.approx(expected.item(), rel=1e-4)


def test_blended_styles_use_the_weighted_gram_and_blend_1_0_equals_one_style():
    ex, obj, _, style, x = _setup("paper")
    other = torch.rand(1, 3, 28, 28, generator=gen(14)) * 255
    single, _ = obj(x)
    obj.remove_terms("style")
    add_style(obj, [StyleSource(style, 1.0), StyleSource(other, 0.0)], STYLE, 1e3, (32, 32))
    assert obj(x)[0].item() == pytest.approx(single.item(), rel=1e-6)
    obj.remove_terms("style")
    add_style(obj, [StyleSource(style, 0.7), StyleSource(other, 0.3)], STYLE, 1e3, (32, 32))
    _, terms = obj(x)
    fx = _feats(ex, x, ["conv2_1"])["conv2_1"]
    a = 0.7 * _gram(_feats(ex, style, ["conv2_1"])["conv2_1"]) + 0.3 * _gram(
        _feats(ex, other, ["conv2_1"])["conv2_1"]
    )
    e = ((_gram(fx) - a) ** 2).sum() / (4 * fx.shape[1] ** 2)
    assert terms["style:conv2_1"].item() == pytest.approx(e.item(), rel=1e-4)


def test_tv_term_and_gradient_flow():
    _, obj, _, _, x = _setup("reference")
    obj.remove_terms("tv")
    obj.add_term("tv", TVLoss(), factor=5.0)
    x.requires_grad_(True)
    total, terms = obj(x)
    total.backward()
    assert terms["tv"].item() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_texture_synthesis_has_no_content_term():
    ex = build_extractor(tiny_weights(), ["conv3_1"], channels_last=False)
    obj = Objective(ex)
    source = StyleSource(torch.rand(1, 3, 16, 16, generator=gen(15)) * 255)
    add_style(obj, [source], (("conv1_1", 0.5), ("conv3_1", 0.5)), 1.0, (16, 16))
    obj.add_term("tv", TVLoss(), factor=0.0)
    assert obj.term_names == ("style:conv1_1", "style:conv3_1", "tv")
    n = source.image.new_zeros(1, 3, 16, 16)
    channels = ex(n, ["conv3_1"])["conv3_1"].shape[1]
    assert obj.term_factors["style:conv3_1"] == pytest.approx(0.5 * style_units(obj, channels))
    total, terms = obj(torch.rand(1, 3, 16, 16, generator=gen(16)) * 255)
    assert total.item() > 0 and len(terms) == 3


def test_calibrated_weighting_is_reference_with_ten_times_the_style():
    _, ref, _, _, x = _setup("reference")
    _, cal, _, _, _ = _setup("calibrated")
    _, content_only, _, _, _ = _setup("reference", beta=0.0)
    c = content_only(x)[0].item()
    s_ref = ref(x)[0].item() - c
    s_cal = cal(x)[0].item() - c
    assert s_cal == pytest.approx(10 * s_ref, rel=1e-4)


class _Vector(torch.nn.Module):
    def forward(self, features):
        return features.float().mean(dim=(2, 3))


def test_add_term_refuses_what_cannot_be_a_term():
    from nst.errors import TermError

    ex = build_extractor(tiny_weights(), ["conv2_1"], channels_last=False)
    obj = Objective(ex)
    obj.add_term("tv", TVLoss())
    refusals = [
        (("tv", TVLoss()), {}, "a loss term named 'tv' exists already"),
        (("", TVLoss()), {}, "loss term name '': use group or group:key"),
        (("bad name", TVLoss()), {}, "loss term name 'bad name'"),
        (("f", lambda x: x.sum()), {}, "loss term 'f': the module must be a torch.nn.Module"),
        (("deep", TVLoss()), {"layer": "conv5_1"}, "loss term 'deep' reads conv5_1, beyond"),
        (("w", TVLoss()), {"factor": float("nan")}, "loss term 'w': factor must be finite"),
        (("w", TVLoss()), {"weight": "1"}, "loss term 'w': weight must be a number"),
    ]
    for args, kwargs, message in refusals:
        with pytest.raises(TermError, match=message.replace("(", r"\(")):
            obj.add_term(*args, **kwargs)
    assert obj.term_names == ("tv",)
    obj.add_term("vector", _Vector(), layer="conv1_1")
    with pytest.raises(TermError, match=r"loss term 'vector' returned \(1, 4\), not a scalar"):
        obj(torch.rand(1, 3, 16, 16, generator=gen(17)) * 255)
