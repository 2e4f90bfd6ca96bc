"""nst: neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).

import nst
image = nst.stylize("photo.jpg", "painting.jpg", nst.Config(size=512))
nst.save_image(image, "out.png")
"""

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
from .errors import ConfigError, Diverged, ImageError, Interrupted, NstError, WeightsError
from .events import Event, Finished, Progress, Stage, Started, Step
from .explain import VisualizeConfig, saliency, top_patches, visualize
from .imageio import save_image
from .score import Score, score

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Diverged",
    "Event",
    "Finished",
    "ImageError",
    "Interrupted",
    "NstError",
    "Plan",
    "Progress",
    "Score",
    "Stage",
    "Started",
    "Step",
    "VisualizeConfig",
    "WeightsError",
    "execute",
    "load",
    "plan_content",
    "plan_stylize",
    "plan_texture",
    "reconstruct_content",
    "saliency",
    "save_image",
    "score",
    "stylize",
    "synthesize_texture",
    "top_patches",
    "visualize",
]
