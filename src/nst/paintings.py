"""Paintings the project generates itself (no package ships famous paintings).

Deterministic, so every machine gets the same pictures:

* :func:`swirls`: a night sky of swirling brush strokes, in the spirit of a well-known
  Dutch painting: strokes follow a flow field with vortices, stars glow in yellow.
* :func:`mosaic`: stained glass; bright Voronoi cells with dark leading.

:mod:`nst.builtins` offers them as ``builtin:swirls`` and ``builtin:mosaic``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# -- generated paintings ------------------------------------------------------------------------
_NIGHT = np.array(
    [(18, 32, 92), (30, 56, 140), (52, 88, 170), (78, 120, 190), (96, 150, 180),
     (150, 180, 200), (210, 215, 190)], dtype=np.float64,
)  # fmt: skip
_STAR = np.array([(245, 205, 60), (250, 228, 120), (236, 170, 40), (255, 244, 190)], float)
_GROUND = np.array([(20, 30, 60), (34, 56, 80), (48, 70, 60), (70, 80, 90)], float)


def swirls(width: int = 512, height: int = 400, seed: int = 1889) -> Image.Image:
    """A swirling night-sky painting made of thick strokes along a flow field."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (28, 46, 110))
    draw = ImageDraw.Draw(img)
    horizon = 0.72 * height
    vortices = [
        (0.30 * width, 0.30 * height, 1.0, 0.16 * width),
        (0.58 * width, 0.40 * height, -0.8, 0.13 * width),
        (0.80 * width, 0.22 * height, 0.9, 0.10 * width),
    ]
    stars = [(0.12, 0.15), (0.45, 0.12), (0.70, 0.55), (0.90, 0.40), (0.85, 0.12), (0.25, 0.55)]
    stars_px = [(sx * width, sy * height, rng.uniform(8, 16)) for sx, sy in stars]

    def flow(x: float, y: float) -> tuple[float, float]:
        vx, vy = 1.0, 0.25 * math.sin(y / height * 9.0 + x / width * 4.0)
        if y > horizon:  # rolling hills below the horizon
            vx, vy = 1.0, 0.3 * math.sin(x / width * 12.0)
        for cx, cy, s, r in vortices:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy
            k = s * 3.0 * math.exp(-d2 / (r * r))
            vx += -dy / r * k
            vy += dx / r * k
        n = math.hypot(vx, vy) or 1.0
        return vx / n, vy / n

    def jitter(color: np.ndarray, amount: float = 18.0) -> tuple[int, int, int]:
        c = np.clip(color + rng.normal(0, amount, 3), 0, 255)
        return (int(c[0]), int(c[1]), int(c[2]))

    for _ in range(5200):
        x, y = rng.uniform(-10, width + 10), rng.uniform(-10, height + 10)
        if y > horizon:
            palette, light = _GROUND, 0.0
        else:
            near = min(math.hypot(x - cx, y - cy) / r for cx, cy, _, r in vortices)
            light = max(0.0, 1.2 - near) + rng.uniform(0, 0.6)
            palette = _NIGHT
        idx = int(
            np.clip(light * (len(palette) - 1) / 1.6 + rng.normal(0, 0.8), 0, len(palette) - 1)
        )
        color = jitter(palette[idx])
        points = [(x, y)]
        step = rng.uniform(2.5, 4.0)
        for _ in range(int(rng.integers(6, 16))):
            vx, vy = flow(x, y)
            x, y = x + vx * step, y + vy * step
            points.append((x, y))
        draw.line(points, fill=color, width=int(rng.integers(3, 7)), joint="curve")
    for sx, sy, r in stars_px:  # stars: concentric rings of strokes
        for ring in np.linspace(r * 2.4, 2, 9):
            color = jitter(_STAR[int(rng.integers(0, len(_STAR)))], 12)
            box = (sx - ring, sy - ring, sx + ring, sy + ring)
            draw.ellipse(box, outline=color, width=max(2, int(ring / 4)))
        draw.ellipse((sx - r * 0.5, sy - r * 0.5, sx + r * 0.5, sy + r * 0.5), fill=(255, 246, 200))
    # a dark flame-shaped tree in the foreground
    base_x = 0.16 * width
    for _ in range(420):
        t = rng.uniform(0, 1)
        y0 = height - t * 0.85 * height
        half = (1 - t) * 0.07 * width + 3
        x0 = base_x + rng.uniform(-half, half)
        pts = [(x0, y0)]
        for _ in range(6):
            x0 += rng.normal(0, 2.0)
            y0 -= rng.uniform(3, 7)
            pts.append((x0, y0))
        draw.line(pts, fill=jitter(np.array([30.0, 38.0, 28.0]), 10), width=int(rng.integers(3, 6)))
    return img.filter(ImageFilter.SMOOTH)


def mosaic(width: int = 512, height: int = 400, cells: int = 170, seed: int = 1912) -> Image.Image:
    """Stained glass: bright Voronoi cells separated by dark lead lines."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, (cells, 2)) * (width, height)
    palette = np.array(
        [(200, 30, 40), (240, 170, 20), (30, 90, 190), (20, 150, 90), (140, 40, 150),
         (240, 230, 200), (230, 100, 30), (40, 170, 200)], dtype=np.float64,
    )  # fmt: skip
    colors = palette[rng.integers(0, len(palette), cells)] + rng.normal(0, 15, (cells, 3))
    yy, xx = np.mgrid[0:height, 0:width]
    best = np.full((height, width), np.inf)
    second = np.full((height, width), np.inf)
    label = np.zeros((height, width), dtype=np.int64)
    for i, (px, py) in enumerate(pts):
        d = np.hypot(xx - px, yy - py)
        closer = d < best
        second = np.where(closer, best, np.minimum(second, d))
        label = np.where(closer, i, label)
        best = np.where(closer, d, best)
    out = colors[label]
    shade = 0.85 + 0.15 * np.cos(best / 9.0)  # glass texture inside each cell
    out = out * shade[:, :, None]
    edge = (second - best) < 3.0
    out[edge] = (25, 22, 20)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
