"""What checkpoints cost: the same run with and without them, side by side.

1. A real run at --size (512) px for --iterations (60: the L-BFGS history is full after
   50), three ways, interleaved --rounds times: no checkpoints, one after every
   iteration (the worst case), and the default (every 60 s). Printed: seconds, the
   ratio to the run without, the bytes of one checkpoint with a full history and the
   seconds one save takes.
2. A print-size stage (--print 2048x1536, tiled): a state holding the L-BFGS pairs the
   planner keeps there (capped at nst.optimize.HISTORY_BYTES), saved --saves times.
   Printed: bytes and seconds per checkpoint, and what the default (one every 60 s, at
   at iteration ends) adds to a run, against the iteration time given by
   --iteration-seconds (default: 40 s, measured at 2048x1536 tiled on 2 cores,
   docs/PRINT.md).

    python benchmarks/checkpoint.py [--size 512] [--iterations 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

from common import inputs, machine, table
from nst import api
from nst.checkpoints import WorkFolder
from nst.config import Config
from nst.events import Stage
from nst.execution import RunState
from nst.optimize import HISTORY_BYTES, MIN_PAIRS, OptimizerState

DEFAULT_EVERY = 60.0


def real_run(size: int, iterations: int, every: float | None, folder: Path) -> dict[str, float]:
    content, style = inputs()
    config = Config(size=size, iterations=iterations, seed=0, init="noise")
    plan = api.plan_stylize(content, style, config)
    work = WorkFolder(folder / "out.png", {"settings": {}}, every=every) if every is not None \
        else None  # fmt: skip
    start = time.perf_counter()
    api.execute(plan, checkpoint=work)
    took = time.perf_counter() - start
    if work is None:
        return {"seconds": took, "saves": 0, "bytes": 0, "save_s": 0.0}
    work.remove()
    return {
        "seconds": took,
        "saves": work.saves,
        "bytes": work.written,
        "save_s": work.seconds / max(1, work.saves),
    }


def print_state(width: int, height: int) -> tuple[RunState, int]:
    """A stage's state at print size with the pairs the planner would keep."""
    import torch

    n = 3 * width * height
    pairs = max(MIN_PAIRS, min(50, HISTORY_BYTES // (2 * 4 * n)))
    g = torch.Generator().manual_seed(0)
    rows = [torch.randn(pairs, n, generator=g), torch.randn(pairs, n, generator=g)]
    memory = {
        "kind": "compact", "rows": rows, "count": pairs, "order": list(range(pairs)),
        "sy": torch.eye(pairs, dtype=torch.float64), "yy": torch.eye(pairs, dtype=torch.float64),
        "h_diag": 1.0, "pending": [torch.randn(pairs), torch.randn(pairs)],
    }  # fmt: skip
    opt = OptimizerState("lbfgs", 10, 12, torch.randn(n, generator=g), 1.0,
                         torch.randn(n, generator=g), memory)  # fmt: skip
    stage = Stage(height, width, 62, tile=752, history=pairs)
    return RunState(0, 0, (stage,), optimizer=opt), pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--print", default="2048x1536", dest="print_size")
    parser.add_argument("--saves", type=int, default=3)
    parser.add_argument("--iteration-seconds", type=float, default=40.0)
    parser.add_argument("--skip-run", action="store_true", help="only the print-size part")
    args = parser.parse_args(argv)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="nst-ckpt-") as tmp:
        folder = Path(tmp)
        if not args.skip_run:
            ways = {
                "none": None,
                "every iteration": 0.0,
                f"every {DEFAULT_EVERY:g} s": DEFAULT_EVERY,
            }
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in ways}
            real_run(args.size, 3, None, folder)  # warm-up: weights, caches
            for _ in range(args.rounds):
                for name, every in ways.items():
                    runs[name].append(real_run(args.size, args.iterations, every, folder))
            base = statistics.median(r["seconds"] for r in runs["none"])
            rows = []
            for name, rs in runs.items():
                seconds = statistics.median(r["seconds"] for r in rs)
                rows.append({
                    "checkpoints": name, "seconds": f"{seconds:.1f}",
                    "ratio": f"{seconds / base:.3f}", "saves": int(rs[-1]["saves"]),
                    "MB each": f"{rs[-1]['bytes'] / 1e6:.1f}",
                    "s per save": f"{statistics.median(r['save_s'] for r in rs):.3f}",
                })  # fmt: skip
            print(f"\n{args.size} px, {args.iterations} L-BFGS iterations, real weights:")
            print(table(rows))
            save_s = statistics.median(r["save_s"] for r in runs["every iteration"])
            print(f"default ({DEFAULT_EVERY:g} s): one save of {save_s:.3f} s per "
                  f"{DEFAULT_EVERY:g} s of running = {100 * save_s / DEFAULT_EVERY:.2f}% "
                  "(goal <= 3%)")  # fmt: skip
        w, h = (int(v) for v in args.print_size.lower().split("x"))
        state, pairs = print_state(w, h)
        work = WorkFolder(folder / "poster.png", {"settings": {}}, every=0)
        for _ in range(args.saves):
            work.save(state)
        per = work.seconds / work.saves
        # a save is due after the first iteration that ends 60 s or more after the last
        it = args.iteration_seconds
        interval = math.ceil(DEFAULT_EVERY / it) * it
        print(f"\n{w}x{h} px stage, {pairs} L-BFGS pairs (synthetic state), iterations of "
              f"{it:g} s: a save every {interval:g} s")  # fmt: skip
        print(table([{
            "MB per checkpoint": f"{work.written / 1e6:.0f}", "s per save": f"{per:.2f}",
            "saves per hour": f"{3600 / interval:.0f}",
            "cost at defaults": f"{100 * per / interval:.2f}%",
        }]))  # fmt: skip
        work.remove()


if __name__ == "__main__":
    main()
