"""Content against style at convergence: one curve per style mode, the style weight swept.

For each pair and each mode, the style weight is swept over ``--factors`` times the
default and each run goes until its picture stops changing (``--iterations auto``, at most
``--most`` iterations; the table says when a run hit that cap, i.e. was not converged).
Each result is scored with figures **no mode optimizes**: the content distance at conv4_2
(relative, as ``nst score``), the style distance as the sliced Wasserstein distance at
conv2_2, conv3_3 and conv4_3 (layers no mode's loss reads; 4 seeded draws of directions,
the mean over the layers) and the high-frequency noise against the photo's. Prints every
point, and draws the curves (style distance against content distance, lower-left is
better) per pair into ``--out``.

    python benchmarks/pareto.py [--pairs chelsea:mosaic,astronaut:swirls] [--size 256]
        [--modes gram-noise,gram-content,w2,mrf] [--factors 0.25,0.5,1,2,4] [--most 400]
    python benchmarks/pareto.py --redraw OUT1/points.jsonl OUT2/points.jsonl --out OUT

Modes ``quality`` and ``fast`` run the presets as a user does (their own iterations and
stages). With several pairs the curves are also averaged: each figure divided by the
pair's paper default (gram from noise at x1), then the mean over the pairs.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

import nst
from common import machine, table
from nst import runtime
from nst.config import Config
from nst.imageio import resize_longest, resize_to
from nst.objective.statistics import STATISTICS
from nst.planning import load
from nst.score import high_frequency

MODES: dict[str, dict[str, Any]] = {
    "gram-noise": {"style_loss": "gram", "init": "noise"},
    "gram-content": {"style_loss": "gram", "init": "content"},
    "w2": {"style_loss": "w2", "init": "content"},
    "swd-adam": {"style_loss": "swd", "init": "content", "optimizer": "adam"},
    "mrf": {"style_loss": "mrf", "init": "content"},
    # CNNMRF's matching (the nearest by correlation), with the style's views and without
    "mrf-nearest": {"style_loss": "mrf", "init": "content", "patch_match": "nearest"},
    "mrf-upright": dict(style_loss="mrf", init="content", patch_match="nearest", style_views=False),
    # the presets as a user runs them (their own iterations and stages, not auto)
    "quality": {"preset": "quality"},
    "fast": {"preset": "fast"},
}
#: the judge's style layers: read by no mode's loss
JUDGE_LAYERS = ("conv2_2", "conv3_3", "conv4_3")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")  # fmt: skip


def judge(result: torch.Tensor, content: str, style: str) -> dict[str, float]:
    """Content distance (conv4_2), sliced Wasserstein style distance at the judge's
    layers, noise ratio: float32, the default network."""
    photo = resize_to(load(content, "content"), tuple(result.shape[1:]))  # type: ignore[arg-type]
    painting = resize_longest(load(style, "style"), max(result.shape[1:]))
    layers = ["conv4_2", *JUDGE_LAYERS]
    net = runtime.network(None, "avg", True, layers, torch.device("cpu"), None)
    with torch.no_grad():
        fo, fc, fs = (net(x[None].mul(255), layers) for x in (result, photo, painting))
    p = fc["conv4_2"].float()
    content_d = float((fo["conv4_2"].float() - p).pow(2).sum() / p.pow(2).sum())
    swd = STATISTICS["swd"].score
    style_d = sum(swd([(fs[n].float(), 1.0)], fo[n].float(), k) for k, n in
                  enumerate(JUDGE_LAYERS)) / len(JUDGE_LAYERS)  # fmt: skip
    noise = high_frequency(result) / max(high_frequency(photo), 1e-12)
    return {"content": content_d, "style": style_d, "noise": noise}


def run(content: str, style: str, options: dict[str, Any], most: int) -> tuple[Any, int, float]:
    until = {} if "preset" in options else {"iterations": "auto", "max_iterations": most}
    config = Config.from_dict({**options, **until})
    start = time.perf_counter()
    done = [0]

    def count(event: Any) -> None:
        if isinstance(event, nst.Finished):
            done[0] = event.iterations

    image = nst.execute(nst.plan_stylize(content, style, config), count)
    return image, done[0], time.perf_counter() - start


def draw(points: list[dict[str, Any]], modes: list[str], title: str, path: Path) -> None:
    """Style distance against content distance, one polyline per mode (by weight)."""
    w, h, m, legend = 760, 480, 60, 130
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [p["content"] for p in points]
    ys = [p["style"] for p in points]
    x0, x1 = 0.0, max(xs) * 1.05
    y0, y1 = min(ys) * 0.95, max(ys) * 1.05

    def at(x: float, y: float) -> tuple[float, float]:
        right = w - m - legend
        return m + (x - x0) / (x1 - x0) * (right - m), h - m - (y - y0) / (y1 - y0) * (h - 2 * m)

    d.rectangle([m, m, w - m - legend, h - m], outline="black")
    for k in range(5):
        fx, fy = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
        d.text((at(fx, y0)[0] - 10, h - m + 6), f"{fx:.2f}", fill="black")
        d.text((6, at(x0, fy)[1] - 6), f"{fy:.3g}", fill="black")
    d.text((w / 2 - 90, h - 24), "content distance (conv4_2)", fill="black")
    d.text((m, 10), f"{title}: style distance (SWD at conv2_2/3_3/4_3)", fill="black")
    for k, mode in enumerate(modes):
        line = sorted((p for p in points if p["mode"] == mode), key=lambda p: p["factor"])
        xy = [at(p["content"], p["style"]) for p in line]
        colour = COLOURS[k % len(COLOURS)]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for (x, y), p in zip(xy, line):
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
            d.text((x + 5, y - 12), f"x{p['factor']:g}", fill=colour)
        d.text((w - m - legend + 12, m + 8 + 16 * k), mode, fill=colour)
    img.save(path)


def picture_name(row: dict[str, Any]) -> str:
    return f"{row['pair'].replace(':', '_')}_{row['mode']}_{row['factor']:g}.png"


def sheet(rows: list[dict[str, Any]], folder: Path, path: Path) -> None:
    """Per mode, the picture nearest the paper default's content distance (in ratio),
    whole and a 2x crop of its centre, labelled with its figures."""
    ref = next(r for r in rows if (r["mode"], r["factor"]) == REFERENCE)
    chosen = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        near = min((r for r in rows if r["mode"] == mode),
                   key=lambda r: abs(math.log(r["content"] / ref["content"])))  # fmt: skip
        if (folder / picture_name(near)).exists():
            chosen.append(near)
    if not chosen:
        return
    images = [Image.open(folder / picture_name(r)).convert("RGB") for r in chosen]
    w, h = images[0].size
    crop = min(w, h) // 3
    label = 34
    out = Image.new("RGB", (w * len(images), label + h + 2 * crop), "white")
    d = ImageDraw.Draw(out)
    for k, (r, im) in enumerate(zip(chosen, images)):
        x = k * w
        d.text((x + 4, 2), f"{r['mode']} x{r['factor']:g}", fill="black")
        d.text((x + 4, 16), f"c {r['content']:.3g} s {r['style']:.3g} n {r['noise']:.3g}",
               fill="black")  # fmt: skip
        out.paste(im, (x, label))
        left, top = (im.width - crop) // 2, (im.height - crop) // 2
        zoom = im.crop((left, top, left + crop, top + crop)).resize(
            (2 * crop, 2 * crop), Image.Resampling.NEAREST)  # fmt: skip
        out.paste(zoom, (x + (w - 2 * crop) // 2, label + h))
    out.save(path)


#: the point each pair's figures are divided by for the average: the paper's method
REFERENCE = ("gram-noise", 1.0)


def averaged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (mode, factor) run on every pair: its figures relative to the pair's paper
    default (:data:`REFERENCE`), averaged over the pairs (each pair weighs the same)."""
    pairs = sorted({r["pair"] for r in rows})
    ref = {r["pair"]: r for r in rows if (r["mode"], r["factor"]) == REFERENCE}
    out = []
    for mode, factor in dict.fromkeys((r["mode"], r["factor"]) for r in rows):
        same = [r for r in rows if (r["mode"], r["factor"]) == (mode, factor) and r["pair"] in ref]
        if len({r["pair"] for r in same}) < len(pairs):
            continue
        mean = {k: sum(r[k] / ref[r["pair"]][k] for r in same) / len(same)
                for k in ("content", "style", "noise")}  # fmt: skip
        out.append({"pair": "average", "mode": mode, "factor": factor, **mean})
    return out


def draw_all(rows: list[dict[str, Any]], out: Path) -> None:
    """The curves per pair, and averaged over the pairs (relative to the paper default);
    a sheet per pair at the matched content distance where its pictures are at hand
    (``folder``: the points' own folder)."""
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    for pair in pairs:
        points = [r for r in rows if r["pair"] == pair]
        draw(points, modes, pair, out / f"curves_{pair.replace(':', '_')}.png")
        ref = next((r for r in points if (r["mode"], r["factor"]) == REFERENCE), None)
        if ref is not None:  # the pictures of the run that holds the paper default
            folder = Path(ref.get("folder", out))
            mine = [r for r in points if Path(r.get("folder", out)) == folder]
            sheet(mine, folder, out / f"sheet_{pair.replace(':', '_')}.png")
    mean = averaged(rows)
    if len(pairs) > 1 and mean:
        draw(
            mean,
            modes,
            f"mean of {len(pairs)} pairs, relative to gram-noise x1",
            out / "curves_average.png",
        )
        print(f"\naveraged over {', '.join(pairs)} (each figure / the pair's gram-noise x1)")
        print(table([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in mean]))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", default="chelsea:mosaic")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--modes", default="gram-noise,gram-content,w2,mrf")
    parser.add_argument("--factors", default="0.25,0.5,1,2,4")
    parser.add_argument("--most", type=int, default=400)
    parser.add_argument("--out", default="pareto-out")
    parser.add_argument(
        "--redraw",
        nargs="*",
        metavar="POINTS",
        help="no runs: draw and average the points.jsonl files of earlier runs into --out",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.redraw:
        rows = [{**json.loads(line), "folder": str(Path(f).parent)}
                for f in args.redraw for line in Path(f).read_text().splitlines()]  # fmt: skip
        print(table(rows))
        draw_all(rows, out)
        return
    modes = args.modes.split(",")
    factors = [float(f) for f in args.factors.split(",")]
    beta = Config().style_weight
    print(f"# content/style curves at convergence, {args.size} px ({machine()})")
    rows: list[dict[str, Any]] = []
    for pair in args.pairs.split(","):
        photo, painting = (f"builtin:{n}" for n in pair.split(":"))
        points = []
        for mode in modes:
            for f in factors:
                options = {**MODES[mode], "size": args.size, "seed": 0, "style_weight": beta * f}
                image, its, secs = run(photo, painting, options, args.most)
                score = judge(image, photo, painting)
                row = {"pair": pair, "mode": mode, "factor": f, **score, "iterations": its,
                       "capped": "preset" not in MODES[mode] and its >= args.most,
                       "s": secs}  # fmt: skip
                print(table([row]).splitlines()[-1], flush=True)
                with open(out / "points.jsonl", "a") as fh:  # for --redraw
                    fh.write(json.dumps(row) + "\n")
                points.append(row)
                nst.imageio.save_image(image, out / picture_name(row))
        rows += points
    print()
    print(table(rows))
    draw_all(rows, out)


if __name__ == "__main__":
    main()
