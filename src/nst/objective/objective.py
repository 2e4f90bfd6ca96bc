"""The total objective: alpha * L_content + beta * L_style (+ TV), targets encoded once.

Three weightings (``Config.weighting``) say in which units the terms enter the sum
(docs/LOSSES.md tells the story and the measurements):

``paper``
    total = alpha * sum_c w_c L_c + beta * sum_l w_l E_l, the formulas as printed.
    Their scales differ by orders of magnitude and the content term grows with the
    number of pixels, so a given alpha/beta means something else at every size.

``reference``
    The scales of the authors' released implementation, on which the published
    alpha/beta ratios were chosen: the content term is the mean squared error,
    MSE = 2 L_c / (N_c M_c), and each style layer contributes the mean squared
    error of its M-normalized Gram matrices divided by N_l^2, i.e. 4 E_l / N_l^2,
    where the paper writes w_l = 1/5. Expressed with the paper's terms:

        total = alpha * sum_c w_c * (2 / (N_c M_c)) * L_c
              + beta  * sum_l w_l * (20 / N_l^2)    * E_l

    With the default w_l = 1/5 this is exactly the reference code's objective; every
    term is independent of the image size, so ratios transfer across sizes.

``calibrated`` (default)
    ``reference`` with the style term multiplied by ``CALIBRATION`` = 10. On our
    normalized network the reference units put the published ratios one decade
    towards content: alpha/beta = 1e-3 gave the look of the paper's 1e-2 row
    (Figure 4), 1e-4 the look of its Figure 3. Measured on Tuebingen x Starry Night
    at 256 and 512 px, 300 L-BFGS iterations from noise.

The per-layer values reported (``Step.content_losses``, ``style_losses``) are always
the paper's exact L_c and E_l.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import LayerWeights
from ..model.vgg import VGG19Features
from .losses import ContentTarget, StyleTarget, gram_matrix, tv_loss

#: reference weighting of style layer l: 4 (MSE of Gram vs E_l) * 5 (1/N^2 replaces w_l = 1/5)
REFERENCE_STYLE_FACTOR = 20.0
#: calibrated = reference with the style term this much stronger (see the module docstring)
CALIBRATION = 10.0


@dataclass(frozen=True)
class StyleSource:
    """One style image's contribution: its weight in the blend and an optional region guide.

    ``guide`` is a (1, 1, H, W) mask at the content's resolution selecting where in the
    generated image this style applies (None: everywhere).
    """

    image: torch.Tensor  # (1, 3, h, w) RGB 0..255 on the extractor's device
    weight: float = 1.0
    guide: torch.Tensor | None = None


def _resize_guide(guide: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(guide.shape[-2:]) == size:
        return guide
    return nn.functional.interpolate(guide, size=size, mode="area")


class Objective(nn.Module):
    """Callable on an image x (1, 3, H, W, RGB 0..255): returns (total, per-term values)."""

    def __init__(
        self,
        extractor: VGG19Features,
        content_layers: LayerWeights,
        style_layers: LayerWeights,
        content_weight: float,
        style_weight: float,
        tv_weight: float = 0.0,
        weighting: str = "calibrated",
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.content_layers = tuple(n for n, _ in content_layers)
        self.content_w = dict(content_layers)
        self.style_layers = tuple(n for n, _ in style_layers)
        self.style_w = dict(style_layers)
        self.alpha = float(content_weight)
        self.beta = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.weighting = weighting
        self.content_targets = nn.ModuleDict()
        self.style_targets = nn.ModuleDict()
        self._factors: dict[str, float] = {}

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers the current targets need (content layers only with a content target)."""
        wanted = (self.content_layers if len(self.content_targets) else ()) + (
            self.style_layers if len(self.style_targets) else ()
        )
        return tuple(dict.fromkeys(wanted))

    # -- encoding the targets once ----------------------------------------------------------
    def features(
        self, x: torch.Tensor, layers: tuple[str, ...] | None = None
    ) -> dict[str, torch.Tensor]:
        return self.extractor(x, self.layers if layers is None else layers)

    @torch.no_grad()
    def set_content(self, content: torch.Tensor | None) -> None:
        """Encode P for every content layer (None: no content term, e.g. texture synthesis)."""
        self.content_targets = nn.ModuleDict()
        if content is None:
            return
        feats = self.features(content, self.content_layers)
        for name in self.content_layers:
            f = feats[name].float()
            self.content_targets[name] = ContentTarget(f)
            n, m = f.shape[1], f.shape[2] * f.shape[3]
            self._factors[f"c:{name}"] = 2.0 / (n * m)

    @torch.no_grad()
    def set_style(self, sources: Sequence[StyleSource], out_size: tuple[int, int]) -> None:
        """Encode the Gram targets A: a weighted blend per guide (region).

        Sources sharing a guide (``None`` or the same tensor) are blended into one
        target; each distinct guide gets its own guided term.
        """
        self.style_targets = nn.ModuleDict()
        groups: dict[int, list[StyleSource]] = {}
        for src in sources:
            groups.setdefault(id(src.guide) if src.guide is not None else 0, []).append(src)
        layer_lists: dict[str, nn.ModuleList] = {n: nn.ModuleList() for n in self.style_layers}
        # probe the feature-map sizes of the generated image for the guides
        sizes = self._layer_sizes(out_size) if any(s.guide is not None for s in sources) else {}
        for members in groups.values():
            total = sum(s.weight for s in members)
            if total <= 0:
                continue
            blended: dict[str, torch.Tensor] = {}
            for src in members:
                feats = self.features(src.image, self.style_layers)
                for name in self.style_layers:
                    g = gram_matrix(feats[name])[0] * (src.weight / total)
                    blended[name] = blended[name] + g if name in blended else g
            guide = members[0].guide
            for name in self.style_layers:
                n = blended[name].shape[-1]
                calibration = CALIBRATION if self.weighting == "calibrated" else 1.0
                self._factors[f"s:{name}"] = calibration * REFERENCE_STYLE_FACTOR / (n * n)
                layer_guide = None if guide is None else _resize_guide(guide, sizes[name])
                layer_lists[name].append(StyleTarget(blended[name].unsqueeze(0), layer_guide))
        for name, lst in layer_lists.items():
            self.style_targets[name] = lst

    def _layer_sizes(self, out_size: tuple[int, int]) -> dict[str, tuple[int, int]]:
        h, w = out_size
        device = self.extractor.in_scale.device
        probe = torch.zeros(1, 3, h, w, device=device)
        with torch.no_grad():
            feats = self.extractor(probe, self.style_layers)
        return {n: (f.shape[2], f.shape[3]) for n, f in feats.items()}

    # -- evaluation -------------------------------------------------------------------------
    @property
    def term_names(self) -> tuple[str, ...]:
        return (
            *(f"content:{n}" for n in self.content_targets),
            *(f"style:{n}" for n in self.style_targets),
            "tv",
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the total (a scalar with grad) and the detached paper terms.

        Terms, in ``term_names`` order: L_c per content layer, E_l per style layer
        (summed over regions), the TV value.
        """
        feats = self.features(x)
        terms: list[torch.Tensor] = []
        total = x.new_zeros((), dtype=torch.float32)
        scaled = self.weighting != "paper"  # calibrated and reference share the units
        # the network may run in bf16/fp16; the targets' loss math runs in float32
        for name, target in self.content_targets.items():
            value = target(feats[name])
            terms.append(value)
            k = self._factors[f"c:{name}"] if scaled else 1.0
            total = total + self.alpha * self.content_w[name] * k * value
        for name, targets in self.style_targets.items():
            assert isinstance(targets, nn.ModuleList)
            value = sum((t(feats[name]) for t in targets), x.new_zeros((), dtype=torch.float32))
            terms.append(value)
            k = self._factors[f"s:{name}"] if scaled else 1.0
            total = total + self.beta * self.style_w[name] * k * value
        if self.tv_weight > 0:
            tv = tv_loss(x)
            total = total + self.tv_weight * tv
        else:
            tv = x.new_zeros((), dtype=torch.float32)
        terms.append(tv)
        return total, torch.stack([t.detach().float() for t in terms])
