"""The paper's formulas on cases small enough to compute by hand."""

import pytest
import torch
from torch.autograd import gradcheck

from nst.objective import (
    ContentTarget,
    StyleTarget,
    content_loss,
    gram_matrix,
    gram_style_loss,
    guided_gram_matrix,
    style_layer_loss,
    tv_loss,
)
from nst.objective.losses import _as_matrix, gram_in_bf16_products
from tests.conftest import gen

# two channels over two positions: c0 = [1, 2], c1 = [3, 4]
F2 = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])


def test_content_loss_is_half_the_sum_of_squares():
    target = torch.zeros_like(F2)
    assert content_loss(F2, target).item() == pytest.approx(0.5 * (1 + 4 + 9 + 16))
    assert ContentTarget(F2)(F2).item() == 0.0


def test_gram_matrix_by_hand():
    raw = gram_matrix(F2, normalize=False)[0]
    assert raw.tolist() == [[5.0, 11.0], [11.0, 25.0]]
    assert gram_matrix(F2)[0].tolist() == [[2.5, 5.5], [5.5, 12.5]]  # divided by M = 2


def test_gram_matrix_same_for_channels_last_layout():
    f = torch.randn(1, 5, 4, 3, generator=gen(11))
    assert torch.allclose(gram_matrix(f), gram_matrix(f.to(memory_format=torch.channels_last)))


def test_style_layer_loss_matches_the_papers_E_l():
    # E_l = 1/(4 N^2 M^2) sum (G - A)^2 with A = 0: 892 / (4 * 4 * 4)
    e = style_layer_loss(gram_matrix(F2), torch.zeros(1, 2, 2))
    assert e.item() == pytest.approx(892 / 64)
    assert StyleTarget(torch.zeros(1, 2, 2))(F2).item() == pytest.approx(892 / 64)


def test_style_image_of_another_size_compares_through_its_own_M():
    # the style features are the generated ones tiled twice: same statistics, other M
    style_features = torch.cat([F2, F2], dim=3)
    target = gram_matrix(style_features)
    assert style_layer_loss(gram_matrix(F2), target).item() == pytest.approx(0.0, abs=1e-12)


def test_content_gradient_is_the_papers_formula_through_relu():
    pre = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True, generator=gen(12))
    target = torch.rand(1, 3, 4, 5, dtype=torch.float64, generator=gen(13))
    f = torch.relu(pre)
    content_loss(f, target).backward()
    expected = (f - target) * (pre > 0)  # dL/dF = F - P where F > 0, else 0
    assert torch.allclose(pre.grad, expected.detach())


def test_style_gradient_is_the_papers_formula():
    n, m = 3, 20
    f = torch.rand(1, n, 4, 5, dtype=torch.float64, requires_grad=True, generator=gen(14))
    a_feat = torch.rand(1, n, 5, 4, dtype=torch.float64, generator=gen(15))
    e = style_layer_loss(gram_matrix(f), gram_matrix(a_feat))
    e.backward()
    fm = f.detach().reshape(n, m)
    g_raw = fm @ fm.T
    a_raw = a_feat.reshape(n, m) @ a_feat.reshape(n, m).T
    expected = ((g_raw - a_raw) @ fm) / (n**2 * m**2)  # dE/dF = (F^T (G - A))^T / (N^2 M^2)
    assert torch.allclose(f.grad.reshape(n, m), expected)


@pytest.mark.parametrize(("channels", "positions"), [(64, 3072), (512, 672)])
def test_a_gram_matrix_of_bf16_features_carries_each_entry_to_2_to_the_minus_16(
    channels, positions
):
    """Two bfloat16 products, the first subtracted in the second's float32 accumulator:
    each entry to 2^-16 of itself (its bfloat16 rounding alone: 2^-8), returned in
    float32."""
    f = (torch.randn(1, channels, positions, 1, generator=gen(20)).relu() * 3).bfloat16()
    exact = gram_matrix(f.double())
    g = gram_matrix(f)
    assert gram_in_bf16_products(_as_matrix(f)) and g.dtype == torch.float32
    assert ((g.double() - exact).abs() / exact.abs()).max() <= 2.0**-16
    assert ((exact.bfloat16().double() - exact).abs() / exact.abs()).max() > 2.0**-10
    fewer = f[..., : channels // 2, :]  # fewer positions than channels: float32's products
    assert not gram_in_bf16_products(_as_matrix(fewer))
    assert torch.equal(gram_matrix(fewer), gram_matrix(fewer.float()))


@pytest.mark.parametrize("fused", [False, True])
def test_a_bf16_style_terms_gradient_is_the_papers_formula(fused):
    n, m = 32, 400
    f = (torch.randn(1, n, m, 1, generator=gen(22)).relu() * 3).bfloat16().requires_grad_(True)
    a_feat = torch.rand(1, n, m, 1, dtype=torch.float64, generator=gen(23)) * 3
    target = gram_matrix(a_feat).float()
    e = gram_style_loss(f, target) if fused else style_layer_loss(gram_matrix(f), target)
    e.backward()
    fm = f.detach().double().reshape(n, m)
    am = a_feat.reshape(n, m)
    expected = ((fm @ fm.T - am @ am.T) @ fm) / (n**2 * m**2)  # dE/dF, as above
    assert f.grad.dtype == torch.bfloat16
    got = f.grad.double().reshape(n, m)
    assert (got - expected).norm() / expected.norm() < 5e-3


@pytest.mark.parametrize(
    ("dtype", "layout"),
    [(torch.float32, torch.contiguous_format), (torch.bfloat16, torch.channels_last)],
)
def test_the_one_function_style_term_is_the_gram_matrix_and_e_l(dtype, layout):
    """gram_style_loss (what StyleTarget computes) against style_layer_loss of gram_matrix,
    value and gradient: the same numbers to float32's rounding."""
    f = (torch.randn(1, 16, 12, 10, generator=gen(24)).relu() * 2).to(dtype)
    f = f.contiguous(memory_format=layout)
    target = gram_matrix(torch.rand(1, 16, 9, 8, generator=gen(25)) * 2)
    grads = []
    for fn in (
        lambda v: gram_style_loss(v, target),
        lambda v: style_layer_loss(gram_matrix(v), target),
    ):
        v = f.detach().requires_grad_(True)
        e = fn(v)
        (g,) = torch.autograd.grad(e, v)
        assert g.dtype == dtype and e.dtype == torch.float32
        grads.append((e.item(), g.float()))
    (e1, g1), (e2, g2) = grads
    assert e1 == pytest.approx(e2, rel=1e-6) and e1 > 0
    tol = 1e-6 if dtype == torch.float32 else 2.0**-7  # bf16: the gradient's one rounding
    assert (g1 - g2).norm() <= tol * g2.norm()
    assert StyleTarget(target)(f).item() == pytest.approx(e2, rel=1e-6)


@pytest.mark.parametrize("name", ["content", "style", "style_fused", "tv", "guided"])
def test_gradcheck(name):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 5, 4, dtype=torch.float64, requires_grad=True, generator=gen(16))
    other = torch.rand(1, 3, 5, 4, dtype=torch.float64, generator=gen(17))
    guide = torch.rand(1, 1, 5, 4, dtype=torch.float64, generator=gen(18))
    fns = {
        "content": lambda v: content_loss(v, other),
        "style": lambda v: style_layer_loss(gram_matrix(v), gram_matrix(other)),
        "style_fused": lambda v: gram_style_loss(v, gram_matrix(other)),
        "tv": lambda v: tv_loss(v * 255.0),
        "guided": lambda v: style_layer_loss(guided_gram_matrix(v, guide), gram_matrix(other)),
    }
    assert gradcheck(fns[name], (x,), eps=1e-6, atol=1e-5)


def test_tv_loss_by_hand():
    img = torch.tensor([[[[0.0, 255.0], [255.0, 255.0]]]])
    # rows: (1 - 0)^2 and (1 - 1)^2 -> mean 0.5; columns: the same -> 0.5
    assert tv_loss(img).item() == pytest.approx(1.0)
    assert tv_loss(torch.full((1, 3, 4, 4), 7.0)).item() == 0.0


def test_guided_gram_with_a_full_guide_is_the_plain_gram():
    f = torch.rand(1, 4, 6, 5, generator=gen(19))
    ones = torch.ones(1, 1, 6, 5)
    assert torch.allclose(guided_gram_matrix(f, ones), gram_matrix(f), atol=1e-6)


def test_guided_gram_sees_only_its_region():
    left = torch.zeros(1, 1, 4, 8)
    left[..., :4] = 1
    f = torch.rand(1, 3, 4, 8, generator=gen(20))
    g = f.clone()
    g[..., 4:] = torch.rand(1, 3, 4, 4, generator=gen(21)) * 10  # change only the right half
    assert torch.allclose(guided_gram_matrix(f, left), guided_gram_matrix(g, left))
    assert torch.allclose(guided_gram_matrix(f, left), gram_matrix(f[..., :4]), atol=1e-6)


def test_tv_beta_and_alpha_norm_by_hand():
    from nst.objective.losses import ALPHA_BOUND, alpha_norm_loss

    img = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    img[..., 0, 1] = 255.0  # one bright pixel: at (0,0) the horizontal step is 1, vertical 0
    # beta = 1: mean over the single 1x1 position of sqrt(1^2 + 0^2) = 1
    assert tv_loss(img, beta=1.0).item() == pytest.approx(1.0, rel=1e-6)
    assert tv_loss(img, beta=4.0).item() == pytest.approx(1.0, rel=1e-6)
    mean = torch.tensor([123.68, 116.779, 103.939], dtype=torch.float64).view(1, 3, 1, 1)
    flat = mean.expand(1, 3, 2, 2) + 64.0  # every channel 64 above the mean pixel
    expected = ((3 * 64.0**2) ** 0.5 / ALPHA_BOUND) ** 6
    assert alpha_norm_loss(flat, 6.0).item() == pytest.approx(expected, rel=1e-6)


def test_tv_beta_and_alpha_norm_pass_gradcheck():
    from nst.objective.losses import alpha_norm_loss

    x = (torch.rand(1, 3, 5, 4, generator=gen(40), dtype=torch.float64) * 255).requires_grad_(True)
    assert gradcheck(lambda v: tv_loss(v, beta=1.5), (x,), eps=1e-3, atol=1e-6)
    assert gradcheck(lambda v: alpha_norm_loss(v, 6.0), (x,), eps=1e-3, atol=1e-6)
