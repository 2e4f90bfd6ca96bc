"""``--iterations auto`` against today's fixed budgets: each preset run both ways on the
built-in pairs, side by side in one run, timed and scored by ``nst score``.

For every pair and preset: the fixed run (the preset's own iterations, or the default 500)
and the same settings with ``iterations=auto``. Printed per run: seconds, iterations,
content distance, each style distance (Gram, W2, sliced Wasserstein) and the noise; then
per preset the mean time ratio auto / fixed and, for every score, the worst and the
geometric-mean ratio over the pairs (the issue's goal: time <= 0.6x with every score
within 3 %). With ``--trace`` the mean change of the 8-bit picture per iteration of the
fixed runs is kept (JSON), to choose the threshold from.

    python benchmarks/auto_stop.py [--size 256] [--pairs 4] [--presets paper,fast,quality]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import nst
from common import geomean, machine
from nst.config import Config
from nst.figures.sheets import Cell, Result, Sheet, render

PHOTOS = ("builtin:chelsea", "builtin:astronaut", "builtin:coffee", "builtin:rocket")
PAINTINGS = ("builtin:swirls", "builtin:mosaic")
#: the pairs in an order that mixes photos and paintings when only a few are run
PAIRS = [(PHOTOS[i % 4], PAINTINGS[(i + i // 4) % 2]) for i in range(8)]
SCORES = ("content", "gram", "w2", "swd", "noise")


def run(content: str, style: str, options: dict[str, Any]) -> dict[str, Any]:
    """One run: its picture, seconds (set-up included), iterations, reason and the mean
    8-bit change of the picture at each iteration."""
    config = Config.from_dict(options)
    start = time.perf_counter()
    plan = nst.plan_stylize(content, style, config)
    done: dict[str, Any] = {"changes": []}
    last: list[torch.Tensor] = []

    def on_event(event: Any) -> None:
        if isinstance(event, nst.Finished):
            done["iterations"], done["reason"] = event.iterations, event.reason
        elif isinstance(event, nst.Step) and event.preview is not None:
            shown = (event.preview.float().clamp(0, 1) * 255).round()
            if last and last[0].shape == shown.shape:
                done["changes"].append(round(float((shown - last[0]).abs().mean()), 4))
            last[:] = [shown]

    image = nst.execute(plan, on_event, None, 1)
    done["seconds"] = time.perf_counter() - start
    s = nst.score(image, content, style)
    done.update(image=image, content=s.content, gram=s.style_total("gram"),
                w2=s.style_total("w2"), swd=s.style_total("swd"), noise=s.noise_ratio)  # fmt: skip
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--presets", default="paper,fast,quality")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.auto_stop"))
    args = parser.parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {p: [] for p in presets}
    traces: dict[str, list[list[float]]] = {p: [] for p in presets}
    for k, (content, style) in enumerate(PAIRS[: args.pairs]):
        cells = [Cell("photo", source=content), Cell("painting", source=style)]
        results: dict[int, Result] = {}
        for preset in presets:
            base = {"preset": preset, "size": args.size, "seed": 0}
            fixed = run(content, style, base)
            auto = run(content, style, {**base, "iterations": "auto"})
            rows[preset].append((fixed, auto))
            traces[preset].append(fixed["changes"])
            for name, r in (("fixed", fixed), ("auto", auto)):
                print(f"{content} x {style} {preset} {name}: {r['seconds']:.1f} s, "
                      f"{r['iterations']} it ({r['reason']}), content {r['content']:.4f}, "
                      f"gram {r['gram']:.4g}, w2 {r['w2']:.4g}, swd {r['swd']:.4g}, "
                      f"noise x{r['noise']:.3f}", flush=True)  # fmt: skip
                cell = Cell(f"{preset} {name}", note=f"{r['seconds']:.0f} s, {r['iterations']} it")
                results[id(cell)] = Result(r["image"], r["seconds"])
                cells.append(cell)
        sheet = Sheet(f"auto{k + 1}", f"{content} x {style}, {args.size} px: fixed vs auto",
                      [cells])  # fmt: skip
        nst.save_image(render(sheet, results, (args.size, args.size * 3 // 4)),
                       args.out / f"pair{k + 1}.png")  # fmt: skip
    (args.out / "changes.json").write_text(json.dumps(traces))
    print(f"\n{machine()}; {args.size} px, {min(args.pairs, len(PAIRS))} pairs")
    print("ratios auto / fixed (scores: < 1 is better; worst = the largest over the pairs)")
    print(f"{'preset':<8} {'seconds':>8} {'iters':>7} {'time':>6} "
          + " ".join(f"{s + ' worst':>11} {s + ' mean':>10}" for s in SCORES))  # fmt: skip
    for preset in presets:
        pairs = rows[preset]
        time_ratio = sum(a["seconds"] for _, a in pairs) / sum(f["seconds"] for f, _ in pairs)
        its = sum(a["iterations"] for _, a in pairs) / sum(f["iterations"] for f, _ in pairs)
        cols = []
        for s in SCORES:
            ratios = [a[s] / f[s] for f, a in pairs]
            cols.append(f"{max(ratios):11.3f} {geomean(ratios):10.3f}")
        secs = sum(f["seconds"] for f, _ in pairs) / len(pairs)
        print(f"{preset:<8} {secs:8.1f} {its:7.2f} {time_ratio:6.2f} " + " ".join(cols))
    print(f"\nsheets and the fixed runs' changes per iteration in {args.out}/")


if __name__ == "__main__":
    main()
