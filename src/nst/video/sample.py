"""A sample clip made from a built-in photo: the camera pans and zooms across it while a
square moves the other way, with a sine tone as its sound. Tests, the benchmark and
docs/VIDEO.md use it; ``nst video builtin-clip.mp4`` users can try the same."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
from PIL import Image

from .. import builtins
from .deps import import_av


def sample_frames(
    width: int = 64,
    height: int = 48,
    frames: int = 8,
    photo: str = "builtin:chelsea",
    pan: float = 1.5,
    zoom: float = 0.01,
    square: float = 3.0,
) -> list[np.ndarray]:
    """The clip's frames (HxWx3 uint8): per frame the view moves ``pan`` px right and
    zooms in by ``zoom`` (relative); a square of a fifth of the height moves ``square``
    px left and drifts down."""
    src = builtins.image(photo)
    # the photo scaled so that the whole pan fits
    span_w = width + abs(pan) * frames + 4
    k = max(span_w / src.width, (height + 4) / src.height) * 1.2
    big = np.asarray(
        src.resize((round(src.width * k), round(src.height * k)), Image.Resampling.LANCZOS),
        dtype=np.float32,
    )
    out = []
    side = max(4, height // 5)
    colour = np.array([220.0, 40.0, 40.0], np.float32)
    for t in range(frames):
        scale = 1.0 / (1.0 + zoom * t)
        cw, ch = width * scale, height * scale
        x0 = 2 + pan * t + (width - cw) / 2
        y0 = (big.shape[0] - height) / 2 + (height - ch) / 2
        view = Image.fromarray(big.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)
        )
        frame = np.asarray(view, dtype=np.float32).copy()
        sx = round(width * 0.7 - square * t)
        sy = round(height * 0.3 + 0.3 * square * t)
        frame[max(0, sy) : max(0, sy + side), max(0, sx) : max(0, sx + side)] = colour
        out.append(frame.clip(0, 255).astype(np.uint8))
    return out


def write_clip(
    path: str | os.PathLike[str],
    frames: list[np.ndarray],
    fps: int = 12,
    tone: float | None = 440.0,
    codec: str = "libx264",
) -> None:
    """Write frames as a video (H.264 by default) with a sine ``tone`` (AAC) or no sound."""
    av = import_av()
    h, w = frames[0].shape[:2]
    with av.open(os.fspath(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "12", "preset": "veryfast"}
        audio = None
        if tone is not None:
            audio = out.add_stream("aac", rate=44100)
            audio.layout = "mono"
        for frame in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if audio is not None and tone is not None:
            seconds = len(frames) / fps
            n = int(44100 * seconds)
            chunk = 1024
            for start in range(0, n, chunk):
                t = np.arange(start, min(n, start + chunk)) / 44100.0
                wave = (0.3 * np.sin(2 * math.pi * tone * t)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = start
                af.time_base = Fraction(1, 44100)
                for packet in audio.encode(af):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
