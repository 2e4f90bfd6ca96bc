"""Gradient ascent against noise and photos: T's activation on the generated image, on
seeded noise and on the best of the bundled photos, scored by the same network.

Goals (issue 11): generated >= 10x noise and >= 3x the best photo. Channels are scored by
their mean over positions, every image at the ascent's size (square).

``--lucid``: the parameterizations side by side (issue 23): today's pixel ascent, Fourier,
Fourier + decorrelated colours, and those with jitter/scale/rotate, at the same steps
and size, each scored the same way; goal: Fourier + decorrelation >= 2x pixel on conv5_1.
"""

from __future__ import annotations

import argparse
import time

import torch

from common import machine, table
from nst.explain import VisualizeConfig, network, parse, visualize
from nst.explain.ascent import activation
from nst.explain.patches import default_images

TARGETS = "conv1_1:5,conv2_1:10,conv3_1:20,conv4_1:12,conv5_1:30"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", default=TARGETS)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--lucid", action="store_true", help="compare the parameterizations")
    args = parser.parse_args(argv)
    if args.lucid:
        lucid(args)
        return
    print(f"# gradient-ascent benchmark ({machine()})")
    net = network()
    photos = default_images()
    cfg = VisualizeConfig(size=args.size, iterations=args.iterations)
    rows = []
    for text in args.targets.split(","):
        t = parse(text)
        start = time.perf_counter()
        generated = visualize(t, cfg, net=net).value
        seconds = time.perf_counter() - start
        noise = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(1))
        a_noise = activation(noise, t, net)
        scored = [(activation(img, t, net, args.size), name) for name, img in photos]
        best, best_name = max(scored)
        rows.append({
            "target": t.label, "generated": generated, "noise": a_noise,
            "best photo": best, "photo": best_name.removeprefix("skimage:"),
            "gen/noise": generated / max(a_noise, 1e-9), "gen/photo": generated / max(best, 1e-9),
            "s": seconds,
        })  # fmt: skip
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    ok = all(r["gen/noise"] >= 10 and r["gen/photo"] >= 3 for r in rows)
    print(f"goals (>= 10x noise, >= 3x best photo): {'met' if ok else 'NOT met'} for all targets")


VARIANTS = {
    "pixel": {},
    "fourier": {"param": "fourier"},
    "fourier+decorrelate": {"param": "fourier", "decorrelate": True},
    "fourier+decorrelate+transforms": {"param": "fourier", "decorrelate": True,
                                       "transforms": "jitter,scale,rotate"},
}  # fmt: skip


def lucid(args: argparse.Namespace) -> None:
    print(f"# parameterizations, {args.size} px, {args.iterations} steps ({machine()})")
    net = network()
    rows = []
    for text in args.targets.split(","):
        t = parse(text)
        row: dict[str, object] = {"target": t.label}
        for name, extra in VARIANTS.items():
            cfg = VisualizeConfig(size=args.size, iterations=args.iterations, **extra)
            start = time.perf_counter()
            image = visualize(t, cfg, net=net).image
            row[name] = activation(image, t, net, args.size)  # the same scorer for all
            row[f"{name} s"] = round(time.perf_counter() - start, 1)
        pixel = max(float(row["pixel"]), 1e-9)  # type: ignore[arg-type]
        for name in list(VARIANTS)[1:]:
            row[f"{name}/pixel"] = float(row[name]) / pixel  # type: ignore[arg-type]
        rows.append(row)
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    ok = all(float(r["fourier+decorrelate/pixel"]) >= 2 for r in rows)  # type: ignore[arg-type]
    print(f"goal (fourier+decorrelate >= 2x pixel): {'met' if ok else 'NOT met'} for all targets")


if __name__ == "__main__":
    main()
