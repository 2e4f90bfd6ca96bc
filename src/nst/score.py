"""``nst score`` / :func:`score`: what can be measured of a result offline.

* content: the conv4_2 feature distance to the content image, relative to the content's
  own energy (|F - P|^2 / |P|^2), and SSIM of the luminance (structure);
* style: the distance to the style image(s) under every statistic (Gram E_l, W2 per
  channel, sliced Wasserstein, the mean squared distance to the nearest style patch),
  per layer (conv1_1 ... conv5_1; the patches from conv3_1, where the statistic works)
  and summed with the paper's weights 1/5; a blend of styles is scored against the blend;
* noise: the high-frequency energy of the luminance (mean square of the image minus its
  Gaussian blur, sigma 1 px) of the result, and the same of the content.

These use the same VGG19 as the optimizer (in float32, whatever precision made the
result), so a mode that optimizes one statistic looks best under it: judge each mode under
the statistics it did not optimize as well. The content is scored at the result's size,
the style at the same longest side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import controls, runtime
from .config import PAPER_STYLE_LAYERS, STYLE_LOSS_KINDS, Config
from .imageio import resize_longest, resize_to
from .layers import pools_through
from .objective.statistics import STATISTICS
from .planning import ImageLike, as_list, load

CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = tuple(n for n, _ in PAPER_STYLE_LAYERS)
#: draws of random directions averaged in the sliced Wasserstein score


@dataclass(frozen=True)
class Score:
    """The figures of one result (see the module docstring)."""

    content: float
    ssim: float
    style: dict[str, dict[str, float]] = field(default_factory=dict)  # statistic -> layer
    noise: float = 0.0
    content_noise: float = 0.0

    def style_total(self, statistic: str) -> float:
        """The mean over the layers scored (the paper's weights 1/5 where all five are)."""
        layers = self.style[statistic]
        return sum(layers.values()) / len(layers)

    @property
    def noise_ratio(self) -> float:
        return self.noise / self.content_noise if self.content_noise > 0 else float("inf")

    def to_record(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "ssim": self.ssim,
            "style": {s: self.style_total(s) for s in self.style},
            "style_layers": self.style,
            "noise": self.noise,
            "content_noise": self.content_noise,
            "noise_ratio": self.noise_ratio,
        }


def high_frequency(image: torch.Tensor) -> float:
    """Mean square of the luminance minus its Gaussian blur (sigma 1 px), 0..1 units."""
    from skimage.filters import gaussian

    lum = controls.luminance_image(image)[0].numpy().astype(np.float64)
    return float(np.mean((lum - gaussian(lum, sigma=1.0)) ** 2))


def ssim_luminance(a: torch.Tensor, b: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    la = controls.luminance_image(a)[0].numpy().astype(np.float64)
    lb = controls.luminance_image(b)[0].numpy().astype(np.float64)
    side = min(7, *la.shape) // 2 * 2 + 1 if min(la.shape) < 7 else 7
    return float(structural_similarity(la, lb, data_range=1.0, win_size=side))


@torch.no_grad()
def score(
    output: ImageLike,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: Config | None = None,
    blend: Sequence[float] | None = None,
) -> Score:
    """Score ``output`` against its content and style image(s) (``blend``: their weights,
    default equal). ``config`` chooses the network (weights, pooling, normalization,
    device); the precision is always float32."""
    config = config or Config()
    out = load(output, "output")
    photo = resize_to(load(content, "content"), (out.shape[1], out.shape[2]))
    styles = [resize_longest(load(s, "style"), max(out.shape[1:])) for s in as_list(style)]
    weights = list(blend) if blend is not None else [1.0] * len(styles)
    device = runtime.resolve_device(config.device)
    layers = [CONTENT_LAYER, *STYLE_LAYERS]
    net = runtime.network(config.weights, config.pooling, config.normalize, layers, device, None)

    def features(image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() for k, v in net(image[None].mul(255).to(device), layers).items()}

    fo, fc = features(out), features(photo)
    fs = [features(s) for s in styles]
    p = fc[CONTENT_LAYER]
    content_distance = float((fo[CONTENT_LAYER] - p).pow(2).sum() / p.pow(2).sum().clamp_min(1e-12))
    total = sum(weights)
    per: dict[str, dict[str, float]] = {s: {} for s in STATISTICS}
    for k, name in enumerate(STYLE_LAYERS):
        samples = [(x[name], w / total) for x, w in zip(fs, weights)]
        for statistic, scores in per.items():  # each statistic scores itself
            if _scores_at(statistic, name, [fo[name], *(x for x, _ in samples)]):
                scores[name] = STATISTICS[statistic].score(samples, fo[name], k)
    return Score(
        content=content_distance,
        ssim=ssim_luminance(out, photo),
        style=per,
        noise=high_frequency(out),
        content_noise=high_frequency(photo),
    )


def _scores_at(statistic: str, layer: str, features: Sequence[torch.Tensor]) -> bool:
    """A statistic is scored at a layer it can work at (mrf: conv3_1 and deeper) where the
    result and the style images have the positions it needs (mrf: a 3x3 patch)."""
    kind = STYLE_LOSS_KINDS.get(statistic)
    if kind is None:
        return True
    room = all(min(f.shape[-2:]) >= kind.patch for f in features)
    return room and pools_through(layer) + 1 >= kind.from_block
