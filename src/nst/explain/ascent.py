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
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import Interrupted
from ..events import EventHandler, Finished, Stage, Started, Step
from ..execution import NOISE_MEAN, StopSignal, stop_function
from ..objective.losses import tv_loss
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
    should_stop = stop_function(stop) or (lambda: False)
    dev = net.device
    gen = torch.Generator().manual_seed(cfg.seed)
    mean = torch.tensor(NOISE_MEAN, device=dev).view(1, 3, 1, 1)
    if cfg.start == "noise":
        init = torch.randn(1, 3, *size, generator=gen) * 20.0
    else:
        init = torch.zeros(1, 3, *size)
    img = init.to(dev)  # I: the image minus the mean pixel, 0..255 units
    opt_state = (torch.zeros_like(img), torch.zeros_like(img))
    emit(Started(0, (Stage(*size, cfg.iterations),), str(dev), "fp32", cfg.seed))
    weights_ = {"activation": 1.0, "l2": 1.0, "tv": 1.0}
    factors = {"activation": -1.0, "l2": cfg.l2, "tv": cfg.tv_weight}
    start = time.perf_counter()
    value = 0.0
    k = 0

    def finish(i: torch.Tensor) -> torch.Tensor:
        return (i + mean).clamp(0, 255)[0].div(255).cpu()

    try:
        for k in range(cfg.iterations + 1):
            dy = (
                int(torch.randint(-cfg.jitter, cfg.jitter + 1, (1,), generator=gen))
                if cfg.jitter
                else 0
            )
            dx = (
                int(torch.randint(-cfg.jitter, cfg.jitter + 1, (1,), generator=gen))
                if cfg.jitter
                else 0
            )
            x = img.detach().requires_grad_(True)
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            # while the target is silent, a redirected ReLU lets the gradient wake it up
            relu = rules.redirected() if value <= 0 else None
            act = net.value((shifted + mean).clamp(0, 255), t, relu=relu, reduce="mean").sum()
            l2 = (x / 255.0).pow(2).mean()
            tv = tv_loss(x)
            objective = act - cfg.l2 * l2 - cfg.tv_weight * tv
            (grad,) = torch.autograd.grad(objective, x)
            value = float(act.detach())
            terms = {"activation": value, "l2": float(l2.detach()), "tv": float(tv.detach())}
            preview = None
            if preview_every and (k % preview_every == 0 or k == cfg.iterations):
                preview = finish(img)
            emit(
                Step(
                    iteration=k,
                    evaluations=k + 1,
                    loss=-float(objective.detach()),
                    terms=terms,
                    weights=weights_,
                    factors=factors,
                    elapsed=time.perf_counter() - start,
                    stage=0,
                    preview=preview,
                )
            )
            if k == cfg.iterations or should_stop():
                break
            img = _adam(img, grad, opt_state, k + 1, cfg.lr)
            if cfg.blur_every and (k + 1) % cfg.blur_every == 0:
                img = gaussian_blur(img, cfg.blur_sigma)
            img = _clip_below(img, img.norm(dim=1)[0], cfg.clip_value)
            img = _clip_below(img, (img * grad).abs().sum(dim=1)[0], cfg.clip_grad)
            img = (img + mean).clamp(0, 255) - mean
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after step {k}", finish(img), k) from None
    reason = "cancelled" if k < cfg.iterations else "completed"
    emit(Finished(k, k + 1, -value, time.perf_counter() - start, reason))
    return Ascent(finish(img), value, t)


def _adam(
    x: torch.Tensor,
    grad: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    step: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.Tensor:
    """One Adam step uphill (state is updated in place)."""
    m, v = state
    m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    m_hat = m / (1 - betas[0] ** step)
    v_hat = v / (1 - betas[1] ** step)
    return x + lr * m_hat / (v_hat.sqrt() + eps)


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
