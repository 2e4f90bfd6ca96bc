"""Gradient ascent against noise and photos: T's activation on the generated image, on
seeded noise and on the best of the bundled photos, scored by the same network.

Goals (issue 11): generated >= 10x noise and >= 3x the best photo. Channels are scored by
their mean over positions, every image at the ascent's size (square).
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
