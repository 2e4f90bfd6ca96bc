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
    parser.add_argument("--style-loss", default="gram", help="gram, w2 or mrf (tileable ones)")
    parser.add_argument("--history-study", type=int, metavar="SIZE",
                        help="instead: the L-BFGS history options at SIZE px")  # fmt: skip
    parser.add_argument("--study-iterations", type=int, default=12)
    parser.add_argument("--spread", type=str, metavar="SIZES",
                        help="instead: tiles on 2 Ray workers of 1 thread against one "
                        "process of 2 threads at these sizes (comma-separated)")  # fmt: skip
    parser.add_argument("--evaluations", type=int, default=2)
    parser.add_argument("--mrf-encoding", type=str, metavar="HxW",
                        help="instead: the peak of encoding mrf's target for a style image of "
                        "this size and its four views, one image at a time (as nst does) "
                        "against all five images' features at once")  # fmt: skip
    parser.add_argument("--encoding-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.encoding_worker:
        encoding_worker(args.encoding_worker[0], args.encoding_worker[1] == "one")
        return
    if args.mrf_encoding:
        mrf_encoding(args.mrf_encoding)
        return
    if args.spread:
        spread_rows([int(x) for x in args.spread.split(",")], args.evaluations, args.precision)
        return
    if args.history_study:
        history_study(args.history_study, args.study_iterations, args.precision)
        return
    content, style = inputs()
    print(f"# print-size benchmark ({machine()}), precision {args.precision}, "
          f"style loss {args.style_loss}")  # fmt: skip
    rows = []
    untiled: dict[int, float] = {}
    for item in args.rows.split(","):
        size_text, _, how = item.partition("/")
        size = int(size_text)
        spec: dict[str, object] = {
            "content": content, "style": style, "size": size, "scales": str(size),
            "iterations": args.iterations, "seed": 0, "precision": args.precision,
            "init": "content", "style_loss": args.style_loss,
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


def encoding_worker(size: str, one_at_a_time: bool) -> None:
    """In this (fresh) process: encode mrf's target (bf16, the default layers) for a random
    style image of ``size`` and print the peak RSS before and after, as JSON."""
    import json
    import resource

    import torch

    from nst import runtime
    from nst.config import MRF_STYLE_LAYERS
    from nst.objective import Objective, StyleSource, add_style, mrf

    h, w = (int(v) for v in size.split("x"))
    names = [n for n, _ in MRF_STYLE_LAYERS]
    net = runtime.network(None, "avg", True, names, torch.device("cpu"), torch.bfloat16)
    style = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
    objective = Objective(net)

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    before = peak()
    with torch.no_grad():
        if one_at_a_time:  # as nst encodes
            add_style(objective, [StyleSource(style)], MRF_STYLE_LAYERS, 1.0, (h, w), "mrf")
        else:  # every image's features first, then the patches (nst before Statistic.keep)
            feats = [net(v, names) for v in (style, *mrf.style_views(style))]
            for n in names:
                mrf.style_patches([(f[n], 1.0) for f in feats])
    print(json.dumps({"before": before, "after": peak()}))


def mrf_encoding(size: str) -> None:
    """Both ways of encoding, each in a fresh process, and what the estimate says."""
    import json
    import subprocess
    import sys

    from nst import memory

    h, w = (int(v) for v in size.split("x"))
    layers = ("conv3_1", "conv4_1")
    work = memory.Workload(layers=layers, content_layers=(), value_bytes=2, style_pixels=h * w,
                           history=0, baseline=0, patch_layers=layers)  # fmt: skip
    # the estimate's own figure: for a 1 px stage its peak beyond the fixed parts is the
    # encoding of the style image
    estimate = memory.need(work, (1, 1), None).evaluation / 2**20
    print(f"# mrf encoding, a {w}x{h} style image and its four views, bf16 ({machine()})")
    rows = []
    for how, arg in (("one image at a time (nst)", "one"), ("all five at once", "all")):
        out = subprocess.run([sys.executable, __file__, "--encoding-worker", size, arg],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        rows.append({"how": how, "peak before MB": r["before"], "peak after MB": r["after"],
                     "encoding MB": r["after"] - r["before"],
                     "estimate MB": estimate if arg == "one" else "-"})  # fmt: skip
    print(table(rows))


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


def spread_rows(sizes: list[int], evaluations: int, precision: str) -> None:
    """Per size: seconds per evaluation of one process of 2 threads (untiled, and in the
    tiles a spread would use) against the same tiles on 2 local Ray workers of 1 thread
    each (``nst.spread``); bytes each way and the wait for the slowest tile per pass; the
    tile compute time and bytes per tile the scaling model of docs/PRINT.md starts from."""
    import time

    import torch

    from nst import runtime
    from nst.batch import Cluster
    from nst.config import Config
    from nst.execution import build_objective, start_image, tile_for_workers
    from nst.planning import plan_stylize
    from nst.spread import NetworkSpec, RaySpread

    torch.set_num_threads(2)
    content, style = inputs()
    device = runtime.resolve_device("auto")
    _, dtype = runtime.resolve_precision(precision, device)
    print(f"# tiles on workers ({machine()}), precision {precision}, {evaluations} "
          "evaluations each (the median), from the content")  # fmt: skip
    rows = []
    spread = None
    try:
        for size in sizes:
            config = Config.from_dict({"size": size, "scales": str(size), "init": "content",
                                       "seed": 0, "precision": precision,
                                       "memory_limit": "none"})  # fmt: skip
            plan = plan_stylize(content, style, config)
            net = runtime.network(None, "avg", True, plan.layers, device, dtype)
            stage = plan.stages[0]
            hw = (stage.height, stage.width)
            x = start_image(plan, hw)
            if spread is None:
                spec = NetworkSpec(None, "avg", True, tuple(plan.layers),
                                   str(dtype or torch.float32).removeprefix("torch."))  # fmt: skip
                spread = RaySpread(Cluster(), spec, 2)
                spread.open()

            def timed(objective, x=x) -> float:
                times = []
                for _ in range(evaluations):
                    t0 = time.perf_counter()
                    objective.value_and_grad(x)
                    times.append(time.perf_counter() - t0)
                return sorted(times)[len(times) // 2]

            objective = build_objective(plan, 0, net)
            untiled = timed(objective)
            objective.tiling = tile_for_workers(plan, hw, 2, net.plan)
            tiles = len(objective.tiling.windows(hw))
            tiled = timed(objective)
            objective.spread = spread
            spread.keep_graph = True  # as nst.execution.spread_stage sets it for such tiles
            spread.traffic.clear()
            spread_s = timed(objective)
            passes = spread.traffic[-2:]  # the last evaluation's stats and grad passes
            sent = sum(t.sent for t in passes) / 2**20
            received = sum(t.received for t in passes) / 2**20
            slowest = sum(t.slowest for t in passes)
            row = {
                "size": f"{hw[1]}x{hw[0]}", "tiles": tiles, "tile px": objective.tiling.tile,
                "1 proc untiled s": untiled, "1 proc tiled s": tiled, "2 workers s": spread_s,
                "vs untiled": spread_s / untiled, "vs tiled": spread_s / tiled,
                "MB sent": sent, "MB back": received, "slowest-tile wait s": slowest,
                "s per tile (1 thread)": 2 * spread_s / tiles,
                "MB per tile": (sent + received) / tiles,
            }  # fmt: skip
            rows.append(row)
            print(table([row]), flush=True)
    finally:
        if spread is not None:
            spread.close()
    print()
    print(table(rows))
    for r in rows:
        if str(r["size"]).startswith("2048"):
            ratio = float(r["vs untiled"])  # type: ignore[arg-type]
            same = float(r["vs tiled"])  # type: ignore[arg-type]
            print(
                f"{r['size']}: 2 workers of 1 thread / 1 process of 2 threads: {ratio:.2f}x "
                f"its untiled evaluation, {same:.2f}x the same tiles in it (goal <= 1.15x)"
            )
    last = rows[-1]
    h, w = (int(v) for v in str(last["size"]).split("x")[::-1])
    padded = h * w * _tiles((h, w), int(last["tiles"]))[1] / 1e6  # type: ignore[arg-type]
    per_mpx = float(last["2 workers s"]) * 2 / padded  # type: ignore[arg-type]
    scaling_model(per_mpx, float(last["1 proc untiled s"]) / (h * w / 1e6))  # type: ignore[arg-type]


EVALUATIONS_PER_ITERATION = 1.1  # L-BFGS's line search, as the runs here measure it
#: the default schedule of a 4096x3072 poster (longest side per stage, iterations)
POSTER = ((512, 500), (1024, 250), (2048, 125), (4096, 62))
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1")
STATS_BYTES = 8 * sum(c * c + c for c in (64, 128, 256, 512, 512))  # float64, per tile


def _tiles(size: tuple[int, int], workers: int) -> tuple[int, float]:
    """The tiles a spread stage of ``size`` gets on ``workers`` and their pixel overhead
    (nst.execution.tile_for_workers)."""
    from types import SimpleNamespace

    from nst.execution import tile_for_workers
    from nst.layers import NAMES

    tiling = tile_for_workers(SimpleNamespace(layers=LAYERS), size, workers, NAMES)  # type: ignore[arg-type]
    return len(tiling.windows(size)), tiling.overhead(size)


def evaluation_seconds(size: tuple[int, int], workers: int, per_mpx: float, gbit: float
                       ) -> tuple[float, float, float]:  # fmt: skip
    """The model's seconds per evaluation of a stage of ``size`` on ``workers`` workers:
    (compute of the busiest worker, transfer through the driver's link, total)."""
    import math

    h, w = size
    tiles, overhead = _tiles(size, workers)
    padded = h * w * overhead
    per_tile = per_mpx * padded / tiles / 1e6
    compute = math.ceil(tiles / workers) * per_tile
    # a tile's padded region (3 x float32) goes once (its worker keeps it for the gradient
    # pass); back: its statistics (float64) and its gradient (3 x float32); the
    # derivatives go once to each worker
    moved = 12 * padded + 12 * padded + STATS_BYTES * (tiles + workers)
    transfer = moved * 8 / (gbit * 1e9)
    return compute, transfer, compute + transfer


def scaling_model(per_mpx: float, untiled_per_mpx: float) -> None:
    """Seconds per evaluation of the 4096x3072 stage and hours for the whole default
    schedule at N workers on a 1 and a 10 Gbit/s network, from the measured seconds per
    padded megapixel of one worker (``per_mpx``, a tiled evaluation on one thread here);
    stages under nst.execution.SPREAD_PIXELS, and every stage when the workers' threads
    do not pay (nst.execution.spread_pays), stay in the driver (untiled, 2 threads)."""
    from nst.execution import SPREAD_PIXELS, spread_pays

    print(f"\n# scaling model: a worker computes a padded megapixel of a tiled evaluation in "
          f"{per_mpx:.2f} s (1 thread here); the driver alone {untiled_per_mpx:.2f} s/Mpx "
          "untiled (2 threads)")  # fmt: skip
    rows = []
    for gbit in (1.0, 10.0):
        one = None
        for n in (1, 2, 4, 8, 16, 32):
            hours = 0.0
            for side, iterations in POSTER:
                size = (side * 3 // 4, side)
                if size[0] * size[1] < SPREAD_PIXELS or not spread_pays(n, 2):
                    seconds = untiled_per_mpx * size[0] * size[1] / 1e6
                else:
                    seconds = evaluation_seconds(size, n, per_mpx, gbit)[2]
                hours += seconds * iterations * EVALUATIONS_PER_ITERATION / 3600
            compute, transfer, total = evaluation_seconds((3072, 4096), n, per_mpx, gbit)
            one = one or total
            rows.append({"Gbit/s": gbit, "workers": n, "4096 eval s": total,
                         "busiest worker s": compute, "transfer s": transfer,
                         "efficiency": one / (n * total), "poster hours": hours})  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
