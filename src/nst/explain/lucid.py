"""Feature visualization as Olah, Mordvintsev & Schubert's "Feature Visualization" (Distill
2017) and their library Lucid make it: the image is not optimized pixel by pixel but
through a parameterization that favours natural images.

* ``fourier``: the image is the inverse real FFT of a spectrum whose coefficients are
  scaled by 1/f (f the spatial frequency, at least one cycle per image), so every
  frequency moves at a similar rate and high frequencies do not take over.
* ``decorrelate``: the three channels are coordinates in ImageNet's decorrelated colour
  basis, mapped back with a fixed 3x3 (:data:`COLOR_CORRELATION`, the square root of the
  colour covariance, Lucid's constant, normalized by its largest column norm) and a
  sigmoid into [0, 1].
* ``transforms``: before each step the image is jittered (up to 8 px), scaled (0.9-1.1)
  and rotated (+-10 degrees), seeded: the result must activate the target robustly.
* ``diversity``: N images at once; the cosine similarity between their flattened Gram
  matrices at the target's layer is penalized, so they show different facets.

Adam on the parameters (learning rate 0.05, Lucid's); the objective is the target's
value (a channel: its mean over positions). The pixel regularizers of
:mod:`.ascent` (L2, blur, clipping) are not used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import Interrupted
from ..events import EventHandler, Finished, Stage, Started
from ..execution import StopSignal, stop_function
from ..objective.objective import TermValues
from ..optimize import minimize
from . import rules
from .ascent import steps_as_events
from .config import VisualizeConfig
from .network import Network
from .targets import Target

#: Lucid's square root of ImageNet's colour covariance (its SVD), RGB rows
COLOR_CORRELATION = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32
)
LEARNING_RATE = 0.05
DIVERSITY_WEIGHT = 1.0
JITTER = 8
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))  # 0.9 ... 1.1
ANGLES = tuple(range(-10, 11))


def _frequencies(h: int, w: int) -> torch.Tensor:
    """|f| of each coefficient of an (h, w) image's real FFT, in cycles per pixel."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class Parameterization(torch.nn.Module):
    """N images (N, 3, H, W) in [0, 1] from learnable parameters."""

    def __init__(self, n: int, size: int, fourier: bool, decorrelate: bool, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.size, self.fourier, self.decorrelate = size, fourier, decorrelate
        self.scale: torch.Tensor
        self.colors: torch.Tensor
        if fourier:
            freqs = _frequencies(size, size)
            scale = 1.0 / torch.clamp(freqs, min=1.0 / size)
            self.register_buffer("scale", scale)  # 1/f, f in cycles per pixel (decay 1)
            shape = (n, 3, *freqs.shape, 2)
            self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=g) * 0.01)
        else:
            self.pixels = torch.nn.Parameter(torch.randn(n, 3, size, size, generator=g) * 0.01)
        m = COLOR_CORRELATION / COLOR_CORRELATION.norm(dim=0).max()
        self.register_buffer("colors", m)

    @property
    def parameter(self) -> torch.nn.Parameter:
        """The one tensor the images are made from."""
        return self.spectrum if self.fourier else self.pixels

    def forward(self) -> torch.Tensor:
        return self.render(self.parameter)

    def render(self, parameter: torch.Tensor) -> torch.Tensor:
        """The images from ``parameter`` (a tensor shaped as :attr:`parameter`)."""
        if self.fourier:
            spec = torch.view_as_complex(parameter) * self.scale
            x = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / 4.0
        else:
            x = parameter
        if self.decorrelate:
            x = torch.einsum("nchw,dc->ndhw", x, self.colors)
            return torch.sigmoid(x)
        return torch.sigmoid(x) if self.fourier else (x + 0.5).clamp(0, 1)


def _transform(x: torch.Tensor, names: tuple[str, ...], g: torch.Generator) -> torch.Tensor:
    """Lucid's robustness transforms, seeded: jitter, scale, rotate (in that order)."""
    if not names:
        return x
    n = x.shape[0]
    x = F.pad(x, (12, 12, 12, 12), mode="constant", value=0.5)
    if "jitter" in names:
        dy, dx = (int(v) for v in torch.randint(-JITTER, JITTER + 1, (2,), generator=g))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    if "scale" in names:
        s = SCALES[int(torch.randint(len(SCALES), (1,), generator=g))]
        theta[:, :2, :2] /= s
    if "rotate" in names:
        a = math.radians(ANGLES[int(torch.randint(len(ANGLES), (1,), generator=g))])
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        theta[:, :2, :2] = theta[:, :2, :2] @ rot
    if "scale" in names or "rotate" in names:
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x


def _diversity(feats: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between the flattened Gram matrices of different images."""
    n = feats.shape[0]
    f = feats.flatten(2)
    gram = (f @ f.transpose(1, 2)).flatten(1)
    gram = F.normalize(gram, dim=1)
    sim = gram @ gram.T
    return (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))


def lucid_visualize(
    target: Target,
    cfg: VisualizeConfig,
    net: Network,
    emit: EventHandler,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> tuple[torch.Tensor, float]:
    """The Lucid run: (images (N, 3, H, W) in [0, 1], the target's mean value on them)."""
    param = Parameterization(cfg.diversity, cfg.size, cfg.param == "fourier", cfg.decorrelate,
                             cfg.seed).to(net.device)  # fmt: skip
    objective = _LucidObjective(target, cfg, net, param)
    emit(Started(0, (Stage(cfg.size, cfg.size, cfg.iterations),), str(net.device), "fp32",
                 cfg.seed))  # fmt: skip

    def first(p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return param.render(p)[0].cpu()

    # Adam on the parameters (the loss minimised is minus the objective)
    on_step = steps_as_events(emit, objective.weights, objective.factors, preview_every,
                              cfg.iterations, first)  # fmt: skip
    start = param.parameter.detach()
    try:
        result = minimize(objective, start, iterations=cfg.iterations, method="adam",
                          lr=LEARNING_RATE, clamp=None, on_step=on_step,
                          should_stop=stop_function(stop))  # fmt: skip
    except Interrupted as exc:
        k = exc.iteration
        raise Interrupted(f"interrupted after step {k}", first(exc.image), k) from None
    emit(Finished(result.iterations, result.evaluations, -objective.value, result.elapsed,
                  result.reason))  # fmt: skip
    with torch.no_grad():
        images = param.render(result.x).cpu()
    return images, objective.value


class _LucidObjective:
    """Minus the target's mean activation on the transformed images (plus their diversity
    penalty), as a function of the parameters."""

    def __init__(self, target: Target, cfg: VisualizeConfig, net: Network,
                 param: Parameterization) -> None:  # fmt: skip
        self.target, self.net, self.param = target, net, param
        self.names = cfg.transform_list
        self.layer = net.layer_of(target)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        n = cfg.diversity
        self.weights = {"activation": 1.0, "diversity": 1.0}
        self.factors = {"activation": -1.0, "diversity": DIVERSITY_WEIGHT if n > 1 else 0.0}
        self.value = 0.0  # the target's mean value at the last evaluation
        self.evaluations = 0

    def __call__(self, p: torch.Tensor) -> tuple[torch.Tensor, TermValues]:
        images = self.param.render(p)
        x = _transform(images, self.names, self.generator) * 255.0
        # once the target is found silent, a redirected ReLU lets the gradient wake it up
        silent = self.evaluations > 0 and self.value <= 0
        relu = rules.redirected(minimised=True) if silent else None
        self.evaluations += 1
        target, n = self.target, images.shape[0]
        if target.kind == "class" or n == 1:
            act = self.net.value(x, target, relu=relu, reduce="mean")
            div = torch.zeros((), device=x.device)
        else:
            feats = self.net.features(x, [self.layer], relu=relu)[self.layer].float()
            channel = feats[:, target.index]
            act = (channel[:, target.row, target.col] if target.kind == "neuron"
                   else channel.mean(dim=(1, 2)))  # fmt: skip
            div = _diversity(feats)
        self.value = float(act.detach().mean())
        objective = act.mean() - self.factors["diversity"] * div
        values = torch.stack([act.detach().mean(), div.detach()]).float()
        return -objective, TermValues(("activation", "diversity"), values)
