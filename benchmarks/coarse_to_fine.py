"""Coarse to fine against a single stage: wall time to the same loss at the output size.

The reference runs `--reference` L-BFGS iterations in one stage at `--size` (1024) from
noise; its final loss (calibrated units, at the output size) is the target. Each schedule
then runs its coarse stages in full and its last stage (at the output size) until it
reaches the target, or for at most as many iterations as the reference. Times are wall
clock from the start of the run, so encoding the targets of every stage counts. Printed:
seconds to the target and the ratio to the single stage's time (goal: <= 0.5).

Schedules (stage sizes: iterations per coarse stage):
  today      the default stages for --size (512, 1024), the coarse stage with --coarse its
  halving    256, 512, 1024 with --coarse, then half as many
  sqrt2      crowsonkb's steps of sqrt(2) from 256: 256, 362, 512, 724, 1024 with --coarse, halving
  short      512 with a quarter of --coarse, then 1024
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from common import inputs, machine, table
from nst import api
from nst.config import Config
from nst.events import Step


def run(
    size: int, scales: tuple[int, ...], coarse: list[int], cap: int, target: float | None
) -> dict[str, object]:
    content, style = inputs()
    config = Config(size=size, scales=scales, seed=0, iterations=max(coarse or [cap]))
    plan = api.plan_stylize(content, style, config)
    stages = [replace(s, iterations=n) for s, n in zip(plan.stages[:-1], coarse)]
    stages.append(replace(plan.stages[-1], iterations=cap))
    plan = replace(plan, stages=tuple(stages))
    last = len(stages) - 1
    reached: list[float] = []
    steps: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def on_event(e: object) -> None:
        if isinstance(e, Step):
            now = time.perf_counter() - start
            steps.append((e.stage, now, e.loss))
            if target is not None and e.stage == last and e.loss <= target and not reached:
                reached.append(now)

    api.execute(plan, on_event, stop=lambda: bool(reached))
    final = [s for s in steps if s[0] == last]
    return {
        "stages": ",".join(str(max(s.height, s.width)) for s in stages),
        "iterations": ",".join(str(s.iterations) for s in stages[:-1]) + f",<= {cap}",
        "fine iterations": len(final) - 1,
        "first fine loss": final[0][2],
        "final loss": final[-1][2],
        "s": reached[0] if reached else time.perf_counter() - start,
        "reached": bool(reached) or target is None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--reference", type=int, default=100, help="single-stage iterations")
    parser.add_argument("--coarse", type=int, default=100, help="first coarse stage's iterations")
    parser.add_argument("--schedules", default="today,halving,sqrt2,short")
    args = parser.parse_args(argv)
    size, coarse = args.size, args.coarse
    print(f"# coarse to fine at {size} px ({machine()}), default precision")
    ref = run(size, (size,), [], args.reference, None)
    target, t_ref = float(ref["final loss"]), float(ref["s"])  # type: ignore[arg-type]
    rows = [{"schedule": "single stage", **ref, "time / single": 1.0}]
    print(table(rows), flush=True)
    schedules = {
        "today": ((size // 2, size), [coarse]),
        "halving": ((size // 4, size // 2, size), [coarse, coarse // 2]),
        "sqrt2": (
            tuple(round(size / 4 * 2 ** (k / 2)) for k in range(5)),
            [max(1, coarse >> k) for k in range(4)],
        ),
        "short": ((size // 2, size), [coarse // 4]),
    }
    for name in args.schedules.split(","):
        scales, iterations = schedules[name]
        r = run(size, scales, iterations, args.reference, target)
        ratio = float(r["s"]) / t_ref if r["reached"] else "-"  # type: ignore[arg-type]
        rows.append({"schedule": name, **r, "time / single": ratio})
        print(table(rows[-1:]), flush=True)
    print(f"\ntarget: the single stage's loss after {args.reference} iterations, {target:.4g}")
    print(table(rows))


if __name__ == "__main__":
    main()
