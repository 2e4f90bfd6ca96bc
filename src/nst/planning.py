"""Planning: inputs and a config become a :class:`Plan`, checked, before any work.

Planning loads and decodes every input once, applies the colour and region
controls, fixes the output size, the coarse-to-fine stages and the seed, and
refuses what cannot run with one line. Executing a plan (:mod:`nst.execution`)
then only computes. The web app plans in a worker thread when a job is submitted
and hands the plan to its runner.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from . import builtins, controls, memory
from .config import (
    MAX_SIDE,
    STYLE_LOSS_KINDS,
    Config,
    start_advice,
    start_keyword,
    style_losses_that,
)
from .errors import ConfigError, TooLarge
from .events import Stage
from .imageio import fit_size, load_image, resize_to, to_tensor
from .layers import deepest, min_side
from .model.vgg import rectifies_apart
from .objective import TermSpec, layers_for

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def load(image: ImageLike, role: str = "image") -> torch.Tensor:
    """Any supported image input as a (3, H, W) float tensor in [0, 1] on the CPU."""
    if builtins.is_builtin(image):
        return to_tensor(builtins.image(str(image)))
    if isinstance(image, (str, os.PathLike)):
        return to_tensor(load_image(image))
    try:
        return to_tensor(image)
    except ValueError as exc:
        raise ConfigError(f"{role}: {exc}") from None


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, prepared from the inputs (CPU tensors in [0, 1]).

    ``content`` is the image whose representation is matched (None for texture
    synthesis); ``styles`` the style images with their ``blend`` weights; ``stages``
    the coarse-to-fine stages, the last at ``out_size`` (h, w); ``init`` the start
    image (None: seeded noise); ``added`` loss-term specs beyond the registered ones
    (:mod:`nst.objective.terms`) and ``term_data`` what they read, by spec name.
    """

    config: Config
    content: torch.Tensor | None
    styles: tuple[torch.Tensor, ...]
    blend: tuple[float, ...]
    out_size: tuple[int, int]
    stages: tuple[Stage, ...]
    seed: int
    init: torch.Tensor | None = None
    color_reference: torch.Tensor | None = None  # content with its chroma (luminance mode)
    guides: tuple[torch.Tensor | None, ...] = ()  # per style: (1, h, w) region guide or None
    keep: torch.Tensor | None = None  # (1, h, w) region that keeps the content's pixels
    original: torch.Tensor | None = None  # the content at out_size, in its own colours
    added: tuple[TermSpec, ...] = ()
    term_data: Mapping[str, Any] = field(default_factory=dict)
    #: one-line warnings about the settings, with the fix (front ends show them)
    advice: tuple[str, ...] = ()

    @property
    def layers(self) -> list[str]:
        """The layers the run reads: every term's, added ones included."""
        return layers_for(self, self.added)

    @property
    def reach(self) -> int:
        """The positions beyond a tile's core its style terms read (mrf's patches: 1)."""
        return STYLE_LOSS_KINDS[self.config.style_loss].patch // 2 if self.styles else 0

    def with_term(self, spec: TermSpec, data: Any = None) -> Plan:
        """This plan with one more kind of loss term in every stage; ``data`` is what its
        spec reads (``plan.term_data[spec.name]``)."""
        plan = replace(
            self, added=(*self.added, spec), term_data={**self.term_data, spec.name: data}
        )
        layers_for(plan, plan.added)  # refuses a name taken twice, now
        return plan

    def style_longest(self, stage: int) -> int:
        """Longest side of the style image(s) in ``stage``."""
        s = self.stages[stage]
        fraction = max(s.height, s.width) / max(self.out_size)
        return max(16, round(self.config.style_longest * fraction))


def _check_side(
    what: str, size: tuple[int, int], layers: Sequence[str], hint: str, positions: int = 1
) -> None:
    """Refuse an image whose working size pools to fewer than ``positions`` on a side (a
    style loss's patch; 1: nothing) before the deepest layer."""
    if not layers:
        return
    need = min_side(layers) * positions
    h, w = size
    if min(h, w) < need:
        if min(h, w) / max(h, w) * MAX_SIDE < need:
            hint = "the image is too narrow for these layers at any size"
        raise ConfigError(
            f"{what}: working size {w}x{h} px is too small; the layers in use (down to "
            f"{deepest(list(layers))}) need at least {need} px on each side ({hint})"
        )


def _fit_memory(plan: Plan) -> Plan:
    """Every stage planned against ``--memory-limit`` (:mod:`nst.memory`): evaluated
    untiled, or in the largest tiles that fit (``--tile`` forces a size), and how many
    L-BFGS pairs it keeps. Refuses, before any work, what does not fit even in tiles."""
    from .runtime import resolve_device, resolve_precision

    c = plan.config
    device = resolve_device(c.device)
    _, dtype = resolve_precision(c.precision, device)
    limit = memory.parse_limit(c.memory_limit, device)
    baseline = memory.resident() if device.type == "cpu" else 0
    work = memory.Workload(
        layers=tuple(plan.layers),
        content_layers=tuple(n for n, _ in c.content_layers) if plan.content is not None else (),
        value_bytes=4 if dtype is None else torch.finfo(dtype).bits // 8,
        apart=rectifies_apart(dtype or torch.float32, device),
        style_pixels=0,
        history=c.lbfgs_history if c.optimizer == "lbfgs" else 0,
        baseline=baseline,
        reach=plan.reach,
        patch_layers=tuple(n for n, _ in c.style_layers)
        if plan.styles and STYLE_LOSS_KINDS[c.style_loss].patch > 1
        else (),
    )
    stages = []
    for k, s in enumerate(plan.stages):
        size = (s.height, s.width)
        forced = c.tile if c.tile is not None and max(size) > c.tile else None
        longest = plan.style_longest(k)
        styles = [fit_size(t.shape[2], t.shape[1], longest) for t in plan.styles]
        stage_work = replace(work, style_pixels=max((w * h for w, h in styles), default=0))
        try:
            need = memory.fit(stage_work, size, limit, forced)
        except TooLarge as exc:
            raise _too_large(plan, k, exc, limit or 0) from None
        if need.tile is not None and plan.styles and not STYLE_LOSS_KINDS[c.style_loss].tiles:
            raise ConfigError(
                f"style-loss {c.style_loss} cannot be evaluated in tiles, which a "
                f"{s.width}x{s.height} px stage needs within --memory-limit "
                f"{memory.gb(limit or 0)}: use {style_losses_that('tiles')}, or a higher "
                "--memory-limit"
            )
        factor = memory.cost(work.layers, size, need.tile, work.reach)
        stages.append(
            replace(
                s,
                tile=need.tile,
                memory=need.total,
                history=need.pairs,
                cost=factor,
                lean=need.lean,
            )
        )
    return replace(plan, stages=tuple(stages))


def _too_large(plan: Plan, stage: int, exc: TooLarge, limit: int) -> TooLarge:
    """The refusal of a coarse-to-fine run whose ``stage`` does not fit: it names the size
    asked for and that stage (a one-stage run keeps the memory module's words)."""
    n = len(plan.stages)
    if n == 1:
        return exc
    h, w = plan.out_size
    s = plan.stages[stage]
    return TooLarge(
        f"--size {plan.config.size} ({w}x{h} px) does not fit --memory-limit "
        f"{memory.gb(limit)}: its coarse-to-fine stage {stage + 1} of {n} ({s.width}x{s.height} "
        f"px) already needs {exc.need}, and the later stages more; use a smaller --size, "
        "--optimizer adam or a higher --memory-limit"
    )


def _check_sizes(plan: Plan, names: Sequence[str], content: str | None = None) -> Plan:
    """Every stage and every style image at every stage has room for the layers in use;
    the stages planned against the memory limit."""
    c = plan.config
    style_layers = [n for n, _ in c.style_layers] if plan.styles else []
    patch = STYLE_LOSS_KINDS[c.style_loss].patch
    used = plan.layers
    for k, stage in enumerate(plan.stages):
        where = f"content image {content}" if content else "output"
        if k < len(plan.stages) - 1:
            where += f" at coarse-to-fine stage {k + 1}"
        hint = "use a larger --size" if k == len(plan.stages) - 1 else "use larger --scales"
        _check_side(where, (stage.height, stage.width), used, hint)
        _check_side(where, (stage.height, stage.width), style_layers, hint, patch)
        for name, style in zip(names, plan.styles):
            longest = plan.style_longest(k)
            nw, nh = fit_size(style.shape[2], style.shape[1], longest)
            _check_side(f"style image {name}", (nh, nw), style_layers,
                        "use a larger --style-scale or --style-size", patch)  # fmt: skip
    return _fit_memory(plan) if used else plan


def _stages(config: Config, out_size: tuple[int, int]) -> tuple[Stage, ...]:
    """Every stage's (h, w) and iterations; the stages scale ``config.stage_sizes``."""
    h, w = out_size
    sizes: list[tuple[int, int]] = []
    for longest in config.stage_sizes[:-1]:
        nw, nh = fit_size(w, h, round(longest * max(h, w) / config.size))
        sizes.append((nh, nw))
    sizes.append((h, w))
    return tuple(Stage(sh, sw, n) for (sh, sw), n in zip(sizes, config.stage_iterations))


def _seed(config: Config) -> int:
    return config.seed if config.seed is not None else secrets.randbelow(2**31)


def check_weights(config: Config) -> None:
    """Refuse, before any work, a --weights path that is not a regular file and a device
    or precision this machine does not have."""
    from .runtime import resolve_device, resolve_precision

    resolve_precision(config.precision, resolve_device(config.device))
    if config.weights is not None:
        from .model.weights import check_weights_file

        check_weights_file(config.weights)


def _init_image(
    config: Config,
    content: torch.Tensor | None,
    styles: Sequence[torch.Tensor],
    stylizing: bool = False,
) -> torch.Tensor | None:
    init = start_keyword(config, stylizing)
    if init == "noise":
        return None
    if init == "content":
        if content is None:
            raise ConfigError("init content needs a content image")
        return content
    if init == "style":
        return styles[0]
    start = load(init, "init")
    if config.preserve_colors == "luminance":
        start = controls.luminance_image(start)
    return start


def check_styles(config: Config, n: int) -> None:
    """What can be checked of ``n`` style images before loading any: the blend weights'
    count and the regions' style numbers."""
    _blend(config, n)
    if config.mask:
        controls.check_regions(config.regions, n)


def _blend(config: Config, n: int) -> tuple[float, ...]:
    if config.style_blend is None:
        return (1.0 / n,) * n
    if len(config.style_blend) != n:
        raise ConfigError(
            f"style-blend has {len(config.style_blend)} weights for {n} style image(s)"
        )
    total = sum(config.style_blend)
    return tuple(w / total for w in config.style_blend)


def plan_stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: Config,
    guides: Sequence[torch.Tensor | None] | None = None,
    labels: tuple[str, Sequence[str]] | None = None,
) -> Plan:
    """Load and prepare the inputs of a style transfer (raises on bad input, does no work).

    ``labels`` (content, styles) name inputs given as images or tensors in messages.
    """
    check_weights(config)
    content_t = load(content, "content")
    styles = [load(s, "style") for s in as_list(style)]
    if not styles:
        raise ConfigError("give at least one style image")
    blend = _blend(config, len(styles))
    w, h = fit_size(content_t.shape[2], content_t.shape[1], config.size)
    original_colours = content_t
    color_reference = None
    if config.preserve_colors == "histogram":
        styles = [controls.match_color(s, content_t) for s in styles]
    elif config.preserve_colors == "luminance":
        color_reference = resize_to(content_t, (h, w))
        styles = [controls.luminance_image(s, like=content_t) for s in styles]
        content_t = controls.luminance_image(content_t)
    g: list[torch.Tensor | None] = list(guides) if guides is not None else [None] * len(styles)
    keep = original = None
    if config.mask:
        mask = load(config.mask, "mask")
        if mask.shape[1:] != (h, w):  # nearest: a label never blends into another colour
            size = (min(mask.shape[1], 2 * h), min(mask.shape[2], 2 * w))
            size = size if mask.shape[1] >= h and mask.shape[2] >= w else (h, w)
            mask = torch.nn.functional.interpolate(mask[None], size=size, mode="nearest")[0]
        g, keep = controls.region_guides(mask, config.regions, len(styles), (h, w), config.mask)
        if keep is not None:
            original = resize_to(original_colours, (h, w))
    init = _init_image(config, content_t, styles, stylizing=True)
    plan = Plan(
        config, content_t, tuple(styles), blend, (h, w), _stages(config, (h, w)), _seed(config),
        init, color_reference, tuple(g), keep, original, advice=start_advice(config, True),
    )  # fmt: skip
    if labels is None:
        labels = (_name(content), [_name(s) for s in as_list(style)])
    return _check_sizes(plan, list(labels[1]), labels[0])


def plan_content(image: ImageLike, config: Config) -> Plan:
    """Feature inversion: match ``config.content_layers`` of ``image`` (no style)."""
    check_weights(config)
    content_t = load(image, "image")
    w, h = fit_size(content_t.shape[2], content_t.shape[1], config.size)
    init = _init_image(config, content_t, [content_t])
    plan = Plan(config, content_t, (), (), (h, w), _stages(config, (h, w)), _seed(config), init,
                advice=start_advice(config, False))  # fmt: skip
    return _check_sizes(plan, [], _name(image))


def plan_texture(image: ImageLike, config: Config, size: tuple[int, int] | None = None) -> Plan:
    """Texture synthesis: match only the Gram matrices of ``image`` at output ``size``.

    The source is scaled so its longest side is ``config.style_size`` (default:
    ``config.size * config.style_scale``); ``size`` = (h, w), the output, defaults to
    the source's scaled size and may have another aspect.
    """
    check_weights(config)
    source = load(image, "image")
    if size is None:
        w, h = fit_size(source.shape[2], source.shape[1], config.style_size or config.size)
        size = (h, w)
    if min(size) < 16 or max(size) > MAX_SIDE:
        raise ConfigError(f"size must be between 16 and {MAX_SIDE} (got {size[1]}x{size[0]})")
    init = _init_image(config, None, [source])
    stages = _stages(config, size)
    plan = Plan(config, None, (source,), (1.0,), size, stages, _seed(config), init,
                guides=(None,), advice=start_advice(config, False))  # fmt: skip
    return _check_sizes(plan, [_name(image)])


def _name(image: ImageLike) -> str:
    """How a message names an input: its path or built-in name, else its kind."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"({type(image).__name__})"


def as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One image or several as a list."""
    if isinstance(style, (list, tuple)):
        return list(style)
    return [style]  # type: ignore[list-item]
