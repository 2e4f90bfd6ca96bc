"""docs/print/: a print-size result downscaled, and 100% crops where its tiles meet.

    python scripts/print_sheet.py RESULT.png --tile 1008 [--out docs/print]

``--tile`` is the tile size the run's top stage used (its progress line says it): the
crops are centred where the tiles' cores meet, so a seam, if there were one, would run
through their middle.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from nst.layers import NAMES
from nst.objective.tiling import Tiling

CROP = 384
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("result", type=Path)
    parser.add_argument("--tile", type=int, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/print"))
    args = parser.parse_args()
    image = Image.open(args.result).convert("RGB")
    w, h = image.size
    args.out.mkdir(parents=True, exist_ok=True)
    small = image.resize((1024, round(1024 * h / w)), Image.Resampling.LANCZOS)
    small.save(args.out / "poster_small.jpg", quality=90)
    tiling = Tiling.for_layers(LAYERS, args.tile, NAMES)
    rows = [b for _, b in tiling.cuts(h)][:-1]
    cols = [b for _, b in tiling.cuts(w)][:-1]
    centres = [(rows[0], cols[0])] if rows and cols else []
    if cols:
        centres.append((h // 3, cols[-1]))  # a vertical seam alone
    if rows:
        centres.append((rows[-1], w - w // 4))  # a horizontal seam alone
    label_h = 22
    sheet = Image.new("RGB", (len(centres) * (CROP + 8), CROP + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (y, x) in enumerate(centres):
        top = min(max(0, y - CROP // 2), h - CROP)
        left = min(max(0, x - CROP // 2), w - CROP)
        crop = image.crop((left, top, left + CROP, top + CROP))
        sheet.paste(crop, (k * (CROP + 8), label_h))
        draw.text((k * (CROP + 8) + 4, 4), f"100% at x={x}, y={y} (tile edge)", fill="black")
    sheet.save(args.out / "seams_100pct.png")
    print(f"wrote {args.out / 'poster_small.jpg'} and {args.out / 'seams_100pct.png'}")


if __name__ == "__main__":
    main()
