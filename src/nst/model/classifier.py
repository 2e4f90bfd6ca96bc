"""VGG's classifier (fc6, fc7, fc8) on top of pool5, for class scores.

Only a user's torchvision state_dict carries it (the built-in weights are the
convolutional layers alone). As in torchvision, pool5 is average-pooled to 7x7 first,
so any input size gives scores; fc6 and fc7 are rectified (dropout is off).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .weights import VGGWeights


class VGGClassifier(nn.Module):
    """Pre-softmax class scores S_c from pool5 features (1, 512, h, w)."""

    def __init__(self, weights: VGGWeights) -> None:
        super().__init__()
        if weights.classifier is None:
            raise ValueError("these weights have no classifier")
        self.fcs = nn.ModuleList()
        for w, b in weights.classifier:
            fc = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                fc.weight.copy_(w)
                fc.bias.copy_(b)
            self.fcs.append(fc)
        self.requires_grad_(False)
        self.eval()

    @property
    def dtype(self) -> torch.dtype:
        return self.fcs[0].weight.dtype  # type: ignore[return-value]

    @property
    def classes(self) -> int:
        last: nn.Linear = self.fcs[-1]  # type: ignore[assignment]
        return last.out_features

    def forward(
        self, pool5: torch.Tensor, relu: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        h = torch.flatten(F.adaptive_avg_pool2d(pool5.float(), (7, 7)), 1).to(self.dtype)
        for i, fc in enumerate(self.fcs):
            h = fc(h)
            if i < len(self.fcs) - 1:
                h = torch.relu(h) if relu is None else relu(h)
        return h
