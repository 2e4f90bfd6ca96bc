"""Loss reached versus wall time: single-scale vs coarse-to-fine, fp32 vs bf16, at 512 px.

The target is the loss of `--iterations` (500) single-scale fp32 iterations at
512 px. For every other run we report when its loss at 512 px (for
coarse-to-fine: in its last stage) first reaches that target, as a fraction of
the single-scale time. Losses are compared in the same (calibrated) units at the
same size. Long: about half an hour on 2 CPU cores.
"""

from __future__ import annotations

import argparse

from common import inputs, machine, table
from scaling import run_worker


def reach(curve: list[list[float]], target: float, final_stage: int) -> float | None:
    for stage, _it, elapsed, loss in curve:
        if stage == final_stage and loss <= target:
            return elapsed
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--start", type=int, default=256, help="first coarse-to-fine stage")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args(argv)
    content, style = inputs()
    print(f"# time-to-quality benchmark ({machine()})")
    common = {"content": content, "style": style, "size": args.size, "seed": 0, "curve": True}
    runs = []
    for precision in args.precisions.split(","):
        single = {**common, "scales": str(args.size), "iterations": args.iterations,
                  "precision": precision}  # fmt: skip
        runs.append(("single-scale", precision, 0, run_worker(single)))
        c2f = {**common, "scales": f"{args.start},{args.size}", "iterations": args.iterations,
               "precision": precision}  # fmt: skip
        runs.append(("coarse-to-fine", precision, 1, run_worker(c2f)))
    reference = runs[0][3]
    target = float(reference["final_loss"])  # type: ignore[arg-type]
    t_ref = float(reference["elapsed"])  # type: ignore[arg-type]
    rows = []
    for name, precision, final_stage, r in runs:
        t = reach(r["curve"], target, final_stage)  # type: ignore[arg-type]
        rows.append({
            "run": name,
            "precision": precision,
            "total s": r["elapsed"],
            "final loss": r["final_loss"],
            "s to target": t if t is not None else "not reached",
            "time / single fp32": (t / t_ref) if t is not None else "-",
        })  # fmt: skip
    print(f"target: loss {target:.4g} after {args.iterations} single-scale fp32 iterations "
          f"({t_ref:.0f} s)")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
