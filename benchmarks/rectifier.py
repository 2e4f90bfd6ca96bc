"""The rectifier out of place against in place: one evaluation of the objective each way,
side by side in one process.

While autograd records, nst's network writes each rectified activation to a new tensor
(``torch.relu``); a lean stage (tiles, or a whole image that fits the memory limit only
so, ``nst.memory``) rectifies the convolution's output in place (``torch.relu_``), which
holds one activation less for a moment. Each round times a few evaluations (forward and
backward of the whole objective, Tübingen × Starry Night, default config) one way then
the other (the order alternating), and the ratio of the pair is kept: this VM's speed
drifts by 5-10% within a minute, far more than between the two members of a pair. The
median of the paired ratios is the figure. nst writes new tensors in bf16 on the CPU
only (float32 gained nothing, measured here); for the other dtypes this benchmark lets
the network write them too (``nst.model.vgg._apart`` replaced), so that they can be
measured again. Peak memory: ``benchmarks/memory.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import inputs, machine, table
from nst import execution, planning, runtime
from nst.config import Config
from nst.model import vgg
from nst.objective import Objective


def evaluation_ms(objective: Objective, x: torch.Tensor, repeat: int) -> float:
    objective.value_and_grad(x)  # warm: its memory and oneDNN's kernels
    start = time.perf_counter()
    for _ in range(repeat):
        objective.value_and_grad(x)
    return (time.perf_counter() - start) / repeat * 1000


def measure(size: int, precision: str, style_loss: str, rounds: int, repeat: int
            ) -> dict[str, object]:  # fmt: skip
    content, style = inputs()
    config = Config(size=size, precision=precision, seed=0, style_loss=style_loss,
                    scales=(size,))  # fmt: skip
    device = runtime.resolve_device(config.device)
    label, dtype = runtime.resolve_precision(precision, device)
    plan = planning.plan_stylize(content, style, config)
    s = plan.stages[0]
    net = runtime.network(None, config.pooling, config.normalize, plan.layers, device, dtype)
    objective = execution.build_objective(plan, 0, net)
    x = torch.rand(1, 3, s.height, s.width, generator=torch.Generator().manual_seed(0)) * 255
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for r in range(rounds):
        pair = {}
        for lean in (False, True) if r % 2 else (True, False):
            objective.lean = lean
            pair[lean] = evaluation_ms(objective, x, repeat)
            times[lean].append(pair[lean])
        ratios.append(pair[False] / pair[True])
    return {
        "size": f"{s.width}x{s.height}",
        "precision": label,
        "style loss": style_loss,
        "in place ms": statistics.median(times[True]),
        "new tensor ms": statistics.median(times[False]),
        "ratio (median of pairs)": statistics.median(ratios),
        "ratio range": f"{min(ratios):.3f}-{max(ratios):.3f}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--style-losses", default="gram,w2")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    runtime.keep_freed_memory()  # as the command does (untiled runs)
    vgg._apart = lambda h: h.requires_grad and torch.is_grad_enabled()  # any dtype
    print(f"# rectifier benchmark ({machine()})")
    rows = []
    for precision in args.precisions.split(","):
        for size in [int(v) for v in args.sizes.split(",")]:
            for loss in args.style_losses.split(","):
                rows.append(measure(size, precision, loss, args.rounds, args.repeat))
                print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
