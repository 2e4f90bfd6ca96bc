"""The w2 style term's cost with and without the positions' matrix, side by side.

Where a layer has fewer positions M than channels C (conv5_1 below 512 px, conv4_1
below 256 px), ``W2Target`` takes the cross term's eigenvalues from the M x M matrix of
the positions instead of the C x C one (the same value: docs/PERFORMANCE.md). This times
the whole style term (the five layers' targets on the features of one image, forward and
gradient) both ways and a plain VGG19 pass (benchmarks/iteration.py's reference) at each
size, in one run: ``python benchmarks/w2_positions.py --sizes 128,256,512``.
"""

from __future__ import annotations

import argparse

import torch

from common import inputs, machine, table, timed
from iteration import plain_pass, plain_stack
from nst import execution, planning, runtime
from nst.config import Config
from nst.objective import w2


def measure(size: int, repeat: int = 5) -> dict[str, object]:
    content, style = inputs()
    config = Config(size=size, seed=0, iterations=1, style_loss="w2", init="content")
    device = runtime.resolve_device(config.device)
    label, dtype = runtime.resolve_precision(config.precision, device)
    plan = planning.plan_stylize(content, style, config)
    h, w = plan.out_size
    model = runtime.network(None, config.pooling, config.normalize, plan.layers, device, dtype)
    objective = execution.build_objective(plan, 0, model)
    targets = {name: m for name, m in objective.modules_.items() if name.startswith("style")}
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
    layers = [n for n, _ in config.style_layers]
    with torch.no_grad():
        feats = model(x, layers)
    pairs = [(targets[f"style__{n}"][0], feats[n]) for n in layers]  # one target: no regions
    counts = {n: f.shape[-1] * f.shape[-2] for n, f in feats.items()}

    def style_term(whole: bool) -> None:
        for target, f in pairs:
            fi = f.detach().requires_grad_(True)
            value = target._distance(*w2.moments(fi, target.guide)) if whole else target(fi)
            torch.autograd.grad(value, fi)

    stack = plain_stack(device, dtype)
    t_plain = t_whole = t_now = float("inf")
    for _ in range(2):  # interleaved rounds, the lower of each
        t_plain = min(t_plain, timed(lambda: plain_pass(stack, x), repeat))
        t_whole = min(t_whole, timed(lambda: style_term(True), repeat))
        t_now = min(t_now, timed(lambda: style_term(False), repeat))
    few = [n for n in layers if counts[n] < feats[n].shape[1]]
    return {
        "size": f"{w}x{h}",
        "precision": label,
        "M < C at": ",".join(few) or "-",
        "plain s": t_plain,
        "C x C s": t_whole,
        "now s": t_now,
        "now/C x C": t_now / t_whole,
        "C x C/plain": t_whole / t_plain,
        "now/plain": t_now / t_plain,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="128,256,512")
    args = parser.parse_args(argv)
    print(f"# w2 style term, positions' matrix or C x C ({machine()})")
    rows = [measure(int(s)) for s in args.sizes.split(",")]
    print(table(rows))


if __name__ == "__main__":
    main()
