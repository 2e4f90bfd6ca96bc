"""Progress events: the one stream the core reports through.

The CLI renders them as a progress bar, the web app streams them, the batch
runner and ``--log`` write them as JSON lines. The core never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Started:
    """A run (or one stage of a coarse-to-fine run) begins."""

    iterations: int
    height: int
    width: int
    device: str
    precision: str
    seed: int
    stage: int = 0
    stages: int = 1


@dataclass(frozen=True)
class Step:
    """The state after ``iteration`` optimizer steps (0 = the initial image).

    ``content_loss`` is sum_l w_l L_content (before alpha), ``style_loss`` is
    sum_l w_l E_l (before beta), both in the paper's exact units; the per-layer
    dicts hold the unweighted terms. ``loss`` is the objective actually minimised.
    """

    iteration: int
    evaluations: int
    loss: float
    content_loss: float
    style_loss: float
    tv_loss: float
    content_losses: dict[str, float]
    style_losses: dict[str, float]
    elapsed: float
    stage: int = 0
    preview: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def to_log(self) -> dict[str, Any]:
        """The JSON-lines record of this step (see docs/LOG.md)."""
        return {
            "iteration": self.iteration,
            "evaluations": self.evaluations,
            "loss": self.loss,
            "content_loss": self.content_loss,
            "style_loss": self.style_loss,
            "tv_loss": self.tv_loss,
            "content_losses": self.content_losses,
            "style_losses": self.style_losses,
            "elapsed": round(self.elapsed, 4),
            "stage": self.stage,
        }


@dataclass(frozen=True)
class Finished:
    """A run ended; ``reason`` is ``completed``, ``converged`` or ``cancelled``."""

    iterations: int
    evaluations: int
    loss: float
    elapsed: float
    reason: str


Event = Union[Started, Step, Finished]
EventHandler = Callable[[Event], None]
