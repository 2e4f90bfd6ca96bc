"""Our time per iteration / a bare truncated VGG19 forward+backward, same size and precision.

The bare pass: the extractor truncated after conv5_1 (the deepest default layer),
channels_last, forward and backward with respect to the image, nothing else.
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

from common import inputs, machine, table, timed
from nst import execution, optimize, planning, runtime
from nst.config import Config
from nst.events import Step


def measure(
    size: int,
    precision: str,
    iterations: int = 30,
    repeat: int = 5,
    rounds: int = 2,
    device: str = "auto",
    scales: tuple[int, ...] = (),
) -> dict[str, object]:
    content, style = inputs()
    config = Config(size=size, precision=precision, seed=0, iterations=iterations,
                    device=device, scales=scales)  # fmt: skip
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

    objective = execution.build_objective(plan, 0, model)

    def evaluation() -> None:
        xi = x.detach().requires_grad_(True)
        loss, terms = objective(xi)
        torch.autograd.grad(loss, xi)
        terms.floats()

    sync = device.type == "cuda"
    # two interleaved rounds, keeping the lower of each: this VM's speed drifts by 10-20%
    t_bare = t_eval = float("inf")
    # the optimizer as it was (gradients of every line-search trial, the two-loop
    # recursion), with lazy trial gradients, and as it is (lazy, the compact history)
    variants = {"before": (False, False), "lazy": (True, False), "now": (True, True)}
    per_iter = dict.fromkeys(variants, float("inf"))
    evals = dict.fromkeys(variants, 1.0)
    for _ in range(rounds):
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
    args = parser.parse_args(argv)
    print(f"# iteration benchmark ({machine()})")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for precision in args.precisions.split(","):
            rows.append(measure(size, precision, args.iterations))
            print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
