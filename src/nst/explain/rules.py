"""Backward rules through a ReLU, as the lecture defines them.

With f the forward input of the ReLU and R the gradient arriving from above:

* ``gradient`` (ordinary backprop):     R * [f > 0]
* ``deconvnet`` (Zeiler & Fergus):      R * [R > 0]          (whatever the forward sign)
* ``guided`` (Springenberg et al.):     R * [f > 0] * [R > 0]

The forward pass is the ordinary ReLU in every case. Pooling needs no rule of its own:
autograd routes a max pool's gradient through its switches (the argmax), and spreads
an average pool's over its window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import RULES as METHODS


class _Deconvnet(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


class _Rectifier(torch.autograd.Function):
    """Forward: ReLU, keeping its input for a backward rule of a subclass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)


class _Guided(_Rectifier):
    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class _Redirected(_Rectifier):
    """Forward: ReLU. Backward: also through a silent unit when the gradient would switch it
    on (R * ([f > 0] or [R > 0])). Gradient ascent uses it while its target is silent, so
    a channel that does not fire on the start image can still be woken up."""

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) | (grad > 0)).to(grad.dtype)


class _RedirectedDescent(_Rectifier):
    """:class:`_Redirected` for a loss that is minimised (minus the objective): a step
    moves against the gradient, so a silent unit is switched on where R < 0."""

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) | (grad < 0)).to(grad.dtype)


def redirected(minimised: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ReLU of :class:`_Redirected` (not a saliency method: for gradient ascent), for
    the gradient of the objective, or (``minimised``) of a loss that is minus it."""
    return (_RedirectedDescent if minimised else _Redirected).apply


def relu(method: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The rectifier whose backward pass follows ``method``."""
    if method == "gradient":
        return torch.relu
    if method == "deconvnet":
        return _Deconvnet.apply
    if method == "guided":
        return _Guided.apply
    raise ValueError(f"unknown method {method!r} (use {', '.join(METHODS)})")
