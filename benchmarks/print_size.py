"""Print size: peak memory and time per evaluation, untiled and tiled, up to 4096x3072.

Each row is one run in a fresh process (peak RSS is that run's): a single stage at the
size (no coarse to fine), a few L-BFGS iterations, evaluated untiled (``--memory-limit
none``) where that fits this machine, or in tiles (a forced ``--tile``, or the tiles the
planner picks for a ``--memory-limit``). Printed per row: the plan (tile, estimated peak,
L-BFGS pairs), the measured peak RSS, that peak projected to a full history (the pairs
still to come x a pair's bytes, as benchmarks/memory.py), seconds per evaluation per
megapixel, and the tiled rows' cost against the untiled row of the same size, measured
in the same run. Goals (issue 20): peak RSS at 4096x3072 <= 4 GB on CPU; tiled cost per
megapixel <= 2x untiled at 2048 px.
"""

from __future__ import annotations

import argparse

from common import inputs, machine, table
from scaling import run_worker

#: (size, how): "none" = untiled; "tile:N" = tiles of N px; "limit:X" = the planner's
#: tiles for --memory-limit X
DEFAULT_ROWS = (
    "1024/none,1024/tile:512,2048/none,2048/tile:1024,2048/tile:768,2048/tile:512,4096/limit:3.5G"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="size/how, comma-separated")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--history-study", type=int, metavar="SIZE",
                        help="instead: the L-BFGS history options at SIZE px")  # fmt: skip
    parser.add_argument("--study-iterations", type=int, default=12)
    args = parser.parse_args(argv)
    if args.history_study:
        history_study(args.history_study, args.study_iterations, args.precision)
        return
    content, style = inputs()
    print(f"# print-size benchmark ({machine()}), precision {args.precision}")
    rows = []
    untiled: dict[int, float] = {}
    for item in args.rows.split(","):
        size_text, _, how = item.partition("/")
        size = int(size_text)
        spec: dict[str, object] = {
            "content": content, "style": style, "size": size, "scales": str(size),
            "iterations": args.iterations, "seed": 0, "precision": args.precision,
            "init": "content",
        }  # fmt: skip
        kind, _, value = how.partition(":")
        if kind == "none":
            spec["memory_limit"] = "none"
        elif kind == "tile":
            spec["tile"] = int(value)
            spec["memory_limit"] = "none"
        else:
            spec["memory_limit"] = value
        r = run_worker(spec)
        stage = r["stage"]
        assert isinstance(stage, dict)
        h, w = int(stage["height"]), int(stage["width"])
        mpx = h * w / 1e6
        pair = 2 * 3 * h * w * 4
        pairs = int(stage["history"])
        measured = float(r["peak_rss_mb"])  # type: ignore[arg-type]
        projected = measured + max(0, pairs - args.iterations) * pair / 2**20
        per_mpx = float(r["s_per_evaluation"]) / mpx  # type: ignore[arg-type]
        if kind == "none":
            untiled[size] = per_mpx
        row = {
            "size": f"{w}x{h}", "how": how, "tile": stage["tile"] or "-",
            "estimate MB": stage.get("memory_mb", 0), "pairs": pairs,
            "peak RSS MB": measured, "peak MB, full history": projected,
            "s/eval": r["s_per_evaluation"], "s/eval/Mpx": per_mpx,
            "vs untiled": per_mpx / untiled[size] if size in untiled else "-",
        }  # fmt: skip
        rows.append(row)
        print(table([row]), flush=True)
    print()
    print(table(rows))
    big = [r for r in rows if str(r["size"]).startswith("4096")]
    for r in big:
        peak = float(r["peak MB, full history"])  # type: ignore[arg-type]
        verdict = "meets" if peak <= 4096 else "misses"
        print(f"{r['size']} ({r['how']}): {peak:.0f} MB projected peak ({verdict} the 4 GB goal)")
    for r in rows:
        if str(r["size"]).startswith("2048") and r["tile"] != "-" and r["vs untiled"] != "-":
            ratio = float(r["vs untiled"])  # type: ignore[arg-type]
            verdict = "meets" if ratio <= 2 else "misses"
            print(f"2048 px tiles of {r['tile']}: {ratio:.2f}x untiled per Mpx ({verdict} 2x)")


def history_study(size: int, iterations: int, precision: str) -> None:
    """The L-BFGS history at print size: the loss after ``iterations`` at ``size`` (one
    stage from the content) with the pairs a float32 history gets under the byte cap, the
    same bytes in bfloat16 (twice the pairs), the fewest pairs, and Adam."""
    import torch

    from nst import runtime
    from nst.config import Config
    from nst.execution import build_objective, start_image
    from nst.optimize import HISTORY_BYTES, minimize
    from nst.planning import plan_stylize

    content, style = inputs()
    config = Config.from_dict({"size": size, "scales": str(size), "init": "content", "seed": 0,
                               "precision": precision, "memory_limit": "none"})  # fmt: skip
    plan = plan_stylize(content, style, config)
    device = runtime.resolve_device("auto")
    _, dtype = runtime.resolve_precision(precision, device)
    net = runtime.network(None, "avg", True, plan.layers, device, dtype)
    objective = build_objective(plan, 0, net)
    stage = plan.stages[0]
    x0 = start_image(plan, (stage.height, stage.width))
    pair = 2 * 3 * 4 * stage.height * stage.width
    fp32_pairs = max(3, HISTORY_BYTES // pair)
    variants = [
        (f"lbfgs, {fp32_pairs} pairs fp32 (the cap)", "lbfgs", fp32_pairs, None),
        (f"lbfgs, {2 * fp32_pairs} pairs bf16 (same bytes)", "lbfgs", 2 * fp32_pairs,
         torch.bfloat16),
        ("lbfgs, 3 pairs fp32", "lbfgs", 3, None),
        ("adam (lr 5)", "adam", 0, None),
    ]  # fmt: skip
    print(f"# L-BFGS history at {stage.width}x{stage.height}, {iterations} iterations from the "
          f"content ({machine()}), precision {precision}")  # fmt: skip
    rows = []
    for label, method, pairs, dt in variants:
        result = minimize(objective, x0, iterations=iterations, method=method,
                          lr=5.0 if method == "adam" else 1.0, history=max(pairs, 1),
                          history_dtype=dt)  # fmt: skip
        rows.append({"variant": label, "history MB": pairs * pair / 2**20 / (2 if dt else 1),
                     "final loss": result.loss, "evaluations": result.evaluations,
                     "seconds": result.elapsed})  # fmt: skip
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
