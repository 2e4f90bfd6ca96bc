"""Lucid's parameterizations (Fourier with 1/f scaling, decorrelated colours), robustness
transforms and the diversity objective, on the tiny network."""

import math

import pytest
import torch

from nst.errors import ConfigError
from nst.events import Finished, Started, Step
from nst.explain.ascent import visualize
from nst.explain.config import VisualizeConfig
from nst.explain.lucid import COLOR_CORRELATION, Parameterization, _diversity, _transform
from nst.explain.network import network


def test_the_fourier_image_is_the_inverse_fft_of_the_1_over_f_scaled_spectrum():
    p = Parameterization(1, 16, fourier=True, decorrelate=False, seed=0)
    with torch.no_grad():
        p.spectrum.zero_()
        p.spectrum[0, 0, 0, 2, 0] = 1.0  # 2 cycles per image along x, real
    image = p()
    f = 2 / 16  # cycles per pixel
    x = torch.arange(16)
    wave = 2 * math.cos(0) * torch.cos(2 * math.pi * f * x) / 16 / f / 4  # ortho: 1/sqrt(256)
    expected = torch.sigmoid(wave.expand(16, 16))
    torch.testing.assert_close(image[0, 0], expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(image[0, 1], torch.full((16, 16), 0.5))


def test_decorrelated_colours_use_the_normalized_lucid_matrix():
    p = Parameterization(2, 8, fourier=False, decorrelate=True, seed=1)
    m = COLOR_CORRELATION / COLOR_CORRELATION.norm(dim=0).max()
    torch.testing.assert_close(p.colors, m)
    assert float(p.colors.norm(dim=0).max()) == pytest.approx(1.0)
    expected = torch.sigmoid(torch.einsum("nchw,dc->ndhw", p.pixels, m))
    torch.testing.assert_close(p(), expected)
    assert p().shape == (2, 3, 8, 8)


def test_parameterizations_are_seeded():
    a = Parameterization(1, 16, True, True, seed=3)()
    b = Parameterization(1, 16, True, True, seed=3)()
    c = Parameterization(1, 16, True, True, seed=4)()
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_transforms_are_seeded_and_pad_the_image():
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    assert _transform(x, (), torch.Generator()) is x
    names = ("jitter", "scale", "rotate")
    a = _transform(x, names, torch.Generator().manual_seed(5))
    b = _transform(x, names, torch.Generator().manual_seed(5))
    assert a.shape == (2, 3, 44, 44)
    torch.testing.assert_close(a, b)
    jittered = _transform(x, ("jitter",), torch.Generator().manual_seed(5))
    assert sorted(jittered.flatten().tolist()) == pytest.approx(
        sorted(torch.nn.functional.pad(x, (12,) * 4, value=0.5).flatten().tolist())
    )  # a roll moves pixels, it changes none


def test_diversity_is_the_mean_cosine_similarity_of_grams():
    f = torch.rand(1, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    assert float(_diversity(f.repeat(3, 1, 1, 1))) == pytest.approx(1.0, rel=1e-5)
    a = torch.zeros(2, 2, 3, 3)
    a[0, 0] = 1.0  # only channel 0 fires in image 0, only channel 1 in image 1
    a[1, 1] = 1.0
    assert float(_diversity(a)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "extra",
    [{"param": "fourier"}, {"param": "fourier", "decorrelate": True},
     {"decorrelate": True, "transforms": "jitter,rotate"}, {"param": "fourier", "diversity": 3}],
)  # fmt: skip
def test_a_lucid_run_raises_its_target(tiny_network, extra):
    events = []
    cfg = VisualizeConfig(size=32, iterations=15, **extra)
    assert cfg.lucid
    result = visualize("conv3_1:2", cfg, events.append, net=network())
    steps = [e for e in events if isinstance(e, Step)]
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert len(steps) == 16 and steps[-1].terms["activation"] > steps[0].terms["activation"]
    n = extra.get("diversity", 1)
    assert result.image.shape == (3, 32, 32 * n)
    assert float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    if n > 1:
        assert steps[-1].terms["diversity"] < 1.0


def test_transforms_are_checked():
    with pytest.raises(ConfigError, match="transforms: 'warp' is not one of jitter, scale, rotate"):
        VisualizeConfig(transforms="jitter,warp")
    assert not VisualizeConfig().lucid
    assert VisualizeConfig(transforms=" scale ").transform_list == ("scale",)
