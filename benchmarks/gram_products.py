"""Gram matrices of bfloat16 features: float32 products against two bfloat16 products.

Per style layer of the paper (conv1_1 ... conv5_1), the content photo's features at
``--size`` from nst's network in bfloat16: the time of F^T F in float32 (the features
cast, as nst computed it before) and by :func:`nst.objective.losses.bf16_gram` (two
bfloat16 products, the first subtracted in the second's float32 accumulator), and each
one's largest error relative to the entry against float64, with one bfloat16 product's
for scale. Then whole evaluations of the paper's objective (forward and the gradient)
and iterations of a run (``--iterations``, L-BFGS, from the Step events after 5) with
either, freed memory kept as the ``nst`` command keeps it. Interleaved rounds, the lower
median of each; side by side in one run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from common import inputs, machine, table, timed
from nst import execution, planning, runtime
from nst.config import Config
from nst.events import Step
from nst.objective import losses
from nst.objective.losses import _as_matrix, bf16_gram

WAYS = ("fp32", "two bf16")


def use(way: str) -> None:
    """Gram matrices of bfloat16 features computed ``way`` from now on."""
    losses.gram_in_bf16_products = (
        _ON if way == "two bf16" else lambda f: False  # type: ignore[assignment]
    )


_ON = losses.gram_in_bf16_products


def layer_rows(plan: planning.Plan, layers: list[str], repeat: int, rounds: int) -> list[dict]:
    model = runtime.network(None, plan.config.pooling, plan.config.normalize, layers,
                            torch.device("cpu"), torch.bfloat16)  # fmt: skip
    assert plan.content is not None
    image = torch.nn.functional.interpolate(
        plan.content.unsqueeze(0), size=plan.out_size, mode="area"
    ).mul(255)
    with torch.no_grad():
        features = model(image, layers)
    rows: list[dict] = []
    total = dict.fromkeys(WAYS, 0.0)
    for name in layers:
        f = _as_matrix(features[name])
        exact = torch.bmm(f.double().transpose(1, 2), f.double())
        ways: dict[str, Callable[[], torch.Tensor]] = {
            "fp32": lambda f=f: torch.bmm(f.float().transpose(1, 2), f.float()),
            "two bf16": lambda f=f: bf16_gram(f),
        }
        t = dict.fromkeys(WAYS, float("inf"))
        for _ in range(rounds):
            for way, fn in ways.items():
                t[way] = min(t[way], timed(fn, repeat))
        for way in WAYS:
            total[way] += t[way]
        scale = exact.abs().clamp_min(1e-30)

        def error(
            g: torch.Tensor, exact: torch.Tensor = exact, scale: torch.Tensor = scale
        ) -> float:
            return float(((g.double() - exact).abs() / scale).max())

        rows.append({
            "what": name, "M x C": f"{f.shape[1]}x{f.shape[2]}",
            "fp32 ms": t["fp32"] * 1e3, "two bf16 ms": t["two bf16"] * 1e3,
            "bf16/fp32": t["two bf16"] / t["fp32"], "fp32 error": error(ways["fp32"]()),
            "two bf16 error": error(ways["two bf16"]()), "one bf16 error": error(exact.bfloat16()),
        })  # fmt: skip
    rows.append(_row("the five products", "", total["fp32"], total["two bf16"]))
    return rows


def _row(what: str, shape: str, fp32: float, bf16: float) -> dict:
    return {"what": what, "M x C": shape, "fp32 ms": fp32 * 1e3, "two bf16 ms": bf16 * 1e3,
            "bf16/fp32": bf16 / fp32, "fp32 error": "", "two bf16 error": "",
            "one bf16 error": ""}  # fmt: skip


def run_rows(plan: planning.Plan, repeat: int, rounds: int) -> list[dict]:
    model = runtime.network(None, plan.config.pooling, plan.config.normalize, plan.layers,
                            torch.device("cpu"), torch.bfloat16)  # fmt: skip
    objective = execution.build_objective(plan, 0, model)
    h, w = plan.out_size
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255

    def evaluation() -> None:
        xi = x.detach().requires_grad_(True)
        loss, terms = objective(xi)
        torch.autograd.grad(loss, xi)
        terms.floats()

    def iteration() -> float:
        steps: list[Step] = []
        execution.execute(plan, lambda e: steps.append(e) if isinstance(e, Step) else None)
        warm = 5
        return (steps[-1].elapsed - steps[warm].elapsed) / (
            steps[-1].iteration - steps[warm].iteration
        )

    t_eval = dict.fromkeys(WAYS, float("inf"))
    t_iter = dict.fromkeys(WAYS, float("inf"))
    for _ in range(rounds):
        for way in WAYS:
            use(way)
            t_eval[way] = min(t_eval[way], timed(evaluation, repeat))
            t_iter[way] = min(t_iter[way], iteration())
    use("two bf16")
    return [
        _row("one evaluation", f"{w}x{h}", t_eval["fp32"], t_eval["two bf16"]),
        _row("one iteration", f"{w}x{h}", t_iter["fp32"], t_iter["two bf16"]),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=25)
    args = parser.parse_args(argv)
    print(f"# Gram products of bfloat16 features ({machine()})")
    runtime.keep_freed_memory()  # as the command does (untiled runs)
    content, style = inputs()
    rows: list[dict] = []
    for size in (int(s) for s in args.sizes.split(",")):
        config = Config(size=size, precision="bf16", seed=0, iterations=args.iterations)
        layers = [name for name, _ in config.style_layers]
        plan = planning.plan_stylize(content, [style], config)
        here = layer_rows(plan, layers, args.repeat * 2, args.rounds)
        here += run_rows(plan, args.repeat, args.rounds)
        print(f"\n{size} px\n{table(here)}", flush=True)
        rows += here


if __name__ == "__main__":
    main()
