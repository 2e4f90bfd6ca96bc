"""Attribution beyond one backward pass: Grad-CAM and Grad-CAM++ (a layer's maps weighted
by the target's gradient), integrated gradients (the gradient averaged along a path from a
baseline) and SmoothGrad (a rule's gradient averaged over noisy copies).

* Grad-CAM (Selvaraju et al. 2017): with A the ReLU'd maps of ``layer`` and g = dy/dA,
  each channel's weight is the mean of g over positions; the map is ReLU(sum_k w_k A_k),
  upsampled (bilinear) to the image's own grid.
* Grad-CAM++ (Chattopadhay et al. 2018), the closed form for an exponential of the score:
  alpha = g^2 / (2 g^2 + sum_ab(A) g^3) per position (0 where the denominator is 0), and
  w_k = sum_ij alpha ReLU(g).
* Integrated gradients (Sundararajan et al. 2017): (x - x') * the mean of the gradient at
  x' + t (x - x') over ``steps`` points, by the trapezoid rule; the attributions sum to
  f(x) - f(x') (completeness) up to the quadrature's error. Baselines: black, the image
  blurred, or seeded noise.
* SmoothGrad (Smilkov et al. 2017): the mean of a rule's gradient at x + N(0, sigma^2),
  sigma = ``noise`` x (max - min of x), ``samples`` draws, seeded.

Every map is on the image's own pixel grid, like :func:`.saliency.saliency`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..layers import INDEX, canonical
from ..planning import ImageLike, load
from . import rules
from .config import BASELINES, ModelConfig, SaliencyConfig
from .network import Network, network
from .saliency import SaliencyMap, resize_differentiable, resolve, saliency, working_size
from .targets import Target, parse

#: the layer Grad-CAM uses for a class target unless told (the last convolution)
CLASS_LAYER = "conv5_4"


def attribute(
    image: ImageLike, config: SaliencyConfig | None = None, *, net: Network | None = None,
    model: ModelConfig | None = None,
) -> SaliencyMap:  # fmt: skip
    """The saliency map ``config`` asks for (its target, by its method), as :func:`nst.stylize`
    takes a :class:`~nst.Config`: the one entry the command line and the Explore page use."""
    c = config or SaliencyConfig()
    m = model or ModelConfig()
    net = net or network(m.weights, m.pooling, m.device)
    target = parse(c.target)
    if c.method.startswith("gradcam"):
        return gradcam(image, target, layer=c.layer, plus=c.method == "gradcam++", size=c.size,
                       net=net)  # fmt: skip
    if c.method == "integrated":
        return integrated_gradients(image, target, steps=c.steps, base=c.baseline, seed=c.seed,
                                    size=c.size, net=net)  # fmt: skip
    if c.method == "smoothgrad":
        return smoothgrad(image, target, rule=c.rule, samples=c.samples, noise=c.noise,
                          seed=c.seed, size=c.size, net=net)  # fmt: skip
    return saliency(image, target, c.method, size=c.size, net=net)


def cam_layer(target: Target, layer: str | None) -> str:
    """The layer whose maps Grad-CAM weighs: ``layer``, else the target's own layer (for a
    class, conv5_4); it must lie at or before the target's layer."""
    own = CLASS_LAYER if target.kind == "class" else str(target.layer)
    chosen = canonical(layer) if layer else own
    if target.kind != "class" and INDEX[chosen] > INDEX[own]:
        raise ConfigError(
            f"layer {chosen} lies after the target's layer {own}; Grad-CAM needs a layer at "
            "or before it"
        )
    return chosen


def _prepare(
    image: ImageLike, target: str | Target, size: int | None, net: Network | None,
    weights: str | None, pooling: str, device: str,
) -> tuple[Network, Target, torch.Tensor, tuple[int, int]]:  # fmt: skip
    net = net or network(weights, pooling, device)
    t = parse(target) if isinstance(target, str) else target
    img = load(image, "image")
    wh = working_size(img.shape[1], img.shape[2], size)
    net.check(t, wh, on_image=True)
    return net, resolve(t, img, wh, net), img, wh


def gradcam(
    image: ImageLike,
    target: str | Target,
    *,
    layer: str | None = None,
    plus: bool = False,
    size: int | None = None,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    net: Network | None = None,
) -> SaliencyMap:
    """Grad-CAM (``plus``: Grad-CAM++) of ``target`` at ``layer``: a (1, H, W) map >= 0."""
    net, t, img, wh = _prepare(image, target, size, net, weights, pooling, device)
    at = cam_layer(t, layer)
    x = (img[None].to(net.device) * 255.0).requires_grad_(True)  # so the maps are in a graph
    own = net.layer_of(t)
    feats = net.features(resize_differentiable(x, wh), [at, own])
    a = feats[at]
    value = net.value_from(feats[own], t).sum()
    (g,) = torch.autograd.grad(value, a)
    a, g = a.detach().float(), g.float()
    if plus:
        g2, g3 = g * g, g * g * g
        denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(denom != 0, g2 / denom.where(denom != 0, torch.ones_like(denom)),
                            torch.zeros_like(g2))  # fmt: skip
        w = (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)
    else:
        w = g.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * a).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    full = F.interpolate(cam, size=img.shape[1:], mode="bilinear", align_corners=False)
    method = "gradcam++" if plus else "gradcam"
    return SaliencyMap(full[0].cpu(), float(value.detach()), t, f"{method}@{at}", wh)


def baseline(image: torch.Tensor, kind: str, seed: int = 0) -> torch.Tensor:
    """The baseline x' of integrated gradients for a (3, H, W) image in [0, 1]."""
    if kind == "black":
        return torch.zeros_like(image)
    if kind == "blur":  # a Gaussian of sigma = 1/20 of the longest side
        sigma = max(image.shape[1:]) / 20
        radius = max(1, int(3 * sigma))
        k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
        k = (k / k.sum()).to(image)
        x = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        x = F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
        return x[0]
    if kind == "noise":
        g = torch.Generator().manual_seed(seed)
        return torch.rand(image.shape, generator=g).to(image)
    raise ConfigError(f"baseline must be one of {', '.join(BASELINES)} (got {kind!r})")


def integrated_gradients(
    image: ImageLike,
    target: str | Target,
    *,
    steps: int = 64,
    base: str = "black",
    seed: int = 0,
    batch: int = 8,
    size: int | None = None,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    net: Network | None = None,
) -> SaliencyMap:
    """Integrated gradients of ``target`` from the ``base`` baseline in ``steps`` steps;
    ``value`` is f(x) - f(x'), which the attributions sum to (completeness)."""
    SaliencyConfig.check_values(steps=steps, baseline=base)
    net, t, img, wh = _prepare(image, target, size, net, weights, pooling, device)
    x = img.to(net.device)
    x0 = baseline(img, base, seed).to(net.device)
    alphas = torch.linspace(0.0, 1.0, steps + 1, device=net.device)
    weights_t = torch.ones(steps + 1, device=net.device)
    weights_t[0] = weights_t[-1] = 0.5  # the trapezoid rule
    total = torch.zeros_like(x)
    ends: dict[int, float] = {}
    for start in range(0, steps + 1, batch):
        a = alphas[start : start + batch]
        path = (x0 + a.view(-1, 1, 1, 1) * (x - x0)).requires_grad_(True)
        values = net.value(resize_differentiable(path * 255.0, wh), t)
        (g,) = torch.autograd.grad(values.sum(), path)
        total += (g * weights_t[start : start + batch].view(-1, 1, 1, 1)).sum(dim=0)
        for i, v in enumerate(values.detach().tolist()):
            if start + i in (0, steps):
                ends[start + i] = float(v)
    attribution = (x - x0) * total / steps
    return SaliencyMap(attribution.detach().float().cpu(), ends[steps] - ends[0], t,
                       f"integrated({base}, {steps} steps)", wh)  # fmt: skip


def smoothgrad(
    image: ImageLike,
    target: str | Target,
    *,
    rule: str = "gradient",
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    size: int | None = None,
    weights: str | None = None,
    pooling: str = "max",
    device: str = "auto",
    net: Network | None = None,
) -> SaliencyMap:
    """SmoothGrad: ``rule``'s gradient averaged over ``samples`` noisy copies of the image
    (sigma = ``noise`` x its value range); ``value`` is the target on the image itself."""
    SaliencyConfig.check_values(rule=rule, samples=samples, noise=noise)
    net, t, img, wh = _prepare(image, target, size, net, weights, pooling, device)
    x = img.to(net.device)
    sigma = noise * float(x.max() - x.min())
    g = torch.Generator().manual_seed(seed)
    relu = rules.relu(rule)
    total = torch.zeros_like(x)
    for _ in range(samples):
        eps = torch.randn(x.shape, generator=g).to(x) * sigma
        xi = (x + eps)[None].requires_grad_(True)
        value = net.value(resize_differentiable(xi * 255.0, wh), t, relu=relu).sum()
        (grad,) = torch.autograd.grad(value, xi)
        total += grad[0]
    with torch.no_grad():
        value = net.value(resize_differentiable(x[None] * 255.0, wh), t).sum()
    return SaliencyMap((total / samples).detach().float().cpu(), float(value), t,
                       f"smoothgrad({rule}, {samples} samples)", wh)  # fmt: skip
