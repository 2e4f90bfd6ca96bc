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

Every term has a name (``content:conv4_2``, ``style:conv1_1``, ``tv``; extra terms
such as a video's ``temporal`` are added with :meth:`Objective.add_term`), a weight
within its group (w_l) and a factor, what its value is multiplied by in the total:
``total = sum(factor * value)``. The values reported are always the paper's exact
L_c and E_l.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import LayerWeights
from ..model.vgg import VGG19Features
from .losses import AlphaNormLoss, ContentTarget, StyleTarget, TVLoss, gram_matrix

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


class SumOfTargets(nn.ModuleList):
    """Several targets on one layer (style regions) as one term: the sum of their losses."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        values = [t(features) for t in self]
        return values[0] if len(values) == 1 else torch.stack(values).sum()


@dataclass
class Term:
    """One named loss term: ``module`` reads the features of ``layer`` (or, with no
    layer, the image in 0..255) and returns a scalar in its own units."""

    name: str
    module: nn.Module
    layer: str | None
    weight: float
    factor: float


class Objective(nn.Module):
    """Callable on an image x (1, 3, H, W, RGB 0..255): returns (total, term values).

    The values come back as one detached float32 tensor in :attr:`term_names` order
    (one host sync per evaluation).
    """

    def __init__(
        self,
        extractor: VGG19Features,
        content_layers: LayerWeights,
        style_layers: LayerWeights,
        content_weight: float,
        style_weight: float,
        tv_weight: float = 0.0,
        weighting: str = "calibrated",
        tv_beta: float = 2.0,
        alpha_weight: float = 0.0,
        alpha_norm: float = 6.0,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.content_layers = tuple(n for n, _ in content_layers)
        self.content_w = dict(content_layers)
        self.style_layers = tuple(n for n, _ in style_layers)
        self.style_w = dict(style_layers)
        self.alpha = float(content_weight)
        self.beta = float(style_weight)
        self.weighting = weighting
        self._content: list[Term] = []
        self._style: list[Term] = []
        self._tv = Term("tv", TVLoss(tv_beta), None, 1.0, float(tv_weight))
        self._extra: list[Term] = []
        if alpha_weight > 0:
            self._extra.append(Term("alpha", AlphaNormLoss(alpha_norm), None, 1.0, alpha_weight))
        self.modules_ = nn.ModuleDict()  # registers the term modules (device moves)
        self._register([self._tv, *self._extra])

    # -- the terms ---------------------------------------------------------------------------
    @property
    def terms(self) -> list[Term]:
        return [*self._content, *self._style, self._tv, *self._extra]

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.terms)

    @property
    def term_weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.terms}

    @property
    def term_factors(self) -> dict[str, float]:
        return {t.name: t.factor for t in self.terms}

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers the current terms read."""
        return tuple(dict.fromkeys(t.layer for t in self.terms if t.layer is not None))

    def _register(self, terms: Sequence[Term]) -> None:
        for t in terms:
            self.modules_[t.name.replace(":", "__")] = t.module

    def _unregister(self, terms: Sequence[Term]) -> None:
        for t in terms:
            key = t.name.replace(":", "__")
            if key in self.modules_:
                del self.modules_[key]

    def add_term(
        self,
        name: str,
        module: nn.Module,
        *,
        layer: str | None = None,
        weight: float = 1.0,
        factor: float = 1.0,
    ) -> None:
        """Add a term (e.g. a video's temporal loss); it is reported under ``name``."""
        if name in self.term_names:
            raise ValueError(f"a term named {name!r} exists already")
        term = Term(name, module, layer, float(weight), float(factor))
        self._extra.append(term)
        self._register([term])

    # -- encoding the targets once ----------------------------------------------------------
    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.extractor(x, layers)

    @torch.no_grad()
    def set_content(self, content: torch.Tensor | None) -> None:
        """Encode P for every content layer (None: no content term, e.g. texture synthesis)."""
        self._unregister(self._content)
        self._content = []
        if content is None:
            return
        feats = self.features(content, self.content_layers)
        paper = self.weighting == "paper"
        for name in self.content_layers:
            f = feats[name].float()
            n, m = f.shape[1], f.shape[2] * f.shape[3]
            units = 1.0 if paper else 2.0 / (n * m)  # MSE = 2 L_c / (N M)
            w = self.content_w[name]
            self._content.append(
                Term(f"content:{name}", ContentTarget(f), name, w, self.alpha * w * units)
            )
        self._register(self._content)

    @torch.no_grad()
    def set_style(self, sources: Sequence[StyleSource], out_size: tuple[int, int]) -> None:
        """Encode the Gram targets A: a weighted blend per guide (region).

        Sources sharing a guide (``None`` or the same tensor) are blended into one
        target; each distinct guide gets its own guided target, summed into the layer's
        term.
        """
        self._unregister(self._style)
        self._style = []
        groups: dict[int, list[StyleSource]] = {}
        for src in sources:
            groups.setdefault(id(src.guide) if src.guide is not None else 0, []).append(src)
        per_layer: dict[str, SumOfTargets] = {n: SumOfTargets() for n in self.style_layers}
        channels: dict[str, int] = {}
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
                channels[name] = blended[name].shape[-1]
                layer_guide = None if guide is None else _resize_guide(guide, sizes[name])
                per_layer[name].append(StyleTarget(blended[name].unsqueeze(0), layer_guide))
        for name, targets in per_layer.items():
            if not len(targets):
                continue
            n = channels[name]
            if self.weighting == "paper":
                units = 1.0
            else:
                calibration = CALIBRATION if self.weighting == "calibrated" else 1.0
                units = calibration * REFERENCE_STYLE_FACTOR / (n * n)
            w = self.style_w[name]
            self._style.append(Term(f"style:{name}", targets, name, w, self.beta * w * units))
        self._register(self._style)

    def _layer_sizes(self, out_size: tuple[int, int]) -> dict[str, tuple[int, int]]:
        h, w = out_size
        device = self.extractor.in_scale.device
        probe = torch.zeros(1, 3, h, w, device=device)
        with torch.no_grad():
            feats = self.extractor(probe, self.style_layers)
        return {n: (f.shape[2], f.shape[3]) for n, f in feats.items()}

    # -- evaluation -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The total (a scalar with grad) and the detached term values (term_names order).

        Terms with factor 0 are evaluated without gradient, for the record only. The
        network may run in bf16/fp16; every term's math runs in float32.
        """
        terms = self.terms
        feats = self.features(x, self.layers) if self.layers else {}
        total = x.new_zeros((), dtype=torch.float32)
        values: list[torch.Tensor] = []
        for t in terms:
            source = feats[t.layer] if t.layer is not None else x
            if t.factor == 0.0:
                with torch.no_grad():
                    value = t.module(source)
            else:
                value = t.module(source)
                total = total + t.factor * value
            values.append(value.detach().float())
        return total, torch.stack(values)
