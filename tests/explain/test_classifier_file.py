"""Class targets offline: a state_dict in the format of torchvision's vgg19-dcbb9e9d.pth
(its keys and shapes, seeded random weights) runs class saliency and class visualization
end to end through the command line; a file named like a torchvision download must have
the hash its name gives."""

import hashlib

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nst import runtime
from nst.cli import app
from nst.layers import BLOCKS
from nst.model.weights import CLASSIFIER_INDICES, CLASSIFIER_SHAPES, TORCHVISION_CONV_INDICES
from tests.conftest import gen

runner = CliRunner()


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """torchvision's keys and shapes (features.N and classifier.0/3/6), He-scaled noise."""
    g = gen(19)
    data = {}
    channels = [c for n, c in BLOCKS for _ in range(n)]
    in_ch = 3
    for idx, out_ch in zip(TORCHVISION_CONV_INDICES, channels):
        data[f"features.{idx}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * (
            2.0 / (9 * in_ch)) ** 0.5  # fmt: skip
        data[f"features.{idx}.bias"] = torch.zeros(out_ch)
        in_ch = out_ch
    for idx, (o, i) in zip(CLASSIFIER_INDICES, CLASSIFIER_SHAPES):
        data[f"classifier.{idx}.weight"] = torch.randn(o, i, generator=g) * (2.0 / i) ** 0.5
        data[f"classifier.{idx}.bias"] = torch.zeros(o)
    path = tmp_path_factory.mktemp("weights") / "vgg19-random.pth"
    torch.save(data, path)
    runtime.clear_cache()
    yield path
    runtime.clear_cache()


def test_class_saliency_and_visualization_from_a_torchvision_format_file(vgg19_file, tmp_path):
    out = tmp_path / "cam.png"
    r = runner.invoke(app, ["saliency", "builtin:chelsea", "--target", "class:tabby", "--weights",
                            str(vgg19_file), "--method", "gradcam", "--size", "224", "-o",
                            str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("nst: class 281 (tabby) by gradcam@conv5_4: value ")
    assert Image.open(out).size == (451, 300)
    out = tmp_path / "v.png"
    r = runner.invoke(app, ["visualize", "class:283", "--weights", str(vgg19_file), "--size",
                            "224", "--iterations", "2", "-o", str(out), "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (224, 224)


def test_a_file_named_like_a_torchvision_download_must_have_its_hash(tmp_path):
    bad = tmp_path / "vgg19-dcbb9e9d.pth"
    bad.write_bytes(b"half a download" * 100)
    got = hashlib.sha256(bad.read_bytes()).hexdigest()[:8]
    r = runner.invoke(app, ["saliency", "builtin:chelsea", "--target", "class:tabby", "--weights",
                            str(bad), "-o", str(tmp_path / "s.png")])  # fmt: skip
    assert r.exit_code == 2
    assert r.stderr == (
        f"nst: error: {bad}: its SHA-256 starts {got}, not dcbb9e9d as torchvision's file name "
        "says (a download cut short or another file; download it again)\n"
    )
    good = tmp_path / f"vgg19-{got}.pth"  # the name matches: the hash passes, the file is junk
    good.write_bytes(bad.read_bytes())
    r = runner.invoke(app, ["saliency", "builtin:chelsea", "--target", "class:tabby", "--weights",
                            str(good), "-o", str(tmp_path / "s.png")])  # fmt: skip
    assert r.exit_code == 2
    assert "not a PyTorch weights file" in r.stderr
