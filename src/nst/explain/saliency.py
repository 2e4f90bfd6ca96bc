"""Saliency: the gradient of one target (a channel, a neuron, a class score) with respect
to the image's pixels, with the backward rule of ``gradient``, ``deconvnet`` or
``guided`` backprop through every ReLU (see :mod:`.rules`).

The image is resized to the working size inside the differentiated graph, so the
gradient lands on the image's own pixel grid. Pixels are in [0, 1] units, RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..imageio import fit_size
from ..planning import ImageLike, load
from . import rules
from .network import Network, network
from .targets import Target, parse

#: without --size, images are worked on at their own size up to this longest side
DEFAULT_MAX_SIDE = 512


@dataclass(frozen=True)
class SaliencyMap:
    """``gradient`` (3, H, W): d target / d pixel on the image's own grid; ``value``: the
    target's value on the image (a neuron that does not fire has value 0)."""

    gradient: torch.Tensor
    value: float
    target: Target
    method: str
    working_size: tuple[int, int]


def working_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) the network sees: ``size`` as the longest side, or the image's own size up
    to DEFAULT_MAX_SIDE."""
    longest = size if size is not None else min(max(height, width), DEFAULT_MAX_SIDE)
    w, h = fit_size(width, height, longest)
    return h, w


def resize_differentiable(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking) that autograd can go back through."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def saliency(
    image: ImageLike,
    target: str | Target,
    method: str = "guided",
    *,
    size: int | None = None,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    net: Network | None = None,
) -> SaliencyMap:
    """The saliency map of ``target`` on ``image`` by ``method`` (``auto``: the strongest
    channel of its layer on this image, named in the result's ``target``)."""
    net = net or network(weights, pooling, device)
    t = parse(target) if isinstance(target, str) else target
    img = load(image, "image")
    wh = working_size(img.shape[1], img.shape[2], size)
    net.check(t, wh, on_image=True)
    t = resolve(t, img, wh, net)
    if method not in rules.METHODS:
        raise ValueError(f"unknown method {method!r}")
    x = img[None].to(net.device).requires_grad_(True)
    value = net.value(resize_differentiable(x * 255.0, wh), t, relu=rules.relu(method)).sum()
    (grad,) = torch.autograd.grad(value, x)
    return SaliencyMap(grad[0].detach().float().cpu(), float(value.detach()), t, method, wh)


def resolve(target: Target, image: torch.Tensor, size: tuple[int, int], net: Network) -> Target:
    """``target`` itself, or for an ``auto`` target the channel of its layer whose summed
    response to ``image`` (3, H, W in [0, 1]) at the working ``size`` (h, w) is largest."""
    if target.kind != "auto":
        return target
    layer = str(target.layer)
    x = resize_differentiable(image[None].to(net.device) * 255.0, size)
    with torch.no_grad():
        sums = net.features(x, [layer])[layer][0].float().sum(dim=(1, 2))
    return Target("channel", int(torch.argmax(sums)), layer)


def _scale(values: torch.Tensor, clip: float) -> float:
    """The ``clip`` percentile of |values| over the pixels where it is not 0: a map that is
    zero outside a small receptive field is scaled by its own pixels, not saturated."""
    a = values.abs().flatten()
    a = a[a > 0]
    if a.numel() == 0:
        return 1.0
    if a.numel() > 1 << 24:  # quantile's limit; a strided sample keeps the percentile
        a = a[:: a.numel() // (1 << 23)]
    return float(torch.quantile(a, min(max(clip, 0.0), 100.0) / 100.0)) or 1.0


def display(gradient: torch.Tensor, mode: str = "rgb", clip: float = 99.5) -> torch.Tensor:
    """The usual picture of a gradient (or any attribution), (3, H, W) in [0, 1]; values
    past the ``clip`` percentile of the non-zero |values| reach the ends.

    ``rgb``: the gradient itself, mid-grey at 0 (guided backprop and deconvnet pictures).
    ``magnitude``: max over the colour channels of |gradient|, grey (Simonyan et al.).
    ``signed``: the sum over the colours on a diverging map, blue < 0 < red, white at 0
    (integrated gradients: what raises and what lowers the target).
    ``heat``: the absolute map (max over colours) on a black-red-yellow-white scale
    (Grad-CAM maps, which are >= 0).
    """
    g = gradient.float()
    if mode == "magnitude":
        m = g.abs().amax(dim=0)
        return (m / _scale(m, clip)).clamp(0, 1).expand(3, -1, -1).contiguous()
    if mode == "signed":
        s = g.sum(dim=0)
        v = (s / _scale(s, clip)).clamp(-1, 1)
        pos, neg = v.clamp(min=0), (-v).clamp(min=0)
        return torch.stack([1 - neg, 1 - pos - neg, 1 - pos]).clamp(0, 1)
    if mode == "heat":
        m = g.abs().amax(dim=0)
        v = (m / _scale(m, clip)).clamp(0, 1)
        return torch.stack([(3 * v).clamp(0, 1), (3 * v - 1).clamp(0, 1), (3 * v - 2).clamp(0, 1)])
    return (0.5 + 0.5 * g / _scale(g, clip)).clamp(0, 1)


def overlay(gradient: torch.Tensor, photo: torch.Tensor, clip: float = 99.5) -> torch.Tensor:
    """The gradient's magnitude as a warm heat map over a dimmed grey copy of the photo."""
    heat = display(gradient, "magnitude", clip)[0]
    grey = (0.299 * photo[0] + 0.587 * photo[1] + 0.114 * photo[2]) * 0.6 + 0.2
    warm = torch.stack([torch.ones_like(heat), heat.sqrt(), torch.zeros_like(heat)])
    a = heat.clamp(0, 1) * 0.85
    return (grey * (1 - a) + warm * a).clamp(0, 1)
