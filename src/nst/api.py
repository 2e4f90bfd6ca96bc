"""The Python API: ``stylize`` and friends. Wires config -> model -> objective -> optimizer.

Images go in as paths, PIL images, HxWx3 arrays or (3, H, W) tensors in [0, 1]
and come out as (3, H, W) float tensors in [0, 1] on the CPU (save them with
:func:`nst.imageio.save_image`). Progress is reported as events; nothing prints.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import controls
from .config import INIT_KEYWORDS, Config
from .errors import ConfigError, RunStopped
from .events import EventHandler, Finished, Started, Step
from .imageio import fit_size, load_image, resize_longest, resize_to, to_tensor
from .layers import deepest
from .model.normalization import normalized
from .model.vgg import VGG19Features, build_extractor
from .model.weights import load_weights
from .objective import Objective, StyleSource
from .optimize import StepState, minimize

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]
StopSignal = Union[Callable[[], bool], threading.Event, None]

#: mean pixel of ImageNet (RGB, 0..255): the centre of the noise initialisation
NOISE_MEAN = (123.68, 116.779, 103.939)
#: standard deviation of the noise initialisation (0..255 units); with it, L-BFGS converged
#: steadily where smaller amplitudes stalled (../shared/PAPER.md, "L-BFGS and scale")
NOISE_STD = 50.0


# -- inputs ----------------------------------------------------------------------------------
def load(image: ImageLike, role: str = "image") -> torch.Tensor:
    """Any supported image input as a (3, H, W) float tensor in [0, 1] on the CPU."""
    if isinstance(image, str) and image.startswith("builtin:"):
        from .demo import builtin_image

        return to_tensor(builtin_image(image.split(":", 1)[1]))
    if isinstance(image, (str, os.PathLike)):
        return to_tensor(load_image(image))
    try:
        return to_tensor(image)
    except ValueError as exc:
        raise ConfigError(f"{role}: {exc}") from None


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable device is a ConfigError."""
    name = name.strip().lower()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda is not available on this machine (use --device cpu)")
    if device.type == "mps" and not has_mps:
        raise ConfigError("device mps is not available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """(label, network dtype or None for fp32) for a requested precision on ``device``.

    ``auto``: bf16 on CUDA GPUs that support it (else fp16), fp32 on CPUs and MPS
    (see docs/PERFORMANCE.md for why the CPU default stays fp32).
    """
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp32":
        return "fp32", None
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return precision, torch.bfloat16 if precision == "bf16" else torch.float16


@functools.lru_cache(maxsize=8)
def _extractor(
    weights: str | None,
    pooling: str,
    normalize: bool,
    last_layer: str,
    device: str,
    dtype: torch.dtype,
) -> VGG19Features:
    w = load_weights(weights)
    if normalize:
        w = normalized(w, pooling)
    return build_extractor(w, [last_layer], pooling=pooling, device=device, dtype=dtype)


def extractor_for(
    config: Config,
    layers: Sequence[str],
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> VGG19Features:
    """The (cached) extractor for a config, truncated after the deepest of ``layers``,
    running in ``dtype`` (float32 when None)."""
    last = deepest(layers)
    w, pool, norm = config.weights, config.pooling, config.normalize
    return _extractor(w, pool, norm, last, str(device), dtype or torch.float32)


def _stop_fn(stop: StopSignal) -> Callable[[], bool] | None:
    if stop is None:
        return None
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


# -- the run ---------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Everything a run needs, prepared from the inputs (CPU tensors in [0, 1])."""

    config: Config
    content: torch.Tensor | None  # the image whose representation is matched
    styles: list[torch.Tensor]
    blend: list[float]
    out_size: tuple[int, int]  # (h, w) of the final output
    color_reference: torch.Tensor | None  # content with its chroma (luminance mode)
    guides: list[torch.Tensor | None]  # per style: (1, h, w) region guide at out_size, or None
    keep: torch.Tensor | None = None  # (1, h, w) region that keeps the content's pixels
    original: torch.Tensor | None = None  # the content at out_size, in its own colours


def _init_image(plan: _Plan, size: tuple[int, int], seed: int) -> torch.Tensor:
    """The stage-0 start image (1, 3, h, w) in 0..255 on the CPU."""
    init = plan.config.init.strip()
    h, w = size
    if init == "noise":
        gen = torch.Generator().manual_seed(seed)
        mean = torch.tensor(NOISE_MEAN).view(1, 3, 1, 1)
        return torch.randn(1, 3, h, w, generator=gen) * NOISE_STD + mean
    if init == "content":
        if plan.content is None:
            raise ConfigError("init content needs a content image")
        start = plan.content
    elif init == "style":
        start = plan.styles[0]
    else:
        start = load(init, "init")
        if plan.config.preserve_colors == "luminance":
            start = controls.luminance_image(start)
    return resize_to(start, size).unsqueeze(0) * 255.0


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp_(0, 255)


def _stage_sizes(plan: _Plan) -> list[tuple[int, int]]:
    """(h, w) of every stage; the stages scale ``config.stage_sizes`` to the output."""
    h, w = plan.out_size
    out: list[tuple[int, int]] = []
    for longest in plan.config.stage_sizes[:-1]:
        nw, nh = fit_size(w, h, round(longest * max(h, w) / plan.config.size))
        out.append((nh, nw))
    out.append((h, w))
    return out


def _style_longest(config: Config, stage_fraction: float) -> int:
    """Longest side of the style image(s) in a stage that is ``stage_fraction`` of the output."""
    final = config.style_size or max(16, round(config.size * config.style_scale))
    return max(16, round(final * stage_fraction))


def execute(
    plan: _Plan,
    on_event: EventHandler | None = None,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Run a prepared plan; returns the (3, H, W) image in [0, 1] on the CPU."""
    config = plan.config
    device = resolve_device(config.device)
    precision, dtype = resolve_precision(config.precision, device)
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    layers: list[str] = []
    if plan.content is not None:
        layers += [n for n, _ in config.content_layers]
    if plan.styles:
        layers += [n for n, _ in config.style_layers]
    if not layers:
        raise ConfigError("nothing to match: give a content or a style image")
    extractor = extractor_for(config, layers, device, dtype)
    emit = on_event or (lambda event: None)
    should_stop = _stop_fn(stop)

    def finish(x: torch.Tensor) -> torch.Tensor:
        img = x.detach()[0].float().clamp(0, 255).div(255).cpu()
        if plan.color_reference is not None:
            img = controls.recombine_chroma(img, plan.color_reference).clamp(0, 1)
        if plan.keep is not None and plan.original is not None:
            keep = plan.keep
            hw = (img.shape[1], img.shape[2])
            if keep.shape[-2:] != hw:  # an earlier coarse-to-fine stage (previews)
                keep = F.interpolate(keep[None], size=hw, mode="bilinear")[0]
                original = resize_to(plan.original, hw)
            else:
                original = plan.original
            img = keep * original + (1 - keep) * img
        return img

    sizes = _stage_sizes(plan)
    stage_iters = config.stage_iterations
    x: torch.Tensor | None = None
    iterations = evaluations = 0
    loss = float("nan")
    elapsed = 0.0
    reason = "completed"
    for stage, (size, n_iter) in enumerate(zip(sizes, stage_iters)):
        objective = Objective(
            extractor,
            config.content_layers,
            config.style_layers,
            config.content_weight,
            config.style_weight,
            tv_weight=config.tv_weight,
            weighting=config.weighting,
        ).to(device)
        if plan.content is not None:
            objective.set_content(resize_to(plan.content, size).unsqueeze(0).mul(255).to(device))
        else:
            objective.set_content(None)
        if plan.styles:
            s_longest = _style_longest(config, max(size) / max(plan.out_size))
            sources = []
            guide_cache: dict[int, torch.Tensor] = {}
            for img, weight, guide in zip(plan.styles, plan.blend, plan.guides):
                g = None
                if guide is not None:
                    key = id(guide)
                    if key not in guide_cache:
                        guide_cache[key] = F.interpolate(guide[None], size=size, mode="area").to(
                            device
                        )
                    g = guide_cache[key]
                s_img = resize_longest(img, s_longest).unsqueeze(0).mul(255).to(device)
                sources.append(StyleSource(s_img, weight, g))
            objective.set_style(sources, size)
        x0 = _init_image(plan, size, seed).to(device) if x is None else _upsample(x, size)
        emit(Started(n_iter, size[0], size[1], str(device), precision, seed, stage, len(sizes)))
        reporter = _StageReporter(
            objective, emit, finish, stage, n_iter, preview_every, evaluations, elapsed
        )
        try:
            result = minimize(
                objective,
                x0,
                iterations=n_iter,
                method=config.optimizer,
                lr=config.learning_rate,
                history=config.lbfgs_history,
                on_step=reporter,
                should_stop=should_stop,
            )
        except RunStopped as exc:
            raise type(exc)(str(exc), image=finish(exc.image), iteration=exc.iteration) from None
        x = result.x
        iterations += result.iterations
        evaluations += result.evaluations
        elapsed += result.elapsed
        loss = result.loss
        reason = result.reason
        if reason == "cancelled":
            break
    assert x is not None
    emit(Finished(iterations, evaluations, loss, elapsed, reason))
    return finish(x)


class _StageReporter:
    """Turns the optimizer's per-iteration state into :class:`Step` events for one stage."""

    def __init__(
        self,
        objective: Objective,
        emit: EventHandler,
        finish: Callable[[torch.Tensor], torch.Tensor],
        stage: int,
        iterations: int,
        preview_every: int,
        evaluations_before: int,
        elapsed_before: float,
    ) -> None:
        self.content_names = list(objective.content_targets)
        self.style_names = list(objective.style_targets)
        self.content_w = objective.content_w
        self.style_w = objective.style_w
        self.emit = emit
        self.finish = finish
        self.stage = stage
        self.iterations = iterations
        self.preview_every = preview_every
        self.evaluations_before = evaluations_before
        self.elapsed_before = elapsed_before

    def __call__(self, state: StepState) -> None:
        values = state.terms.tolist()
        nc = len(self.content_names)
        c_losses = dict(zip(self.content_names, values[:nc]))
        s_losses = dict(zip(self.style_names, values[nc : nc + len(self.style_names)]))
        preview = None
        every = self.preview_every
        if every and (state.iteration % every == 0 or state.iteration == self.iterations):
            preview = self.finish(state.x)
        self.emit(
            Step(
                iteration=state.iteration,
                evaluations=self.evaluations_before + state.evaluations,
                loss=state.loss,
                content_loss=sum(self.content_w[n] * v for n, v in c_losses.items()),
                style_loss=sum(self.style_w[n] * v for n, v in s_losses.items()),
                tv_loss=values[-1],
                content_losses=c_losses,
                style_losses=s_losses,
                elapsed=self.elapsed_before + state.elapsed,
                stage=self.stage,
                preview=preview,
            )
        )


def _as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(style, (list, tuple)):
        return list(style)
    return [style]  # type: ignore[list-item]


def _blend(config: Config, n: int) -> list[float]:
    if config.style_blend is None:
        return [1.0 / n] * n
    if len(config.style_blend) != n:
        raise ConfigError(
            f"style-blend has {len(config.style_blend)} weights for {n} style image(s)"
        )
    total = sum(config.style_blend)
    return [w / total for w in config.style_blend]


def check_init(config: Config) -> None:
    """Refuse an init that is neither a keyword nor an existing file, before any work."""
    init = config.init.strip()
    if init not in INIT_KEYWORDS and not init.startswith("builtin:") and not Path(init).is_file():
        load_image(init)  # raises ImageError naming the file and the problem


def plan_stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: Config,
    guides: Sequence[torch.Tensor | None] | None = None,
) -> _Plan:
    """Load and prepare the inputs of a style transfer (raises on bad input, does no work)."""
    check_init(config)
    content_t = load(content, "content")
    styles = [load(s, "style") for s in _as_list(style)]
    if not styles:
        raise ConfigError("give at least one style image")
    blend = _blend(config, len(styles))
    w, h = fit_size(content_t.shape[2], content_t.shape[1], config.size)
    content_t_original = content_t
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
        mask = resize_to(mask, (h, w)) if mask.shape[1:] != (h, w) else mask
        g, keep = controls.region_guides(mask, config.regions, len(styles), (h, w), config.mask)
        if keep is not None:
            original = resize_to(content_t_original, (h, w))
    return _Plan(config, content_t, styles, blend, (h, w), color_reference, g, keep, original)


def reconstruct_content(
    image: ImageLike,
    config: Config | None = None,
    on_event: EventHandler | None = None,
    *,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Feature inversion: an image whose ``config.content_layers`` responses match ``image``'s.

    Starts from ``config.init`` (white noise by default); only the content term (and
    ``config.tv_weight``, the prior of Mahendran & Vedaldi) is minimised.
    """
    config = config or Config()
    check_init(config)
    content_t = load(image, "image")
    w, h = fit_size(content_t.shape[2], content_t.shape[1], config.size)
    plan = _Plan(config, content_t, [], [], (h, w), None, [])
    return execute(plan, on_event, stop, preview_every)


def synthesize_texture(
    image: ImageLike,
    config: Config | None = None,
    size: tuple[int, int] | None = None,
    on_event: EventHandler | None = None,
    *,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Texture synthesis: an image matching only the Gram matrices of ``config.style_layers``.

    The source is scaled so its longest side is ``config.size`` (or ``style_size``);
    the output is ``size`` = (height, width), by default the source's scaled size, and
    may have another size and aspect than the source.
    """
    config = config or Config()
    check_init(config)
    source = load(image, "image")
    if size is None:
        w, h = fit_size(source.shape[2], source.shape[1], config.style_size or config.size)
        size = (h, w)
    if min(size) < 16 or max(size) > Config.LIMITS["size"]:
        raise ConfigError(f"size must be between 16 and {Config.LIMITS['size']} (got {size})")
    plan = _Plan(config, None, [source], [1.0], size, None, [None])
    return execute(plan, on_event, stop, preview_every)


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: Config | None = None,
    on_event: EventHandler | None = None,
    *,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Paint ``content`` in the style of ``style`` (one image or several, blended).

    Returns the result as a (3, H, W) float tensor in [0, 1] on the CPU. ``on_event``
    receives :class:`Started`, :class:`Step` (with a ``preview`` image every
    ``preview_every`` iterations) and :class:`Finished` events. ``stop`` (a callable or
    a ``threading.Event``) ends the run early, keeping the current image. Errors are
    :class:`nst.errors.NstError` subclasses; :class:`~nst.errors.Interrupted` and
    :class:`~nst.errors.Diverged` carry the last good image.
    """
    config = config or Config()
    plan = plan_stylize(content, style, config)
    return execute(plan, on_event, stop, preview_every)
