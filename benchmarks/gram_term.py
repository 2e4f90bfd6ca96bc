"""The Gram style term in one autograd function against autograd's graph of the same.

Whole evaluations of the paper's objective (forward and the gradient with respect to the
image, freed memory kept as the ``nst`` command keeps it) at each of ``--sizes``, with
each unguided style term computed by :func:`nst.objective.losses.gram_style_loss` (one
function: the difference kept, one product in the backward) or, as before, by
``style_layer_loss(gram_matrix(F), A)`` (autograd through the Gram's function and the
dozen small operations of E_l). The two alternate evaluation by evaluation (ABAB..., the
order swapped every round), so that the machine's drift falls on both; the ratio of their
summed times is printed with each one's median.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from common import inputs, machine, table
from nst import execution, planning, runtime
from nst.config import Config
from nst.objective import losses

ONE = losses.StyleTarget.forward


def autograd_graph(self: losses.StyleTarget, features: torch.Tensor) -> torch.Tensor:
    """StyleTarget's term as it was computed before: autograd through E_l of the Gram."""
    if self.guide is None:
        return losses.style_layer_loss(losses.gram_matrix(features), self.target)
    return ONE(self, features)


WAYS = {"one function": ONE, "autograd": autograd_graph}


def measure(size: int, precision: Any, rounds: int) -> dict[str, object]:
    content, style = inputs()
    config = Config(size=size, precision=precision, seed=0, iterations=1)
    device = runtime.resolve_device(config.device)
    label, dtype = runtime.resolve_precision(precision, device)
    plan = planning.plan_stylize(content, style, config)
    h, w = plan.out_size
    model = runtime.network(None, config.pooling, config.normalize, plan.layers, device, dtype)
    objective = execution.build_objective(plan, 0, model)
    runtime.keep_freed_memory()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255

    def evaluation() -> float:
        xi = x.detach().requires_grad_(True)
        start = time.perf_counter()
        total, terms = objective(xi)
        torch.autograd.grad(total, xi)
        terms.floats()
        return time.perf_counter() - start

    style_terms = [t for t in objective.terms if t.name.startswith("style:") and t.layer]
    with torch.no_grad():
        feats = model(x, [str(t.layer) for t in style_terms])

    def term_only() -> float:
        """The style terms and their gradients from the features alone."""
        start = time.perf_counter()
        for t in style_terms:
            f = feats[str(t.layer)].detach().requires_grad_(True)
            torch.autograd.grad(t.module(f), f)
        return time.perf_counter() - start

    times: dict[tuple[str, str], list[float]] = {
        (way, part): [] for way in WAYS for part in ("eval", "term")
    }
    for forward in WAYS.values():  # warm each
        losses.StyleTarget.forward = forward  # type: ignore[method-assign]
        evaluation()
        term_only()
    order = list(WAYS)
    for r in range(rounds):
        for way in order if r % 2 == 0 else order[::-1]:
            losses.StyleTarget.forward = WAYS[way]  # type: ignore[method-assign]
            times[way, "eval"].append(evaluation())
            times[way, "term"].append(term_only())
    losses.StyleTarget.forward = ONE  # type: ignore[method-assign]
    row: dict[str, object] = {"size": f"{w}x{h}", "precision": label}
    for part in ("term", "eval"):
        one, graph = times["one function", part], times["autograd", part]
        row[f"{part}: one function s"] = statistics.median(one)
        row[f"{part}: autograd s"] = statistics.median(graph)
        row[f"{part}: one / autograd"] = sum(one) / sum(graph)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--precisions", default="bf16")
    ap.add_argument("--rounds", type=int, default=40, help="evaluations of each way per size")
    args = ap.parse_args(argv)
    print(f"# Gram term: one function against autograd's graph ({machine()})")
    rows = [
        measure(int(size), precision, args.rounds)
        for precision in args.precisions.split(",")
        for size in args.sizes.split(",")
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
