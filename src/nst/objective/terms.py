"""Loss terms as specs: what a run's objective is built from.

A :class:`TermSpec` names a kind of term and says, for a run, whether it is in use, which
layers it reads (the run's network is cut after the deepest of every term's layers), its
weight (an option of the run's config, read by name) and how it encodes its targets for
one coarse-to-fine stage (``build``: it adds named terms to the objective with
:meth:`~nst.objective.Objective.add_term`). The paper's terms (content, style, TV) and
the Mahendran & Vedaldi alpha-norm prior are the registered specs, :data:`TERMS`; a run
adds its own (the video's temporal term) with :meth:`nst.planning.Plan.with_term`.

A new kind of term is one spec: a module that encodes its target once and returns a
scalar, a ``build`` that adds it, ``layers`` and ``weight_of``; :func:`register` it
(a built-in) or put it on a plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import torch
from torch import nn

from ..config import Config, style_losses_that
from ..errors import ConfigError, TermError
from ..layers import LayerWeights, feature_size
from .losses import AlphaNormLoss, ContentTarget, TVLoss
from .objective import Objective, StyleSource
from .statistics import Statistic, statistic
from .tiling import Tileable, Where, gathers


class RunInputs(Protocol):
    """What a spec reads of a run (a :class:`~nst.planning.Plan` is one)."""

    @property
    def config(self) -> Config: ...

    @property
    def content(self) -> torch.Tensor | None: ...

    @property
    def styles(self) -> tuple[torch.Tensor, ...]: ...

    @property
    def term_data(self) -> Mapping[str, Any]: ...

    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class StageTargets:
    """The targets of one stage, at its size, on the network's device (RGB 0..255)."""

    size: tuple[int, int]  # (h, w) of the generated image
    content: torch.Tensor | None  # (1, 3, h, w)
    styles: tuple[StyleSource, ...]


Build = Callable[[Objective, RunInputs, StageTargets, float], None]


def _no_layers(run: RunInputs) -> tuple[str, ...]:
    return ()


def _always(run: RunInputs) -> bool:
    return True


@dataclass(frozen=True)
class TermSpec:
    """One kind of loss term (see the module docstring)."""

    name: str
    build: Build  # (objective, run, stage targets, weight) -> adds the terms
    layers: Callable[[RunInputs], tuple[str, ...]] = field(default=_no_layers)
    #: the term's weight, read off a run's settings (None: 1)
    weight_of: Callable[[Config], float] | None = None
    active: Callable[[RunInputs], bool] = field(default=_always)

    def weight(self, run: RunInputs) -> float:
        """The term's weight in this run (1 without a ``weight_of``)."""
        return 1.0 if self.weight_of is None else float(self.weight_of(run.config))


#: the registered specs, in the order their terms are reported
TERMS: dict[str, TermSpec] = {}


def register(spec: TermSpec) -> TermSpec:
    if spec.name in TERMS:
        raise TermError(f"a term spec named {spec.name!r} is registered already")
    TERMS[spec.name] = spec
    return spec


def specs_for(run: RunInputs, added: Sequence[TermSpec] = ()) -> list[TermSpec]:
    """The specs in use for ``run``: the registered ones, then ``added`` (a plan's)."""
    names = set(TERMS)
    for spec in added:
        if spec.name in names:
            raise TermError(f"two term specs are named {spec.name!r}")
        names.add(spec.name)
    return [s for s in (*TERMS.values(), *added) if s.active(run)]


def layers_for(run: RunInputs, added: Sequence[TermSpec] = ()) -> list[str]:
    """Every layer the run's terms read, in first-use order."""
    out: list[str] = []
    for spec in specs_for(run, added):
        out.extend(spec.layers(run))
    return list(dict.fromkeys(out))


def build_terms(
    objective: Objective, run: RunInputs, stage: StageTargets, added: Sequence[TermSpec] = ()
) -> Objective:
    """Add every term in use, its targets encoded at the stage's size."""
    for spec in specs_for(run, added):
        spec.build(objective, run, stage, spec.weight(run))
    return objective


# -- the paper's terms ------------------------------------------------------------------------
@torch.no_grad()
def add_content(
    objective: Objective, content: torch.Tensor, layers: LayerWeights, alpha: float
) -> None:
    """``content:LAYER`` terms: P of every content layer encoded once; factor alpha * w
    (times 2/(N M), the MSE, unless the weighting is ``paper``)."""
    names = tuple(n for n, _ in layers)
    feats = objective.features(content, names)
    for name, w in layers:
        f = feats[name]  # kept in the network's dtype (the loss computes in float32)
        n, m = f.shape[1], f.shape[2] * f.shape[3]
        units = 1.0 if objective.weighting == "paper" else 2.0 / (n * m)  # MSE = 2 L_c / (N M)
        objective.add_term(
            f"content:{name}", ContentTarget(f), layer=name, weight=w, factor=alpha * w * units
        )


class SumOfTargets(nn.ModuleList):
    """Several targets on one layer (style regions) as one term: the sum of their losses.
    Tileable (:mod:`nst.objective.tiling`) when every target is; local, with a margin or
    gathering, as its targets are (they are all of one statistic)."""

    @property
    def local(self) -> bool:
        return len(self) > 0 and all(getattr(t, "local", False) for t in self)

    @property
    def margin(self) -> int:
        return max((int(getattr(t, "margin", 0)) for t in self), default=0)

    @property
    def gathers(self) -> bool:
        return any(gathers(t) for t in self)

    def gather(self, features: torch.Tensor, where: Where) -> tuple[torch.Tensor, ...]:
        """The gathering targets' tensors, in order (one each)."""
        return tuple(g for t in self if gathers(t) for g in cast(Any, t).gather(features, where))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        values = [t(features) for t in self]
        return values[0] if len(values) == 1 else torch.stack(values).sum()

    @property
    def tileable(self) -> bool:
        return all(isinstance(t, Tileable) for t in self)

    def _parts(self) -> list[Tileable]:
        return [cast(Tileable, t) for t in self]

    @property
    def stats_count(self) -> int:
        counts = [t.stats_count for t in self._parts()]
        return sum(counts)

    def tile_stats(
        self, features: torch.Tensor, where: Where, *gathered: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Each target's statistics, in order; ``gathered``: one tensor per gathering
        target, in order."""
        out: list[torch.Tensor] = []
        k = 0
        for t in self._parts():
            mine = gathered[k : k + 1] if gathers(t) and gathered else ()
            k += len(mine)
            out.extend(t.tile_stats(features, where, *mine))
        return tuple(out)

    def from_stats(self, stats: Sequence[torch.Tensor]) -> torch.Tensor:
        values = []
        start = 0
        for t in self._parts():
            values.append(t.from_stats(stats[start : start + t.stats_count]))
            start += t.stats_count
        return values[0] if len(values) == 1 else torch.stack(values).sum()


def _resize_guide(guide: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(guide.shape[-2:]) == size:
        return guide
    return nn.functional.interpolate(guide, size=size, mode="area")


def _layer_sizes(names: tuple[str, ...], out_size: tuple[int, int]) -> dict[str, tuple[int, int]]:
    return {n: feature_size(n, out_size) for n in names}


def _style_features(
    objective: Objective, stat: Statistic, members: Sequence[StyleSource], names: tuple[str, ...]
) -> tuple[list[dict[str, torch.Tensor]], dict[str, int]]:
    """Each style image's features at ``names`` (and each layer's channels), reduced to what
    the statistic ``keep``s as each image's are computed when it declares that, so the
    features of one image are held at a time (mrf: a style image and its four views)."""
    if stat.keep is None:
        feats = [objective.features(src.image, names) for src in members]
        return feats, {n: feats[0][n].shape[1] for n in names}
    sizes = {n: [feature_size(n, (s.image.shape[-2], s.image.shape[-1])) for s in members]
             for n in names}  # fmt: skip
    kept: list[dict[str, torch.Tensor]] = []
    channels: dict[str, int] = {}
    for k, src in enumerate(members):
        whole = objective.features(src.image, names)
        channels.update({n: whole[n].shape[1] for n in names})
        kept.append({n: stat.keep(whole[n], sizes[n], k) for n in names})
        del whole
    return kept, channels


@torch.no_grad()
def add_style(
    objective: Objective,
    sources: Sequence[StyleSource],
    layers: LayerWeights,
    beta: float,
    out_size: tuple[int, int],
    loss: str = "gram",
    seed: int = 0,
    views: bool = True,
    options: Mapping[str, Any] | None = None,
) -> None:
    """``style:LAYER`` terms: each layer's target under the statistic ``loss`` (gram, w2,
    swd; :mod:`nst.objective.statistics`), from a weighted blend of the sources per
    guide (region).

    Sources sharing a guide (``None`` or the same tensor) are blended into one target;
    each distinct guide gets its own guided target, summed into the layer's term. With
    ``views``, a statistic that has views of a style image (mrf) encodes them beside it,
    at the image's blend weight. ``options``: the run's options, of which the statistic's
    encoder gets those it takes (its defaults without them).
    """
    stat = statistic(loss)
    given = {n: v for n, v in (options or {}).items() if n in stat.takes}
    names = tuple(n for n, _ in layers)
    groups: dict[int, list[StyleSource]] = {}
    for src in sources:
        groups.setdefault(id(src.guide) if src.guide is not None else 0, []).append(src)
    guided = any(s.guide is not None for s in sources)
    if guided and not stat.guides:
        raise ConfigError(f"style-loss {loss}: masks are not supported; use gram or w2")
    per_layer: dict[str, SumOfTargets] = {n: SumOfTargets() for n in names}
    channels: dict[str, int] = {}
    if objective.tiling is not None and not stat.tiles:
        raise ConfigError(
            f"style-loss {loss} cannot be evaluated in tiles; at this size use "
            f"{style_losses_that('tiles')}, or raise --memory-limit"
        )
    sizes = _layer_sizes(names, out_size) if guided else {}
    for members in groups.values():
        members = [s for s in members if s.weight > 0]
        if not members:
            continue
        guide = members[0].guide
        if stat.encode_moments is not None:
            sums = [objective.moments(src.image, names) for src in members]
        else:
            if views and stat.views is not None:
                members = [replace(src, image=v) for src in members
                           for v in (src.image, *stat.views(src.image))]  # fmt: skip
            feats, kept_channels = _style_features(objective, stat, members, names)
        for k, name in enumerate(names):
            layer_guide = None if guide is None else _resize_guide(guide, sizes[name])
            if stat.encode_moments is not None:
                channels[name] = sums[0][name][1].shape[0]
                pairs = [(m[name], src.weight) for m, src in zip(sums, members)]
                per_layer[name].append(stat.encode_moments(pairs, layer_guide, seed, k))
            else:
                channels[name] = kept_channels[name]
                samples = [(f[name], src.weight) for f, src in zip(feats, members)]
                per_layer[name].append(stat.encode(samples, layer_guide, seed, k, **given))
    weights = dict(layers)
    for name, targets in per_layer.items():
        if not len(targets):
            continue
        w = weights[name]
        factor = beta * w * stat.units(objective, channels[name])
        objective.add_term(f"style:{name}", targets, layer=name, weight=w, factor=factor)


def _content_layers(run: RunInputs) -> tuple[str, ...]:
    return tuple(n for n, _ in run.config.content_layers)


def _style_layers(run: RunInputs) -> tuple[str, ...]:
    return tuple(n for n, _ in run.config.style_layers)


def _build_content(objective: Objective, run: RunInputs, stage: StageTargets, w: float) -> None:
    assert stage.content is not None
    add_content(objective, stage.content, run.config.content_layers, w)


def _build_style(objective: Objective, run: RunInputs, stage: StageTargets, w: float) -> None:
    config = run.config
    add_style(objective, stage.styles, config.style_layers, w, stage.size, config.style_loss,
              run.seed, config.style_views, {"patch_match": config.patch_match})  # fmt: skip


def _build_tv(objective: Objective, run: RunInputs, stage: StageTargets, w: float) -> None:
    # always present: with weight 0 it is evaluated for the record only
    objective.add_term("tv", TVLoss(run.config.tv_beta), factor=w)


def _build_alpha(objective: Objective, run: RunInputs, stage: StageTargets, w: float) -> None:
    objective.add_term("alpha", AlphaNormLoss(run.config.alpha_norm), factor=w)


CONTENT = register(
    TermSpec(
        "content",
        _build_content,
        layers=_content_layers,
        weight_of=lambda config: config.content_weight,
        active=lambda run: run.content is not None,
    )
)
STYLE = register(
    TermSpec(
        "style",
        _build_style,
        layers=_style_layers,
        weight_of=lambda config: config.style_weight,
        active=lambda run: bool(run.styles),
    )
)
TV = register(TermSpec("tv", _build_tv, weight_of=lambda config: config.tv_weight))
ALPHA = register(
    TermSpec(
        "alpha",
        _build_alpha,
        weight_of=lambda config: config.alpha_weight,
        active=lambda run: run.config.alpha_weight > 0,
    )
)
