"""The style statistics beyond the Gram matrix: w2 and swd against hand computations,
gradcheck, blends, guides, and their use in a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from nst.config import STYLE_LOSSES, Config
from nst.errors import ConfigError
from nst.objective import STATISTICS
from nst.objective.swd import SWDTarget, sliced_wasserstein, weighted_quantiles
from nst.objective.w2 import (
    W2Target,
    blend_moments,
    fused_moments,
    moments,
    raw_moments,
    w2_squared,
)
from tests.conftest import assert_close, gen


def feats(c: int, h: int, w: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(1, c, h, w, generator=gen(seed), dtype=torch.float64) * scale


def test_every_declared_style_loss_has_a_statistic():
    assert set(STYLE_LOSSES) == set(STATISTICS)


def test_w2_equals_the_closed_form_with_scipy_square_roots():
    x, s = feats(4, 6, 5, 1), feats(4, 7, 3, 2, scale=2.0)
    mu, cov = moments(x)
    mu_s, cov_s = moments(s)
    f = x[0].flatten(1).numpy()
    assert np.allclose(cov.numpy(), np.cov(f, bias=True)) and np.allclose(mu, f.mean(1))
    c, cs = cov.numpy(), cov_s.numpy()
    root = sqrtm(cs)
    expected = ((mu - mu_s).numpy() ** 2).sum() + np.trace(c + cs - 2 * sqrtm(root @ c @ root))
    target = W2Target(mu_s, cov_s)
    value = w2_squared(mu, cov, target.mu, target.cov_sqrt, target.trace)
    assert value.item() == pytest.approx(float(np.real(expected)), rel=1e-6)
    assert target(x).item() == pytest.approx(float(np.real(expected)), rel=1e-3)  # the ridge


def test_w2_with_fewer_positions_than_channels_uses_the_positions_matrix_exactly():
    # 6 positions, 12 channels: the cross term from the 6 x 6 matrix (a small image's
    # deep layer), equal to the closed form without the C x C path's ridge
    x, s = feats(12, 2, 3, 11), feats(12, 5, 4, 12, scale=2.0)
    mu, cov = moments(x)
    mu_s, cov_s = moments(s)
    root = sqrtm(cov_s.numpy())
    expected = ((mu - mu_s).numpy() ** 2).sum() + np.trace(
        cov.numpy() + cov_s.numpy() - 2 * sqrtm(root @ cov.numpy() @ root)
    )
    target = W2Target(mu_s, cov_s)
    assert target(x).item() == pytest.approx(float(np.real(expected)), rel=1e-8)
    guide = torch.rand(1, 1, 2, 3, generator=gen(13), dtype=torch.float64)
    guided = W2Target(mu_s, cov_s, guide)
    gm, gc = moments(x, guide)
    plain = w2_squared(gm, gc, guided.mu, guided.cov_sqrt, guided.trace)
    assert guided(x).item() == pytest.approx(plain.item(), rel=1e-8)
    for t in (target, guided):
        assert torch.autograd.gradcheck(t, (x.clone().requires_grad_(True),), eps=1e-6, atol=1e-5)


def test_w2_of_one_dimensional_gaussians_and_of_a_distribution_with_itself():
    # N(1, 4) against N(3, 1): (1 - 3)^2 + (2 - 1)^2 = 5
    x = torch.tensor([-1.0, 3.0], dtype=torch.float64).view(1, 1, 1, 2)
    s = torch.tensor([2.0, 4.0], dtype=torch.float64).view(1, 1, 1, 2)
    mu_s, cov_s = moments(s)
    mu, cov = moments(x)
    assert cov.item() == 4.0 and cov_s.item() == 1.0
    value = w2_squared(mu, cov, mu_s, W2Target(mu_s, cov_s).cov_sqrt, torch.trace(cov_s))
    assert value.item() == pytest.approx(5.0, rel=1e-9)
    same = feats(5, 4, 4, 3)
    assert W2Target(*moments(same))(same).item() == pytest.approx(0.0, abs=1e-4)


def test_w2_gradient_is_right():
    s = feats(3, 4, 4, 4)
    target = W2Target(*moments(s))
    x = feats(3, 4, 5, 5).requires_grad_(True)
    assert torch.autograd.gradcheck(target, (x,), eps=1e-6, atol=1e-5)


def test_fused_moments_equal_the_generic_ones_and_their_gradient_is_right():
    # a large mean (ReLU features far from zero) taken about a shift near it
    x = feats(5, 4, 3, 21) + 40.0
    shift = torch.full((5,), 39.0, dtype=torch.float64)
    mu, cov = fused_moments(x, shift)
    gm, gc = moments(x)
    assert_close(mu, gm, 1e-14, "mean")
    assert_close(cov, gc, 1e-12, "covariance")
    xi = x.clone().requires_grad_(True)
    weights = torch.randn(5, 5, generator=gen(22), dtype=torch.float64)

    def linear(v):
        m, c = fused_moments(v, shift)
        return (m * torch.arange(5.0, dtype=torch.float64)).sum() + (c * weights).sum()

    assert torch.autograd.gradcheck(linear, (xi,), eps=1e-6, atol=1e-6)
    # weighted by a region guide
    guide = torch.rand(1, 1, 4, 3, generator=gen(23), dtype=torch.float64)
    wm, wc = fused_moments(x, shift, guide)
    gm, gc = moments(x, guide)
    assert_close(wm, gm, 1e-14, "guided mean")
    assert_close(wc, gc, 1e-12, "guided covariance")

    def guided(v):
        m, c = fused_moments(v, shift, guide)
        return (m * torch.arange(5.0, dtype=torch.float64)).sum() + (c * weights).sum()

    assert torch.autograd.gradcheck(guided, (xi,), eps=1e-6, atol=1e-6)
    # bf16 channels_last features (the network's): float32 moments, a bf16 gradient
    low = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    m32, c32 = moments(low.float())
    lm, lc = fused_moments(low, shift.float())
    assert lm.dtype == torch.float32 and lc.dtype == torch.float32
    assert_close(lm, m32, 1e-6, "bf16 mean")
    assert_close(lc, c32, 1e-4, "bf16 covariance")
    lowi = low.clone().requires_grad_(True)
    value = (fused_moments(lowi, shift.float())[1] * weights.float()).sum()
    (grad,) = torch.autograd.grad(value, lowi)
    wide = low.float().requires_grad_(True)
    (expected,) = torch.autograd.grad((moments(wide)[1] * weights.float()).sum(), wide)
    assert grad.dtype == torch.bfloat16
    assert_close(grad.float(), expected, 2e-2, "bf16 gradient")


def test_bf16_moments_come_from_raw_products_unless_the_mean_cancels_them():
    # ReLU-like features (mean about their spread, as VGG's style layers: 1.5-4.4x)
    x = feats(8, 16, 12, 24).pow(2).to(torch.bfloat16)
    low = x.contiguous(memory_format=torch.channels_last)
    f = low.permute(0, 2, 3, 1).reshape(-1, 8)
    exact_mu, exact_cov = moments(low.double())
    raw = raw_moments(f)
    assert raw is not None and raw[1].dtype == torch.float32
    assert_close(raw[0], exact_mu, 1e-6, "raw mean")
    assert_close(raw[1], exact_cov, 1e-4, "raw covariance")
    mu, cov = fused_moments(low, exact_mu.float())
    assert torch.equal(mu, raw[0]) and torch.equal(cov, raw[1])  # the path taken
    # a mean of 40 over a spread of 0.3 cancels ~14 bits of the raw second moment: centred
    far = (feats(8, 16, 12, 25) + 40.0).to(torch.bfloat16)
    assert raw_moments(far.permute(0, 2, 3, 1).reshape(-1, 8)) is None
    far_cov = fused_moments(far, torch.full((8,), 40.5))[1]
    assert_close(far_cov, moments(far.double())[1], 1e-5, "centred covariance")


def test_a_bf16_moments_gradient_sums_over_positions_to_the_means_gradient():
    # d/df of mu . a + <cov, W> summed over positions is a exactly (the covariance's
    # share sums to zero): the mean's share is added inside the bf16 product's float32
    # accumulator, not rounded to bf16 before it (which put 2^-9 of a there)
    x = (feats(8, 16, 12, 26).pow(2) + 0.5).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    a = torch.linspace(-1.0, 1.0, 8, dtype=torch.float32) + 0.3
    weights = torch.randn(8, 8, generator=gen(27)).float() * 0.1
    mu, cov = fused_moments(x, torch.full((8,), 0.8))
    (grad,) = torch.autograd.grad((mu * a).sum() + (cov * weights).sum(), x)
    assert grad.dtype == torch.bfloat16
    assert_close(grad.double().sum((0, 2, 3)), a.double(), 2e-4, "summed gradient")
    wide = x.detach().double().requires_grad_(True)
    m64, c64 = moments(wide)
    (expected,) = torch.autograd.grad((m64 * a).sum() + (c64 * weights).sum(), wide)
    assert_close(grad.double(), expected, 1e-2, "gradient")
    # weighted by a region guide (centred forward, the same one-product backward)
    guide = torch.rand(1, 1, 16, 12, generator=gen(28))
    mu, cov = fused_moments(x, torch.full((8,), 0.8), guide)
    (grad,) = torch.autograd.grad((mu * a).sum() + (cov * weights).sum(), x)
    wide = x.detach().double().requires_grad_(True)
    m64, c64 = moments(wide, guide.double())
    (expected,) = torch.autograd.grad((m64 * a).sum() + (c64 * weights).sum(), wide)
    assert_close(grad.double(), expected, 1e-2, "guided gradient")
    assert_close(grad.double().sum((0, 2, 3)), a.double(), 2e-4, "guided summed gradient")


def test_w2_blend_is_the_mixture_and_a_guide_weighs_positions():
    a, b = feats(3, 4, 4, 6), feats(3, 2, 8, 7, scale=3.0)
    mu, cov = blend_moments([(a, 0.25), (b, 0.75)])
    pooled = torch.cat([a[0].flatten(1)] + [b[0].flatten(1)] * 3, dim=1)  # same size: 1:3
    assert torch.allclose(mu, pooled.mean(1)) and torch.allclose(
        cov, torch.cov(pooled, correction=0)
    )
    guide = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    guide[..., :2] = 1.0
    left = a[..., :2]
    gm, gc = moments(a, guide)
    assert torch.allclose(gm, moments(left)[0]) and torch.allclose(gc, moments(left)[1])


def test_weighted_quantiles_are_the_sorted_samples_or_interpolate_them():
    values = torch.tensor([[3.0], [1.0], [2.0], [4.0]], dtype=torch.float64)
    weights = torch.full((4,), 0.25, dtype=torch.float64)
    levels = (torch.arange(4, dtype=torch.float64) + 0.5) / 4
    assert weighted_quantiles(values, weights, levels).flatten().tolist() == [1, 2, 3, 4]
    two = (torch.arange(2, dtype=torch.float64) + 0.5) / 2  # halfway between the samples
    assert weighted_quantiles(values, weights, two).flatten().tolist() == [1.5, 3.5]
    uneven = torch.tensor([0.1, 0.1, 0.1, 0.7], dtype=torch.float64)  # most on 4.0
    # centres on the cumulative scale: 1 at 0.05, 2 at 0.15, 3 at 0.25, 4 at 0.65
    levels = torch.tensor([0.6, 0.9, 0.01], dtype=torch.float64)
    out = weighted_quantiles(values, uneven, levels).flatten().tolist()
    assert out == pytest.approx([3 + 0.35 / 0.4, 4.0, 1.0])


def test_swd_in_one_channel_is_the_distance_of_sorted_values():
    x = torch.tensor([[0.5], [3.0], [1.0]], dtype=torch.float64)
    s = torch.tensor([[2.0], [0.0], [7.0]], dtype=torch.float64)
    w = torch.full((3,), 1 / 3, dtype=torch.float64)
    for sign in (1.0, -1.0):
        d = torch.tensor([[sign]], dtype=torch.float64)
        expected = ((0.5 - 0) ** 2 + (1 - 2) ** 2 + (3 - 7) ** 2) / 3
        assert sliced_wasserstein(x, s, w, d).item() == pytest.approx(expected)
    assert sliced_wasserstein(x, s, None, torch.ones(1, 1, dtype=torch.float64)).item() == (
        pytest.approx(expected)
    )  # the equal-weights path
    many = torch.rand(50, 3, generator=gen(21), dtype=torch.float64)
    style = torch.rand(70, 3, generator=gen(22), dtype=torch.float64)
    d = torch.randn(3, 3, generator=gen(23), dtype=torch.float64)
    d = d / d.norm(dim=0)
    equal = torch.full((70,), 1 / 70, dtype=torch.float64)
    assert sliced_wasserstein(many, style, None, d).item() == pytest.approx(
        sliced_wasserstein(many, style, equal, d).item(), rel=1e-12
    )
    doubled = s.repeat_interleave(2, dim=0)  # another size, the same distribution
    w2 = torch.full((6,), 1 / 6, dtype=torch.float64)
    one = torch.tensor([[1.0]], dtype=torch.float64)
    assert sliced_wasserstein(x, doubled, w2, one).item() == pytest.approx(expected)


def test_swd_draws_new_seeded_directions_each_evaluation_and_its_gradient_is_right():
    s = feats(3, 5, 5, 8)
    x = feats(3, 4, 4, 9)
    a = SWDTarget(s[0].flatten(1).T, torch.full((25,), 1 / 25), seed=3)
    b = SWDTarget(s[0].flatten(1).T, torch.full((25,), 1 / 25), seed=3)
    first, second = a(x).item(), a(x).item()
    assert first != second  # new directions
    assert [b(x).item(), b(x).item()] == [first, second]  # the seed repeats them
    assert SWDTarget(s[0].flatten(1).T, torch.full((25,), 1 / 25), 3)(s).item() < 1e-12

    class Fixed(torch.nn.Module):  # one draw of directions, for gradcheck
        def forward(self, f):
            g = torch.Generator().manual_seed(0)
            d = torch.randn(3, 3, generator=g, dtype=torch.float64)
            w = torch.full((25,), 1 / 25, dtype=torch.float64)
            return sliced_wasserstein(f[0].flatten(1).T, s[0].flatten(1).T, w, d / d.norm(dim=0))

    assert torch.autograd.gradcheck(Fixed(), (x.clone().requires_grad_(True),), eps=1e-6)


def test_swd_refuses_masks_in_one_line():
    with pytest.raises(
        ConfigError, match="style-loss swd: masks are not supported; use gram, w2 or mrf"
    ):
        Config(style_loss="swd", mask="m.png", regions=(("#ff0000", "1"),))


@pytest.mark.parametrize("loss", ["w2", "swd", "mrf"])
def test_a_run_with_each_style_loss_lowers_it(images, tiny_network, loss):
    import nst
    from nst import planning
    from nst.events import Step

    size = 48 if loss == "mrf" else 32  # a 3x3 patch at conv4_1 needs 24 px
    config = Config(size=size, iterations=6, seed=0, style_loss=loss, style_blend=(0.6, 0.4))
    plan = planning.plan_stylize(images["content"], [images["style"], images["style"]], config)
    events = []
    image = nst.execute(plan, events.append)
    steps = [e for e in events if isinstance(e, Step)]
    style = [s.style_loss for s in steps]
    assert image.shape[0] == 3 and torch.isfinite(image).all()
    first = config.style_layers[0][0]
    assert style[-1] < 0.9 * style[0] and f"style:{first}" in steps[-1].terms


def test_w2_with_regions_gives_each_region_its_style(images, tiny_network, tmp_path):
    import nst
    from nst import planning
    from nst.events import Step
    from tests.test_planning import two_region_mask

    mask = two_region_mask(tmp_path / "mask.png")
    config = Config(size=48, iterations=4, seed=0, style_loss="w2", mask=str(mask),
                    regions=(("#ff0000", "1"), ("#0000ff", "2")))  # fmt: skip
    plan = planning.plan_stylize(images["content"], [images["style"], images["style2"]], config)
    events: list = []
    nst.execute(plan, events.append)
    steps = [e for e in events if isinstance(e, Step)]
    assert steps[-1].style_loss < steps[0].style_loss
    objective = nst.execution.build_objective(plan, 0, nst.runtime.network(
        None, "avg", True, plan.layers, torch.device("cpu"), None))  # fmt: skip
    term = objective.modules_["style__conv1_1"]
    assert len(term) == 2 and all(t.guide is not None for t in term)  # one target per region


def test_every_declared_style_loss_is_registered_and_can_what_it_says():
    """The options declare each style loss's abilities without torch (masks, tiles); the
    registered statistic of the same name must agree."""
    from nst.config import STYLE_LOSS_KINDS, style_losses_that
    from nst.objective import STATISTICS
    from nst.objective.tiling import Tileable

    assert set(STATISTICS) == set(STYLE_LOSS_KINDS)
    features = torch.rand(1, 8, 6, 7, generator=gen(4))
    for name, kind in STYLE_LOSS_KINDS.items():
        stat = STATISTICS[name]
        assert (stat.guides, stat.tiles) == (kind.guides, kind.tiles)
        # a tileable statistic encodes from sums, or its target is a tileable module
        target = stat.encode([(features, 1.0)], None, 0, 0)
        assert kind.tiles == (stat.encode_moments is not None or isinstance(target, Tileable))
    assert style_losses_that("guides") == "gram, w2 or mrf"
    assert style_losses_that("tiles") == "gram, w2 or mrf"
