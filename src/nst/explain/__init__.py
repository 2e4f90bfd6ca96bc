"""Looking inside the network, as the lecture "Visualizing and Understanding" does:
saliency by three backward rules, gradient ascent, top patches. The core takes and
returns tensors; files and printing belong to the front ends."""

from .ascent import Ascent, VisualizeConfig, visualize
from .network import Network, network
from .patches import Patch, top_patches
from .rules import METHODS
from .saliency import SaliencyMap, display, overlay, saliency
from .targets import Target, parse, parse_range

__all__ = ["METHODS", "Ascent", "Network", "Patch", "SaliencyMap", "Target", "VisualizeConfig",
           "display", "network", "overlay", "parse", "parse_range", "saliency", "top_patches",
           "visualize"]  # fmt: skip
