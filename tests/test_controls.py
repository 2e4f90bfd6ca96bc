import torch

from nst import controls
from tests.conftest import gen


def test_yiq_round_trip():
    img = torch.rand(3, 5, 7, generator=gen(11))
    assert torch.allclose(controls.yiq_to_rgb(controls.rgb_to_yiq(img)), img, atol=1e-5)


def test_histogram_matching_gives_the_contents_mean_and_covariance():
    g0 = torch.Generator().manual_seed(0)
    style = torch.rand(3, 30, 40, generator=g0) ** 2
    style[2] = style[0] * 0.5 + 0.2 * style[2]  # correlated channels
    content = torch.rand(3, 20, 25, generator=g0) * 0.5 + 0.3
    out = controls.match_color(style, content)
    o, c = out.reshape(3, -1).double(), content.reshape(3, -1).double()
    assert torch.allclose(o.mean(dim=1), c.mean(dim=1), atol=1e-3)
    assert torch.allclose(torch.cov(o), torch.cov(c), atol=1e-3)


def test_luminance_image_matches_statistics_and_chroma_recombines():
    content = torch.rand(3, 8, 8, generator=gen(14))
    style = torch.rand(3, 10, 6, generator=gen(15)) * 0.3
    gray = controls.luminance_image(style, like=content)
    assert torch.equal(gray[0], gray[1])
    y_c = controls.luminance(content)
    assert torch.allclose(gray[0].mean(), y_c.mean(), atol=1e-5)
    assert torch.allclose(gray[0].std(), y_c.std(), atol=1e-5)
    result = controls.recombine_chroma(torch.rand(3, 8, 8, generator=gen(16)), content)
    assert torch.allclose(
        controls.rgb_to_yiq(result)[1:], controls.rgb_to_yiq(content)[1:], atol=1e-5
    )
