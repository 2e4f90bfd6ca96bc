"""Time to the same picture quality, nst against pastiche 1.6.0, scored by one independent judge.

Both tools run as users run them, one after the other, saving their image every
`--every` iterations (pastiche: --workspace/--workspace-step; nst: --save-every). The
scorer is the paper's objective in the paper's units, in float32, on the saved PNGs:
L = alpha * 1/2 sum (F - P)^2 at conv4_2 + beta * sum_l 1/5 * 1/(4 N^2 M^2) sum (G - A)^2 over
conv1_1 ... conv5_1, alpha/beta = 1e-3, the normalized VGG19 with average pooling (the
paper's network), written out here rather than taken from nst's loss code. The time of a
saved image is its file's modification time after the tool's first saved image (the start
image, once the network is loaded and the targets encoded), so start-up does not count
and both tools are timed by the same clock.

The target is pastiche's score after `--iterations` (500) iterations; printed per run are
the seconds to reach it and the ratio to pastiche's time. The same is printed with the
scorer on the network not normalized (pastiche's), on which pastiche's objective is the
paper's formulas, so that each tool is also judged on the other's home ground.

pastiche is set as close to the paper as its options allow: average pooling, content
relu4_2, style relu1_1 ... relu5_1, layer weights that turn its mean-squared losses into
the paper's formulas with alpha/beta = 1e-3, start from (its) noise; its network is the
same VGG19 but not normalized, which its options cannot change. nst runs at its defaults,
with `--weighting paper` (the scorer's objective exactly: nst's defaults use calibrated
units, in which the paper's alpha/beta gives the paper's look; see docs/LOSSES.md) and
with each --preset. The runs ``pastiche-objective`` (and ``-fp32``) give nst pastiche's
objective exactly (`--weighting paper --no-normalize`, the same layers, average pooling,
from noise), so on the scorer of pastiche's network the two optimizers are compared on
one objective: what is left is L-BFGS against L-BFGS, and the arithmetic.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from common import inputs, machine, table
from peers import _materialize, pastiche_python

ALPHA, BETA = 1.0, 1e3  # the paper's alpha/beta = 1e-3
#: nst on pastiche's objective exactly: the paper's formulas (--weighting paper) on the
#: network not normalized, the same layers, pooling and start (its own noise)
PASTICHE_OBJECTIVE = ["--weighting", "paper", "--no-normalize", "--pooling", "avg",
                      "--init", "noise"]  # fmt: skip
#: nst runs besides the presets: its defaults, its objective in the scorer's units, and
#: pastiche's objective (in the default precision, and in pastiche's fp32)
RUNS = {
    "default": [],
    "paper-units": ["--weighting", "paper"],
    "pastiche-objective": PASTICHE_OBJECTIVE,
    "pastiche-objective-fp32": [*PASTICHE_OBJECTIVE, "--precision", "fp32"],
}
CONTENT = "conv4_2"
STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


class Scorer:
    """The paper's loss of an image against one content and one style image, float32."""

    def __init__(self, content: str, style: str, size: int, normalize: bool = True) -> None:
        from nst import runtime
        from nst.imageio import resize_longest
        from nst.planning import load

        layers = [CONTENT, *STYLE]
        self.net = runtime.network(None, "avg", normalize, layers, "cpu", torch.float32)
        self.size = size
        c = self._pixels(resize_longest(load(content), size))
        self.image_size = tuple(c.shape[2:])
        s = self._pixels(resize_longest(load(style), size))
        with torch.no_grad():
            self.p = self.net(c, [CONTENT])[CONTENT]
            feats = self.net(s, list(STYLE))
            self.a = {name: self._gram(feats[name]) for name in STYLE}

    @staticmethod
    def _pixels(image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) in 0..1 -> (1, 3, H, W) in 0..255 RGB, what nst's network takes."""
        return image.float().unsqueeze(0) * 255

    @staticmethod
    def _gram(f: torch.Tensor) -> torch.Tensor:
        flat = f.double().flatten(2)[0]  # N x M
        return flat @ flat.T

    def __call__(self, path: Path) -> float:
        from nst.planning import load

        x = self._pixels(load(str(path)))
        with torch.no_grad():
            feats = self.net(x, [CONTENT, *STYLE])
        content = 0.5 * float(((feats[CONTENT].double() - self.p.double()) ** 2).sum())
        style = 0.0
        for name in STYLE:
            f = feats[name]
            n, m = f.shape[1], f.shape[2] * f.shape[3]
            style += float(((self._gram(f) - self.a[name]) ** 2).sum()) / (4 * n * n * m * m) / 5
        return ALPHA * content + BETA * style


def curve(folder: Path, scorer: Scorer) -> list[tuple[float, float]]:
    """(seconds after the first saved image, score) of the saved PNGs at the scored size
    (coarse-to-fine stages below it are timed, not scored), in order."""
    from PIL import Image

    files = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    t0 = files[0].stat().st_mtime_ns
    h, w = scorer.image_size
    points = []
    for p in files:
        with Image.open(p) as image:
            if image.size != (w, h):
                continue
        points.append(((p.stat().st_mtime_ns - t0) / 1e9, scorer(p)))
    return points


def run_pastiche(content: str, style: str, size: int, iterations: int, every: int,
                 folder: Path, content_positions: int) -> None:  # fmt: skip
    # pastiche: content  w_c * mean((F-P)^2) over N*M values; style  w_l * mean((G/M - A/M)^2)
    # over N^2 entries. The paper: alpha/2 * sum (F-P)^2 and beta/5 * sum (G-A)^2/(4 N^2 M^2).
    content_weight = ALPHA * 512 * content_positions / 2
    style_weight = BETA / 5 / 4
    argv = [str(pastiche_python()), "-m", "pastiche", "--device", "cpu", "--size", str(size),
            "--num-steps", str(iterations), "--pooling", "avg", "--random-init", "--seed", "0",
            "--content-layer-weights", str(content_weight),
            "--style-layer-weights", *[str(style_weight)] * 5,
            "--workspace", str(folder), "--workspace-step", str(every), "--info-step", "100",
            "-c", content, "-s", style, "-o", str(folder.parent / "pastiche.png")]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True)


def run_nst(content: str, style: str, size: int, every: int, folder: Path,
            extra: Sequence[str]) -> None:  # fmt: skip
    argv = [sys.executable, "-m", "nst", "stylize", content, style, "--size", str(size),
            "--seed", "0", "--save-every", str(every), "-q", "-o", str(folder / "nst.png"),
            *extra]  # fmt: skip
    subprocess.run(argv, check=True)
    os.unlink(folder / "nst.png")  # the final image repeats the last saved one


def reach(points: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, score in points if score <= target), None)


def _ratio(target_time: float, t: float | None) -> object:
    if t is None:
        return "-"
    return "at start" if t == 0 else target_time / t


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512, help="256 is the quick variant")
    parser.add_argument("--iterations", type=int, default=500, help="pastiche's")
    parser.add_argument("--every", type=int, default=10, help="save every N iterations")
    parser.add_argument("--runs", default="default,paper-units,paper,quality,fast",
                        help="nst runs: default, paper-units (--weighting paper: the "
                             "scorer's objective), pastiche-objective[-fp32] and/or preset "
                             "names")  # fmt: skip
    args = parser.parse_args(argv)
    print(f"# time to quality against pastiche 1.6.0 ({machine()}), {args.size} px")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        content, style = (_materialize(p, root) for p in inputs())
        scorers = {
            "paper's network (normalized)": Scorer(content, style, args.size),
            "pastiche's network (not normalized)": Scorer(content, style, args.size, False),
        }
        h, w = scorers["paper's network (normalized)"].p.shape[2:]
        folders = {"pastiche": root / "pastiche"}
        folders["pastiche"].mkdir()
        run_pastiche(content, style, args.size, args.iterations, args.every,
                     folders["pastiche"], h * w)  # fmt: skip
        for run in args.runs.split(","):
            extra = RUNS.get(run, ["--preset", run])
            name = " ".join(["nst", *extra]) if extra else "nst (defaults)"
            folders[name] = root / run
            folders[name].mkdir()
            run_nst(content, style, args.size, args.every, folders[name], extra)
        for label, scorer in scorers.items():
            curves = {name: curve(folder, scorer) for name, folder in folders.items()}
            _report(label, curves, args.iterations)


def _report(label: str, curves: dict[str, list[tuple[float, float]]], iterations: int) -> None:
    target_time, target = curves["pastiche"][-1]
    rows = []
    for name, points in curves.items():
        t = reach(points, target)
        rows.append({"run": name, "saved images": len(points), "total s": points[-1][0],
                     "first score": points[0][1], "final score": points[-1][1],
                     "s to pastiche's final": t if t is not None else "not reached",
                     "speed-up": _ratio(target_time, t)})  # fmt: skip
    print(f"\nscored on the {label}; target: pastiche's score after {iterations} iterations, "
          f"{target:.4g} (reached in {target_time:.0f} s)")  # fmt: skip
    print(table(rows), flush=True)


if __name__ == "__main__":
    main()
