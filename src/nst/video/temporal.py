"""The temporal loss of Ruder, Dosovitskiy & Brox (2016) and one frame's stylization.

Core code: tensors and arrays in, a tensor out; no files. A frame after the first is
stylized with, for each earlier frame in use (t-1, and with long-term consistency t-2
and t-4), a term ``temporal_weight * mean(c * (x - w)^2)``: ``w`` that frame's result
warped into this frame along the optical flow, ``c`` the flow's reliability. With
long-term terms the nearer frame wins ("closest first": a farther frame's weights have
the nearer frames' subtracted, clamped at 0). The frame starts from the warped previous
result; what comes into view (disoccluded, or from outside the frame) starts as the first
frame did (``--init``: noise, the frame itself, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import controls
from ..config import Config
from ..events import EventHandler
from ..execution import StopSignal, execute, start_image
from ..objective import Objective, StageTargets, TermSpec
from ..objective.terms import RunInputs
from ..planning import plan_stylize
from . import flow as flowlib


class TemporalLoss(nn.Module):
    """mean over pixels and channels of ``c * (x - target)^2`` (0..255 units); the target
    (1, 3, h, w) and the weights (1, 1, h, w) are encoded once."""

    target: torch.Tensor
    weights: torch.Tensor

    def __init__(self, target: torch.Tensor, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.float())
        self.register_buffer("weights", weights.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.to(self.target.dtype) - self.target
        return (self.weights * diff * diff).mean()


@dataclass(frozen=True)
class Earlier:
    """An earlier frame: how far back, its input frame and its result (HxWx3 uint8)."""

    offset: int
    frame: np.ndarray
    result: np.ndarray


@dataclass(frozen=True)
class Warped:
    """An earlier result warped into the current frame, with its reliability (HxW)."""

    offset: int
    image: np.ndarray  # HxWx3 float32, 0..255
    weights: np.ndarray  # HxW float32 in [0, 1]


def warp_earlier(frame: np.ndarray, earlier: Sequence[Earlier], method: str) -> list[Warped]:
    """Each earlier result warped into ``frame``, nearest first, "closest first" weights."""
    out: list[Warped] = []
    covered = np.zeros(frame.shape[:2], np.float32)
    for e in sorted(earlier, key=lambda e: e.offset):
        backward, c = flowlib.flows(frame, e.frame, method)
        image = flowlib.carry(e.result, backward)
        weights = np.clip(c - covered, 0.0, 1.0)
        covered = np.clip(covered + weights, 0.0, 1.0)
        out.append(Warped(e.offset, image, weights))
    return out


def start_from(fill: np.ndarray, warped: Warped) -> torch.Tensor:
    """The warped previous result, where unreliable ``fill`` (HxWx3, 0..255: what the
    first frame started from, e.g. noise or the frame itself); (3, h, w) in [0, 1]."""
    keep = (warped.weights > 0.5)[..., None]
    return _chw(np.where(keep, warped.image, fill.astype(np.float32)))


def blend_start(last: np.ndarray, warped: Warped | None) -> torch.Tensor:
    """Ruder et al.'s multi-pass start: the frame's result of the pass before, blended
    with the neighbour just painted warped into it, ``(x + c * w) / (1 + c)`` with ``c``
    the flow's reliability (their blend weight 1: half and half where reliable, the last
    result alone where not); (3, h, w) in [0, 1]."""
    x = last.astype(np.float32)
    if warped is not None:
        c = warped.weights[..., None]
        x = (x + c * warped.image) / (1.0 + c)
    return _chw(x)


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1).div(255.0)


def _tensor(image: np.ndarray, luminance: bool) -> torch.Tensor:
    t = _chw(image)
    return controls.luminance_image(t) if luminance else t


@dataclass(frozen=True)
class TemporalData:
    """What the temporal spec reads of a frame's plan: the earlier results warped into it,
    the weight (the video's ``temporal_weight`` option) and whether the run is on
    luminance only."""

    warped: tuple[Warped, ...]
    weight: float
    luminance: bool


def _build_temporal(objective: Objective, run: RunInputs, stage: StageTargets, _: float) -> None:
    """One term per earlier frame (``temporal``, ``temporal:t-2``, ...) at the stage's size."""
    data: TemporalData = run.term_data["temporal"]
    size = stage.size
    device = objective.extractor.in_scale.device
    for w in data.warped:
        target = _tensor(w.image, data.luminance).unsqueeze(0) * 255.0
        c = torch.from_numpy(w.weights)[None, None]
        if target.shape[-2:] != size:
            target = F.interpolate(target, size=size, mode="bilinear", align_corners=False)
            c = F.interpolate(c, size=size, mode="bilinear", align_corners=False)
        name = "temporal" if w.offset == 1 else f"temporal:t-{w.offset}"
        objective.add_term(name, TemporalLoss(target, c).to(device), factor=data.weight)


#: the temporal loss as a term spec; a frame's plan adds it with its data (``with_term``)
TEMPORAL = TermSpec("temporal", _build_temporal, active=lambda run: "temporal" in run.term_data)


def stylize_frame(
    frame: np.ndarray,
    styles: Sequence[torch.Tensor],
    config: Config,
    earlier: Sequence[Earlier] = (),
    *,
    temporal_weight: float = 0.0,
    flow_method: str = "dis",
    last: np.ndarray | None = None,
    on_event: EventHandler | None = None,
    stop: StopSignal = None,
) -> torch.Tensor:
    """One frame (HxWx3 uint8 at the working size) stylized: (3, h, w) in [0, 1].

    Without ``earlier`` the frame is stylized on its own (from ``config.init``); with it,
    it starts from the previous result warped into it, and ``temporal_weight`` > 0 adds
    the temporal terms. ``last`` (a later pass of the multi-pass algorithm: this frame's
    result of the pass before, HxWx3 uint8) makes the start :func:`blend_start` of it
    and the nearest earlier frame. ``config.size`` should be the frame's longest side.
    """
    content = torch.tensor(frame).permute(2, 0, 1).float() / 255.0
    plan = plan_stylize(content, list(styles), config, labels=("frame", ["style"] * len(styles)))
    warped: list[Warped] = warp_earlier(frame, earlier, flow_method) if earlier else []
    start: torch.Tensor | None = None
    if last is not None:
        start = blend_start(last, warped[0] if warped else None)
    elif warped:
        # what comes into view starts as the first frame did (--init: noise, the frame, ...)
        fill = start_image(plan, plan.out_size)[0].permute(1, 2, 0).numpy()
        start = start_from(fill, warped[0])
    if start is not None:
        if config.preserve_colors == "luminance":
            start = controls.luminance_image(start)
        plan = replace(plan, init=start)
    if warped and temporal_weight > 0:
        luminance = config.preserve_colors == "luminance"
        data = TemporalData(tuple(warped), temporal_weight, luminance)
        plan = plan.with_term(TEMPORAL, data)
    return execute(plan, on_event, stop=stop)
