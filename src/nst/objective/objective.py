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

Every term has a name (``content:conv4_2``, ``style:conv1_1``, ``tv``, a video's
``temporal``), a weight within its group (w_l) and a factor, what its value is
multiplied by in the total: ``total = sum(factor * value)``. The values reported are
always the paper's exact L_c and E_l. This module holds the terms and evaluates them;
which terms a run has, and their targets, come from the term specs in
:mod:`nst.objective.terms`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import TermError
from ..model.vgg import VGG19Features
from . import tiling as tiles

#: reference weighting of style layer l: 4 (MSE of Gram vs E_l) * 5 (1/N^2 replaces w_l = 1/5)
REFERENCE_STYLE_FACTOR = 20.0
#: calibrated = reference with the style term this much stronger (see the module docstring)
CALIBRATION = 10.0
WEIGHTINGS = ("calibrated", "reference", "paper")
#: ``group`` or ``group:key``: letters, digits, ``_`` and ``-``
TERM_NAME = re.compile(r"[A-Za-z][\w-]*(:[\w-]+)?")


@dataclass(frozen=True)
class StyleSource:
    """One style image's contribution: its weight in the blend and an optional region guide.

    ``guide`` is a (1, 1, H, W) mask at the content's resolution selecting where in the
    generated image this style applies (None: everywhere).
    """

    image: torch.Tensor  # (1, 3, h, w) RGB 0..255 on the extractor's device
    weight: float = 1.0
    guide: torch.Tensor | None = None


@dataclass
class Term:
    """One named loss term: ``module`` reads the features of ``layer`` (or, with no
    layer, the image in 0..255) and returns a scalar in its own units."""

    name: str
    module: nn.Module
    layer: str | None
    weight: float
    factor: float


class TermValues(Mapping[str, torch.Tensor]):
    """The detached values of one evaluation by term name, held as one float32 tensor (so
    reading them all costs one host sync: :meth:`floats`)."""

    def __init__(self, names: tuple[str, ...], stacked: torch.Tensor) -> None:
        self.names = names
        self.stacked = stacked
        self._index = {n: i for i, n in enumerate(names)}

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.stacked[self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def floats(self) -> dict[str, float]:
        """Every value as a Python float, by name."""
        return dict(zip(self.names, self.stacked.tolist()))


class Objective(nn.Module):
    """Callable on an image x (1, 3, H, W, RGB 0..255): returns (total, term values by
    name). Terms are added with :meth:`add_term` (the specs of
    :mod:`nst.objective.terms` add a run's terms); ``weighting`` says in which units the
    content and style terms enter the total (see the module docstring)."""

    def __init__(self, extractor: VGG19Features, weighting: str = "calibrated") -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise TermError(f"weighting must be one of {', '.join(WEIGHTINGS)}")
        self.extractor = extractor
        self.weighting = weighting
        self._terms: list[Term] = []
        self.modules_ = nn.ModuleDict()  # registers the term modules (device moves)
        #: evaluate in tiles (:mod:`nst.objective.tiling`) when set; set it before adding
        #: terms, so that their targets are encoded in tiles too
        self.tiling: tiles.Tiling | None = None
        #: workers that compute the tiles of a tiled evaluation (``nst.spread``), or None
        self.spread: tiles.Spread | None = None
        #: the network rectifies in place (less memory, slower; tiles always do)
        self.lean = False

    # -- the terms ---------------------------------------------------------------------------
    @property
    def terms(self) -> list[Term]:
        return list(self._terms)

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._terms)

    @property
    def term_weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self._terms}

    @property
    def term_factors(self) -> dict[str, float]:
        return {t.name: t.factor for t in self._terms}

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers the current terms read."""
        return tuple(dict.fromkeys(t.layer for t in self._terms if t.layer is not None))

    def add_term(
        self,
        name: str,
        module: nn.Module,
        *,
        layer: str | None = None,
        weight: float = 1.0,
        factor: float = 1.0,
    ) -> Term:
        """Add a term; it is reported under ``name`` in every front end. Refuses, with a
        :class:`~nst.errors.TermError`, a malformed or taken name, a module that is not an
        ``nn.Module``, a layer the network does not reach, and a weight or factor that is
        not a finite number. Each evaluation checks that the module returned a scalar."""
        if not isinstance(name, str) or not TERM_NAME.fullmatch(name):
            raise TermError(f"loss term name {name!r}: use group or group:key (letters, digits)")
        if name in self.term_names:
            raise TermError(f"a loss term named {name!r} exists already")
        if not isinstance(module, nn.Module):
            raise TermError(f"loss term {name!r}: the module must be a torch.nn.Module")
        if layer is not None and layer not in self.extractor.plan:
            raise TermError(
                f"loss term {name!r} reads {layer}, beyond the network in use (last: "
                f"{self.extractor.last_layer}); declare the layer in the term's spec"
            )
        for what, value in (("weight", weight), ("factor", factor)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TermError(f"loss term {name!r}: {what} must be a number")
            if not math.isfinite(value):
                raise TermError(f"loss term {name!r}: {what} must be finite (got {value})")
        term = Term(name, module, layer, float(weight), float(factor))
        self._terms.append(term)
        self.modules_[name.replace(":", "__")] = module
        return term

    def remove_terms(self, group: str) -> None:
        """Drop every term of ``group`` (``style`` drops ``style:conv1_1`` ...)."""
        gone = [t for t in self._terms if t.name.partition(":")[0] == group]
        for t in gone:
            del self.modules_[t.name.replace(":", "__")]
        self._terms = [t for t in self._terms if t not in gone]

    def features(
        self, x: torch.Tensor, layers: tuple[str, ...] | list[str]
    ) -> dict[str, torch.Tensor]:
        """The features of ``layers`` for x (assembled from tiles when tiling is set;
        without autograd then)."""
        if self.tiling is not None:
            return tiles.tiled_features(self, x, layers, self.tiling)
        return self.extractor(x, layers, lean=self.lean)

    def moments(
        self, x: torch.Tensor, layers: tuple[str, ...] | list[str]
    ) -> dict[str, tiles.Moments]:
        """Per layer, the sums over positions of the features and of their outer
        products (float64) and the number of positions (in tiles when tiling is set)."""
        return tiles.tiled_moments(self, x, layers, self.tiling)

    # -- evaluation -------------------------------------------------------------------------
    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, TermValues]:
        """The total (detached), its gradient with respect to x and the term values: in
        tiles when ``tiling`` is set (the same numbers, in the memory of one tile)."""
        if self.tiling is not None:
            return tiles.value_and_grad(self, x, self.tiling, self.spread)
        x = x.detach().requires_grad_(True)
        total, values = self(x)
        if not total.requires_grad:  # every weight 0: nothing moves the image
            return total.detach(), torch.zeros_like(x), values
        (grad,) = torch.autograd.grad(total, x)
        return total.detach(), grad, values

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, TermValues]:
        """The total (a scalar with grad) and the detached term values by name.

        Terms with factor 0 are evaluated without gradient, for the record only. The
        network may run in bf16/fp16; every term's math runs in float32.
        """
        terms = self._terms
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
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise TermError(f"loss term {t.name!r} returned {shape}, not a scalar tensor")
            if t.factor != 0.0:
                total = total + t.factor * value
            values.append(value.detach().float())
        stacked = torch.stack(values) if values else x.new_zeros((0,), dtype=torch.float32)
        return total, TermValues(self.term_names, stacked)
