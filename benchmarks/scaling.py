"""Time per iteration and peak memory from 128 to 1024 px (2048 with --full).

Each size runs in a fresh process (peak RSS belongs to it alone), single stage,
default configuration otherwise. Cost per megapixel shows whether time grows
linearly in pixels; RSS at the first and last iteration shows that memory does
not grow over iterations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import inputs, machine, table

WORKER = Path(__file__).with_name("_worker.py")


def run_worker(spec: dict[str, object]) -> dict[str, object]:
    out = subprocess.run([sys.executable, str(WORKER), json.dumps(spec)], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="128,256,512,768,1024")
    parser.add_argument("--full", action="store_true", help="also 2048 px")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument(
        "--stability", type=int, default=0, help="also N iterations at 512 px, RSS over time"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] + ([2048] if args.full else [])
    content, style = inputs()
    print(f"# scaling benchmark ({machine()}), precision {args.precision}")
    rows = []
    base = None
    for size in sizes:
        spec = {"content": content, "style": style, "size": size, "scales": str(size),
                "iterations": args.iterations if size < 2048 else 4, "seed": 0,
                "precision": args.precision}  # fmt: skip
        r = run_worker(spec)
        mpix = size * size * 0.75 / 1e6  # 4:3 images (Tuebingen is 4:3)
        per_mpix = float(r["s_per_iteration"]) / mpix  # type: ignore[arg-type]
        base = base or per_mpix
        rows.append({
            "size": size,
            "s/iteration": r["s_per_iteration"],
            "s/it per Mpx": per_mpix,
            "vs smallest": per_mpix / base,
            "peak RSS MB": r["peak_rss_mb"],
            "RSS first->last MB": f"{r['rss_first_mb']:.0f}->{r['rss_last_mb']:.0f}",
        })  # fmt: skip
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    if args.stability:
        size = 512
        spec = {"content": content, "style": style, "size": size, "scales": str(size),
                "iterations": args.stability, "seed": 0, "precision": args.precision}  # fmt: skip
        rss = dict(run_worker(spec)["rss_by_iteration"])  # type: ignore[arg-type]
        marks = sorted({i for i in (1, 10, 25, 50, 75, 100, 150, args.stability) if i in rss})
        print(f"\nRSS over {args.stability} iterations at {size} px (MB): "
              + ", ".join(f"it {i}: {rss[i]:.0f}" for i in marks))  # fmt: skip


if __name__ == "__main__":
    main()
