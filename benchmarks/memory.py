"""Peak memory at 512-1024 px, fp32 and bf16, single stage, each size in a fresh process.

A run's memory grows while the L-BFGS history fills (a pair of image-sized vectors per
iteration, capped by count and by ``nst.optimize.HISTORY_BYTES``), then stays flat. So
that the benchmark stays short, each run does a few iterations and the peak with a full
history is projected: measured peak RSS + the pairs still to come x the pair's bytes.
Goal (issue 15): <= 2 GB at 1024 px in bf16, growing linearly in pixels.
"""

from __future__ import annotations

import argparse

from common import inputs, machine, table
from nst.optimize import HISTORY_BYTES
from scaling import run_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="512,768,1024")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--history", type=int, default=50)
    args = parser.parse_args(argv)
    content, style = inputs()
    print(f"# memory benchmark ({machine()}); history cap {HISTORY_BYTES / 2**20:.0f} MiB")
    rows = []
    for precision in args.precisions.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            spec = {"content": content, "style": style, "size": size, "scales": str(size),
                    "iterations": args.iterations, "seed": 0, "precision": precision,
                    "lbfgs_history": args.history}  # fmt: skip
            r = run_worker(spec)
            h, w = round(size * 0.75), size  # 4:3 (Tuebingen)
            pair = 2 * 3 * h * w * 4  # s and y, float32 pixels
            pairs = max(3, min(args.history, HISTORY_BYTES // pair))
            measured = float(r["peak_rss_mb"])  # type: ignore[arg-type]
            projected = measured + max(0, pairs - args.iterations) * pair / 2**20
            rows.append({
                "size": size, "precision": precision, "Mpx": h * w / 1e6,
                "peak RSS MB (measured)": measured, "history pairs": pairs,
                "peak MB, full history": projected,
                "MB per Mpx": projected / (h * w / 1e6),
            })  # fmt: skip
            print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    at = [r for r in rows if r["size"] == 1024 and r["precision"] == "bf16"]
    if at:
        peak = at[0]["peak MB, full history"]
        print(f"1024 px bf16: {peak:.0f} MB projected peak "
              f"({'meets' if peak <= 2048 else 'misses'} the 2 GB goal)")  # fmt: skip


if __name__ == "__main__":
    main()
