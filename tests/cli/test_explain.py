"""nst saliency, visualize and top-patches from the command line (tiny network)."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.cli import app

runner = CliRunner()


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_saliency_writes_the_picture_and_the_raw_gradient(images, tmp_path, tiny_network):
    out, raw = tmp_path / "s.png", tmp_path / "s.npy"
    r = nst("saliency", images["content"], "-o", out, "--target", "conv3_1:2@1,2", "--size", 24,
            "--raw", raw, "--method", "deconvnet")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (48, 32)
    arr = np.load(raw)
    assert arr.shape == (32, 48, 3) and arr.dtype == np.float32
    assert r.stderr.startswith("nst: conv3_1:2@1,2 by deconvnet: value ")
    r = nst("saliency", images["content"], "-o", tmp_path / "o.png", "--target", "conv3_1:2",
            "--overlay")  # fmt: skip
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("conv9_1:2", [], "unknown layer 'conv9_1'"),
        ("conv3_1:99", [], "channel 99 is out of range (conv3_1 has channels 0-7)"),
        ("conv3_1:1@40,1", ["--size", "32"], "neuron (40, 1) is outside the conv3_1 map"),
        ("class:tabby", [], "class scores need a classifier; pass --weights"),
        ("class:unicorn", [], "no ImageNet class is called 'unicorn'"),
        (
            "conv3_1:1",
            ["--method", "lrp"],
            "method must be one of gradient, deconvnet, guided, "
            "gradcam, gradcam++, integrated, smoothgrad",
        ),
    ],
)
def test_bad_targets_are_one_line_exit_2(images, tmp_path, tiny_network, target, extra, message):
    out = tmp_path / "s.png"
    r = nst("saliency", images["content"], "-o", out, "--target", target, *extra)
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("nst: error: ") and message in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("method", "extra", "said"),
    [
        ("gradcam", ["--layer", "conv2_2"], "conv3_1:2 by gradcam@conv2_2: value "),
        ("gradcam++", [], "conv3_1:2 by gradcam++@conv3_1: value "),
        ("integrated", ["--steps", "8", "--baseline", "blur"],
         "conv3_1:2 by integrated(blur, 8 steps): value "),
        ("smoothgrad", ["--samples", "3", "--rule", "guided"],
         "conv3_1:2 by smoothgrad(guided, 3 samples): value "),
    ],
)  # fmt: skip
def test_attribution_methods_from_the_command_line(images, tmp_path, tiny_network, method,
                                                   extra, said):  # fmt: skip
    out, raw = tmp_path / "a.png", tmp_path / "a.npy"
    r = nst("saliency", images["content"], "-o", out, "--target", "conv3_1:2", "--size", 32,
            "--method", method, "--raw", raw, *extra)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("nst: " + said)
    assert Image.open(out).size == (48, 32)
    channels = 1 if method.startswith("gradcam") else 3
    assert np.load(raw).shape == (32, 48, channels)


def test_class_targets_with_a_classifier(images, tmp_path, tiny_network):
    weights = tmp_path / "vgg.pth"
    weights.write_bytes(b"tiny")
    r = nst("saliency", images["content"], "-o", tmp_path / "s.png", "--target", "class:tabby",
            "--weights", weights, "--method", "gradient")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "class 281 (tabby) by gradient" in r.stderr
    r = nst("visualize", "class:283", "-o", tmp_path / "v.png", "--weights", weights, "--size",
            32, "--iterations", 3, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output


def test_visualize_one_target_and_a_grid(tmp_path, tiny_network):
    r = nst("visualize", "conv2_1:3", "-o", tmp_path / "v.png", "--size", 32, "--iterations", 4,
            "--l2", "0.1", "--blur-every", 2, "--clip-grad", 10, "--jitter", 1, "--save-every",
            2, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "v.png").size == (32, 32)
    assert sorted(p.name for p in tmp_path.glob("v_*.png")) == ["v_00000.png", "v_00002.png",
                                                                  "v_00004.png"]  # fmt: skip
    r = nst("visualize", "--grid", "conv2_1:0-3", "-o", tmp_path / "g.png", "--size", 32,
            "--iterations", 2)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stderr.count("mean activation") == 4
    r = nst("visualize", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "give a TARGET or a --grid" in r.stderr
    r = nst("visualize", "conv2_1:1", "-o", tmp_path / "x.png", "--lr", "-1")
    assert r.exit_code == 2 and "lr must be > 0" in r.stderr


def test_top_patches_over_a_folder(images, tmp_path, tiny_network):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("content", "style"):
        (photos / images[name].name).write_bytes(images[name].read_bytes())
    out = tmp_path / "p.png"  # outside the image folder (inside it is refused)
    r = nst("top-patches", "conv3_1:2", photos, "-o", out, "-k", 3, "--size", 32)
    assert r.exit_code == 0, r.output
    assert out.exists() and "patches; wrote" in r.stderr
    r = nst("top-patches", "conv3_1:2", tmp_path / "nothing", "-o", out)
    assert r.exit_code == 2
