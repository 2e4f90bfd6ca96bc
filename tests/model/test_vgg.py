import pytest
import torch

from nst.errors import ConfigError
from nst.model.vgg import VGG19Features, build_extractor, rectifies_apart
from nst.model.weights import CAFFE, TORCHVISION, VGGWeights
from tests.conftest import assert_close, tiny_weights


def test_truncated_after_the_deepest_layer_in_use():
    ex = build_extractor(tiny_weights(), ["conv1_1", "conv3_1", "relu2_1".replace("relu", "conv")])
    assert ex.plan[-1] == "conv3_1"
    assert set(ex.convs) == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"}
    with pytest.raises(ConfigError) as exc:
        ex(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(7)), ["conv4_1"])
    assert str(exc.value) == "layer conv4_1 lies beyond this extractor (last: conv3_1)"


def test_named_outputs_are_rectified_and_pools_halve():
    ex = build_extractor(tiny_weights(), ["pool2"])
    out = ex(
        torch.rand(1, 3, 32, 24, generator=torch.Generator().manual_seed(6)) * 255,
        ["conv1_1", "pool1", "conv2_2", "pool2"],
    )
    assert out["conv1_1"].shape == (1, 4, 32, 24)
    assert out["pool1"].shape == (1, 4, 16, 12)
    assert out["pool2"].shape == (1, 6, 8, 6)
    assert (out["conv2_2"] >= 0).all()


def test_weights_are_frozen():
    ex = build_extractor(tiny_weights(), ["conv5_4"])
    assert not any(p.requires_grad for p in ex.parameters())


def test_caffe_input_convention_is_bgr_minus_mean_pixel():
    ex = VGG19Features(tiny_weights(), last_layer="conv1_1")
    img = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)  # RGB
    out = ex.preprocess(img).flatten().tolist()
    assert out == pytest.approx([30 - 103.939, 20 - 116.779, 10 - 123.68])


def test_torchvision_input_convention_is_rgb_01_standardized():
    w = tiny_weights()
    ex = VGG19Features(VGGWeights(w.convs, TORCHVISION, "t", "t"), last_layer="conv1_1")
    img = torch.tensor([255.0, 0.0, 127.5]).view(1, 3, 1, 1)
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    assert ex.preprocess(img).flatten().tolist() == pytest.approx(expected, rel=1e-5)
    assert CAFFE.bgr and not TORCHVISION.bgr


def test_channels_last_gives_the_same_features():
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(3)) * 255
    a = build_extractor(tiny_weights(), ["conv3_1"], channels_last=True)(x, ["conv3_1"])
    b = build_extractor(tiny_weights(), ["conv3_1"], channels_last=False)(x, ["conv3_1"])
    # the two layouts sum in another order: equal up to float32 rounding of the values' scale
    assert_close(a["conv3_1"], b["conv3_1"], rel=1e-5, what="conv3_1")


def test_truncated_shares_the_weights_and_stops_early():
    full = build_extractor(tiny_weights(), ["pool5"])
    cut = full.truncated("conv2_1")
    assert cut.last_layer == "conv2_1" and full.last_layer == "pool5"
    assert cut.convs["conv1_1"].weight is full.convs["conv1_1"].weight
    assert "conv2_2" not in cut.convs and "conv5_4" in full.convs
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 255
    assert torch.equal(cut(x, ["conv2_1"])["conv2_1"], full(x, ["conv2_1"])["conv2_1"])
    with pytest.raises(ConfigError, match="conv3_1 lies beyond this network"):
        cut.truncated("conv3_1")


def test_max_and_average_pooling_differ():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 255
    avg = build_extractor(tiny_weights(), ["conv2_1"], pooling="avg")(x, ["conv2_1"])["conv2_1"]
    mx = build_extractor(tiny_weights(), ["conv2_1"], pooling="max")(x, ["conv2_1"])["conv2_1"]
    assert not torch.allclose(avg, mx)
    with pytest.raises(ConfigError):
        VGG19Features(tiny_weights(), pooling="sum")


def _rectified_in_place(ex: VGG19Features, x: torch.Tensor, **kw: bool) -> tuple[bool, ...]:
    """Per convolution to conv2_1: whether its output tensor was rectified in place (no
    negative value left in it after the pass)."""
    outs: list[torch.Tensor] = []
    hooks = [c.register_forward_hook(lambda m, i, o: outs.append(o)) for c in ex.convs.values()]
    try:
        ex(x, ["conv2_1"], **kw)
    finally:
        for h in hooks:
            h.remove()
    return tuple(bool((o >= 0).all()) for o in outs)


def test_the_rectifier_writes_a_new_tensor_only_in_bf16_while_autograd_records():
    ex = build_extractor(tiny_weights(), ["conv2_1"], dtype=torch.bfloat16)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8)) * 255
    recorded = x.clone().requires_grad_(True)
    # a convolution's output keeps its negative values when a new tensor is rectified
    assert _rectified_in_place(ex, recorded) == (False, False, False)
    fp32 = build_extractor(tiny_weights(), ["conv2_1"])
    assert _rectified_in_place(fp32, recorded) == (True, True, True)  # as fast in place
    assert _rectified_in_place(ex, recorded, lean=True) == (True, True, True)
    assert _rectified_in_place(ex, x) == (True, True, True)  # no autograd: in place
    with torch.no_grad():
        assert _rectified_in_place(ex, recorded) == (True, True, True)
    # the same features and gradients either way
    a = ex(recorded, ["conv2_1"])["conv2_1"]
    b = ex(recorded, ["conv2_1"], lean=True)["conv2_1"]
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad(a.square().sum(), recorded)
    (gb,) = torch.autograd.grad(b.square().sum(), recorded)
    assert torch.equal(ga, gb) and ga.abs().sum() > 0


def test_only_bf16_on_the_cpu_rectifies_apart():
    assert rectifies_apart(torch.bfloat16, "cpu")
    assert not rectifies_apart(torch.float32, "cpu")
    assert not rectifies_apart(torch.float16, torch.device("cpu"))
    assert not rectifies_apart(torch.bfloat16, "cuda")
