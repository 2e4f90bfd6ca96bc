"""The video's own options (``nst video``), declared once like :class:`nst.config.Config`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..options import BOOL, FLOAT, INT, TEXT, Declared, declare, option

#: the temporal weight used when none is given (measured: see docs/VIDEO.md)
DEFAULT_TEMPORAL_WEIGHT = 0.02
#: the optical-flow methods (nst.video.flow computes them)
FlowMethod = Literal["dis", "farneback"]
FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)


@declare
@dataclass(frozen=True)
class VideoConfig(Declared):
    """Settings of a video run beyond one frame's stylization."""

    iterations_next: int | None = option(
        None,
        "L-BFGS iterations for each frame after the first, which starts from the previous "
        "result warped along the flow, and for every frame in later --passes (default: "
        "half of --iterations, measured to end within 2% of the loss of all of them; all "
        "of them with --no-temporal).",
        INT,
        lo=1,
        hi=100_000,
        nullable=True,
        panel="Video",
        label="Iterations (next frames)",
    )
    temporal: bool = option(
        True,
        "Temporal consistency (Ruder et al. 2016): start each frame from the previous one "
        "warped along the optical flow and add the temporal loss; --no-temporal paints "
        "every frame on its own, from noise (for comparison).",
        BOOL,
        panel="Video",
        label="Temporal consistency",
    )
    temporal_weight: float = option(
        DEFAULT_TEMPORAL_WEIGHT,
        "Weight of the temporal loss: mean over reliable pixels of (x - warped previous)^2 "
        "in 0..255 units.",
        FLOAT,
        lo=0,
        hi=1e6,
        panel="Video",
        label="Temporal weight",
    )
    long_term: bool = option(
        False,
        "Long-term consistency: also frames t-2 and t-4 (nearest first), so what comes "
        "back after an occlusion keeps its look.",
        BOOL,
        panel="Video",
        label="Long-term",
    )
    passes: int = option(
        1,
        "Passes over the clip (Ruder et al. 2018): after the first, forward pass the "
        "passes alternate backward and forward; each frame starts from its last result "
        "blended with the neighbour just painted, warped along the flow where reliable, "
        "and runs --iterations-next again. Best under strong camera motion (see "
        "docs/VIDEO.md); N passes cost about N times as long.",
        INT,
        lo=1,
        hi=100,
        panel="Video",
        label="Passes",
    )
    flow: FlowMethod = option(
        "dis",
        "Optical flow: dis (OpenCV DIS, default) or farneback.",
        TEXT,
        choices=FLOW_METHODS,
        panel="Video",
        label="Flow",
    )

    def next_iterations(self, iterations: int) -> int:
        if self.iterations_next is not None:
            return self.iterations_next
        return iterations if not self.temporal else max(1, iterations // 2)

    @property
    def offsets(self) -> tuple[int, ...]:
        """The earlier frames each frame is kept consistent with."""
        if not self.temporal:
            return ()
        return (1, 2, 4) if self.long_term else (1,)
