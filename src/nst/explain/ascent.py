"""Gradient ascent: the image a channel, a neuron or a class wants to see.

I* = argmax_I f(I) - l2 * mean((I/255)^2) - tv_weight * TV(I) (Simonyan et al. 2014),
from zeros (the mean pixel) or seeded noise, with the regularizers Yosinski et al.
(2015) add between steps: a Gaussian blur every few steps, and clipping to zero the
pixels of small norm and those of small contribution |I * grad|; plus random jitter
(the image rolled by a few pixels before each evaluation). I is the image minus the
mean pixel, in 0..255 units; the steps are Adam's.

For a channel, f is its mean over positions; for a neuron its value; for a class its
score before the softmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import Interrupted
from ..events import EventHandler, Finished, Stage, Started, Step
from ..execution import NOISE_MEAN, StopSignal, stop_function
from ..objective.losses import tv_loss
from ..objective.objective import TermValues
from ..optimize import StepState, minimize
from . import rules
from .config import VisualizeConfig
from .network import Network, network
from .targets import Target, parse


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, 3, H, W), reflecting at the borders."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    pad = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if pad < radius:  # tiny images: keep the kernel inside them
        k = k[radius - pad : radius + pad + 1]
        k = k / k.sum()
        radius = pad
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _clip_below(x: torch.Tensor, score: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the pixels of x (1, 3, H, W) whose score (H, W) is below the percentile."""
    if percentile <= 0:
        return x
    limit = torch.quantile(score.flatten().float(), min(percentile, 100.0) / 100.0)
    return x * (score >= limit).to(x.dtype)


@dataclass(frozen=True)
class Ascent:
    """The result: the image (3, H, W) in [0, 1] and the target's value on it (with
    ``diversity`` N, the N images side by side, (3, H, N*W), and their mean value)."""

    image: torch.Tensor
    value: float
    target: Target


def visualize(
    target: str | Target,
    config: VisualizeConfig | None = None,
    on_event: EventHandler | None = None,
    *,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    stop: StopSignal = None,
    preview_every: int = 0,
    net: Network | None = None,
) -> Ascent:
    """Gradient ascent to the image that maximally activates ``target``.

    Reports :class:`~nst.events.Started`, :class:`~nst.events.Step` (terms
    ``activation``, ``l2``, ``tv``; ``loss`` is minus the objective) and
    :class:`~nst.events.Finished`; ``stop`` ends early keeping the image;
    Ctrl-C raises :class:`~nst.errors.Interrupted` carrying the last image.
    """
    cfg = config or VisualizeConfig()
    net = net or network(weights, pooling, device)
    t = parse(target) if isinstance(target, str) else target
    size = (cfg.size, cfg.size)
    net.check(t, size)
    emit = on_event or (lambda e: None)
    if cfg.lucid:  # Olah et al.'s parameterizations, transforms and diversity
        from .lucid import lucid_visualize

        images, lucid_value = lucid_visualize(t, cfg, net, emit, stop, preview_every)
        return Ascent(torch.cat(list(images), dim=2), lucid_value, t)  # N images side by side
    dev = net.device
    gen = torch.Generator().manual_seed(cfg.seed)
    mean = torch.tensor(NOISE_MEAN, device=dev).view(1, 3, 1, 1)
    if cfg.start == "noise":
        init = torch.randn(1, 3, *size, generator=gen) * 20.0
    else:
        init = torch.zeros(1, 3, *size)
    emit(Started(0, (Stage(*size, cfg.iterations),), str(dev), "fp32", cfg.seed))
    ascent = _Ascent(net, t, cfg, gen, mean)

    def finish(i: torch.Tensor) -> torch.Tensor:
        return (i.view_as(init) + mean).clamp(0, 255)[0].div(255).cpu()

    # I, the image minus the mean pixel in 0..255 units, climbs f by Adam's steps (the loss
    # minimised is minus the objective), the regularizers applied after each step
    on_step = steps_as_events(emit, ascent.weights, ascent.factors, preview_every,
                              cfg.iterations, finish)  # fmt: skip
    try:
        result = minimize(ascent, init.to(dev), iterations=cfg.iterations, method="adam",
                          lr=cfg.lr, clamp=None, on_step=on_step, should_stop=stop_function(stop),
                          after_step=ascent.regularize)  # fmt: skip
    except Interrupted as exc:
        k = exc.iteration
        raise Interrupted(f"interrupted after step {k}", finish(exc.image), k) from None
    emit(Finished(result.iterations, result.evaluations, -ascent.value, result.elapsed,
                  result.reason))  # fmt: skip
    return Ascent(finish(result.x), ascent.value, t)


class _Ascent:
    """The objective of gradient ascent (its loss is minus f(I) - l2 |I|^2 - tv TV(I), the
    image jittered before each evaluation) and its regularizers between steps."""

    def __init__(self, net: Network, target: Target, cfg: VisualizeConfig,
                 gen: torch.Generator, mean: torch.Tensor) -> None:  # fmt: skip
        self.net, self.target, self.cfg, self.gen, self.mean = net, target, cfg, gen, mean
        self.value = 0.0  # the target's value at the last evaluation
        self.steps = 0
        self.weights = {"activation": 1.0, "l2": 1.0, "tv": 1.0}
        self.factors = {"activation": -1.0, "l2": cfg.l2, "tv": cfg.tv_weight}

    def shift(self) -> int:
        jitter = self.cfg.jitter
        return int(torch.randint(-jitter, jitter + 1, (1,), generator=self.gen)) if jitter else 0

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, TermValues]:
        cfg = self.cfg
        dy, dx = self.shift(), self.shift()
        shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        # while the target is silent, a redirected ReLU lets the gradient wake it up
        relu = rules.redirected(minimised=True) if self.value <= 0 else None
        act = self.net.value((shifted + self.mean).clamp(0, 255), self.target, relu=relu,
                             reduce="mean").sum()  # fmt: skip
        l2 = (x / 255.0).pow(2).mean()
        tv = tv_loss(x)
        self.value = float(act.detach())
        terms = TermValues(("activation", "l2", "tv"), torch.stack([act, l2, tv]).detach())
        return -(act - cfg.l2 * l2 - cfg.tv_weight * tv), terms

    def regularize(self, img: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Yosinski et al.'s regularizers after a step: a blur every few steps, the pixels
        of small norm and of small contribution |I * grad| set to zero, the image kept
        within 0..255."""
        cfg = self.cfg
        self.steps += 1
        if cfg.blur_every and self.steps % cfg.blur_every == 0:
            img = gaussian_blur(img, cfg.blur_sigma)
        img = _clip_below(img, img.norm(dim=1)[0], cfg.clip_value)
        img = _clip_below(img, (img * grad).abs().sum(dim=1)[0], cfg.clip_grad)
        return (img + self.mean).clamp(0, 255) - self.mean


def steps_as_events(
    emit: EventHandler,
    weights: dict[str, float],
    factors: dict[str, float],
    preview_every: int,
    iterations: int,
    picture: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[StepState], None]:
    """The optimizer's steps as the :class:`Step` events every front end renders, with a
    preview (``picture`` of the iterate) every ``preview_every`` steps and at the last."""

    def on_step(s: StepState) -> None:
        k = s.iteration
        due = preview_every and (k % preview_every == 0 or k == iterations)
        emit(Step(k, s.evaluations, s.loss, s.terms.floats(), weights, factors, s.elapsed, 0,
                  picture(s.x) if due else None))  # fmt: skip

    return on_step


def activation(image: torch.Tensor, target: Target, net: Network, size: int | None = None) -> float:
    """The target's value on an image (3, H, W) in [0, 1] (channels: mean over positions),
    resized to ``size`` x ``size`` when given: how benchmarks score images alike."""
    x = image[None].to(net.device) * 255.0
    if size is not None:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    with torch.no_grad():
        return float(net.value(x, target, reduce="mean").sum())
