"""Picture quality at an equal time budget: style losses, presets and settings compared by
``nst score`` over the built-in photos x paintings.

For every pair and every configuration: a single-stage run is stopped when the budget has
passed (set-up included); for a coarse-to-fine one, two short probe runs measure its set-up
seconds and seconds per unit of ``iterations`` and it gets as many iterations as fit
(stages keep their ratios). Each result is scored (content
distance and SSIM, style distance under Gram, W2 and sliced Wasserstein, high-frequency
noise) and drawn into one side-by-side sheet per pair. The table gives, per
configuration, the mean content distance and SSIM, each style distance and the noise as
the geometric mean over the pairs of its ratio to the first configuration's, and the
mean seconds.

    python benchmarks/quality.py [--budget 30] [--size 256] [--pairs 8] [--out DIR]
        [--configs paper,quality,fast]
"""

from __future__ import annotations

import argparse
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
PAIRS = [(c, s) for c in PHOTOS for s in PAINTINGS]

#: what is compared; each a set of options as the CLI takes them
CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"preset": "paper"},
    "gram-content": {"init": "content"},
    "w2": {"style_loss": "w2", "init": "content"},
    "w2-sqrt2": {"style_loss": "w2", "init": "content", "start_size": 128, "scale_step": 1.414},
    "w2-adam": {"style_loss": "w2", "init": "content", "optimizer": "adam"},
    "w2-adam-avg": {"style_loss": "w2", "init": "content", "optimizer": "adam", "average": 0.99},
    "w2-avg": {"style_loss": "w2", "init": "content", "average": 0.9},
    "swd-adam": {"style_loss": "swd", "init": "content", "optimizer": "adam"},
    "fast-100": {"style_loss": "w2", "init": "content", "iterations": 100},
    "fast-sqrt2": {
        "style_loss": "w2",
        "init": "content",
        "start_size": 128,
        "scale_step": 1.414,
        "iterations": 100,
    },
    "quality": {"preset": "quality"},
    "fast": {"preset": "fast"},
}
PROBE = 6  # iterations of the shorter probe run (the longer has three times as many)


def run(
    content: str, style: str, options: dict[str, Any], iterations: int, seconds: float = 0.0
) -> tuple[Any, float, int]:
    """(image, seconds, iterations done) of one run; with ``seconds``, stopped when they
    have passed (set-up included)."""
    config = Config.from_dict({**options, "iterations": iterations})
    start = time.perf_counter()
    plan = nst.plan_stylize(content, style, config)
    done: list[int] = [0]

    def count(event: Any) -> None:
        if isinstance(event, nst.Finished):
            done[0] = event.iterations

    stop = (lambda: time.perf_counter() - start >= seconds) if seconds else None
    image = nst.execute(plan, count, stop)
    return image, time.perf_counter() - start, done[0]


def budgeted(
    content: str, style: str, options: dict[str, Any], budget: float
) -> tuple[Any, float, int]:
    """The run that fits ``budget`` seconds: (image, seconds, iterations). A single-stage
    run is stopped when the budget has passed (set-up included); a coarse-to-fine run gets
    the iterations that two probes say fit; a configuration (or preset) that sets its own
    iterations runs those."""
    own = {**Config.PRESETS.get(options.get("preset") or "", {}), **options}
    if "iterations" in own:
        return run(content, style, options, int(own["iterations"]))
    if len(Config.from_dict({**options, "iterations": 100}).stage_sizes) == 1:
        return run(content, style, options, 100_000, seconds=budget)
    _, short, _ = run(content, style, options, PROBE)
    _, long, _ = run(content, style, options, 3 * PROBE)
    per = max(1e-3, (long - short) / (2 * PROBE))  # seconds per iteration, set-up apart
    n = max(PROBE, int((budget - max(0.0, short - PROBE * per)) / per))
    return run(content, style, options, n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.quality"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for p, (content, style) in enumerate(PAIRS[: args.pairs]):
        cells = [Cell("photo", source=content), Cell("painting", source=style)]
        results: dict[int, Result] = {}
        for name in names:
            options = {"size": args.size, "seed": 0, **CONFIGS[name]}
            image, seconds, n = budgeted(content, style, options, args.budget)
            s = nst.score(image, content, style)
            rows[name].append({
                "content": s.content, "ssim": s.ssim, "gram": s.style_total("gram"),
                "w2": s.style_total("w2"), "swd": s.style_total("swd"),
                "noise": s.noise_ratio, "seconds": seconds, "iterations": n,
            })  # fmt: skip
            cell = Cell(name, note=f"{seconds:.0f} s, {n} it")
            results[id(cell)] = Result(image, seconds)
            cells.append(cell)
            print(f"{content} x {style} {name}: {seconds:.1f} s, {n} it, content "
                  f"{s.content:.3f}, ssim {s.ssim:.3f}, gram {s.style_total('gram'):.4g}, "
                  f"w2 {s.style_total('w2'):.4g}, swd {s.style_total('swd'):.4g}, "
                  f"noise x{s.noise_ratio:.2f}", flush=True)  # fmt: skip
        sheet = Sheet(f"pair{p + 1}", f"{content} x {style}, {args.budget:.0f} s each, "
                      f"{args.size} px", [cells])  # fmt: skip
        side = args.size
        image = render(sheet, results, (side, side * 3 // 4))
        nst.save_image(image, args.out / f"pair{p + 1}.png")
    first = names[0]
    print(f"\n{machine()}; budget {args.budget:.0f} s, {args.size} px, "
          f"{min(args.pairs, len(PAIRS))} pairs")  # fmt: skip
    print("style and noise: geometric mean over the pairs of the ratio to "
          f"'{first}' (< 1: closer to the style, less noise)")  # fmt: skip
    print(f"{'config':<14} {'content':>8} {'ssim':>6} {'gram':>7} {'w2':>7} {'swd':>7} "
          f"{'noise':>7} {'seconds':>8} {'iters':>6}")  # fmt: skip
    for name in names:
        r = rows[name]
        ratio = {
            k: geomean([a[k] / b[k] for a, b in zip(r, rows[first])])
            for k in ("gram", "w2", "swd", "noise")
        }
        mean = {
            k: sum(a[k] for a in r) / len(r) for k in ("content", "ssim", "seconds", "iterations")
        }
        print(f"{name:<14} {mean['content']:8.3f} {mean['ssim']:6.3f} {ratio['gram']:7.3f} "
              f"{ratio['w2']:7.3f} {ratio['swd']:7.3f} {ratio['noise']:7.3f} "
              f"{mean['seconds']:8.1f} {mean['iterations']:6.0f}")  # fmt: skip
    print(f"\nsheets in {args.out}/")


if __name__ == "__main__":
    main()
