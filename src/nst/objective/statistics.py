"""Style statistics: what a style term matches of a layer's features (``--style-loss``).

Each statistic encodes the target of one layer once, from one or several style images
(a blend, with weights) and an optional region guide on the generated image, and says
in which units its value enters the total. The style term spec
(:mod:`nst.objective.terms`) builds ``style:LAYER`` terms with the run's statistic; a new
statistic is one module that :func:`register` s itself (``w2.py``, ``swd.py``) and its
declaration in :data:`nst.config.STYLE_LOSS_KINDS` (whether it takes masks and tiles,
checked before torch loads).

``gram`` (the paper's): the Gram matrix, E_l in the paper's units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .losses import StyleTarget, gram_matrix, style_layer_loss
from .objective import CALIBRATION, REFERENCE_STYLE_FACTOR, Objective

#: one style image's features at a layer (1, C, H, W) and its weight in the blend
Sample = tuple[torch.Tensor, float]
#: one style image's sums over a layer's positions (:data:`nst.objective.tiling.Moments`:
#: of the features, of their outer products, the count) and its weight in the blend
MomentSample = tuple[tuple[torch.Tensor, torch.Tensor, int], float]


@dataclass(frozen=True)
class Statistic:
    """How one kind of style loss encodes a layer's target and weighs its value."""

    name: str
    #: (the style images' features with their blend weights, the layer's guide or None,
    #: the run's seed, the layer's index, and the options of ``takes`` by name) -> the
    #: term's module
    encode: Callable[..., nn.Module]
    #: (objective, channels) -> what the value is multiplied by, before beta * w_l
    units: Callable[[Objective, int], float]
    #: how ``nst score`` measures an image's features (1, C, H, W) against the style
    #: images' (a blend) at the layer of that index: the distance in the statistic's own
    #: units, whatever the run's weighting
    score: Callable[[Sequence[Sample], torch.Tensor, int], float]
    #: the same from each style image's sums over positions (:class:`MomentSample`), which
    #: can be taken in tiles; None: the statistic needs the features themselves (in a
    #: tiled run they are assembled from the tiles: mrf's patches)
    encode_moments: (
        Callable[[Sequence[MomentSample], torch.Tensor | None, int, int], nn.Module] | None
    ) = None
    #: other views of a (1, 3, H, W) style image whose features join its own when
    #: ``--style-views`` is on (mrf: turned and scaled copies); None: the image alone
    views: Callable[[torch.Tensor], list[torch.Tensor]] | None = None
    #: what ``encode`` needs of one style image's features at a layer, given every style
    #: image's (h, w) there and this one's number among them: taken as each image's
    #: features are computed, so one image's are held at a time (mrf: its share of the
    #: patches); None: ``encode`` gets the features whole
    keep: Callable[[torch.Tensor, Sequence[tuple[int, int]], int], torch.Tensor] | None = None
    #: the run's options (:class:`nst.config.Config` fields) ``encode`` also takes, as
    #: keyword arguments (mrf: ``patch_match``)
    takes: tuple[str, ...] = ()

    @property
    def guides(self) -> bool:
        """It takes region guides (masks), as its declaration in the options says."""
        from ..config import STYLE_LOSS_KINDS

        return STYLE_LOSS_KINDS[self.name].guides

    @property
    def tiles(self) -> bool:
        """It can be evaluated in tiles, as its declaration in the options says (from
        sums over positions, ``encode_moments``, or a local value: mrf)."""
        from ..config import STYLE_LOSS_KINDS

        return STYLE_LOSS_KINDS[self.name].tiles


STATISTICS: dict[str, Statistic] = {}


def positions(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) features as (M, C) positions, in float32 (float64 stays float64)."""
    f = features[0].flatten(1).transpose(0, 1)
    return f if f.dtype in (torch.float32, torch.float64) else f.float()


def register(statistic: Statistic) -> Statistic:
    STATISTICS[statistic.name] = statistic
    return statistic


def statistic(name: str) -> Statistic:
    if name not in STATISTICS:
        raise ConfigError(f"style-loss must be one of {', '.join(STATISTICS)} (got {name!r})")
    return STATISTICS[name]


def gram_units(objective: Objective, channels: int) -> float:
    """What E_l of a layer with ``channels`` filters is multiplied by, before beta * w_l."""
    if objective.weighting == "paper":
        return 1.0
    calibration = CALIBRATION if objective.weighting == "calibrated" else 1.0
    return calibration * REFERENCE_STYLE_FACTOR / (channels * channels)


def _gram_target(
    samples: Sequence[Sample], guide: torch.Tensor | None, seed: int, layer: int
) -> nn.Module:
    total = sum(w for _, w in samples)
    blended: torch.Tensor | None = None
    for features, weight in samples:
        g = gram_matrix(features)[0] * (weight / total)
        blended = g if blended is None else blended + g
    assert blended is not None
    return StyleTarget(blended.unsqueeze(0), guide)


def _gram_from_moments(
    samples: Sequence[MomentSample], guide: torch.Tensor | None, seed: int, layer: int
) -> nn.Module:
    total = sum(w for _, w in samples)
    blended = sum(outer / count * (w / total) for (_, outer, count), w in samples)
    assert isinstance(blended, torch.Tensor)
    return StyleTarget(blended.float().unsqueeze(0), guide)


def _gram_score(samples: Sequence[Sample], features: torch.Tensor, layer: int) -> float:
    """E_l between the image's Gram matrix and the blend of the style images'."""
    total = sum(w for _, w in samples)
    target = torch.stack([gram_matrix(f)[0] * (w / total) for f, w in samples]).sum(0)
    return float(style_layer_loss(gram_matrix(features)[0], target))


GRAM = register(Statistic("gram", _gram_target, gram_units, _gram_score,
                          encode_moments=_gram_from_moments))  # fmt: skip
