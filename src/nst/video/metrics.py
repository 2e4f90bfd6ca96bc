"""Temporal consistency of a stylized video (Lai et al., ECCV 2018) and its style loss.

The warping error between consecutive output frames O_{t-1}, O_t is
sum(M * |O_t - warp(O_{t-1})|^2) / sum(M) (RGB in [0, 1], squared norm over channels),
with the flow and the reliability mask M computed on the *input* video, so a method
cannot lower it by blurring its own motion; the video's error is the mean over t.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..config import Config
from ..execution import build_objective
from ..planning import plan_stylize
from . import flow as flowlib


def warping_errors(
    outputs: Iterable[np.ndarray], inputs: Iterable[np.ndarray], method: str = "dis"
) -> list[float]:
    """The warping error of every consecutive pair (frames HxWx3 uint8, same sizes)."""
    errors = []
    prev_out = prev_in = None
    for out, inp in zip(outputs, inputs):
        if prev_out is not None and prev_in is not None:
            backward, reliable = flowlib.flows(inp, prev_in, method)
            mask = (reliable > 0.5).astype(np.float64)
            warped = flowlib.warp(prev_out, backward) / 255.0
            diff = np.sum((out.astype(np.float64) / 255.0 - warped) ** 2, axis=2)
            errors.append(float((diff * mask).sum() / max(mask.sum(), 1.0)))
        prev_out, prev_in = out, inp
    return errors


def style_losses(
    outputs: Iterable[np.ndarray], styles: Sequence[torch.Tensor], config: Config
) -> list[float]:
    """Each frame's weighted style loss (the ``style_loss`` a run reports) against the
    style image(s) at the frame's size."""
    return [style for _, style in frame_losses(outputs, None, styles, config)]


def frame_losses(
    outputs: Iterable[np.ndarray],
    inputs: Iterable[np.ndarray] | None,
    styles: Sequence[torch.Tensor],
    config: Config,
) -> list[tuple[float, float]]:
    """Each frame's weighted (content, style) loss as a run reports them: the content loss
    against its input frame (0 without ``inputs``), the style loss against the style
    image(s) at the frame's size."""
    from .. import runtime

    losses = []
    extractor = None
    pairs = zip(outputs, inputs) if inputs is not None else ((o, o) for o in outputs)
    for out, inp in pairs:
        h, w = out.shape[:2]
        image = torch.tensor(out).permute(2, 0, 1).float() / 255.0
        frame = torch.tensor(inp).permute(2, 0, 1).float() / 255.0
        cfg = config.replace(size=max(h, w), scales=(max(h, w),), init="noise")
        plan = plan_stylize(frame, list(styles), cfg, labels=("frame", ["style"] * len(styles)))
        if extractor is None:
            device = runtime.resolve_device(cfg.device)
            _, dtype = runtime.resolve_precision(cfg.precision, device)
            extractor = runtime.network(
                cfg.weights, cfg.pooling, cfg.normalize, plan.layers, device, dtype
            )
        objective = build_objective(plan, 0, extractor)
        device = extractor.in_scale.device
        with torch.no_grad():
            _, values = objective(image.unsqueeze(0).mul(255).to(device))
        factors = objective.term_factors
        terms = {n: factors[n] * v for n, v in values.floats().items()}
        style = sum(v for n, v in terms.items() if n.startswith("style:"))
        content = sum(v for n, v in terms.items() if n.startswith("content:"))
        losses.append((content, style))
    return losses
