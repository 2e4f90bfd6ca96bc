"""nst: neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).

import nst
image = nst.stylize("photo.jpg", "painting.jpg", nst.Config(size=512))
nst.save_image(image, "out.png")

The names are imported on first use, so ``import nst`` (and ``nst --help``) does not
load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import homes, install

if TYPE_CHECKING:
    from .api import (
        Plan,
        execute,
        load,
        plan_content,
        plan_stylize,
        plan_texture,
        reconstruct_content,
        stylize,
        synthesize_texture,
    )
    from .config import Config
    from .errors import (
        ConfigError,
        Diverged,
        ImageError,
        ImageTooLarge,
        Interrupted,
        NstError,
        NstWarning,
        TooLarge,
        UnreadableImage,
        WeightsError,
    )
    from .events import Event, Finished, Progress, Stage, Started, Step
    from .explain import VisualizeConfig, saliency, top_patches, visualize
    from .imageio import save_image
    from .objective.terms import TermSpec
    from .progress import progress
    from .score import Score, score

__version__ = "0.1.0"

_WHERE = homes(
    api=[
        "Plan",
        "execute",
        "load",
        "plan_content",
        "plan_stylize",
        "plan_texture",
        "reconstruct_content",
        "stylize",
        "synthesize_texture",
    ],
    config=["Config"],
    errors=[
        "ConfigError",
        "Diverged",
        "ImageError",
        "ImageTooLarge",
        "Interrupted",
        "NstError",
        "NstWarning",
        "TooLarge",
        "UnreadableImage",
        "WeightsError",
    ],
    events=["Event", "Finished", "Progress", "Stage", "Started", "Step"],
    explain=["VisualizeConfig", "saliency", "top_patches", "visualize"],
    imageio=["save_image"],
    progress=["progress"],
    score=["Score", "score"],
    **{"objective.terms": ["TermSpec"]},
)
if TYPE_CHECKING:  # spelled out for type checkers (tests/test_api_surface.py: the same names)
    __all__ = [
        "Config", "ConfigError", "Diverged", "Event", "Finished", "ImageError",
        "ImageTooLarge", "Interrupted", "NstError", "NstWarning", "Plan", "Progress",
        "Score", "Stage", "Started", "Step", "TermSpec", "TooLarge", "UnreadableImage",
        "VisualizeConfig", "WeightsError", "execute", "load", "plan_content", "plan_stylize",
        "plan_texture", "progress", "reconstruct_content", "saliency", "save_image", "score",
        "stylize", "synthesize_texture", "top_patches", "visualize",
    ]  # fmt: skip
else:
    __all__ = sorted(_WHERE)
install(__name__, _WHERE)
