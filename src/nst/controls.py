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


# -- regions ---------------------------------------------------------------------------------
#: a mask pixel farther than this from every listed colour (RGB, 0..255) is unlisted
COLOUR_TOLERANCE = 100.0
#: unlisted pixels allowed (fraction of the mask) before the mask is refused
UNLISTED_ALLOWED = 0.01


def check_regions(regions: tuple[tuple[str, str], ...], n_styles: int) -> None:
    """Refuse regions naming a style that is not given, or styles no region uses."""
    from .errors import ConfigError

    used = {int(t) for _, t in regions if t != "content"}
    if used and max(used) > n_styles:
        raise ConfigError(f"regions: style {max(used)} is used but only {n_styles} given")
    unused = sorted(set(range(1, n_styles + 1)) - used)
    if unused:
        raise ConfigError(f"regions: style {unused[0]} is given but no region uses it")


def region_guides(
    mask: torch.Tensor,
    regions: tuple[tuple[str, str], ...],
    n_styles: int,
    size: tuple[int, int],
    source: str = "mask",
) -> tuple[list[torch.Tensor | None], torch.Tensor | None]:
    """Soft guides per style and the keep-the-content region, at ``size`` (h, w).

    ``mask`` is a (3, H, W) image in [0, 1] whose colours label regions; ``regions`` maps
    ``#rrggbb`` colours to a style number (from 1) or ``content``. Each pixel takes the
    nearest listed colour; the guides are the label maps averaged down to ``size``, so
    edges are soft. Returns one (1, h, w) guide per style (None for an unused style) and a
    (1, h, w) content region (None if no colour maps to content).
    """
    from .errors import ImageError
    from .options import parse_colour

    colours = torch.tensor([parse_colour(c) for c, _ in regions], dtype=torch.float32)
    pixels = mask.reshape(3, -1).T * 255.0  # (P, 3)
    dist = torch.cdist(pixels, colours)  # (P, K)
    nearest = dist.argmin(dim=1)
    unlisted = dist.min(dim=1).values > COLOUR_TOLERANCE
    if float(unlisted.float().mean()) > UNLISTED_ALLOWED:
        common = pixels[unlisted].round().to(torch.int64)
        values, counts = torch.unique(common, dim=0, return_counts=True)
        top = values[counts.argmax()].tolist()
        share = float(unlisted.float().mean()) * 100
        raise ImageError(
            source,
            f"colour #{top[0]:02x}{top[1]:02x}{top[2]:02x} (and others) covers {share:.0f}% of "
            "the mask but is not listed in --regions",
        )
    h, w = mask.shape[1:]
    check_regions(regions, n_styles)
    targets = [t for _, t in regions]

    def guide(selector: set[int]) -> torch.Tensor:
        onehot = torch.zeros(h * w)
        for k in selector:
            onehot += (nearest == k).float()
        g = onehot.view(1, 1, h, w)
        if (h, w) != tuple(size):
            g = torch.nn.functional.interpolate(g, size=size, mode="area")
        return g[0]

    guides: list[torch.Tensor | None] = []
    for style in range(1, n_styles + 1):
        guides.append(guide({i for i, t in enumerate(targets) if t == str(style)}))
    content_idx = {i for i, t in enumerate(targets) if t == "content"}
    keep = guide(content_idx) if content_idx else None
    return guides, keep
