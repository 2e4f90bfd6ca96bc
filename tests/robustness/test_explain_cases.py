"""Hostile targets, grids, options and weights files for ``nst saliency``, ``visualize`` and
``top-patches``, and the same targets and parameters posted to the Explore API: each gets
exit 2 and the exact one line (or a 4xx and the exact detail), never a traceback or a 5xx.
Every target is checked before the network is loaded. One app serves the module."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch

from nst import runtime
from nst.cli.app import main
from nst.model.vgg import build_extractor
from nst.web import WebSettings, create_app
from tests.conftest import tiny_weights
from tests.robustness import corpus
from tests.web.helpers import BASE, fake_runner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DIGITS = "9" * 5000
LONG = f"'conv5_1:{DIGITS[:29]}...' (5,008 characters)"

#: (target, the message after "nst: error: "); the network is never needed to refuse them
SYNTAX: list[tuple[str, str]] = [
    (f"conv5_1:{DIGITS}", f"target {LONG}: a number of 5,000 digits is out of range (at most 18 "
     "digits)"),
    (f"conv3_1:1@{DIGITS[:40]},2", "target 'conv3_1:1@999999999999999999999999999...' (52 "
     "characters): a number of 40 digits is out of range (at most 18 digits)"),
    (f"class:{DIGITS}", "target 'class:9999999999999999999999999999999...' (5,006 characters): "
     "a number of 5,000 digits is out of range (at most 18 digits)"),
    ("class:1000", "target class:1000: class 1000 is out of range (0-999)"),
    ("class:unicorn", "class: no ImageNet class is called 'unicorn' (use class:N, 0-999)"),
    ("conv3_1:-1", "target 'conv3_1:-1' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or class:N "
     "(e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv3_1", "target 'conv3_1' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or class:N (e.g. "
     "conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv3_1:1.5", "target 'conv3_1:1.5' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or class:N "
     "(e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv3_1:1@2", "target 'conv3_1:1@2' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or class:N "
     "(e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv3_1:\x00", "target 'conv3_1:\\x00' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or "
     "class:N (e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv3_1:\n1", "target 'conv3_1:\\n1' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or "
     "class:N (e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"),
    ("conv9_1:2", "unknown layer 'conv9_1' (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, "
     "pool1 … pool5)"),
    ("fc7:2", "unknown layer 'fc7' (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, pool1 … "
     "pool5)"),
    ("x" * 5000 + ":1", "unknown layer 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (5,000 "
     "characters) (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, pool1 … pool5)"),
]  # fmt: skip


def _network_targets() -> list[tuple[str, str]]:
    """Targets that parse but that this network cannot give: for several layers, the first
    channel past the end and a neuron outside the map at 64 px."""
    out = []
    tiny = {name: w.shape[0] for name, (w, _) in tiny_weights().convs.items()}
    for layer in ("conv1_1", "conv2_2", "conv3_1", "conv4_2", "conv5_1", "conv5_4"):
        n = tiny[layer]
        out.append((f"{layer}:{n}", f"target {layer}:{n}: channel {n} is out of range ({layer} "
                    f"has channels 0-{n - 1})"))  # fmt: skip
        out.append((f"{layer}:0@999,0", f"target {layer}:0@999,0: neuron (999, 0) is outside the "
                    f"{layer} map"))  # fmt: skip
    out.append(
        (
            "class:tabby",
            "target class 281 (tabby): class scores need a classifier; pass "
            "--weights with a torchvision VGG19 or VGG16 state_dict that has classifier.* "
            "(e.g. vgg19-dcbb9e9d.pth); the built-in weights have only the convolutions",
        )
    )
    return out


NETWORK = _network_targets()


@pytest.fixture
def place(tmp_path, tiny_network) -> Path:
    (tmp_path / "photo.png").write_bytes(corpus.png(64, 48, 0))
    return tmp_path


def nst(*args: str) -> tuple[int, str]:
    """The console script's own entry (usage errors are one line there too)."""
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        pytest.raises(SystemExit) as exc,
    ):
        main(list(args))
    assert "Traceback" not in err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    return int(exc.value.code or 0), lines[0]


def _never_load(*args, **kwargs):
    raise AssertionError("the network was loaded before the target was checked")


@pytest.mark.parametrize("command", ["saliency", "visualize", "top-patches"])
@pytest.mark.parametrize(("target", "message"), SYNTAX, ids=[t[:16] for t, _ in SYNTAX])
def test_a_malformed_target_is_refused_before_the_network(place, monkeypatch, command, target,
                                                          message):  # fmt: skip
    monkeypatch.setattr(runtime, "load_network", _never_load)
    out = str(place / "o.png")
    if command == "saliency":
        args = ["saliency", str(place / "photo.png"), "--target", target, "-o", out]
    elif command == "visualize":
        args = ["visualize", target, "-o", out, "--size", "32", "--iterations", "2"]
    else:
        args = ["top-patches", target, str(place / "photo.png"), "-o", out]
    code, line = nst(*args)
    if command == "top-patches" and target.startswith("class:") and "out of range" not in message:
        return  # top-patches takes channels; a class name is refused by the network check
    assert (code, line) == (2, "nst: error: " + message)
    assert not os.path.exists(out)


@pytest.mark.parametrize(("target", "message"), NETWORK, ids=[t for t, _ in NETWORK])
def test_a_target_this_network_cannot_give(place, target, message):
    out = str(place / "o.png")
    code, line = nst("saliency", str(place / "photo.png"), "--target", target, "-o", out,
                     "--size", "64")  # fmt: skip
    assert code == 2 and line.startswith("nst: error: " + message), line
    code, line = nst("visualize", target, "-o", out, "--size", "64", "--iterations", "2")
    assert code == 2 and line.startswith("nst: error: " + message), line
    assert not os.path.exists(out)


GRIDS: list[tuple[str, str]] = [
    (f"conv5_1:0-{DIGITS}", f"grid 'conv5_1:0-{DIGITS[:27]}...' (5,010 characters): a number of "
     "5,000 digits is out of range (at most 18 digits)"),
    ("conv5_1:0-99999999", "grid 'conv5_1:0-99999999': at most 256 channels (100,000,000 asked)"),
    ("conv5_1:0-200,0-200", "grid 'conv5_1:0-200,0-200': at most 256 channels (402 asked)"),
    ("conv5_1:5-2", "grid 'conv5_1:5-2': 5-2 runs backwards"),
    ("conv5_1:a-b", "grid 'conv5_1:a-b': 'a-b' is not N or N-M"),
    ("conv5_1:-3", "grid 'conv5_1:-3': '-3' is not N or N-M"),
    ("conv5_1", "grid 'conv5_1' is not LAYER:FIRST-LAST (e.g. conv4_1:0-15)"),
    ("conv5_1:", "grid 'conv5_1:' is not LAYER:FIRST-LAST (e.g. conv4_1:0-15)"),
    ("nope:0-3", "unknown layer 'nope' (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, pool1 … "
     "pool5)"),
]  # fmt: skip


@pytest.mark.parametrize(("grid", "message"), GRIDS, ids=[g[:16] for g, _ in GRIDS])
def test_a_bad_grid_is_refused_before_the_network(place, monkeypatch, grid, message):
    monkeypatch.setattr(runtime, "load_network", _never_load)
    code, line = nst("visualize", "--grid", grid, "-o", str(place / "g.png"))
    assert (code, line) == (2, "nst: error: " + message)


OPTIONS: list[tuple[list[str], str]] = [
    (["visualize", "conv3_1:1", "--iterations", "0"],
     "iterations must be between 1 and 100000 (got 0)"),
    (["visualize", "conv3_1:1", "--iterations", DIGITS],
     "iterations: a number of 5,000 digits is out of range (at most 18 digits)"),
    (["visualize", "conv3_1:1", "--size", "8"], "size must be between 16 and 2048 (got 8)"),
    (["visualize", "conv3_1:1", "--l2", "nan"], "l2 must be a finite number (got nan)"),
    (["visualize", "conv3_1:1", "--lr", "1e999"], "lr must be a finite number (got inf)"),
    (["visualize", "conv3_1:1", "--learning-rate", "1"],
     "visualize: no such option: --learning-rate (see 'nst visualize --help')"),
    (["visualize", "conv3_1:1", "--jitter", DIGITS[:20]],
     "jitter: a number of 20 digits is out of range (at most 18 digits)"),
    (["visualize", "conv3_1:1", "--save-every", "-1"], "save-every must be >= 0 (got -1)"),
    (["visualize", "conv3_1:1", "--pooling", "median"],
     "pooling must be one of max, avg (got 'median')"),
    (["visualize"], "give a TARGET or a --grid LAYER:FIRST-LAST (one of them)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--size", "8"],
     "size must be between 16 and 4096 (got 8)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "lrp"],
     "method must be one of gradient, deconvnet, guided, gradcam, gradcam++, integrated, "
     "smoothgrad (got 'lrp')"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "gradcam", "--layer",
      "conv4_1"], "layer conv4_1 lies after the target's layer conv3_1; Grad-CAM needs a layer "
     "at or before it"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--layer", "conv2_1"],
     "layer: only gradcam and gradcam++ take a --layer"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "integrated", "--steps", "0"],
     "steps must be between 1 and 4096 (got 0)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "integrated", "--baseline",
      "grey"], "baseline must be one of black, blur, noise (got 'grey')"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "smoothgrad", "--samples",
      "0"], "samples must be between 1 and 1024 (got 0)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "smoothgrad", "--noise",
      "2"], "noise must be between 0 and 1 (got 2)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--method", "smoothgrad", "--rule",
      "lrp"], "rule must be one of gradient, deconvnet, guided (got 'lrp')"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--clip", "0"],
     "clip must be > 0 and at most 100 (got 0)"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--display", "loud"],
     "display must be one of rgb, magnitude, signed, heat (got 'loud')"),
    (["saliency", "{photo}", "--target", "conv3_1:1", "--raw", "{dir}/r.txt"],
     "raw {dir}/r.txt: give a .npy file name"),
    (["saliency", "{dir}/missing.png", "--target", "conv3_1:1"],
     "{dir}/missing.png: no such file"),
    (["saliency", "{dir}/notes.png", "--target", "conv3_1:1"],
     "{dir}/notes.png: not an image file, or a format nst cannot read"),
    (["top-patches", "conv3_1:1", "{photo}", "-k", "0"], "k must be between 1 and 256 (got 0)"),
    (["top-patches", "conv3_1:1", "{photo}", "--per-image", "0"],
     "per-image must be between 1 and 64 (got 0)"),
    (["top-patches", "conv3_1:1", "{photo}", "--size", "4"],
     "size must be between 16 and 2048 (got 4)"),
    (["top-patches", "conv3_1:1", "{dir}/none*.png"],
     "images: {dir}/none*.png: the pattern matches no file"),
    (["top-patches", "conv3_1:1", "{dir}", "-o", "{dir}/sheets/top.png"],
     "output {dir}/sheets/top.png is inside the image folder {dir}; the sheet would become an "
     "image of the next run (write it elsewhere)"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), OPTIONS, ids=range(len(OPTIONS)))
def test_a_bad_option_is_one_line(place, args, message):
    (place / "notes.png").write_text("not an image")
    values = {"photo": str(place / "photo.png"), "dir": str(place)}
    argv = [a.format(**values) for a in args]
    argv += [] if "-o" in argv else ["-o", str(place / "o.png")]
    code, line = nst(*argv)
    assert (code, line) == (2, "nst: error: " + message.format(**values))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _weights(name: str, path: Path) -> str:
    """A weights file of each hostile kind; returns the message expected after its path."""
    if name == "pickled code":
        torch.save({"features.0.weight": _Evil()}, path)
        return ("refused: it asks to run Python code (posix.system), not only to hold tensors "
                "(nst loads weights files without running code)")  # fmt: skip
    if name == "plain pickle with code":
        path.write_bytes(pickle.dumps(_Evil(), protocol=2))
        return ("refused: it asks to run Python code (posix.system), not only to hold tensors "
                "(nst loads weights files without running code)")  # fmt: skip
    if name == "random bytes":
        path.write_bytes(bytes(range(256)) * 8)
        return "not a PyTorch weights file (not a tensor pickle or a torch.save zip)"
    if name == "a PNG":
        path.write_bytes(corpus.png(8, 8, 0))
        return "not a PyTorch weights file (not a tensor pickle or a torch.save zip)"
    if name == "cut zip":
        torch.save({"a": torch.ones(3)}, path)
        path.write_bytes(path.read_bytes()[:200])
        return ("not a readable PyTorch weights file (PytorchStreamReader failed reading zip "
                "archive: failed finding central directory)")  # fmt: skip
    if name == "empty":
        path.write_bytes(b"")
        return "empty file (0 bytes)"
    if name == "a list of tensors":
        torch.save([torch.ones(2)], path)
        return "expected a state_dict (a dict of tensors)"
    if name == "wrong shapes":
        torch.save({"features.0.weight": torch.ones(2, 2), "features.0.bias": torch.ones(2)}, path)
        return (
            "key 'features.2.weight' is missing; expected a torchvision vgg19 (or vgg16) "
            "state_dict (vgg19-dcbb9e9d.pth)"
        )
    raise AssertionError(name)


WEIGHTS = ["pickled code", "plain pickle with code", "random bytes", "a PNG", "cut zip", "empty",
           "a list of tensors", "wrong shapes"]  # fmt: skip


@pytest.mark.parametrize("command", ["saliency", "visualize"])
@pytest.mark.parametrize("kind", WEIGHTS)
def test_a_hostile_weights_file_is_one_line_and_never_runs_code(tmp_path, monkeypatch, command,
                                                                 kind):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    runtime.clear_cache()
    (tmp_path / "photo.png").write_bytes(corpus.png(64, 48, 0))
    path = tmp_path / "w.pth"
    message = _weights(kind, path)
    if command == "saliency":
        args = ["saliency", "photo.png", "--target", "conv3_1:1", "--weights", str(path)]
    else:
        args = ["visualize", "conv3_1:1", "--weights", str(path), "--size", "32"]
    code, line = nst(*args, "-o", str(tmp_path / "o.png"))
    assert code == 2 and line.startswith(f"nst: error: {path}: "), line
    assert message in line
    assert not (tmp_path / "PWNED").exists()


# -- the Explore API: one app for the module --------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    def load(weights, pooling, normalize, device, dtype):
        return build_extractor(tiny_weights(), ["pool5"], pooling=pooling, device=device,
                               dtype=dtype)  # fmt: skip

    with pytest.MonkeyPatch.context() as mp:
        runtime.clear_cache()
        mp.setattr(runtime, "load_network", load)
        mp.setattr(runtime, "load_classifier", lambda weights, device: None)
        settings = WebSettings(data_dir=tmp_path_factory.mktemp("explore"), calibrate=False)
        with TestClient(create_app(settings, fake_runner()), base_url=BASE) as c:
            yield c
        runtime.clear_cache()


def _detail(r) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "/tmp/" not in detail, detail
    return detail


API_TARGETS = [(t, m) for t, m in SYNTAX + NETWORK if "neuron" not in m]


@pytest.mark.parametrize(("target", "message"), API_TARGETS, ids=[t[:16] for t, _ in API_TARGETS])
def test_a_bad_target_posted_to_explore_is_422(client, target, message):
    r = client.post(
        "/api/explain/saliency",
        headers={"Origin": BASE},
        data={"image_builtin": "builtin:coffee", "target": target, "size": "64"},
    )
    assert r.status_code == 422 and _detail(r).startswith(message.split(" (known")[0]), r.text
    r = client.post(
        "/api/explain/visualize",
        headers={"Origin": BASE},
        json={"target": target, "params": {"size": 32, "iterations": 2}},
    )
    assert r.status_code == 422 and _detail(r).startswith(message.split(" (known")[0]), r.text


API_REQUESTS: list[tuple[str, dict, int, str]] = [
    ("saliency", {"image_builtin": "builtin:coffee", "target": "conv3_1:1", "size": DIGITS}, 422,
     ""),
    ("saliency", {"image_builtin": "builtin:coffee", "target": "conv3_1:1", "size": "0"}, 422,
     "size must be between 16 and 4096 (got 0)"),
    ("saliency", {"image_builtin": "builtin:nope", "target": "conv3_1:1"}, 422,
     "builtin:nope: no such built-in image (known: builtin:chelsea, builtin:astronaut, "
     "builtin:coffee, builtin:rocket, builtin:swirls, builtin:mosaic)"),
    ("saliency", {"target": "conv3_1:1"}, 422, "give one image (a file or a built-in)"),
    ("saliency", {"image_builtin": "builtin:coffee"}, 422, ""),
    ("visualize", {"target": "conv3_1:1", "params": {"iterations": 0}}, 422,
     "iterations must be between 1 and 100000 (got 0)"),
    # past the declared range too: the server's cap is what a page can use
    ("visualize", {"target": "conv3_1:1", "params": {"iterations": 10**30}}, 422,
     "iterations: at most 2000 on this server"),
    ("visualize", {"target": "conv3_1:1", "params": {"size": 4096}}, 422,
     "size: at most 512 px on this server"),
    ("visualize", {"target": "conv3_1:1", "params": {"size": 1024}}, 422,
     "size: at most 512 px on this server"),
    ("visualize", {"target": "conv3_1:1", "params": {"l2": "nan"}}, 422,
     "l2 must be a finite number (got nan)"),
    ("visualize", {"target": "conv3_1:1", "params": {"l2": 10**400}}, 422,
     "l2: an integer of about 401 digits is too large"),
    ("visualize", {"target": "conv3_1:1", "params": {"bogus": 1}}, 422,
     "unknown parameter(s): bogus"),
    ("visualize", {"target": "conv3_1:1", "params": {"weights": "/etc/passwd"}}, 422, ""),
    ("visualize", {"target": 5}, 422, "target: give a target such as conv4_1:12"),
    ("visualize", {"params": {}}, 422, "target: give a target such as conv4_1:12"),
]  # fmt: skip


@pytest.mark.parametrize(("route", "body", "status", "message"), API_REQUESTS,
                         ids=range(len(API_REQUESTS)))  # fmt: skip
def test_a_bad_explore_request(client, route, body, status, message):
    if route == "saliency":
        r = client.post("/api/explain/saliency", headers={"Origin": BASE}, data=body)
    else:
        r = client.post("/api/explain/visualize", headers={"Origin": BASE}, json=body)
    assert r.status_code == status, r.text
    if message:
        assert _detail(r).startswith(message), r.text


@pytest.mark.parametrize("raw", [b'{"target": "conv3_1:1", "params": {"size": ' + DIGITS.encode()
                                 + b"}}", b"[" * 100_000, b'{"target": NaN}', b"\xff\xfe",
                                 b'{"target": "conv3_1:1", "params": 7}'])  # fmt: skip
def test_malformed_json_to_visualize_is_422(client, raw):
    r = client.post("/api/explain/visualize", content=raw,
                    headers={"Origin": BASE, "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    _detail(r)
