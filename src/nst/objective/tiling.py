"""Tiled evaluation of the exact objective: the paper's loss and gradient, in bounded memory.

Every feature term of the objective is a function of sums over positions: the content
term is such a sum itself, a Gram matrix is the sum of F_p^T F_p over positions p, the
w2 statistic's mean and covariance are sums of F_p and F_p F_p^T. So a term is
``value = from_stats(sum over tiles of tile_stats(F on the tile's core))``, and

1. a first pass without autograd sums every term's statistics over the tiles;
2. the value is computed from the sums, and d(value)/d(statistics) by autograd on them
   (the statistics are small: a C x C matrix per layer);
3. a second pass, tile by tile with autograd, backpropagates the surrogate
   <stop-grad(d value / d statistics), the tile's statistics>, whose gradient at the
   tile's positions equals the global one, and adds the tile's input gradient into the
   image's.

A term whose ``from_stats`` is the identity (``local``: the content term) needs no first
pass. Tiles are cut on the image (the *core*), each grown by a halo of at least the
receptive-field radius of the deepest layer in use, and every core and halo is a
multiple of the network's total stride, so each layer's positions inside a core are
exactly the untiled ones (zero padding only reaches positions within the radius of a
tile's cut edge). Nothing is blended: the result is the untiled objective and gradient,
up to the order of floating-point sums. Terms that read the image itself (TV, the
alpha-norm, the video's temporal term) are cheap and run on the whole image.

A term module is tileable when it has ``tile_stats(features, where)`` -> a tuple of
tensors (additive over tiles), ``from_stats(stats)`` -> the scalar value, and ``local``
(True when ``from_stats`` is the identity on one statistic). Two more, optional:

* ``margin`` (positions): its ``tile_stats`` reads that many positions of its layer
  beyond each side of the core (mrf's 3x3 patches centred in the core: 1); the halo then
  grows by as many strides of the deepest layer (``Tiling.for_layers(reach=)``), so those
  positions are exact too.
* ``gathers``: a local term whose tiles need one tensor of the whole image first (mrf's
  coverage matching: each style patch's best cosine with any of the picture's patches).
  Its ``gather(features, where)`` (a tuple of tensors) runs in the statistics pass, the
  tiles' tensors are combined by their elementwise maximum, and the results reach its
  ``tile_stats(features, where, *gathered)`` in the gradient pass beside the
  coefficients (under :func:`gathered_key`), so workers get it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from ..config import style_losses_that
from ..errors import TermError
from ..layers import INDEX, NAMES, deepest, feature_size, pools_through, receptive_box

if TYPE_CHECKING:
    from .objective import Objective, Term, TermValues


class Spread(Protocol):
    """Workers that compute a tiled evaluation's tiles (``nst.spread``): ``begin`` with
    the feature terms of the evaluation (a new stage's are sent once), then each pass's
    tiles, returned in the order of ``windows``. ``keep_graph``: a worker keeps a tile's
    forward from the statistics pass for its gradient pass (set when the tiles are cut
    for the workers, not for memory)."""

    keep_graph: bool

    @property
    def count(self) -> int: ...

    @property
    def threads(self) -> int: ...

    def begin(self, terms: Sequence[FeatureTerm]) -> None: ...

    def stats(
        self, x: torch.Tensor, windows: Sequence[Window]
    ) -> list[dict[str, list[torch.Tensor]]]: ...

    def grads(
        self, x: torch.Tensor, windows: Sequence[Window],
        coefficients: dict[str, tuple[torch.Tensor, ...]],
    ) -> list[tuple[torch.Tensor | None, dict[str, torch.Tensor]]]: ...  # fmt: skip


#: one layer's sums over positions: of the features (C,), of their outer products (C, C),
#: both float64, and the number of positions
Moments = tuple[torch.Tensor, torch.Tensor, int]


@runtime_checkable
class Tileable(Protocol):
    """A term module the tiled evaluation can split (see the module docstring):
    ``stats_count`` statistics per tile."""

    local: bool
    stats_count: int

    def tile_stats(self, features: torch.Tensor, where: Where) -> tuple[torch.Tensor, ...]: ...

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor: ...


def gathered_key(name: str) -> str:
    """Where a gathering term's whole-image tensor travels among the coefficients."""
    return f"{name}#gathered"


def _margin(module: object) -> int:
    return int(getattr(module, "margin", 0))


def gathers(module: object) -> bool:
    """Whether a term module gathers a tensor of the whole image first (see the module
    docstring)."""
    return bool(getattr(module, "gathers", False))


@dataclass(frozen=True)
class Where:
    """A tile's core at one layer, in that layer's positions of the whole image: rows
    ``top:bottom`` and columns ``left:right`` (to crop a target or a guide); grown by the
    term's ``margin`` where it has one. ``height`` x ``width``: the whole image's
    positions at the layer."""

    top: int
    bottom: int
    left: int
    right: int
    height: int = 0
    width: int = 0

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        """The core's positions of a (..., H, W) map of the whole image at this layer."""
        return t[..., self.top : self.bottom, self.left : self.right]

    @property
    def positions(self) -> int:
        return max(0, self.bottom - self.top) * max(0, self.right - self.left)


@dataclass(frozen=True)
class Window:
    """One tile: its core and its padded region (core plus halo, clipped to the image),
    as (top, bottom, left, right) in input pixels, and the image's size (h, w)."""

    core: tuple[int, int, int, int]
    padded: tuple[int, int, int, int]
    size: tuple[int, int]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The padded region of an image (..., H, W)."""
        t, b, left, r = self.padded
        return x[..., t:b, left:r]

    def where(self, layer: str, margin: int = 0) -> Where:
        """The core at ``layer``, in the whole image's positions at that layer, grown by
        ``margin`` positions each side (clipped to the image)."""
        s = 2 ** pools_through(layer)
        t, b, left, r = self.core
        h, w = self.size
        fh, fw = feature_size(layer, self.size)
        bottom = b // s if b < h else fh
        right = r // s if r < w else fw
        m = margin
        return Where(max(0, t // s - m), min(fh, bottom + m), max(0, left // s - m),
                     min(fw, right + m), fh, fw)  # fmt: skip

    def local(self, features: torch.Tensor, layer: str, margin: int = 0) -> torch.Tensor:
        """The core's positions of ``layer``'s features computed on the padded region
        (grown by ``margin`` positions each side, clipped to the image)."""
        s = 2 ** pools_through(layer)
        at = self.where(layer, margin)
        top = at.top - self.padded[0] // s
        left = at.left - self.padded[2] // s
        return features[..., top : top + at.bottom - at.top, left : left + at.right - at.left]


def halo_for(layers: Sequence[str], plan: Sequence[str] = NAMES, reach: int = 0) -> int:
    """The receptive-field radius of the deepest of ``layers`` (input pixels): how far a
    position's input reaches beyond the pixels its layer's stride maps it to; plus
    ``reach`` of that layer's strides (a term reading positions beyond the core)."""
    name = deepest(list(layers))
    s = 2 ** pools_through(name)
    far = 1 << 20  # a position far from every edge, so nothing is clipped
    top, _, bottom, _ = receptive_box(name, far, far, (1 << 30, 1 << 30), plan)
    return max(far * s - top, bottom - (far * s + s - 1)) + reach * s


def stride_for(layers: Sequence[str]) -> int:
    """The total stride of the network cut after the deepest of ``layers``."""
    return 2 ** pools_through(deepest(list(layers)))


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclass(frozen=True)
class Tiling:
    """Tiles of ``tile`` px (core side; ``tile_w`` across when it differs: tiles for
    workers) with a halo of ``halo`` px, all multiples of ``stride``."""

    tile: int
    halo: int
    stride: int
    tile_w: int | None = None

    @classmethod
    def for_layers(
        cls, layers: Sequence[str], tile: int, plan: Sequence[str] = NAMES,
        tile_w: int | None = None, reach: int = 0,
    ) -> Tiling:  # fmt: skip
        """The tiling for a network reading ``layers``: the tile rounded up and the halo
        (the deepest layer's receptive radius, plus ``reach`` of its strides: the
        ``margin`` of a term) rounded up to the total stride."""
        if not layers:
            raise TermError("tiling needs the layers in use")
        stride = stride_for(layers)
        halo = _round_up(halo_for(layers, plan, reach), stride)
        across = None if tile_w is None else _round_up(max(tile_w, stride), stride)
        return cls(_round_up(max(tile, stride), stride), halo, stride, across)

    def cuts(self, length: int, tile: int | None = None) -> list[tuple[int, int]]:
        """A side of ``length`` px cut into cores of at most ``tile`` px (default the
        tiling's; balanced, each a multiple of the stride but the last)."""
        tile = tile or self.tile
        n = max(1, math.ceil(length / tile))
        step = _round_up(math.ceil(length / n), self.stride)
        out = []
        start = 0
        while start < length:
            end = min(length, start + step)
            out.append((start, end))
            start = end
        return out

    def windows(self, size: tuple[int, int]) -> list[Window]:
        h, w = size
        out = []
        for t, b in self.cuts(h):
            for left, r in self.cuts(w, self.tile_w):
                padded = (
                    max(0, t - self.halo),
                    min(h, b + self.halo),
                    max(0, left - self.halo),
                    min(w, r + self.halo),
                )
                out.append(Window((t, b, left, r), padded, size))
        return out

    def padded_pixels(self, size: tuple[int, int]) -> int:
        """The largest padded tile's pixels for an image of ``size`` (what one tile's
        evaluation holds in memory)."""
        return max((p[1] - p[0]) * (p[3] - p[2]) for p in (w.padded for w in self.windows(size)))

    def overhead(self, size: tuple[int, int]) -> float:
        """Pixels the network runs over, all tiles together, per pixel of the image."""
        total = sum((p[1] - p[0]) * (p[3] - p[2]) for p in (w.padded for w in self.windows(size)))
        return total / (size[0] * size[1])


def check_tileable(terms: Sequence[Term]) -> None:
    """Refuse, in one line, a feature term that cannot be evaluated in tiles."""
    for t in terms:
        if t.layer is None:
            continue
        if not isinstance(t.module, Tileable) or not getattr(t.module, "tileable", True):
            raise TermError(
                f"loss term {t.name!r} cannot be evaluated in tiles (its module has no "
                "tile_stats/from_stats); at this size raise --memory-limit, or use "
                f"--style-loss {style_losses_that('tiles')}"
            )


def _scalar(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
        raise TermError(f"loss term {name!r} returned {shape}, not a scalar tensor")
    return value


@torch.no_grad()
def tiled_features(
    objective: Objective, x: torch.Tensor, layers: Sequence[str], tiling: Tiling
) -> dict[str, torch.Tensor]:
    """The features of ``layers`` for the whole image x, assembled from the tiles' cores
    (no autograd): what an untiled pass gives, in the memory of one tile."""
    size = (x.shape[-2], x.shape[-1])
    out: dict[str, torch.Tensor] = {}
    for win in tiling.windows(size):
        feats = objective.extractor(win.crop(x), layers)
        for name in layers:
            f = win.local(feats[name], name)
            if name not in out:
                fh, fw = feature_size(name, size)
                out[name] = f.new_empty((f.shape[0], f.shape[1], fh, fw))
            win.where(name).crop(out[name]).copy_(f)
    return out


@torch.no_grad()
def tiled_moments(
    objective: Objective, x: torch.Tensor, layers: Sequence[str], tiling: Tiling | None
) -> dict[str, Moments]:
    """Per layer, the sum of the feature vectors (C,), the sum of their outer products
    (C, C), both float64, and the number of positions, over the whole image x (one tile
    when ``tiling`` is None)."""
    size = (x.shape[-2], x.shape[-1])
    out: dict[str, Moments] = {}
    windows = tiling.windows(size) if tiling is not None else [_whole(size)]
    for win in windows:
        feats = objective.extractor(win.crop(x), layers)
        for name in layers:
            f = win.local(feats[name], name)[0].flatten(1).transpose(0, 1).double()
            s1, s2, m = f.sum(0), f.T @ f, f.shape[0]
            if name in out:
                a1, a2, am = out[name]
                s1, s2, m = a1 + s1, a2 + s2, am + m
            out[name] = (s1, s2, m)
    return out


def _whole(size: tuple[int, int]) -> Window:
    h, w = size
    return Window((0, h, 0, w), (0, h, 0, w), size)


@dataclass(frozen=True)
class FeatureTerm:
    """A feature term as the tiled evaluation reads it."""

    name: str
    layer: str
    module: Tileable
    factor: float


def _feature_terms(terms: Sequence[Term]) -> list[FeatureTerm]:
    check_tileable(terms)
    return [
        FeatureTerm(t.name, t.layer, t.module, t.factor)  # type: ignore[arg-type]
        for t in terms
        if t.layer is not None
    ]


def _stats_pass(
    objective: Objective, x: torch.Tensor, windows: Sequence[Window], terms: Sequence[FeatureTerm],
    spread: Spread | None = None,
) -> dict[str, list[torch.Tensor]]:  # fmt: skip
    """Every term's statistics summed over the tiles, in float64 (no autograd): the
    value computed from them then loses no digits where a statistic is close to its
    target (a Gram matrix G near A, in E = sum (G - A)^2); a gathering term's tensors
    combined by their maximum. With ``spread``, the tiles are computed by its workers
    and summed here in the same order."""
    sums: dict[str, list[torch.Tensor]] = {}
    if not terms:
        return sums
    gathering = {t.name for t in terms if gathers(t.module)}
    parts = (
        spread.stats(x, windows)
        if spread is not None
        else (tile_stats(objective, win.crop(x), win, terms) for win in windows)
    )
    for part in parts:
        for name, wide in part.items():
            acc = sums.get(name)
            if acc is None:
                sums[name] = wide
            elif name in gathering:
                sums[name] = [torch.maximum(a, p) for a, p in zip(acc, wide)]
            else:
                sums[name] = [a + p for a, p in zip(acc, wide)]
    return sums


def _read(
    feats: dict[str, torch.Tensor], win: Window, t: FeatureTerm
) -> tuple[torch.Tensor, Where]:
    """What a term's ``tile_stats`` reads of a tile: its layer's features on the core
    (grown by the term's margin) and where they are."""
    m = _margin(t.module)
    return win.local(feats[t.layer], t.layer, m), win.where(t.layer, m)


def _gather(feats: dict[str, torch.Tensor], win: Window, t: FeatureTerm) -> list[torch.Tensor]:
    with torch.no_grad():
        f, at = _read(feats, win, t)
        return [g.double() for g in t.module.gather(f.detach(), at)]  # type: ignore[attr-defined]


def tile_stats(
    objective: Objective, xt: torch.Tensor, win: Window, terms: Sequence[FeatureTerm]
) -> dict[str, list[torch.Tensor]]:
    """One tile's statistics of every term (float64), from its padded region ``xt`` (a
    gathering term's: its ``gather``)."""
    layers = sorted({t.layer for t in terms}, key=INDEX.__getitem__)
    out: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        feats = objective.extractor(xt, layers)
        for t in terms:
            if gathers(t.module):
                out[t.name] = _gather(feats, win, t)
                continue
            part = t.module.tile_stats(*_read(feats, win, t))
            out[t.name] = [p.double() for p in part]  # summed and differentiated in float64
    return out


def value_and_grad(
    objective: Objective, x: torch.Tensor, tiling: Tiling, spread: Spread | None = None
) -> tuple[torch.Tensor, torch.Tensor, TermValues]:
    """The total, its gradient with respect to x and the term values, evaluated in tiles
    (see the module docstring); the same numbers as the untiled evaluation. With
    ``spread``, the tiles of both passes are computed by its workers (``nst.spread``) and
    summed here in the order this process would sum them."""
    from .objective import TermValues

    terms = objective.terms
    features = _feature_terms(terms)
    x = x.detach()
    windows = tiling.windows((x.shape[-2], x.shape[-1]))
    global_terms = [t for t in features if not t.module.local]
    local_terms = [t for t in features if t.module.local]
    gathering = [t for t in local_terms if gathers(t.module)]
    # 1. the global terms' statistics, summed over the tiles (and what gathers, combined)
    if spread is not None:
        spread.begin(features)
    sums = _stats_pass(objective, x, windows, global_terms + gathering, spread)
    # 2. their values, and d(factor * value)/d(statistics)
    values, coefficients = _coefficients(global_terms, sums)
    for t in gathering:
        coefficients[gathered_key(t.name)] = tuple(sums[t.name])
    # 3. the surrogate's gradient tile by tile; the local terms' values on the way
    grad = torch.zeros_like(x)
    backward = [t for t in global_terms if t.name in coefficients] + local_terms
    values.update(_tile_gradients(objective, x, windows, backward, coefficients, grad, spread))
    # 4. the terms that read the image itself, on the whole image
    total = _image_terms(terms, x, values, grad)
    for t in features:
        if t.factor != 0.0:
            total = total + t.factor * values[t.name]
    names = tuple(t.name for t in terms)
    stacked = (
        torch.stack([values[n].float() for n in names])
        if names
        else x.new_zeros((0,), dtype=torch.float32)
    )
    return total, grad, TermValues(names, stacked)


def _coefficients(
    global_terms: list[FeatureTerm], sums: dict[str, list[torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, ...]]]:
    """The global terms' values from their summed statistics, and the coefficients of the
    surrogate: d(factor * value)/d(statistics) (none for a term whose factor is 0)."""
    values: dict[str, torch.Tensor] = {}
    coefficients: dict[str, tuple[torch.Tensor, ...]] = {}
    for t in global_terms:
        stats = [s.detach().requires_grad_(t.factor != 0.0) for s in sums[t.name]]
        with torch.enable_grad():
            value = _scalar(t.name, t.module.from_stats(stats))
            if t.factor != 0.0:
                grads = torch.autograd.grad(value * t.factor, stats, allow_unused=True)
                coefficients[t.name] = tuple(
                    torch.zeros_like(s) if g is None else g for g, s in zip(grads, stats)
                )
        values[t.name] = value.detach()
    return values, coefficients


def _tile_gradients(
    objective: Objective,
    x: torch.Tensor,
    windows: Sequence[Window],
    backward: list[FeatureTerm],
    coefficients: dict[str, tuple[torch.Tensor, ...]],
    grad: torch.Tensor,
    spread: Spread | None = None,
) -> dict[str, torch.Tensor]:
    """Add the surrogate's gradient to ``grad`` tile by tile; returns the local terms'
    values (summed over the tiles)."""
    local_sums = {t.name: x.new_zeros(()) for t in backward if t.name not in coefficients}
    if not backward:
        return local_sums
    parts = (
        spread.grads(x, windows, coefficients)
        if spread is not None
        else (tile_grad(objective, win.crop(x), win, backward, coefficients) for win in windows)
    )
    for win, (g, pieces) in zip(windows, parts):
        if g is not None:
            win.crop(grad).add_(g.to(grad.dtype))
        for name, piece in pieces.items():
            local_sums[name] = local_sums[name] + piece
    return local_sums


def tile_grad(
    objective: Objective,
    xt: torch.Tensor,
    win: Window,
    backward: Sequence[FeatureTerm],
    coefficients: dict[str, tuple[torch.Tensor, ...]],
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """One tile's share of the gradient (of its padded region; None when nothing moves
    the image) and its local terms' values: its forward, then the surrogate's backward."""
    _, kept = tile_forward(objective, xt, win, backward, gather=False)
    return tile_backward(kept, win, backward, coefficients)


def tile_forward(
    objective: Objective, xt: torch.Tensor, win: Window, terms: Sequence[FeatureTerm],
    gather: bool = True,
) -> tuple[dict[str, list[torch.Tensor]], Kept]:  # fmt: skip
    """A tile's statistics pass with its autograd graph kept (a tile worker with the
    memory for it): the global terms' statistics (float64, detached), the gathering
    terms' tensors (unless ``gather`` is off) and what :func:`tile_backward` needs to
    give the tile's gradient without a second forward."""
    xt = xt.detach().requires_grad_(True)
    layers = sorted({t.layer for t in terms}, key=INDEX.__getitem__)
    with torch.enable_grad():
        feats = objective.extractor(xt, layers, lean=True)
        parts = {t.name: t.module.tile_stats(*_read(feats, win, t))
                 for t in terms if not t.module.local}  # fmt: skip
    stats = {name: [p.detach().double() for p in part] for name, part in parts.items()}
    if gather:
        stats.update({t.name: _gather(feats, win, t) for t in terms if gathers(t.module)})
    return stats, Kept(xt, feats, parts)


@dataclass
class Kept:
    """A tile's forward kept for its gradient pass: its region, features and statistics
    (with their autograd graph)."""

    xt: torch.Tensor
    feats: dict[str, torch.Tensor]
    parts: dict[str, tuple[torch.Tensor, ...]]


def tile_backward(
    kept: Kept, win: Window, backward: Sequence[FeatureTerm],
    coefficients: dict[str, tuple[torch.Tensor, ...]],
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:  # fmt: skip
    """:func:`tile_grad` from a kept forward: the same surrogate, backpropagated through
    the graph the statistics pass made."""
    pieces: dict[str, torch.Tensor] = {}
    with torch.enable_grad():
        surrogate = kept.xt.new_zeros((), dtype=torch.float32)
        for t in backward:
            if t.name in coefficients:
                for c, p in zip(coefficients[t.name], kept.parts[t.name]):
                    surrogate = surrogate + (c * p.to(c.dtype)).sum().float()
                continue
            f, at = _read(kept.feats, win, t)
            if t.factor == 0.0:
                f = f.detach()
            extra = coefficients[gathered_key(t.name)] if gathers(t.module) else ()
            piece = _scalar(t.name, t.module.from_stats(t.module.tile_stats(f, at, *extra)))
            if t.factor != 0.0:
                surrogate = surrogate + t.factor * piece.float()
            pieces[t.name] = piece.detach()
        if not surrogate.requires_grad:
            return None, pieces
        (g,) = torch.autograd.grad(surrogate, kept.xt)
    return g, pieces


def _image_terms(
    terms: Sequence[Term], x: torch.Tensor, values: dict[str, torch.Tensor], grad: torch.Tensor
) -> torch.Tensor:
    """The terms that read the image itself, on the whole image: their values into
    ``values``, their gradient added to ``grad``; returns their weighted sum."""
    total = x.new_zeros((), dtype=torch.float32)
    image_terms = [t for t in terms if t.layer is None]
    if image_terms:
        xi = x.detach().requires_grad_(True)
        with torch.enable_grad():
            for term in image_terms:
                if term.factor == 0.0:
                    with torch.no_grad():
                        value = _scalar(term.name, term.module(xi))
                else:
                    value = _scalar(term.name, term.module(xi))
                    total = total + term.factor * value.float()
                values[term.name] = value.detach()
            if total.requires_grad:
                (g,) = torch.autograd.grad(total, xi)
                grad.add_(g)
    return total.detach()
