"""Grad-CAM, Grad-CAM++, integrated gradients and SmoothGrad on the tiny network, checked
against hand computations and their defining properties."""

import pytest
import torch
import torch.nn.functional as F

from nst.errors import ConfigError
from nst.explain.attribution import baseline, cam_layer, gradcam, integrated_gradients, smoothgrad
from nst.explain.network import network
from nst.explain.saliency import saliency
from nst.explain.targets import parse
from tests.conftest import gen, picture


@pytest.fixture
def photo():
    return torch.from_numpy(picture(48, 32, 0)).permute(2, 0, 1).float() / 255.0


@pytest.mark.parametrize("target", ["conv3_1:2", "conv4_1:5@1,1", "conv2_2:0"])
@pytest.mark.parametrize(("base", "steps"), [("black", 64), ("blur", 64), ("noise", 4096)])
def test_integrated_gradients_are_complete(tiny_network, photo, target, base, steps):
    """The attributions sum to f(x) - f(baseline) within 1% at 64 steps (from noise the
    path crosses so many ReLU boundaries that the quadrature needs thousands)."""
    net = network()
    ig = integrated_gradients(photo, target, steps=steps, base=base, net=net, size=48,
                              batch=64)  # fmt: skip
    t = parse(target)
    with torch.no_grad():
        fx = float(net.value(photo[None] * 255, t))
        f0 = float(net.value(baseline(photo, base)[None] * 255, t))
    assert ig.value == pytest.approx(fx - f0, rel=1e-4)
    assert float(ig.gradient.sum()) == pytest.approx(fx - f0, rel=0.01, abs=1e-3 * abs(fx))
    assert ig.gradient.shape == photo.shape


def test_gradcam_is_the_hand_computation(tiny_network, photo):
    net = network()
    t = parse("conv4_1:3")
    cam = gradcam(photo, t, layer="conv3_2", net=net, size=48)
    x = photo[None] * 255
    feats = net.features(x.requires_grad_(True), ["conv3_2", "conv4_1"])
    a = feats["conv3_2"]
    y = feats["conv4_1"][0, 3].sum()
    (g,) = torch.autograd.grad(y, a)
    weights = g.mean(dim=(2, 3))[0]  # one per channel
    by_hand = torch.relu(sum(weights[k] * a[0, k] for k in range(a.shape[1])))
    up = F.interpolate(by_hand[None, None].detach(), size=(32, 48), mode="bilinear",
                       align_corners=False)[0]  # fmt: skip
    assert cam.gradient.shape == (1, 32, 48)
    torch.testing.assert_close(cam.gradient, up, rtol=1e-4, atol=1e-6 * float(up.abs().max()))
    assert cam.method == "gradcam@conv3_2"


def test_gradcam_plus_plus_is_the_closed_form(tiny_network, photo):
    net = network()
    cam = gradcam(photo, "conv4_1:3", layer="conv3_2", plus=True, net=net, size=48)
    feats = net.features((photo[None] * 255).requires_grad_(True), ["conv3_2", "conv4_1"])
    a = feats["conv3_2"]
    (g,) = torch.autograd.grad(feats["conv4_1"][0, 3].sum(), a)
    a, g = a.detach()[0], g[0]
    w = []
    for k in range(a.shape[0]):  # channel by channel, position by position
        num = g[k] ** 2
        den = 2 * g[k] ** 2 + a[k].sum() * g[k] ** 3
        alpha = torch.where(den != 0, num / torch.where(den != 0, den, 1.0), 0.0)
        w.append((alpha * torch.relu(g[k])).sum())
    by_hand = torch.relu(sum(w[k] * a[k] for k in range(a.shape[0])))
    up = F.interpolate(by_hand[None, None], size=(32, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(cam.gradient, up[0], rtol=1e-4, atol=1e-6 * float(up.abs().max()))


def test_gradcam_at_the_targets_own_layer_is_its_map(tiny_network, photo):
    """For a channel at its own layer the weights pick that channel (its gradient is 1 at
    every position): the map is its activation, upsampled."""
    net = network()
    cam = gradcam(photo, "conv3_1:2", net=net, size=48)
    a = net.features(photo[None] * 255, ["conv3_1"])["conv3_1"][0, 2]
    up = F.interpolate(a[None, None], size=(32, 48), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(cam.gradient, up, rtol=1e-4, atol=1e-6 * float(up.abs().max()))


def test_gradcam_refuses_a_layer_after_the_target():
    with pytest.raises(ConfigError, match="layer conv5_1 lies after the target's layer conv3_1"):
        cam_layer(parse("conv3_1:2"), "conv5_1")
    assert cam_layer(parse("class:3"), None) == "conv5_4"


@pytest.mark.parametrize("rule", ["gradient", "deconvnet", "guided"])
def test_smoothgrad_with_one_sample_and_no_noise_is_its_rule(tiny_network, photo, rule):
    net = network()
    s = smoothgrad(photo, "conv3_1:2", rule=rule, samples=1, noise=0.0, net=net, size=48)
    r = saliency(photo, "conv3_1:2", rule, net=net, size=48)
    torch.testing.assert_close(s.gradient, r.gradient)
    assert s.value == pytest.approx(r.value)


def test_smoothgrad_is_seeded_and_averages(tiny_network, photo):
    net = network()
    a = smoothgrad(photo, "conv3_1:2", samples=4, noise=0.2, seed=3, net=net, size=48)
    b = smoothgrad(photo, "conv3_1:2", samples=4, noise=0.2, seed=3, net=net, size=48)
    c = smoothgrad(photo, "conv3_1:2", samples=4, noise=0.2, seed=4, net=net, size=48)
    torch.testing.assert_close(a.gradient, b.gradient)
    assert not torch.allclose(a.gradient, c.gradient)


def test_bad_attribution_settings_are_one_line(tiny_network, photo):
    with pytest.raises(ConfigError, match=r"steps must be between 1 and 4096 \(got 0\)"):
        integrated_gradients(photo, "conv3_1:2", steps=0)
    with pytest.raises(ConfigError, match="baseline must be one of black, blur, noise"):
        integrated_gradients(photo, "conv3_1:2", base="grey")
    with pytest.raises(ConfigError, match=r"samples must be between 1 and 1024 \(got 0\)"):
        smoothgrad(photo, "conv3_1:2", samples=0)
    with pytest.raises(ConfigError, match="rule must be one of gradient, deconvnet, guided"):
        smoothgrad(photo, "conv3_1:2", rule="lrp")
    _ = gen(0)


@pytest.mark.parametrize("method", ["guided", "gradcam++", "integrated", "smoothgrad"])
def test_attribute_takes_its_settings_as_stylize_takes_a_config(tiny_network, photo, method):
    """``attribute(image, SaliencyConfig(...))`` is the method's own function with the
    config's settings (the command line and the Explore page call it)."""
    from nst.explain import SaliencyConfig, attribute

    config = SaliencyConfig(target="conv3_1:2", method=method, size=32, steps=8, samples=3,
                            noise=0.1, seed=4)  # fmt: skip
    got = attribute(photo, config)
    direct = {
        "guided": lambda: saliency(photo, "conv3_1:2", "guided", size=32),
        "gradcam++": lambda: gradcam(photo, "conv3_1:2", plus=True, size=32),
        "integrated": lambda: integrated_gradients(photo, "conv3_1:2", steps=8, seed=4, size=32),
        "smoothgrad": lambda: smoothgrad(photo, "conv3_1:2", samples=3, noise=0.1, seed=4, size=32),
    }[method]()
    assert got.method == direct.method and got.working_size == direct.working_size
    assert torch.equal(got.gradient, direct.gradient) and got.value == direct.value
