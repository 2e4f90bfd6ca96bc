"""``--style-loss swd``: each layer's feature distribution matched by the sliced
Wasserstein distance (Heitz et al. 2021, "A sliced Wasserstein loss for neural texture
synthesis"): the features projected on random unit directions, each projection's sorted
values compared with the style's quantiles at the same levels:

    SWD = mean over directions and positions of (sort(F theta)_i - Q_s(theta, (i+1/2)/M))^2

New directions (as many as the layer has channels) are drawn for every evaluation from a
generator seeded by the run's seed and the layer, so a seed repeats a run. The target
keeps the style's features; a blend is the mixture (each image's positions weighted by
its blend weight over its count), so images of any size mix. Region guides are not
supported (refused in one line).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .objective import Objective
from .statistics import Sample, Statistic, positions, register

#: the swd value enters the total times this (calibrated weighting): at the start from the
#: content, the style term is then, in geometric mean over the built-in pairs, the Gram's
#: (docs/QUALITY.md)
SWD_CALIBRATION = 0.1


def weighted_quantiles(
    values: torch.Tensor, weights: torch.Tensor, levels: torch.Tensor
) -> torch.Tensor:
    """Quantiles of weighted samples, per column: ``values`` (S, K) (the samples of K
    projections), ``weights`` (S,) summing to 1, ``levels`` (M,) in (0, 1) -> (M, K).

    Each sample sits at the middle of its weight on the cumulative scale and the quantile
    function is linear between them (constant beyond the ends): equal weights and as many
    levels as samples give the sorted samples themselves."""
    order = values.argsort(dim=0)
    sorted_values = values.gather(0, order)
    w = weights[order]  # (S, K)
    centres = w.cumsum(0) - w / 2
    k = values.shape[1]
    lv = levels[:, None].expand(-1, k).contiguous()
    hi = torch.searchsorted(centres.T.contiguous(), lv.T.contiguous()).T  # (M, K)
    hi = hi.clamp(1, values.shape[0] - 1) if values.shape[0] > 1 else hi.clamp(0, 0)
    lo = (hi - 1).clamp_min(0)
    c_lo, c_hi = centres.gather(0, lo), centres.gather(0, hi)
    v_lo, v_hi = sorted_values.gather(0, lo), sorted_values.gather(0, hi)
    span = (c_hi - c_lo).clamp_min(1e-12)
    t = ((lv - c_lo) / span).clamp(0, 1)
    return v_lo + t * (v_hi - v_lo)


def uniform_quantiles(sorted_rows: torch.Tensor, m: int) -> torch.Tensor:
    """Quantiles at the levels (i + 1/2)/m of equally weighted samples, per row: the rows
    of ``sorted_rows`` (K, S) sorted; the quantile function is linear between the samples
    (each at the middle of its 1/S share) and constant beyond the ends -> (K, m)."""
    s = sorted_rows.shape[1]
    levels = (torch.arange(m, dtype=sorted_rows.dtype, device=sorted_rows.device) + 0.5) / m
    pos = (levels * s - 0.5).clamp(0, s - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(s - 1)
    t = pos - lo.to(pos.dtype)
    a, b = sorted_rows[:, lo], sorted_rows[:, hi]
    return a + t * (b - a)


def sliced_wasserstein(
    f: torch.Tensor,
    style: torch.Tensor,
    weights: torch.Tensor | None,
    directions: torch.Tensor,
) -> torch.Tensor:
    """SWD between positions ``f`` (M, C) and style positions (S, C), equally weighted
    (``weights`` None) or weighted (S,), along ``directions`` (C, K) of unit length.
    Projections are sorted along rows of (K, M) (contiguous, the fast layout)."""
    projected = (directions.T @ f.T).sort(dim=1).values  # (K, M)
    m = f.shape[0]
    if weights is None:
        target = uniform_quantiles((directions.T @ style.T).sort(dim=1).values, m)
    else:
        levels = (torch.arange(m, dtype=f.dtype, device=f.device) + 0.5) / m
        target = weighted_quantiles(style @ directions, weights, levels).T
    return (projected - target).pow(2).mean()


class SWDTarget(nn.Module):
    """One layer's style target for the sliced Wasserstein loss: the (blended) style
    positions and their weights (None: all equal); new seeded directions every
    evaluation."""

    style: torch.Tensor
    weights: torch.Tensor | None

    def __init__(self, style: torch.Tensor, weights: torch.Tensor | None, seed: int) -> None:
        super().__init__()
        self.register_buffer("style", style.detach().float().clone())
        w = None if weights is None else weights.detach().float().clone()
        if w is not None and bool((w == w[0]).all()):
            w = None  # equal weights: the fast path
        self.register_buffer("weights", w)
        self.generator = torch.Generator().manual_seed(seed)

    def directions(self, channels: int, dtype: torch.dtype) -> torch.Tensor:
        d = torch.randn(channels, channels, generator=self.generator, dtype=torch.float64)
        return (d / d.norm(dim=0, keepdim=True)).to(dtype)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        f = positions(features)
        directions = self.directions(f.shape[1], f.dtype).to(f.device)
        weights = None if self.weights is None else self.weights.to(f.dtype)
        return sliced_wasserstein(f, self.style.to(f.dtype), weights, directions)


def _encode(samples: Sequence[Sample], guide: torch.Tensor | None, seed: int, k: int) -> nn.Module:
    total = sum(w for _, w in samples)
    points, weights = [], []
    for features, weight in samples:
        p = positions(features)
        points.append(p)
        weights.append(torch.full((p.shape[0],), weight / total / p.shape[0], dtype=p.dtype))
    return SWDTarget(torch.cat(points), torch.cat(weights), seed * 1009 + k)


def swd_units(objective: Objective, channels: int) -> float:
    if objective.weighting == "paper":
        return 1.0
    return SWD_CALIBRATION


#: random projections a score averages (each draw is another set of directions)
SCORE_DRAWS = 4


def _score(samples: Sequence[Sample], features: torch.Tensor, layer: int) -> float:
    """SW^2 averaged over :data:`SCORE_DRAWS` draws of directions, seeded by the layer."""
    target = _encode(samples, None, 0, layer)
    return float(sum(float(target(features)) for _ in range(SCORE_DRAWS)) / SCORE_DRAWS)


SWD = register(Statistic("swd", _encode, swd_units, _score))
