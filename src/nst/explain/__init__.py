"""Looking inside the network, as the lecture "Visualizing and Understanding" does:
saliency by three backward rules, gradient ascent, top patches. The core takes and
returns tensors; files and printing belong to the front ends. The names are imported
on first use (``nst.lazy``), so reading :class:`VisualizeConfig` does not load torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, install

if TYPE_CHECKING:
    from .ascent import Ascent, visualize
    from .attribution import attribute, gradcam, integrated_gradients, smoothgrad
    from .config import (
        ATTRIBUTIONS,
        ModelConfig,
        PatchesConfig,
        SaliencyConfig,
        VisualizeConfig,
    )
    from .network import Network, network
    from .patches import Patch, top_patches
    from .rules import METHODS
    from .saliency import SaliencyMap, display, overlay, saliency
    from .targets import Target, parse, parse_range

_WHERE = homes(
    ascent=["Ascent", "visualize"],
    attribution=["attribute", "gradcam", "integrated_gradients", "smoothgrad"],
    config=["ATTRIBUTIONS", "ModelConfig", "PatchesConfig", "SaliencyConfig", "VisualizeConfig"],
    network=["Network", "network"],
    patches=["Patch", "top_patches"],
    rules=["METHODS"],
    saliency=["SaliencyMap", "display", "overlay", "saliency"],
    targets=["Target", "parse", "parse_range"],
)
__all__ = sorted(_WHERE)
install(__name__, _WHERE)
