"""Perceptual controls of Gatys et al. 2017 that act on images: colour and regions.

* Colour preservation, ``luminance``: transfer on the luminance channel only (YIQ),
  then recombine with the content's chroma (I, Q).
* Colour preservation, ``histogram``: transform the style image's pixels linearly so
  their mean and covariance equal the content's, before the transfer.
* Regions: a label image whose colours mark regions, turned into one guide
  (soft mask) per colour for guided Gram matrices.

Images are (3, H, W) float tensors in [0, 1].
"""

from __future__ import annotations

import torch

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    m = matrix.to(image.dtype).to(image.device)
    return torch.einsum("ij,jhw->ihw", m, image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Y of YIQ as a (1, H, W) tensor."""
    return rgb_to_yiq(image)[:1]


def luminance_image(image: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """The luminance as a gray RGB image; with ``like``, its mean and std matched to ``like``'s.

    Matching the style's luminance statistics to the content's is what Gatys et al.
    2017 do before luminance-only transfer.
    """
    y = luminance(image)
    if like is not None:
        ref = luminance(like)
        y = (y - y.mean()) / y.std().clamp_min(1e-6) * ref.std() + ref.mean()
    return y.expand(3, -1, -1).contiguous()


def recombine_chroma(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content's chroma (I, Q), back in RGB."""
    y = luminance(result)
    iq = rgb_to_yiq(content)[1:]
    if iq.shape[-2:] != y.shape[-2:]:
        iq = torch.nn.functional.interpolate(
            iq[None], size=y.shape[-2:], mode="bilinear", align_corners=False
        )[0]
    return yiq_to_rgb(torch.cat([y, iq], dim=0))


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-10)
    power = -0.5 if inverse else 0.5
    return (vecs * vals.pow(power)) @ vecs.T


def match_color(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style pixels x -> A (x - mu_s) + mu_c with A = C_c^(1/2) C_s^(-1/2).

    Afterwards the style image's per-channel mean and 3x3 covariance equal the
    content's (computed in float64; not clamped, so the statistics stay exact).
    """
    s = style.reshape(3, -1).double()
    c = content.reshape(3, -1).double()
    mu_s, mu_c = s.mean(dim=1, keepdim=True), c.mean(dim=1, keepdim=True)
    cov_s = torch.cov(s) + 1e-8 * torch.eye(3, dtype=torch.float64)
    cov_c = torch.cov(c) + 1e-8 * torch.eye(3, dtype=torch.float64)
    a = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    out = a @ (s - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype)
