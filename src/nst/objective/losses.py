"""The paper's losses as small pure functions, plus modules that encode a target once.

Notation (Gatys et al. 2016): layer l has N_l filters and M_l = H*W positions;
F is the (N_l x M_l) response of the generated image, P that of the content
image, A the Gram matrix of the style image.

* content:  L_content = 1/2 * sum_ij (F_ij - P_ij)^2
* Gram:     G_ij = sum_k F_ik F_jk; here kept divided by M_l (``gram_matrix``)
* style:    E_l = 1/(4 N_l^2 M_l^2) * sum_ij (G_ij - A_ij)^2
            = 1/(4 N_l^2) * sum_ij (G_ij/M_l - A_ij/M_l)^2,
  which is how it is computed, so a style image of another size (other M_l)
  is compared through its own normalized Gram.

All loss math runs in float32 even when the network runs in bf16/fp16 (the Gram matrices
of bf16 features on the CPU from two bf16 products, to 2^-16 of each entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..model.weights import IMAGENET_MEAN_RGB

if TYPE_CHECKING:
    from .tiling import Where


def _as_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, M, C) without a copy for channels_last tensors."""
    b, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(b, h * w, c)


def gram_in_bf16_products(f: torch.Tensor) -> bool:
    """Whether the Gram matrix of ``f`` (B, M, C) is computed by :func:`bf16_gram`:
    bfloat16 features on the CPU with more positions than channels (measured there:
    benchmarks/gram_products.py; with fewer, as conv5_1's 160 x 512 at 256 px, the two
    products cost more than one in float32; elsewhere the float32 products stay)."""
    return f.dtype == torch.bfloat16 and f.device.type == "cpu" and f.shape[1] > f.shape[2]


def bf16_gram(f: torch.Tensor) -> torch.Tensor:
    """F^T F (float32) of bfloat16 F (B, M, C) from two bfloat16 products, each accumulated
    in float32 and rounded to bfloat16 at its end: ``high`` = F^T F, then ``low`` = F^T F -
    high, ``high`` subtracted inside the second product's accumulator (``baddbmm``'s beta)
    before it is rounded. high + low carries each entry to 2^-16 of itself, bfloat16's
    unit roundoff squared (measured: at most 7.7e-6; float32 products 5e-7; one bfloat16
    product alone 2^-8: too coarse a loss for the line search, even with A subtracted in
    its accumulator a run from noise stopped after one iteration); the two cost less
    than one float32 product of the same features (AMX, the five style layers,
    benchmarks/gram_products.py: 3.9 against 6.2 ms at 256 px, 12 against 36 ms at 512)."""
    ft = f.transpose(1, 2)
    high = torch.bmm(ft, f)
    low = torch.baddbmm(high, ft, f, beta=-1.0)
    return high.float() + low.float()


def _products(f: torch.Tensor) -> torch.Tensor:
    """F^T F of F (B, M, C), a new float32 (float64 stays float64) tensor."""
    if gram_in_bf16_products(f):
        return bf16_gram(f)
    wide = f if f.dtype in (torch.float32, torch.float64) else f.float()
    return torch.bmm(wide.transpose(1, 2), wide)


class _Gram(torch.autograd.Function):
    """G = F^T F / d for F (B, M, C), with a backward of one matmul: dF = F (dG + dG^T) / d.

    Autograd's generic backward of ``bmm(F^T, F)`` runs two matmuls (one per operand);
    this one runs one. The Gram matrix itself is always float32 (or float64): float32
    products, or for bfloat16 features on the CPU two bfloat16 ones (:func:`bf16_gram`);
    the backward matmul runs in the features' own precision, since its result feeds the
    network's backward pass in that precision anyway (accumulation is float32 in both
    oneDNN and cuBLAS).
    """

    @staticmethod
    def forward(ctx, f: torch.Tensor, divisor: float) -> torch.Tensor:
        ctx.save_for_backward(f)
        ctx.divisor = divisor
        return _products(f).div_(divisor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (f,) = ctx.saved_tensors
        sym = (grad + grad.transpose(1, 2)) / ctx.divisor
        return torch.bmm(f, sym.to(f.dtype)), None


class _GramLoss(torch.autograd.Function):
    """E_l = c * sum (G - A)^2 of F (B, M, C), G = F^T F / d, in one function: the
    difference D kept for the backward, one matmul there, dF = F (D + D^T) 2 c / d.

    The same numbers as ``style_layer_loss(gram_matrix(...), A)`` (autograd through
    :class:`_Gram`) in a handful of operations instead of a dozen per layer: the five
    layers' term 8-16% cheaper, an evaluation 2-5% in bf16 (benchmarks/gram_term.py)."""

    @staticmethod
    def forward(
        ctx, f: torch.Tensor, target: torch.Tensor, divisor: float, scale: float
    ) -> torch.Tensor:
        diff = _products(f).div_(divisor).sub_(target)
        ctx.save_for_backward(f, diff)
        ctx.factor = 2.0 * scale / divisor
        flat = diff.reshape(-1)
        return torch.dot(flat, flat) * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        f, diff = ctx.saved_tensors
        sym = (diff + diff.transpose(1, 2)).mul_(grad * ctx.factor)
        return torch.bmm(f, sym.to(f.dtype)), None, None, None


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """:func:`style_layer_loss` of :func:`gram_matrix` (``features``) against the
    M-normalized ``target_gram``, in one autograd function (:class:`_GramLoss`)."""
    f = _as_matrix(features)
    n = f.shape[2]
    return _GramLoss.apply(f, target_gram, float(f.shape[1]), 1.0 / (4.0 * n * n))


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Gram matrices (B, C, C) of (B, C, H, W) features, divided by H*W if ``normalize``.

    float32 (float64 stays float64), whatever the features' dtype; of bfloat16 features
    on the CPU to 2^-16 of each entry (:func:`bf16_gram`).
    """
    f = _as_matrix(features)
    return _Gram.apply(f, float(f.shape[1]) if normalize else 1.0)


def guided_gram_matrix(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Gram matrix of features weighted by a spatial guide (Gatys et al. 2017).

    ``guide`` (B, 1, H, W) holds weights in [0, 1]; the result is divided by the
    guide's energy sum(g^2) (the area, for a binary mask), so a region's Gram does not
    depend on its size and a guide of ones gives :func:`gram_matrix`.
    """
    f = _as_matrix(features)
    if f.dtype not in (torch.float32, torch.float64):
        f = f.float()
    g = _as_matrix(guide.to(f.dtype))  # (B, M, 1)
    fg = f * g
    mass = g.pow(2).sum(dim=1, keepdim=True).clamp_min(1e-8)  # (B, 1, 1)
    return torch.bmm(fg.transpose(1, 2), fg) / mass


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's L_content = 1/2 * sum (F - P)^2 (float32)."""
    diff = (
        features.float() - target.float() if features.dtype != torch.float64 else features - target
    )
    return 0.5 * diff.pow(2).sum()


def style_layer_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """The paper's E_l from two M-normalized Gram matrices: sum (G - A)^2 / (4 N^2)."""
    n = gram.shape[-1]
    return (gram - target_gram).pow(2).sum() / (4.0 * n * n)


#: keeps R_V^beta differentiable where neighbours are equal (0..1 units squared)
TV_EPS = 1e-8
#: the pixel bound B of the alpha-norm prior (0..255 units, around the mean pixel)
ALPHA_BOUND = 128.0


def tv_loss(image: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Total variation prior R_V^beta of Mahendran & Vedaldi (2015).

    ``image`` in 0..255 pixel units; the value is measured in 0..1 units and averaged
    over positions, so weights do not depend on the pixel scale or on the image size.
    beta = 2 (the default) is the mean squared difference of vertical neighbours plus
    that of horizontal neighbours; other beta use the paper's form, the mean of
    ((x[i,j+1]-x[i,j])^2 + (x[i+1,j]-x[i,j])^2)^(beta/2) (beta < 2 favours sharp edges).
    """
    x = (image if image.dtype == torch.float64 else image.float()) / 255.0
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    if beta == 2.0:
        return dh.pow(2).mean() + dw.pow(2).mean()
    d2 = dh[..., :, :-1].pow(2) + dw[..., :-1, :].pow(2)
    return (d2 + TV_EPS).pow(beta / 2).mean()


def alpha_norm_loss(image: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    """The alpha-norm prior of Mahendran & Vedaldi: the mean over pixels of
    (|x - mean pixel| / B)^alpha, |.| over the colour channels, B = 128: nothing for a
    natural image's range, fast-growing for pixels pushed past it."""
    x = image if image.dtype == torch.float64 else image.float()
    mean = torch.tensor(IMAGENET_MEAN_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    norm = (x - mean).pow(2).sum(dim=1).add(1e-12).sqrt() / ALPHA_BOUND
    return norm.pow(alpha).mean()


class ContentTarget(nn.Module):
    """Encodes the content representation P of one layer once; compares F to it.

    In tiles (:mod:`nst.objective.tiling`) it is a local term: each tile's value is the
    loss of its positions."""

    target: torch.Tensor
    local = True
    stats_count = 1

    def __init__(self, target_features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target_features.detach().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target)

    def tile_stats(self, features: torch.Tensor, where: Where) -> tuple[torch.Tensor, ...]:
        return (content_loss(features, where.crop(self.target)),)

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor:
        return stats[0]


class StyleTarget(nn.Module):
    """Encodes the (blended) Gram target A of one layer once; gives E_l for F.

    ``guide`` (optional, (1, 1, H, W) at the layer's resolution) restricts the
    generated image's Gram matrix to a region (guided Gram of Gatys et al. 2017).
    """

    target: torch.Tensor
    guide: torch.Tensor | None
    local = False
    stats_count = 2

    def __init__(self, target_gram: torch.Tensor, guide: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach().float().clone())
        self.register_buffer("guide", None if guide is None else guide.detach().float().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.guide is None:
            return gram_style_loss(features, self.target)
        return style_layer_loss(guided_gram_matrix(features, self.guide), self.target)

    def tile_stats(self, features: torch.Tensor, where: Where) -> tuple[torch.Tensor, ...]:
        """A tile's unnormalized (guided) Gram matrix and its positions' mass."""
        f = _as_matrix(features)
        if self.guide is None:
            return _Gram.apply(f, 1.0), torch.tensor(float(f.shape[1]), device=f.device)
        g = _as_matrix(where.crop(self.guide))
        fg = (f if f.dtype == torch.float64 else f.float()) * g.to(torch.float32)
        return torch.bmm(fg.transpose(1, 2), fg), g.float().pow(2).sum()

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor:
        gram, mass = stats
        return style_layer_loss(gram / mass.clamp_min(1e-8), self.target)


class TVLoss(nn.Module):
    """The total-variation prior as a term module (reads the image, not features)."""

    def __init__(self, beta: float = 2.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image, self.beta)


class AlphaNormLoss(nn.Module):
    """The alpha-norm prior as a term module (reads the image)."""

    def __init__(self, alpha: float = 6.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return alpha_norm_loss(image, self.alpha)
