"""Maximally activating patches: over a set of images, the receptive-field crops whose
centre neuron of one channel responds most (the lecture's "one row per neuron").

Each image is run at a working size (its longest side ``size``); every position of the
channel's map is a candidate; within one image, candidates whose crops overlap an
already chosen one by more than half are skipped, so the k patches are different
places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..layers import receptive_box
from ..planning import ImageLike, load
from .network import Network, network
from .saliency import working_size
from .targets import Target, parse

#: what a patch sheet uses without images: scikit-image's photos
DEFAULT_SET = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "gravel",
               "brick", "grass", "hubble_deep_field", "immunohistochemistry", "retina",
               "stereo_motorcycle", "cell")  # fmt: skip


@dataclass(frozen=True)
class Patch:
    """A crop (3, h, w) in [0, 1] of image ``source`` at ``box`` (top, left, bottom, right,
    inclusive, at the working size), where the channel's neuron gave ``value``."""

    source: str
    box: tuple[int, int, int, int]
    value: float
    image: torch.Tensor


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    top, left = max(a[0], b[0]), max(a[1], b[1])
    bottom, right = min(a[2], b[2]), min(a[3], b[3])
    if bottom < top or right < left:
        return 0.0
    inter = (bottom - top + 1) * (right - left + 1)
    area = min((a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return inter / area


def default_images() -> list[tuple[str, torch.Tensor]]:
    """The bundled photos, (name, (3, H, W) in [0, 1])."""
    from ..imageio import to_tensor
    from ..model.normalization import skimage_photo

    return [(f"skimage:{n}", to_tensor(skimage_photo(n))) for n in DEFAULT_SET]


def top_patches(
    target: str | Target,
    images: Sequence[ImageLike] | None = None,
    k: int = 8,
    *,
    size: int | None = 224,
    per_image: int = 2,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    net: Network | None = None,
) -> list[Patch]:
    """The ``k`` patches (receptive-field crops) where a channel responds most."""
    net = net or network(weights, pooling, device)
    t = parse(target) if isinstance(target, str) else target
    if t.kind != "channel":
        raise ConfigError(f"target {t.label}: top patches take a channel (e.g. conv5_1:12)")
    assert t.layer is not None
    net.check(t)
    if not 1 <= k <= 256:
        raise ConfigError(f"k must be between 1 and 256 (got {k})")
    named = (
        default_images()
        if images is None
        else [
            (str(i) if isinstance(i, str) else f"image {n + 1}", load(i))
            for n, i in enumerate(images)
        ]
    )
    if not named:
        raise ConfigError("top patches: no images given")
    found: list[Patch] = []
    for source, img in named:
        wh = working_size(img.shape[1], img.shape[2], size)
        net.check(t, wh)
        x = img[None].to(net.device) * 255.0
        if wh != tuple(img.shape[1:]):
            x = F.interpolate(x, size=wh, mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            fmap = net.features(x, [t.layer])[t.layer][0, t.index].float()
        chosen: list[tuple[int, int, int, int]] = []
        order = torch.argsort(fmap.flatten(), descending=True)
        for flat in order.tolist():
            if len(chosen) >= per_image:
                break
            value = float(fmap.flatten()[flat])
            if value <= 0:
                break
            row, col = divmod(flat, fmap.shape[1])
            box = receptive_box(t.layer, row, col, wh, net.plan)
            if any(_overlap(box, c) > 0.5 for c in chosen):
                continue
            chosen.append(box)
            crop = x[0, :, box[0] : box[2] + 1, box[1] : box[3] + 1].div(255).cpu()
            found.append(Patch(source, box, value, crop))
    found.sort(key=lambda p: -p.value)
    return found[:k]
