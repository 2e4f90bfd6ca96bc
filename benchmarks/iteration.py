"""Our time per iteration / a plain VGG19 pass, same size, precision and weights.

The reference (``plain``): a stack of conv2d + relu (+ avg_pool2d between blocks) to
conv5_1 built here from the same weights, cast once to the run's dtype, channels_last,
forward and the gradient with respect to the input, nothing else: what the network
itself costs, with none of nst's code. Ratios to it, side by side in one run, for each
``--style-loss``: nst's network alone (``net/plain``: its input handling, feature
capture, casts, layout), one evaluation of the objective (``eval/plain``) and one
iteration (``iteration/plain``). Also, against nst's network (``bare``):
Ours: `nst stylize` as users run it (default config, L-BFGS, events), timed per
iteration from its own Step events after a warm-up (line searches included; also as the
optimizer was before its trial points computed their gradients on demand and before the
compact history, `nst.optimize.Variant(lazy_gradients=False, compact_history=False)`, and with lazy
gradients alone), and per loss evaluation
(one forward+backward of the whole objective: the network plus Gram matrices and
losses), so the overhead outside the network and that of the optimizer show apart.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from common import inputs, machine, table, timed
from nst import execution, optimize, planning, runtime
from nst.config import STYLE_LOSSES, Config
from nst.events import Step
from nst.layers import BLOCKS
from nst.model.weights import load_weights


def plain_stack(
    device: torch.device, dtype: torch.dtype | None
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """conv1_1 ... conv5_1 of the built-in weights as (weight, bias) in the run's dtype,
    channels_last, with None where an average pooling goes."""
    convs = load_weights(None).convs
    layers: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for b, (n, _) in enumerate(BLOCKS, start=1):
        for i in range(1, (n if b < 5 else 1) + 1):
            w, bias = convs[f"conv{b}_{i}"]
            cast = dtype or torch.float32
            w = w.to(device, cast).contiguous(memory_format=torch.channels_last)
            layers.append((w, bias.to(device, cast)))
        if b < 5:
            layers.append(None)
    return layers


def plain_pass(layers: list[tuple[torch.Tensor, torch.Tensor] | None], x: torch.Tensor) -> None:
    """Forward to conv5_1 and the gradient with respect to x."""
    xi = x.detach().requires_grad_(True)
    h = xi.to(layers[0][0].dtype).contiguous(memory_format=torch.channels_last)  # type: ignore[index]
    for layer in layers:
        h = F.avg_pool2d(h, 2) if layer is None else F.relu(F.conv2d(h, *layer, padding=1))
    torch.autograd.grad(h.float().sum(), xi)


def measure(
    size: int,
    precision: str,
    iterations: int = 30,
    repeat: int = 5,
    rounds: int = 2,
    device: str = "auto",
    scales: tuple[int, ...] = (),
    style_loss: str = "gram",
) -> dict[str, object]:
    content, style = inputs()
    config = Config(size=size, precision=precision, seed=0, iterations=iterations,
                    device=device, scales=scales, style_loss=style_loss)  # fmt: skip
    device = runtime.resolve_device(config.device)
    label, dtype = runtime.resolve_precision(precision, device)
    plan = planning.plan_stylize(content, style, config)
    h, w = plan.out_size
    model = runtime.network(None, config.pooling, config.normalize, plan.layers, device, dtype)
    x = torch.rand(1, 3, h, w, device=device) * 255

    def bare() -> None:
        xi = x.detach().requires_grad_(True)
        out = model(xi, [model.last_layer])[model.last_layer]
        torch.autograd.grad(out.float().sum(), xi)

    stack = plain_stack(device, dtype)

    def plain() -> None:
        plain_pass(stack, x)

    objective = execution.build_objective(plan, 0, model)

    def evaluation() -> None:
        xi = x.detach().requires_grad_(True)
        loss, terms = objective(xi)
        torch.autograd.grad(loss, xi)
        terms.floats()

    sync = device.type == "cuda"
    # two interleaved rounds, keeping the lower of each: this VM's speed drifts by 10-20%
    t_plain = t_bare = t_eval = float("inf")
    # the optimizer as it was (gradients of every line-search trial, the two-loop
    # recursion), with lazy trial gradients, and as it is (lazy, the compact history)
    variants = {"before": (False, False), "lazy": (True, False), "now": (True, True)}
    per_iter = dict.fromkeys(variants, float("inf"))
    evals = dict.fromkeys(variants, 1.0)
    for _ in range(rounds):
        t_plain = min(t_plain, timed(plain, repeat, sync=sync))
        t_bare = min(t_bare, timed(bare, repeat, sync=sync))
        t_eval = min(t_eval, timed(evaluation, repeat, sync=sync))
        for name, (lazy, compact) in variants.items():
            steps = _steps(plan, optimize.Variant(lazy, compact))
            warm = 5  # the first iterations' line searches need more evaluations than later
            span = steps[-1].elapsed - steps[warm].elapsed
            n = steps[-1].iteration - steps[warm].iteration
            if span / n < per_iter[name]:
                per_iter[name] = span / n
                evals[name] = (steps[-1].evaluations - steps[warm].evaluations) / n
    t_iter = per_iter["now"]
    return {
        "size": f"{w}x{h}",
        "precision": label,
        "style loss": style_loss,
        "plain s": t_plain,
        "net/plain": t_bare / t_plain,
        "eval/plain": t_eval / t_plain,
        "iteration/plain": t_iter / t_plain,
        "bare fwd+bwd s": t_bare,
        "our eval s": t_eval,
        "our iteration s": t_iter,
        "evals/iter": evals["now"],
        "eval/bare": t_eval / t_bare,
        "iteration/bare": t_iter / t_bare,
        "iteration/eval": t_iter / t_eval,
        "before: iteration/bare": per_iter["before"] / t_bare,
        "lazy only": per_iter["lazy"] / t_bare,
    }


def _steps(plan: planning.Plan, variant: optimize.Variant) -> list[Step]:
    steps: list[Step] = []
    on_event = lambda e: steps.append(e) if isinstance(e, Step) else None  # noqa: E731
    execution.execute(plan, on_event, variant=variant)
    return steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--style-losses", default=",".join(STYLE_LOSSES[:2]),
                        help="comma-separated (gram, w2, swd)")  # fmt: skip
    args = parser.parse_args(argv)
    print(f"# iteration benchmark ({machine()})")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for precision in args.precisions.split(","):
            for loss in args.style_losses.split(","):
                rows.append(measure(size, precision, args.iterations, style_loss=loss))
                print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
