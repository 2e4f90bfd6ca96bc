"""``nst score`` and nst.score: each figure at its known value."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import nst
from nst.cli import app


def test_a_content_scored_against_itself_and_a_style_against_itself(images, tiny_network):
    s = nst.score(images["content"], images["content"], images["style"])
    assert s.content == 0.0 and s.ssim == pytest.approx(1.0)
    assert s.noise == pytest.approx(s.content_noise) and s.noise_ratio == pytest.approx(1.0)
    same = nst.score(images["style"], images["style"], images["style"])
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in same.style["gram"].values())
    assert all(abs(v) < 1e-3 for v in same.style["w2"].values())
    assert all(v < 1e-6 for v in same.style["swd"].values())
    # the nearest patch of each of the style's own patches is itself; from conv3_1 on,
    # not at conv5_1, whose 2x2 positions (40 px) hold no 3x3 patch
    assert list(same.style["mrf"]) == ["conv3_1", "conv4_1"]
    assert all(abs(v) < 1e-6 for v in same.style["mrf"].values()) and s.style_total("mrf") > 0
    assert s.style_total("gram") > 0 and s.style_total("w2") > 0 and s.style_total("swd") > 0
    assert list(s.style["gram"]) == [f"conv{b}_1" for b in range(1, 6)]
    assert s.style_total("gram") == pytest.approx(sum(s.style["gram"].values()) / 5)


def test_noise_shows_in_the_high_frequency_energy_and_lowers_ssim(images, tmp_path, tiny_network):
    clean = np.asarray(Image.open(images["content"]).convert("RGB"), dtype=np.float64)
    seeded = torch.Generator().manual_seed(3)
    noise = torch.randn(clean.shape, generator=seeded, dtype=torch.float64).numpy() * 25
    noisy = tmp_path / "noisy.png"
    Image.fromarray(np.clip(clean + noise, 0, 255).astype(np.uint8)).save(noisy)
    s = nst.score(noisy, images["content"], images["style"])
    assert s.noise_ratio > 3 and s.ssim < 0.9 and s.content > 0


def test_the_command_prints_every_figure_and_json(images, tiny_network):
    runner = CliRunner()
    args = ["score", str(images["content"]), "--content", str(images["content"])]
    args += ["--style", str(images["style"]), "--style", str(images["style2"])]
    r = runner.invoke(app, [*args, "--json", "--style-blend", "0.7,0.3"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.output)
    assert record["content"] == 0.0 and set(record["style"]) == {"gram", "w2", "swd", "mrf"}
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "style, Gram E_l" in r.output and "ratio 1" in r.output
    assert "style, MRF patches" in r.output and "(conv3_1 " in r.output
    r = runner.invoke(app, [*args, "--style-blend", "1"])
    assert r.exit_code == 2
    assert "style-blend has 1 weights for 2 style image(s)" in r.output


def test_each_registered_statistic_scores_itself(images, tiny_network, monkeypatch):
    """``score`` asks the registry: a statistic registered with its own ``score`` is
    scored at every style layer, with the style images' blend weights summing to 1."""
    from nst.objective.statistics import STATISTICS, Statistic

    seen = []

    def by_hand(samples, features, layer):
        seen.append((sum(w for _, w in samples), features.shape[1], samples[0][0].shape[1]))
        return layer + 0.5

    monkeypatch.setitem(STATISTICS, "mean", Statistic("mean", None, None, by_hand))  # type: ignore[arg-type]
    s = nst.score(images["content"], images["content"], [images["style"], images["style2"]],
                  blend=[3.0, 1.0])  # fmt: skip
    assert set(s.style) == {"gram", "w2", "swd", "mrf", "mean"}
    assert list(s.style["mean"]) == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert list(s.style["mean"].values()) == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert [w for w, _, _ in seen] == [1.0] * 5  # the blend's weights, normalized
    assert all(c == cs for _, c, cs in seen)  # the image's and the styles' features of a layer
