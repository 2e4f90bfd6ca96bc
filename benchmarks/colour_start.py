"""Does ``fast`` need fewer iterations from a start already in the painting's colours?

``fast`` starts from the photo, and its first iterations move the photo's colours to the
painting's (w2 at conv1_1 is mostly colour). This starts instead from the photo with its
colours' mean and covariance set to the painting's (``nst.controls.match_color``, saved
as a PNG and given as ``--init``) and compares, per pair, at 512 px: the preset as users
run it (60 iterations from the photo), 40 from the photo, and 30/40/60 from the
colour-matched photo, and 40 from it at a lower style weight (to compare at the same
closeness to the photo). Scored by benchmarks/pareto.py's judge (conv4_2 content
distance, sliced Wasserstein at conv2_2/conv3_3/conv4_3, noise against the photo's);
read the points against the converged w2 curve of docs/QUALITY.md.

    python benchmarks/colour_start.py [--pairs chelsea:swirls,coffee:mosaic] [--size 512]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from common import machine, table
from nst.config import PRESETS
from nst.controls import match_color
from nst.imageio import resize_longest, save_image
from nst.planning import load
from pareto import judge, run

#: (label, colour-matched start?, iterations, style weight / the preset's)
RUNS = (
    ("photo", False, 60, 1.0),
    ("photo", False, 40, 1.0),
    ("colours", True, 30, 1.0),
    ("colours", True, 40, 1.0),
    ("colours", True, 60, 1.0),
    ("colours", True, 40, 0.7),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", default="chelsea:swirls,coffee:mosaic")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", default=None, help="keep the pictures here")
    args = parser.parse_args(argv)
    weight = float(PRESETS["fast"]["style_weight"])  # type: ignore[arg-type]
    print(f"# fast from the photo and from the photo in the painting's colours, "
          f"{args.size} px ({machine()})")  # fmt: skip
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.pairs.split(","):
            photo, painting = (f"builtin:{n}" for n in pair.split(":"))
            start = Path(tmp) / f"{pair.replace(':', '_')}_start.png"
            matched = match_color(resize_longest(load(photo, "content"), args.size),
                                  load(painting, "style")).clamp(0, 1)  # fmt: skip
            save_image(matched, start)
            for label, coloured, iterations, factor in RUNS:
                options: dict[str, Any] = {"preset": "fast", "size": args.size, "seed": 0,
                                           "iterations": iterations,
                                           "style_weight": weight * factor}  # fmt: skip
                if coloured:
                    options["init"] = str(start)
                image, its, secs = run(photo, painting, options, iterations)
                row = {"pair": pair, "start": label, "weight": weight * factor,
                       "iterations": its, **judge(image, photo, painting), "s": secs}  # fmt: skip
                print(table([row]).splitlines()[-1], flush=True)
                rows.append(row)
                if args.out:
                    Path(args.out).mkdir(parents=True, exist_ok=True)
                    name = f"{pair.replace(':', '_')}_{label}_{iterations}_{weight * factor:g}.png"
                    save_image(image, Path(args.out) / name)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
