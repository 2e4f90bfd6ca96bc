"""``--style-loss w2``: each layer's features matched in mean and covariance, as the
squared 2-Wasserstein distance between the Gaussians they define (as in crowsonkb's
style-transfer-pytorch):

    W2^2 = |mu - mu_s|^2 + tr(S + S_s - 2 (S_s^1/2 S S_s^1/2)^1/2)

The target (mu_s, S_s^1/2, tr S_s) is encoded once; a blend of style images is the
mixture's mean and covariance; a region guide weighs the generated image's positions.
The trace of the matrix square root is the sum of the square roots of the eigenvalues of
the symmetric PSD matrix S_s^1/2 S S_s^1/2: ``eigvalsh``'s backward, U diag(g) U^T, is
exact and stable even for repeated eigenvalues; eigenvalues below ``EIG_FLOOR`` are
counted as zero (no infinite derivative at 0), and S gets a ridge of ``RIDGE``.

With fewer positions M than channels C (a small image's deep layers: conv5_1 at 256 px
has 192 positions for 512 channels, conv4_1 at 128 px 192), S has rank below M and the
C x C matrix has the same nonzero eigenvalues as the M x M matrix of the positions,
(F S_s^1/2)(F S_s^1/2)^T with F the centred (weighted) features: the eigen decomposition
is done on that one, exactly and far cheaper (no ridge is needed there: its eigenvalues
are the ones that are really there, not the C - M rounding-noise ones of the C x C
matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from .losses import bf16_gram, gram_in_bf16_products
from .objective import Objective
from .statistics import MomentSample, Sample, Statistic, positions, register

if TYPE_CHECKING:
    from .tiling import Where

#: added to the diagonal of the generated image's covariance (feature units squared)
RIDGE = 1e-5
#: eigenvalues of S_s^1/2 S S_s^1/2 below this count as this (their root's slope is finite)
EIG_FLOOR = 1e-8
#: the w2 value per channel enters the total times this (calibrated weighting): at the
#: default alpha/beta the result's conv4_2 distance to the content is then about the Gram's
#: (measured with benchmarks/quality.py: docs/QUALITY.md)
W2_CALIBRATION = 0.003
#: :func:`raw_moments` serves while the mean's share of the raw second moment is at most
#: this many times the covariance (3 of the products' 16 bits; the paper's and the built-in
#: images' style layers measured 1.5-4.4 at 256 px)
RAW_CANCELLATION = 8.0


def moments(
    features: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and covariance (C, C) over positions, weighted by a (1, 1, H, W) guide."""
    f = positions(features)
    if weights is None:
        mu = f.mean(0)
        centred = f - mu
        return mu, centred.T @ centred / f.shape[0]
    w = weights.to(f.dtype).flatten()[:, None]  # (M, 1)
    mass = w.sum().clamp_min(1e-8)
    mu = (w * f).sum(0) / mass
    centred = f - mu
    return mu, (w * centred).T @ centred / mass


def raw_moments(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Mean (C,) and covariance (C, C), float32, of bfloat16 positions ``f`` (M, C) from
    the raw second moment F^T F / M in two bfloat16 products (:func:`bf16_gram`, each
    entry to 2^-16 of itself) less the mean's outer product: no float32 copy of the
    positions. The mean's share cancels digits of that second moment; ``None`` where it
    is more than ``RAW_CANCELLATION`` times the covariance (Frobenius norms), and the
    caller centres in float32 instead."""
    m = f.shape[0]
    mean = f.sum(0, dtype=torch.float32) / m
    second = bf16_gram(f[None])[0] / m
    cov = second - torch.outer(mean, mean)
    if torch.linalg.matrix_norm(second) > RAW_CANCELLATION * torch.linalg.matrix_norm(cov):
        return None
    return mean, cov


class _Moments(torch.autograd.Function):
    """Mean (C,) and covariance (C, C) of the (M, C) positions ``f``, weighted by ``w``
    (M,) when given, with a backward of one matrix product (as the Gram's). For bfloat16
    features on the CPU without weights, :func:`raw_moments` (two bfloat16 products);
    otherwise taken about a fixed ``shift`` (the target's mean, so the covariance loses
    no digits to a large mean) in float32. With m = sum(w) (M without weights):

        c = f - shift,  d = w^T c / m,  cov = c^T diag(w) c / m - d d^T,  mu = shift + d
        dL/df = diag(w) ((f - mu) (G + G^T) / m + 1 g_mu^T / m)

    for G = dL/dcov, g_mu = dL/dmu. For bfloat16 features the backward is one bfloat16
    product of [f, 1, 1] with [S; b_hi; b_lo], S = (G + G^T) / m rounded to bfloat16 and
    b = g_mu / m - mu S (float32) split into two bfloat16 rows: f S and the mean's share
    cancel inside the product's float32 accumulator, rounded once at its end (the
    gradient's sum over positions, g_mu, to ~2^-16; rounding S and b alone, or centring
    f in bfloat16 first, puts 2^-9 of it there). Otherwise the centred positions in
    the features' precision (f (G + G^T) less its mean's share would cancel to the
    rounding of f). Autograd's generic graph of the same (a float copy, the centring,
    the product) runs three products in float32."""

    @staticmethod
    def forward(
        ctx, f: torch.Tensor, shift: torch.Tensor, w: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raw = raw_moments(f) if w is None and gram_in_bf16_products(f[None]) else None
        if raw is not None:
            mu, cov = raw
            mass = torch.tensor(float(f.shape[0]), dtype=mu.dtype, device=f.device)
            ctx.save_for_backward(f, mu, mass, w)
            return mu, cov
        wide = torch.float64 if f.dtype == torch.float64 else torch.float32
        centred = torch.sub(f, shift.to(wide))  # one pass: the float copy and the shift
        if w is None:
            mass = torch.tensor(float(f.shape[0]), dtype=wide, device=f.device)
            d = centred.mean(0)
            second = centred.T @ centred
        else:
            w = w.to(wide)[:, None]
            mass = w.sum().clamp_min(1e-8)
            weighted = w * centred
            d = weighted.sum(0) / mass
            second = weighted.T @ centred
        cov = second / mass - torch.outer(d, d)
        mu = shift.to(wide) + d
        ctx.save_for_backward(f, mu, mass, w)
        return mu, cov

    @staticmethod
    def backward(ctx, g_mu: torch.Tensor, g_cov: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        f, mu, mass, w = ctx.saved_tensors
        sym = (g_cov + g_cov.T) / mass
        if f.dtype == torch.bfloat16:
            sym_b = sym.to(f.dtype)
            bias = g_mu / mass - mu @ sym_b.to(mu.dtype)
            bias_hi = bias.to(f.dtype)
            bias_lo = (bias - bias_hi.to(bias.dtype)).to(f.dtype)
            ones = torch.ones(f.shape[0], 2, dtype=f.dtype, device=f.device)
            grad = torch.cat([f, ones], 1) @ torch.cat([sym_b, bias_hi[None], bias_lo[None]])
        else:
            centred = torch.sub(f, mu).to(f.dtype)  # f sym and 1 (sym mu)^T would cancel
            grad = torch.addmm((g_mu / mass).to(f.dtype)[None], centred, sym.to(f.dtype))
        return (grad if w is None else grad * w.to(f.dtype)), None, None


def fused_moments(
    features: torch.Tensor, shift: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`moments` (the same values, weighted by a (1, 1, H, W) guide when given),
    by :class:`_Moments`."""
    b, c, h, w = features.shape
    f = features.permute(0, 2, 3, 1).reshape(b * h * w, c)  # no copy for channels_last
    flat = None if weights is None else weights.reshape(-1)
    return _Moments.apply(f, shift, flat)


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The square root of a symmetric PSD matrix (no gradient needed: targets only)."""
    vals, vecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def root_sum(inner: torch.Tensor) -> torch.Tensor:
    """The trace of the square root of a symmetric PSD matrix, in float64: the sum of its
    eigenvalues' roots, those at or below ``EIG_FLOOR`` (zero but for rounding) counted as
    zero and given no slope."""
    inner = inner.double()
    return floored_roots(torch.linalg.eigvalsh((inner + inner.T) / 2)).sum()


def floored_roots(eig: torch.Tensor) -> torch.Tensor:
    """The eigenvalues' square roots, those at or below ``EIG_FLOOR`` counted as zero."""
    return torch.where(eig > EIG_FLOOR, eig.clamp_min(EIG_FLOOR).sqrt(), 0.0)


class _CrossRoot(torch.autograd.Function):
    """tr((R S R)^1/2) for a covariance S and the target's root R (symmetric), the
    eigenvalues in float64 as :func:`root_sum`; the gradient with respect to S in two
    float32 products: with R S R = U diag(l) U^T and V = R U,

        d tr((R S R)^1/2) / dS = R (U diag(l^-1/2) U^T / 2) R = V diag(l^-1/2 / 2) V^T

    (eigenvalues at or below ``EIG_FLOOR`` given no slope, as in :func:`root_sum`).
    Autograd's graph of the same runs a float64 product for ``eigvalsh``'s backward and
    four float32 products back through R S R."""

    @staticmethod
    def forward(ctx, cov: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        inner = (root @ cov @ root).double()
        vals, vecs = torch.linalg.eigh((inner + inner.T) / 2)
        roots = floored_roots(vals)
        slopes = torch.where(roots > 0, 0.5 / roots.clamp_min(1e-300), 0.0)
        ctx.save_for_backward(root, vecs, slopes)
        return roots.sum().to(cov.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        root, vecs, slopes = ctx.saved_tensors
        v = root @ vecs.to(root.dtype)
        return (v * (grad * slopes).to(v.dtype)) @ v.T, None


def cross_root(cov: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """tr((root cov root)^1/2), differentiable in ``cov`` (:class:`_CrossRoot`)."""
    return _CrossRoot.apply(cov, root)


def w2_squared(
    mu: torch.Tensor,
    cov: torch.Tensor,
    mu_s: torch.Tensor,
    cov_s_sqrt: torch.Tensor,
    trace_s: torch.Tensor,
) -> torch.Tensor:
    """W2^2 between N(mu, cov) and N(mu_s, cov_s) given cov_s^1/2 and tr(cov_s)."""
    cross = cross_root(cov, cov_s_sqrt.to(cov.dtype))
    return (mu - mu_s).pow(2).sum() + torch.trace(cov) + trace_s - 2 * cross


class W2Target(nn.Module):
    """One layer's style target (mean and covariance of a blend) for the w2 loss."""

    mu: torch.Tensor
    cov_sqrt: torch.Tensor
    trace: torch.Tensor
    guide: torch.Tensor | None
    local = False
    stats_count = 3

    def __init__(
        self, mu: torch.Tensor, cov: torch.Tensor, guide: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.register_buffer("mu", mu.detach().clone())
        self.register_buffer("cov_sqrt", sqrtm_psd(cov.detach()))
        self.register_buffer("trace", torch.trace(cov.detach()).clone())
        self.register_buffer("guide", None if guide is None else guide.detach().float().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _, c, h, w = features.shape
        if h * w < c:
            return self._few_positions(positions(features))
        return self._distance(*fused_moments(features, self.mu, self.guide))

    def _few_positions(self, f: torch.Tensor) -> torch.Tensor:
        """W2^2 from the (M, C) positions when M < C: the cross term's eigenvalues are
        those of the M x M matrix of the positions' rows times S_s^1/2."""
        dtype = f.dtype
        if self.guide is None:
            w = torch.full((f.shape[0], 1), 1.0 / f.shape[0], dtype=dtype, device=f.device)
        else:
            w = self.guide.to(dtype).flatten()[:, None]
            w = w / w.sum().clamp_min(1e-8)
        mu = (w * f).sum(0)
        centred = (f - mu) * w.sqrt()  # cov = centred^T centred
        rows = centred @ self.cov_sqrt.to(dtype)
        cross = root_sum(rows @ rows.T).to(dtype)
        mean = (mu - self.mu.to(dtype)).pow(2).sum()
        return mean + centred.pow(2).sum() + self.trace.to(dtype) - 2 * cross

    def _distance(self, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        dtype = mu.dtype
        eye = torch.eye(cov.shape[0], dtype=dtype, device=cov.device)
        cov = cov + RIDGE * eye
        return w2_squared(mu, cov, self.mu.to(dtype), self.cov_sqrt.to(dtype), self.trace.to(dtype))

    def tile_stats(self, features: torch.Tensor, where: Where) -> tuple[torch.Tensor, ...]:
        """A tile's (guide-weighted) sums of the features and of their outer products, both
        taken from the target's mean (so the covariance loses no digits), and its mass."""
        f = positions(features) - self.mu.to(torch.float32)
        if self.guide is None:
            return f.sum(0), f.T @ f, torch.tensor(float(f.shape[0]), device=f.device)
        w = where.crop(self.guide).flatten()[:, None].to(f.dtype)
        wf = w * f
        return wf.sum(0), wf.T @ f, w.sum()

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor:
        first, second, mass = stats
        mass = mass.clamp_min(1e-8)
        shift = first / mass
        cov = second / mass - torch.outer(shift, shift)
        return self._distance(shift + self.mu.to(shift.dtype), cov)


def blend_moments(samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and covariance of the mixture of the samples' distributions (in float64)."""
    total = sum(w for _, w in samples)
    mu = torch.zeros(())
    second = torch.zeros(())
    for features, weight in samples:
        m, c = moments(features.double())
        b = weight / total
        mu = mu + b * m
        second = second + b * (c + torch.outer(m, m))
    return mu, second - torch.outer(mu, mu)


def _encode(samples: Sequence[Sample], guide: torch.Tensor | None, seed: int, k: int) -> nn.Module:
    mu, cov = blend_moments(samples)
    return W2Target(mu.float(), cov.float(), guide)


def _encode_moments(
    samples: Sequence[MomentSample], guide: torch.Tensor | None, seed: int, k: int
) -> nn.Module:
    """The target from each style image's sums over positions (tiled encoding): the
    mixture's mean and covariance, in float64."""
    total = sum(w for _, w in samples)
    mu = torch.zeros((), dtype=torch.float64)
    second = torch.zeros((), dtype=torch.float64)
    for (first, outer, count), weight in samples:
        b = weight / total
        mu = mu + b * first / count
        second = second + b * outer / count
    return W2Target(mu.float(), (second - torch.outer(mu, mu)).float(), guide)


def w2_units(objective: Objective, channels: int) -> float:
    """W2^2 per channel: ``paper`` takes it as it is."""
    if objective.weighting == "paper":
        return 1.0
    return W2_CALIBRATION / channels


def _score(samples: Sequence[Sample], features: torch.Tensor, layer: int) -> float:
    """W2^2 per channel to the blend's Gaussian, in float64."""
    mu, cov = blend_moments(samples)
    return float(W2Target(mu, cov)(features.double())) / features.shape[1]


W2 = register(Statistic("w2", _encode, w2_units, _score, encode_moments=_encode_moments))
