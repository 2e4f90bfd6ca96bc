"""VGG19 feature extractor with the paper's layer names.

Takes RGB images in 0..255 pixel units (B, 3, H, W), converts them to the
weights' input convention, and returns the rectified responses of the requested
layers. Built only up to the deepest layer in use; parameters are frozen.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers import INDEX, NAMES, deepest
from .weights import InputSpace, VGGWeights


class VGG19Features(nn.Module):
    """The convolutional part of VGG19, truncated after ``last_layer``."""

    in_scale: torch.Tensor
    in_shift: torch.Tensor

    def __init__(
        self,
        weights: VGGWeights,
        pooling: str = "avg",
        last_layer: str = "conv5_4",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be avg or max (got {pooling!r})")
        self.pooling = pooling
        # VGG16's layers are a subset of VGG19's: the plan keeps those the weights have
        self.plan: tuple[str, ...] = tuple(
            n for n in NAMES[: INDEX[last_layer] + 1] if n.startswith("pool") or n in weights.convs
        )
        self.convs = nn.ModuleDict()
        for name in self.plan:
            if name.startswith("conv"):
                w, b = weights.convs[name]
                conv = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(w)
                    assert conv.bias is not None
                    conv.bias.copy_(b)
                self.convs[name] = conv
        self.requires_grad_(False)
        self.eval()
        self.channels_last = False
        self.dtype = dtype
        space: InputSpace = weights.input_space
        self.bgr = space.bgr
        scale = torch.tensor(space.scale) / torch.tensor(space.std)
        self.register_buffer("in_scale", scale.view(1, 3, 1, 1).float())
        shift = torch.tensor(space.mean) / torch.tensor(space.std)
        self.register_buffer("in_shift", shift.view(1, 3, 1, 1).float())
        self.convs.to(dtype)

    @property
    def last_layer(self) -> str:
        return self.plan[-1]

    def truncated(self, last_layer: str) -> VGG19Features:
        """This network cut after ``last_layer``, sharing its weights (no copy)."""
        if last_layer not in self.plan:
            raise ConfigError(
                f"layer {last_layer} lies beyond this network (last: {self.last_layer})"
            )
        if last_layer == self.last_layer:
            return self
        cut = copy.copy(self)  # a shallow copy: same modules and buffers
        cut._modules = dict(self._modules)
        cut.plan = self.plan[: INDEX[last_layer] + 1]
        cut.convs = nn.ModuleDict({n: self.convs[n] for n in cut.plan if n in self.convs})
        return cut

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB 0..255 -> the network's input space, in the network's dtype."""
        if self.bgr:
            x = x.flip(1)
        x = (x * self.in_scale - self.in_shift).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(
        self,
        x: torch.Tensor,
        layers: Collection[str],
        relu: Callable[[torch.Tensor], torch.Tensor] | None = None,
        lean: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The responses of ``layers`` to x (RGB 0..255). ``relu`` replaces the rectifier
        (the network-visualization tools pass ones with other backward rules).

        In bfloat16 on the CPU, while autograd records, the rectifier writes a new tensor:
        an evaluation costs 4-6% less than rectifying the convolution's output in place
        (256 and 512 px, benchmarks/rectifier.py; float32: the same time), for a layer's
        activation more held for a moment (:data:`nst.memory.EVAL_FACTOR`). ``lean`` (a
        print's tiles, where memory comes first), passes without autograd and the other
        dtypes and devices rectify in place."""
        wanted = set(layers)
        missing = wanted - set(self.plan)
        if missing:
            raise ConfigError(
                f"layer {sorted(missing)[0]} lies beyond this extractor (last: {self.last_layer})"
            )
        h = self.preprocess(x)
        out: dict[str, torch.Tensor] = {}
        for name in self.plan:
            if name.startswith("conv"):
                h = self.convs[name](h)
                if relu is not None:
                    h = relu(h)
                elif lean or not _apart(h):
                    h = torch.relu_(h)
                else:
                    h = torch.relu(h)
            elif self.pooling == "avg":
                h = F.avg_pool2d(h, 2, 2)
            else:
                h = F.max_pool2d(h, 2, 2)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    break
        return out


def rectifies_apart(dtype: torch.dtype, device: torch.device | str) -> bool:
    """Whether a network of ``dtype`` on ``device`` rectifies into new tensors while
    autograd records (bfloat16 on the CPU: faster, measured there; the memory estimate
    counts it, :data:`nst.memory.EVAL_FACTOR`)."""
    return dtype == torch.bfloat16 and torch.device(device).type == "cpu"


def _apart(h: torch.Tensor) -> bool:
    """Whether the rectifier writes a new tensor for ``h`` (not ``lean``)."""
    recording = h.requires_grad and torch.is_grad_enabled()
    return recording and rectifies_apart(h.dtype, h.device)


def build_extractor(
    weights: VGGWeights,
    layers: Collection[str],
    pooling: str = "avg",
    device: torch.device | str = "cpu",
    channels_last: bool = True,
    dtype: torch.dtype = torch.float32,
) -> VGG19Features:
    """An extractor truncated after the deepest of ``layers``, on ``device``.

    ``dtype`` bfloat16/float16 runs the network in reduced precision: the weights are
    cast once, here (autocast would cast frozen weights again on every call), and the
    features come out in that dtype; the losses compute in float32.
    """
    if not layers:
        raise ConfigError("no layers requested")
    last = deepest(list(layers))
    model = VGG19Features(weights, pooling=pooling, last_layer=last, dtype=dtype)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        model.channels_last = True
    return model
