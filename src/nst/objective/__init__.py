"""The paper's losses, the objective that combines named terms, and the term specs."""

from . import mrf, swd, w2  # noqa: F401  (register their statistics)
from .losses import (
    AlphaNormLoss,
    ContentTarget,
    StyleTarget,
    TVLoss,
    alpha_norm_loss,
    content_loss,
    gram_matrix,
    gram_style_loss,
    guided_gram_matrix,
    style_layer_loss,
    tv_loss,
)
from .objective import Objective, StyleSource, Term, TermValues
from .statistics import STATISTICS
from .terms import (
    TERMS,
    StageTargets,
    TermSpec,
    add_content,
    add_style,
    build_terms,
    layers_for,
    register,
    specs_for,
)

__all__ = [
    "STATISTICS",
    "TERMS",
    "AlphaNormLoss",
    "ContentTarget",
    "Objective",
    "StageTargets",
    "StyleSource",
    "StyleTarget",
    "TVLoss",
    "Term",
    "TermSpec",
    "TermValues",
    "add_content",
    "add_style",
    "alpha_norm_loss",
    "build_terms",
    "content_loss",
    "gram_matrix",
    "gram_style_loss",
    "guided_gram_matrix",
    "layers_for",
    "register",
    "specs_for",
    "style_layer_loss",
    "tv_loss",
]
