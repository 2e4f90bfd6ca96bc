"""The paper's losses and the objective that combines them."""

from .losses import (
    ContentTarget,
    StyleTarget,
    TVLoss,
    content_loss,
    gram_matrix,
    guided_gram_matrix,
    style_layer_loss,
    tv_loss,
)
from .objective import Objective, StyleSource, Term

__all__ = [
    "ContentTarget",
    "Objective",
    "StyleSource",
    "StyleTarget",
    "TVLoss",
    "Term",
    "content_loss",
    "gram_matrix",
    "guided_gram_matrix",
    "style_layer_loss",
    "tv_loss",
]
