"""The network the tools look into: VGG features (and the classifier, when the weights
have one), run as trained: the raw (unnormalized) weights, max pooling by default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import runtime
from ..model.classifier import VGGClassifier
from ..model.vgg import VGG19Features
from . import targets as targets_mod
from .targets import Target


class Network:
    """Features (to pool5) plus an optional classifier, on one device in float32."""

    def __init__(self, features: VGG19Features, classifier: VGGClassifier | None) -> None:
        self.features = features
        self.classifier = classifier

    @property
    def device(self) -> torch.device:
        return self.features.in_scale.device

    @property
    def plan(self) -> tuple[str, ...]:
        return self.features.plan

    @property
    def channels(self) -> dict[str, int]:
        """Channels of every layer (a pool has those of the convolution before it)."""
        out: dict[str, int] = {}
        last = 3
        for name in self.plan:
            if name.startswith("conv"):
                conv: torch.nn.Conv2d = self.features.convs[name]  # type: ignore[assignment]
                last = conv.out_channels
            out[name] = last
        return out

    def check(
        self, target: Target, size: tuple[int, int] | None = None, on_image: bool = False
    ) -> None:
        """Refuse a target this network cannot give at this working size (h, w); ``auto``
        only ``on_image``."""
        classes = self.classifier.classes if self.classifier is not None else 0
        targets_mod.check(target, self.channels, classes, size, on_image)

    @staticmethod
    def layer_of(target: Target) -> str:
        return "pool5" if target.kind == "class" else str(target.layer)

    def value(
        self,
        x: torch.Tensor,
        target: Target,
        relu: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reduce: str = "sum",
    ) -> torch.Tensor:
        """The target's value for images x (N, 3, H, W, RGB 0..255), one per image: the
        channel summed (``reduce="sum"``) or averaged over positions, the neuron, or the
        class score before the softmax."""
        layer = self.layer_of(target)
        return self.value_from(self.features(x, [layer], relu=relu)[layer], target, relu, reduce)

    def value_from(
        self,
        feats: torch.Tensor,
        target: Target,
        relu: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reduce: str = "sum",
    ) -> torch.Tensor:
        """:meth:`value` from the features of the target's own layer (``layer_of``)."""
        feats = feats.float()
        if target.kind == "class":
            assert self.classifier is not None
            return self.classifier(feats, relu=relu)[:, target.index].float()
        channel = feats[:, target.index]
        if target.kind == "neuron":
            return channel[:, target.row, target.col]
        return channel.sum(dim=(1, 2)) if reduce == "sum" else channel.mean(dim=(1, 2))


def network(weights: str | None = None, pooling: str = "max", device: str = "auto") -> Network:
    """The network as trained (unnormalized: the classifier needs the raw responses)."""
    dev = runtime.resolve_device(device)
    features = runtime.network(weights, pooling, False, ["pool5"], dev, None)
    return Network(features, runtime.classifier(weights, dev))
