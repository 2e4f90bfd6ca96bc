"""``--style-loss mrf``: each 3x3 patch of the picture's features pulled towards a
patch of the style's features (Li & Wand 2016, "Combining Markov random fields
and convolutional neural networks for image synthesis", CNNMRF):

    E = sum_i w_i |P_i(F) - S_nn(i)|^2 / (sum_i w_i * 9C)

``P_i(F)`` is the picture's patch at position i (3x3 positions x C channels),
``nn(i)`` its style patch (found at every evaluation, without gradient), ``w_i`` the
region guide at the patch's centre (1 without one). Statistics lose local structure
(strokes, tiles, letters); matching patches keeps it. Matched by correlation, a patch
takes the style patch of the same shape whatever its strength; matched by distance
instead (tried), a photo's patches mostly find the painting's faint, flat ones and the
picture turns muddy.

Which style patch (``--patch-match``): ``nearest`` is CNNMRF's, the highest normalized
cross-correlation; many of the picture's patches then take the same few (chelsea x
mosaic came out in the painting's magenta and green only). ``coverage`` (the default)
divides each cosine distance d_ij by ``COVERAGE_EPS + min_k d_kj``, how near the picture's
nearest patch already is to that style patch (the normalization of Mechrez et al.'s
contextual loss and Zhou et al.'s guided correspondence): a style patch the picture
already has somewhere attracts no others, one it lacks attracts its nearest, so the
whole painting is used (all its colours, docs/QUALITY.md).

The loss jumps where a match switches, which stalls L-BFGS's line search (measured: 1
iteration in 63 evaluations): the style loss declares Adam as its optimizer unless
``--optimizer`` is given (:data:`nst.config.STYLE_LOSS_KINDS`).

Cost: the matching is one matrix product per layer of the picture's patches with the
normalized style patches (in the network's precision), taken a band of rows at a time
(``coverage`` needs each style patch's nearest picture patch first: two passes over the
bands, their products kept between them up to ``KEEP_COSINES``); the value and its
gradient then need only the matched patches folded back onto the feature grid (``T``)
and the count of patches over each position (``K``):

    sum_i w_i |P_i - S_i|^2 = <K, F^2> - 2 <T, F> + sum_i w_i |S_i|^2

so no (patches x 9C) tensor of the picture is kept for the backward pass. The sums are
taken in float64 (near convergence the value is a small difference of large sums).
The target keeps the style's patches: a blend pools the patches of every style image and
of its views (:func:`style_views`: turned and scaled copies, as CNNMRF; without them,
chelsea x mosaic repeats one diagonal of the painting's tiles over the whole picture); a
style layer's patches beyond ``MOST_STYLE_PATCHES`` are taken on a stride.

In tiles (print sizes under ``--memory-limit``): the value is a sum over the picture's
patches, so each tile takes the patches centred in its core (they read one position
beyond it, which the halo covers); coverage's one whole-image figure, each style
patch's best cosine, is gathered over the tiles first (:mod:`nst.objective.tiling`). The
same matches and value as untiled, up to the order of floating-point sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .objective import Objective
from .statistics import Sample, Statistic, register
from .tiling import Where

#: the side of a patch, in positions of the layer
PATCH = 3
#: the most style patches a layer's target keeps (more are taken on a stride): the
#: matching's cost is the picture's patches times these
MOST_STYLE_PATCHES = 4096
#: the picture's patches matched in one matrix product, at most (its memory: these times
#: the style's patches)
MATCH_ROWS = 2048
#: the mrf value enters the total times this (calibrated weighting): chosen by eye at the
#: default alpha/beta on chelsea x mosaic and x swirls at 256 px (docs/QUALITY.md): the
#: photo still recognisable, the painting's shapes in it
MRF_CALIBRATION = 0.003
#: ``--patch-match coverage``: a style patch's cosine distances are divided by this plus
#: the distance of its own nearest picture patch (0.1 measured too: between coverage and
#: the nearest on both pairs, most of the mosaic's colours lost; docs/QUALITY.md)
COVERAGE_EPS = 1e-3
#: coverage matching keeps a layer's cosines (picture patches x style patches, in the
#: network's precision) between its two passes when they are at most this many, else
#: computes them again
KEEP_COSINES = 1 << 24
#: the style image's views beside itself (``--style-views``): turned by these many degrees
#: (cut to the largest upright rectangle inside, so no border) and scaled by these
#: factors (CNNMRF's rotations and scales of the style)
VIEW_TURNS = (-15.0, 15.0)
VIEW_SCALES = (0.9, 1.1)


def patches(features: torch.Tensor) -> torch.Tensor:
    """Every 3x3 patch of (1, C, H, W) features as rows (L, 9C), L = (H-2)(W-2)."""
    return F.unfold(features, PATCH).squeeze(0).T


def patches_at(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The 3x3 patches of (1, C, H, W) features numbered ``index`` in :func:`patches`'
    order (row by row), as float32 rows (K, 9C): only those are copied."""
    across = features.shape[-1] - PATCH + 1
    offsets = torch.arange(PATCH, device=features.device)
    rows = (index // across)[:, None, None] + offsets[None, :, None]
    cols = (index % across)[:, None, None] + offsets[None, None, :]
    picked = features[0][:, rows, cols]  # (C, K, 3, 3)
    return picked.permute(1, 0, 2, 3).reshape(len(index), features.shape[1] * PATCH * PATCH).float()


def kept_patches(features: torch.Tensor, sizes: Sequence[tuple[int, int]], k: int
                 ) -> torch.Tensor:  # fmt: skip
    """Map ``k``'s share of a blend's style patches (float32 rows): the patches of all the
    maps (their (h, w) ``sizes``, this one's ``features``), numbered in turn, are taken on
    a stride when there are more than ``MOST_STYLE_PATCHES``; only the kept ones are
    copied (a print-size style image has millions)."""
    counts = [max(0, h - PATCH + 1) * max(0, w - PATCH + 1) for h, w in sizes]
    h, w = features.shape[-2:]
    counts[k] = max(0, h - PATCH + 1) * max(0, w - PATCH + 1)  # its own, as computed
    if not counts[k]:
        return features.new_zeros((0, features.shape[1] * PATCH * PATCH), dtype=torch.float32)
    step = math.ceil(sum(counts) / MOST_STYLE_PATCHES)
    first = (-sum(counts[:k])) % step  # the first number on the stride inside this map
    return patches_at(features, torch.arange(first, max(first, counts[k]), step,
                                             device=features.device))  # fmt: skip


def pooled(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """The style images' kept patches as one target, or a one-line error when no style
    image has a 3x3 patch at the layer."""
    if not sum(len(r) for r in rows):
        raise ConfigError(
            "style-size: with style-loss mrf every style image is smaller than a 3x3 patch "
            "at a style layer; give a larger --style-size or shallower --style-layers"
        )
    return torch.cat(list(rows)).contiguous()


def style_patches(samples: Sequence[Sample]) -> torch.Tensor:
    """The patches of every style image of a blend (float32 rows), on a stride over the
    pooled patches when there are more than ``MOST_STYLE_PATCHES``."""
    sizes = [(f.shape[-2], f.shape[-1]) for f, _ in samples]
    return pooled([kept_patches(f, sizes, k) for k, (f, _) in enumerate(samples)])


class MRFTarget(nn.Module):
    """One layer's style patches (raw, and normalized for the matching).

    In tiles (:mod:`nst.objective.tiling`) a local term: a tile's value is its share of
    the sum (the patches centred in its core, which read one position beyond it:
    ``margin``) over the whole image's mass; ``coverage`` matching ``gathers`` each style
    patch's best cosine over the whole picture first."""

    style: torch.Tensor
    squares: torch.Tensor
    guide: torch.Tensor | None
    local = True
    stats_count = 1
    margin = PATCH // 2

    def __init__(self, style: torch.Tensor, guide: torch.Tensor | None = None,
                 matching: str = "coverage") -> None:  # fmt: skip
        super().__init__()
        self.matching = matching
        self.register_buffer("style", style.detach().float().clone())
        self.register_buffer("squares", self.style.double().pow(2).sum(1))  # |S_j|^2, float64
        self._cast: dict[torch.dtype, torch.Tensor] = {}
        self.register_buffer("guide", None if guide is None else guide.detach().float().clone())

    @property
    def gathers(self) -> bool:
        """Coverage needs every picture patch's cosines before any patch is matched."""
        return self.matching == "coverage"

    @staticmethod
    def _bands(height: int, width: int) -> tuple[range, int]:
        """The first rows of the bands of patch rows matched (and folded) at once, and the
        band's height: at most ``MATCH_ROWS`` patches each."""
        band = max(1, MATCH_ROWS // max(1, width - PATCH + 1))
        return range(0, height - PATCH + 1, band), band

    def _window(self, features: torch.Tensor, top: int, band: int) -> torch.Tensor:
        return features[:, :, top : min(features.shape[2], top + band + PATCH - 1)]

    def gather(self, features: torch.Tensor, where: Where | None = None) -> tuple[torch.Tensor]:
        """Each style patch's best cosine with any of the picture's patches that count (a
        patch outside the guide's region, weight 0, covers nothing), (N,) float32; -inf
        where none counts. ``where``: the features are that part of the image (a tile)."""
        return (self._best(features, where)[0],)

    def _best(
        self, features: torch.Tensor, where: Where | None, keep: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        style = self._style_as(features.dtype)
        w = features.shape[3]
        outside = None if self.guide is None else self.weights(features, where) <= 0
        best = torch.full((style.shape[1],), -math.inf, device=features.device)
        tops, band = self._bands(*features.shape[2:])
        kept: list[torch.Tensor] = []
        with torch.no_grad():
            for top in tops:
                cos = cosines(patches(self._window(features, top, band)), style)
                if outside is not None:
                    first = top * (w - PATCH + 1)
                    cos = cos.masked_fill(outside[first : first + len(cos), None], -math.inf)
                best = torch.maximum(best, cos.max(dim=0).values.float())
                kept += [cos] if keep else []
        return best, kept

    def match(self, features: torch.Tensor, where: Where | None = None,
              best: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The index of the style patch each of the picture's patches is pulled to (L,), a
        band of rows at a time, in the features' precision: the one of highest normalized
        cross-correlation (``nearest``), or (``coverage``) of least cosine distance
        divided by ``COVERAGE_EPS`` plus that style patch's distance to its own nearest
        picture patch: ``best``, the style patches' best cosines over the whole image
        (:meth:`gather`), else found here first (a second pass over the bands; their
        cosines kept between the two when there are at most ``KEEP_COSINES``)."""
        _, _, h, w = features.shape
        style = self._style_as(features.dtype)
        tops, band = self._bands(*features.shape[2:])
        with torch.no_grad():
            found = [torch.zeros(0, dtype=torch.long, device=features.device)]
            if self.matching == "nearest":
                for top in tops:
                    rows = patches(self._window(features, top, band))
                    found.append((rows @ style).argmax(dim=1))
                return torch.cat(found)
            kept: list[torch.Tensor] = []
            if best is None:
                keep = (h - PATCH + 1) * (w - PATCH + 1) * style.shape[1] <= KEEP_COSINES
                best, kept = self._best(features, where, keep)
            scale = 1.0 / (COVERAGE_EPS + (1.0 - best.float()).clamp_min(0.0))
            for k, top in enumerate(tops):  # (a patch outside the region weighs 0)
                window = self._window(features, top, band)
                cos = kept[k] if kept else cosines(patches(window), style)
                # argmin of (1 - cos) * scale, as one operation on the band
                found.append(torch.addcmul(scale, cos, scale, value=-1.0).argmin(dim=1))
            return torch.cat(found)

    def _style_as(self, dtype: torch.dtype) -> torch.Tensor:
        """The style patches scaled to unit length, as columns (9C, N) in ``dtype``, cast
        once: p . s / |s| is the normalized cross-correlation but for |p|, the same for
        every style patch."""
        cached = self._cast.get(dtype)
        if cached is None or cached.device != self.style.device:
            unit = self.style / self.squares.sqrt().clamp_min(1e-12)[:, None].float()
            cached = unit.to(dtype).T.contiguous()
            self._cast = {dtype: cached}
        return cached

    def weights(self, features: torch.Tensor, where: Where | None = None) -> torch.Tensor:
        """Each patch's weight: the guide at its centre, or 1 (L,). ``where``: the
        features are that part of the image."""
        _, _, h, w = features.shape
        if self.guide is None:
            return torch.ones(max(0, h - PATCH + 1) * max(0, w - PATCH + 1),
                              device=features.device)  # fmt: skip
        guide = self.guide if where is None else where.crop(self.guide)
        inner = guide[..., 1 : h - 1, 1 : w - 1]
        return inner.reshape(-1).to(features.device)

    def mass(self, height: int, width: int, channels: int) -> torch.Tensor:
        """The sum of every patch's weight over the whole layer (``height`` x ``width``
        positions) times 9C, float64: what the squared distances are divided by."""
        if self.guide is None:
            count = max(0, height - PATCH + 1) * max(0, width - PATCH + 1)
            weight = torch.tensor(float(count), dtype=torch.float64, device=self.style.device)
        else:
            weight = self.guide[..., 1 : height - 1, 1 : width - 1].double().sum()
        return weight.clamp_min(1e-12) * (PATCH * PATCH * channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _, _, h, w = features.shape
        return self.from_stats(self.tile_stats(features, Where(0, h, 0, w, h, w)))

    def tile_stats(self, features: torch.Tensor, where: Where,
                   best: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:  # fmt: skip
        """The squared distances of the patches centred in ``where``'s core (``features``
        are the core and one position around it, clipped to the image) to their matched
        style patches, over the whole layer's mass; ``best``: what :meth:`gather` gave
        over the whole image (coverage)."""
        _, c, h, w = features.shape
        mass = self.mass(where.height, where.width, c)
        if min(h, w) < PATCH:  # no patch centred here
            value = features.float().sum() * 0.0
            return (value.double() if features.dtype == torch.float64 else value,)
        weights = self.weights(features, where).double()
        index = self.match(features, where, best)
        folded = self.folded(index, weights, (h, w))  # T: the matched patches, weighted
        ones = weights.view(1, 1, -1).expand(1, PATCH * PATCH, -1).contiguous()
        count = F.fold(ones, (h, w), PATCH)  # K: the patches' weight over each position
        x = features.double()
        constant = (weights * self.squares[index]).sum()
        total = (count * x * x).sum() - 2 * (folded * x).sum() + constant
        value = total / mass
        return (value if features.dtype == torch.float64 else value.float(),)

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor:
        return stats[0]

    def folded(self, index: torch.Tensor, weights: torch.Tensor, size: tuple[int, int]
               ) -> torch.Tensor:  # fmt: skip
        """T (1, C, H, W), float64: the matched style patches (``index``, one per picture
        patch, row by row), times their weights, added onto the positions they cover;
        folded ``MATCH_ROWS`` patches at a time, so no (patches x 9C) float64 copy of the
        whole picture is made (at a print-size tile it would be gigabytes)."""
        h, w = size
        across = w - PATCH + 1
        tops, band = self._bands(h, w)
        c = self.style.shape[1] // (PATCH * PATCH)
        out = torch.zeros((1, c, h, w), dtype=torch.float64, device=self.style.device)
        for top in tops:
            rows = min(band, h - PATCH + 1 - top)
            part = slice(top * across, (top + rows) * across)
            cols = (self.style[index[part]].double() * weights[part, None]).T.unsqueeze(0)
            out[:, :, top : top + rows + PATCH - 1] += F.fold(cols, (rows + PATCH - 1, w), PATCH)
        return out


def cosines(rows: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The cosine similarities (L, N) of the picture's patches ``rows`` (L, 9C) with the
    unit style patches ``style`` (9C, N), in the patches' precision."""
    return (rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ style


def turned(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """(1, C, H, W) turned by ``degrees`` (counter-clockwise on screen) about its centre, at the
    same scale, cut to the largest rectangle of its shape inside the turned image (so no
    border is sampled); bicubic, clamped to 0..255."""
    _, _, h, w = image.shape
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    k = min(w / (w * abs(cos) + h * abs(sin)), h / (w * abs(sin) + h * abs(cos)))
    oh, ow = max(1, int(h * k + 1e-6)), max(1, int(w * k + 1e-6))
    ys = (torch.arange(oh, dtype=torch.float32) - (oh - 1) / 2)[:, None].expand(oh, ow)
    xs = (torch.arange(ow, dtype=torch.float32) - (ow - 1) / 2)[None, :].expand(oh, ow)
    # where each output position samples the input, in grid_sample's -1..1 (corner pixels'
    # centres at +-1)
    sx = (cos * xs - sin * ys) / max((w - 1) / 2, 1e-6)
    sy = (sin * xs + cos * ys) / max((h - 1) / 2, 1e-6)
    grid = torch.stack([sx, sy], dim=-1)[None].to(image.device)
    out = F.grid_sample(image.float(), grid, mode="bicubic", padding_mode="border",
                        align_corners=True)  # fmt: skip
    return out.clamp_(0, 255).to(image.dtype)


def scaled(image: torch.Tensor, factor: float) -> torch.Tensor:
    """(1, C, H, W) resized by ``factor`` (bicubic, antialiased when shrinking)."""
    _, _, h, w = image.shape
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    out = F.interpolate(image.float(), size=size, mode="bicubic", antialias=factor < 1,
                        align_corners=False)  # fmt: skip
    return out.clamp_(0, 255).to(image.dtype)


def style_views(image: torch.Tensor) -> list[torch.Tensor]:
    """A style image's views beside itself (``VIEW_TURNS``, ``VIEW_SCALES``): their patches
    join the target's, so a picture's patch finds the painting's motif at a slightly
    different angle and size, not always the one copy of it."""
    return [turned(image, d) for d in VIEW_TURNS] + [scaled(image, f) for f in VIEW_SCALES]


def _encode(samples: Sequence[Sample], guide: torch.Tensor | None, seed: int, k: int,
            patch_match: str = "coverage") -> nn.Module:  # fmt: skip
    """The target from each style image's kept patches (:func:`kept_patches`)."""
    return MRFTarget(pooled([rows for rows, _ in samples]), guide, patch_match)


def mrf_units(objective: Objective, channels: int) -> float:
    """The mean squared patch distance: ``paper`` takes it as it is."""
    return 1.0 if objective.weighting == "paper" else MRF_CALIBRATION


def _score(samples: Sequence[Sample], features: torch.Tensor, layer: int) -> float:
    """The mean squared distance of each patch to its nearest style patch (every style
    patch, float32 matching, float64 sums)."""
    return float(MRFTarget(style_patches(samples))(features.float()))


MRF = Statistic(
    "mrf", _encode, mrf_units, _score, views=style_views, keep=kept_patches, takes=("patch_match",)
)
register(MRF)
