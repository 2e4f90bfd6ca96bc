"""VGG19: weights, normalization and the named-layer feature extractor."""

from .normalization import normalized
from .vgg import VGG19Features, build_extractor
from .weights import VGGWeights, load_weights

__all__ = ["VGG19Features", "VGGWeights", "build_extractor", "load_weights", "normalized"]
