"""Where the w2 style term's time goes, and what its square roots would cost another way,
side by side with the plain VGG19 pass, in one run:

    python benchmarks/w2_parts.py --size 256

Rows, each the five style layers' forward and gradient with respect to the features
(the features of the content image at that size, as `fast` and `quality` start):

* ``plain pass``: the reference (benchmarks/iteration.py's plain stack to conv5_1);
* ``moments only``: each layer's mean and covariance and a linear function of them, by
  autograd's generic graph (nst's first), by ``w2.fused_moments`` (nst's now, one
  product backward; of bf16 features on the CPU the raw second moment from two bf16
  products) and by it with the positions centred in float32 first (``centred``, nst's
  before the raw products: ``w2.RAW_CANCELLATION`` set to 0): the floor of any
  second-moment statistic;
* ``gram term``: the Gram style term as the default objective runs it;
* ``w2 term, <root>``: the w2 term with the C x C layers' cross term tr((R S R)^1/2)
  taken by ``cross_root`` (nst's: float64 eigenvalues, a gradient of two float32
  products), by autograd through ``eigvalsh`` in float64 (nst's before) or float32, or
  by ``Newton-Schulz k`` (k coupled float32 iterations, the gradient from the
  iteration's inverse root), with each variant's value and gradient relative to nst's
  (the gradient's error as a norm relative to the gradient's norm). Layers with fewer
  positions than channels (conv5_1 at 256 px) take their own path, unchanged.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from common import inputs, machine, table, timed
from iteration import plain_pass, plain_stack
from nst import execution, planning, runtime
from nst.config import Config
from nst.objective import w2

Cross = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def autograd_eigvalsh(dtype: torch.dtype) -> Cross:
    """tr((R S R)^1/2) through autograd's ``eigvalsh`` in ``dtype`` (float64: nst's before
    ``w2.cross_root``)."""

    def cross(cov: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        inner = (root @ cov @ root).to(dtype)
        eig = torch.linalg.eigvalsh((inner + inner.T) / 2)
        return w2.floored_roots(eig).sum().to(cov.dtype)

    return cross


class _NewtonSchulz(torch.autograd.Function):
    """tr(A^1/2) by k coupled Newton-Schulz iterations on A / tr(A) in float32; the
    gradient 1/2 A^-1/2 from the iteration's Z (which converges to (A / tr A)^-1/2)."""

    @staticmethod
    def forward(ctx, inner: torch.Tensor, k: int) -> torch.Tensor:  # type: ignore[override]
        a = ((inner + inner.T) / 2).float()
        scale = torch.trace(a).clamp_min(1e-30)
        eye = torch.eye(a.shape[0], dtype=a.dtype)
        y, z = a / scale, eye
        for _ in range(k):
            t = 1.5 * eye - 0.5 * (z @ y)
            y, z = y @ t, t @ z
        ctx.save_for_backward(z / scale.sqrt())
        return (torch.trace(y) * scale.sqrt()).to(inner.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (inv_root,) = ctx.saved_tensors
        g = 0.5 * grad * (inv_root + inv_root.T) / 2
        return g, None


def newton_schulz(k: int) -> Cross:
    return lambda cov, root: _NewtonSchulz.apply(root @ cov @ root, k)


def measure(size: int, repeat: int, ks: list[int]) -> list[dict[str, object]]:
    content, style = inputs()
    rows: list[dict[str, object]] = []
    base = Config(size=size, seed=0, iterations=1, init="content")
    device = runtime.resolve_device(base.device)
    label, dtype = runtime.resolve_precision(base.precision, device)
    targets = {}
    for loss in ("gram", "w2"):
        config = base.replace(style_loss=loss)
        plan = planning.plan_stylize(content, style, config)
        model = runtime.network(None, config.pooling, config.normalize, plan.layers, device, dtype)
        objective = execution.build_objective(plan, 0, model)
        targets[loss] = [m[0] for n, m in objective.modules_.items() if n.startswith("style")]
    h, w = plan.out_size
    assert plan.content is not None
    photo = plan.content[None] if plan.content.dim() == 3 else plan.content
    x = 255 * F.interpolate(photo, (h, w), mode="bilinear", antialias=True).to(device)
    layers = [n for n, _ in base.style_layers]
    with torch.no_grad():
        feats = [model(x, layers)[n] for n in layers]

    def term(modules: list[torch.nn.Module]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        value, grads = torch.zeros((), dtype=torch.float64), []
        for target, f in zip(modules, feats, strict=True):
            fi = f.detach().requires_grad_(True)
            v = target(fi)
            grads.append(torch.autograd.grad(v, fi)[0].float())
            value = value + v.double()
        return value, grads

    def moments_only(fused: bool, centred: bool = False) -> None:
        cancellation = w2.RAW_CANCELLATION
        w2.RAW_CANCELLATION = 0.0 if centred else cancellation
        try:
            for f, target in zip(feats, targets["w2"], strict=True):
                fi = f.detach().requires_grad_(True)
                mu, cov = w2.fused_moments(fi, target.mu) if fused else w2.moments(fi)
                torch.autograd.grad(mu.sum() + cov.sum(), fi)
        finally:
            w2.RAW_CANCELLATION = cancellation

    stack = plain_stack(device, dtype)
    roots = {"cross_root (nst)": w2.cross_root,
             "autograd eigvalsh float64": autograd_eigvalsh(torch.float64),
             "autograd eigvalsh float32": autograd_eigvalsh(torch.float32),
             **{f"Newton-Schulz {k}": newton_schulz(k) for k in ks}}  # fmt: skip
    nst_root = w2.cross_root
    reference, ref_grads = term(targets["w2"])
    times: dict[str, float] = {}
    errors: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(2):  # interleaved rounds, the lower of each
            for name, fn in [("plain pass", lambda: plain_pass(stack, x)),
                             ("moments only, autograd", lambda: moments_only(False)),
                             ("moments only, fused", lambda: moments_only(True)),
                             ("moments only, fused, centred",
                              lambda: moments_only(True, centred=True)),
                             ("gram term", lambda: term(targets["gram"]))]:  # fmt: skip
                times[name] = min(times.get(name, float("inf")), timed(fn, repeat))
            for name, root in roots.items():
                w2.cross_root = root  # type: ignore[assignment]
                key = f"w2 term, {name}"
                took = timed(lambda: term(targets["w2"]), repeat)
                times[key] = min(times.get(key, float("inf")), took)
                value, grads = term(targets["w2"])
                pairs = zip(grads, ref_grads, strict=True)
                num = sum(float((g - r).pow(2).sum()) for g, r in pairs)
                den = sum(float(r.pow(2).sum()) for r in ref_grads)
                off = abs(float(value.detach() / reference.detach()) - 1)
                errors[key] = (off, (num / den) ** 0.5)
    finally:
        w2.cross_root = nst_root  # type: ignore[assignment]
    plain = times["plain pass"]
    for name, t in times.items():
        value_error, grad_error = errors.get(name, (None, None))
        rows.append({"size": f"{w}x{h}", "precision": label, "part": name, "s": t,
                     "/plain": t / plain,
                     "value rel. error": "-" if value_error is None else value_error,
                     "gradient rel. error": "-" if grad_error is None else grad_error})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--newton-schulz", default="10,20,40", help="iteration counts")
    args = parser.parse_args(argv)
    print(f"# the w2 style term's parts ({machine()})")
    ks = [int(k) for k in args.newton_schulz.split(",")]
    print(table(measure(args.size, args.repeat, ks)))


if __name__ == "__main__":
    main()
