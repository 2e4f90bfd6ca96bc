"""The paper's losses and the objective that combines them."""

from .losses import (
    AlphaNormLoss,
    ContentTarget,
    StyleTarget,
    TVLoss,
    alpha_norm_loss,
    content_loss,
    gram_matrix,
    guided_gram_matrix,
    style_layer_loss,
    tv_loss,
)
from .objective import Objective, StyleSource, Term

__all__ = [
    "AlphaNormLoss",
    "ContentTarget",
    "Objective",
    "StyleSource",
    "StyleTarget",
    "TVLoss",
    "Term",
    "alpha_norm_loss",
    "content_loss",
    "gram_matrix",
    "guided_gram_matrix",
    "style_layer_loss",
    "tv_loss",
]
