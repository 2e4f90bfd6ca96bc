"""Saliency, gradient ascent and top patches on the tiny network (with a tiny classifier)."""

import pytest
import torch

import nst
from nst.events import Finished, Started, Step
from nst.explain import VisualizeConfig, display, overlay, rules
from nst.explain.ascent import gaussian_blur
from nst.layers import receptive_box
from tests.conftest import gen


@pytest.mark.parametrize("method", rules.METHODS)
def test_saliency_lands_on_the_images_own_grid(images, tiny_network, method):
    s = nst.saliency(images["content"], "conv3_1:2", method, size=24)
    assert s.gradient.shape == (3, 32, 48) and s.working_size == (16, 24)
    assert s.method == method and s.target.label == "conv3_1:2"
    assert torch.isfinite(s.gradient).all()
    pic = display(s.gradient, "rgb")
    assert pic.shape == (3, 32, 48) and float(pic.min()) >= 0 and float(pic.max()) <= 1
    assert overlay(s.gradient, nst.load(images["content"])).shape == (3, 32, 48)


def test_class_saliency_needs_and_uses_a_classifier(images, tiny_network, tmp_path):
    with pytest.raises(nst.ConfigError, match="class scores need a classifier"):
        nst.saliency(images["content"], "class:tabby")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    s = nst.saliency(images["content"], "class:281", "gradient", weights=str(weights))
    assert s.target.label == "class 281 (tabby)" and float(s.gradient.abs().max()) > 0


def test_gradient_ascent_raises_the_activation_and_repeats(tiny_network):
    events = []
    cfg = VisualizeConfig(size=32, iterations=25, seed=3, jitter=2)
    a = nst.visualize("conv3_1:1", cfg, events.append)
    b = nst.visualize("conv3_1:1", cfg)
    assert torch.equal(a.image, b.image)
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iteration for s in steps] == list(range(26))
    assert steps[-1].terms["activation"] > 2 * steps[0].terms["activation"]
    assert steps[0].factors["activation"] == -1.0
    other = nst.visualize("conv3_1:1", cfg.replace(seed=4, start="noise"))
    assert not torch.equal(a.image, other.image)


def test_the_regularizers_do_what_they_say(tiny_network):
    x = torch.rand(1, 3, 16, 16, generator=gen(5))
    blurred = gaussian_blur(x, 1.0)
    assert blurred.shape == x.shape and float(blurred.std()) < float(x.std())
    assert torch.allclose(blurred.mean(), x.mean(), rtol=0.05)
    clipped = nst.visualize("conv2_1:0", VisualizeConfig(size=32, iterations=5, clip_value=50))
    pixels = clipped.image - torch.tensor([123.68, 116.779, 103.939]).view(3, 1, 1) / 255
    assert float((pixels.abs().sum(0) < 1e-6).float().mean()) >= 0.4  # half the pixels zeroed


def test_top_patches_are_receptive_fields_in_order(images, tiny_network):
    found = nst.top_patches("conv3_1:2", [images["content"], images["style"]], k=3, size=32)
    assert 1 <= len(found) <= 3
    assert [p.value for p in found] == sorted((p.value for p in found), reverse=True)
    for p in found:
        top, left, bottom, right = p.box
        assert p.image.shape[1:] == (bottom - top + 1, right - left + 1)
    with pytest.raises(nst.ConfigError, match="top patches take a channel"):
        nst.top_patches("conv3_1:2@1,1", [images["content"]])
    assert receptive_box("conv3_1", 0, 0, (32, 32))[0] == 0


def test_an_auto_target_is_the_channel_that_responds_most(images, tiny_network):
    from nst.explain.network import network
    from nst.explain.saliency import working_size
    from nst.planning import load

    s = nst.saliency(images["content"], "conv3_1:auto", "guided", size=32)
    assert s.target.kind == "channel" and s.target.layer == "conv3_1"
    img = load(images["content"])
    wh = working_size(img.shape[1], img.shape[2], 32)
    net = network()
    sums = [float(net.value(img[None] * 255, nst.explain.targets.parse(f"conv3_1:{c}")).sum())
            for c in range(net.channels["conv3_1"])]  # fmt: skip
    assert wh == s.working_size and s.target.index == max(range(len(sums)), key=sums.__getitem__)
    cam = nst.explain.attribution.gradcam(images["content"], "conv3_1:auto", size=32)
    assert cam.target == s.target  # every method resolves it the same way
