"""The Python API: ``stylize`` and the paper's reconstructions.

Images go in as paths, ``builtin:NAME``, PIL images, HxWx3 arrays or (3, H, W)
tensors in [0, 1] and come out as (3, H, W) float tensors in [0, 1] on the CPU
(save them with :func:`nst.save_image`). Progress is reported as events; nothing
prints. Each function is planning (:mod:`nst.planning`: load, check, size) followed
by execution (:mod:`nst.execution`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from .config import Config
from .errors import NstWarning
from .events import EventHandler
from .execution import StopSignal, execute
from .planning import ImageLike, Plan, load, plan_content, plan_stylize, plan_texture

__all__ = [
    "ImageLike",
    "Plan",
    "execute",
    "load",
    "plan_content",
    "plan_stylize",
    "plan_texture",
    "reconstruct_content",
    "stylize",
    "synthesize_texture",
]


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
    receives :class:`~nst.events.Started`, :class:`~nst.events.Step` (with a
    ``preview`` image every ``preview_every`` iterations) and
    :class:`~nst.events.Finished` events. ``stop`` (a callable or a
    ``threading.Event``) ends the run early, keeping the current image. Settings that
    will not give a good picture (too few iterations from noise) are a
    :class:`~nst.errors.NstWarning` with the fix. Errors are
    :class:`nst.errors.NstError` subclasses; :class:`~nst.errors.Interrupted` and
    :class:`~nst.errors.Diverged` carry the last good image.
    """
    plan = _advised(plan_stylize(content, style, config or Config()))
    return execute(plan, on_event, stop, preview_every)


def reconstruct_content(
    image: ImageLike,
    config: Config | None = None,
    on_event: EventHandler | None = None,
    *,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Feature inversion: an image whose ``config.content_layers`` responses match ``image``'s.

    Starts from ``config.init`` (white noise by default: ``auto`` is noise here); only the
    content term (and ``config.tv_weight``, the prior of Mahendran & Vedaldi) is minimised.
    """
    plan = _advised(plan_content(image, config or Config()))
    return execute(plan, on_event, stop, preview_every)


def synthesize_texture(
    image: ImageLike,
    config: Config | None = None,
    on_event: EventHandler | None = None,
    *,
    size: tuple[int, int] | None = None,
    stop: StopSignal = None,
    preview_every: int = 0,
) -> torch.Tensor:
    """Texture synthesis: an image matching only the Gram matrices of ``config.style_layers``.

    The source is scaled so its longest side is ``config.style_size`` (default
    ``config.size * style_scale``); the output is ``size`` = (height, width), by
    default the source's scaled size, and may have another size and aspect.
    """
    plan = _advised(plan_texture(image, config or Config(), size))
    return execute(plan, on_event, stop, preview_every)


def _advised(plan: Plan) -> Plan:
    """The plan's advice (a short run from noise, ...) as :class:`nst.NstWarning` warnings,
    attributed to the caller's line."""
    for line in plan.advice:
        warnings.warn(line, NstWarning, stacklevel=3)
    return plan
