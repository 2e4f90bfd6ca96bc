"""Temporal consistency, sharpness and loss per frame against independent frames, on the
sample clip (a built-in photo panned and zoomed, a square moving across it), real VGG19
weights.

Rows: ``--no-temporal`` (every frame on its own), then the temporal path for each
``--next`` (iterations of the frames after the first) and each ``--passes``. Columns: the
warping error (Lai et al.; flow from the input clip) and its ratio to independent frames;
the mean style loss and the mean content + style loss per frame (evaluated on the saved
frames, so every row is measured the same way) relative to independent frames; the
sharpness (mean gradient of the grey frame) of frames 2..n relative to independent frames,
and its drift (the last frame's over the second's); how many frames after the first reach
the first frame's content + style loss, and their median loss over the first frame's (all
losses measured on the saved 8-bit frames, which is what a viewer gets: the optimizer's
own figure for a float picture from noise can be 20% lower than its saved frame's);
seconds per frame. ``--pan`` sets the camera
motion (px per frame at 128 px; 8 is the strong motion multi-pass is for). ``--gif``
writes input | independent | each temporal row (not ``--bicubic``), side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from common import machine, table
from nst.config import Config
from nst.planning import load
from nst.video import VideoConfig, stylize_video, video_metrics
from nst.video import io as vio
from nst.video.flow import sharpness
from nst.video.metrics import frame_losses
from nst.video.sample import sample_frames, write_clip


def run(clip: Path, out: Path, style: str, config: Config, video: VideoConfig) -> dict:
    start = time.perf_counter()
    pngs = out.with_suffix(".frames")
    stylize_video(clip, style, out, config, video, restart=True, frames_dir=pngs)
    seconds = time.perf_counter() - start
    m = video_metrics(out, clip, None, config)
    outputs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(pngs.glob("*.png"))]
    info = vio.probe(clip)
    inputs = list(vio.read_frames(clip, outputs[0].shape[:2]))
    losses = frame_losses(outputs, inputs, [load(style, "style")], config)
    totals = [c + s for c, s in losses]
    return {
        "later/1st": [t / totals[0] for t in totals[1:]],
        "warping": m.warping_error,
        "style": float(np.mean([s for _, s in losses])),
        "loss": float(np.mean([c + s for c, s in losses])),
        "sharpness": [sharpness(o) for o in outputs],
        "losses": totals,
        "s/frame": seconds / max(1, info.frames),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--next", default="", help="iterations of later frames to try (a,b)")
    parser.add_argument("--passes", default="1", help="passes to try (1,3)")
    parser.add_argument("--weight", type=float, default=None, help="temporal weight")
    parser.add_argument("--pan", type=float, default=2.7, help="camera pan, px/frame at 128 px")
    parser.add_argument("--preset", default=None, help="a --preset (fast, quality, paper)")
    parser.add_argument("--style", default="builtin:swirls")
    parser.add_argument(
        "--bicubic",
        action="store_true",
        help="add a row that carries frames with plain bicubic sampling (before the fix)",
    )
    parser.add_argument("--gif", type=Path, default=None)
    args = parser.parse_args(argv)
    print(f"# video benchmark ({machine()})")
    w, h = args.size, args.size * 3 // 4
    folder = Path(tempfile.mkdtemp(prefix="nst-video-bench-"))
    clip = folder / "clip.mp4"
    pan = args.pan * w / 128
    write_clip(clip, sample_frames(w, h, args.frames, pan=pan, zoom=0.01, square=w / 24))
    given = {"size": args.size, "iterations": args.iterations, "seed": 0, "preset": args.preset}
    config = Config.from_dict(given)
    print(f"clip: {w}x{h}, {args.frames} frames, pan {pan:g} px and zoom 1% per frame; "
          f"preset {args.preset}, init {config.init}, style loss {config.style_loss}; first "
          f"frame {args.iterations} iterations; style {args.style}")  # fmt: skip
    base = run(clip, folder / "independent.mp4", args.style, config, VideoConfig(temporal=False))
    extra = {} if args.weight is None else {"temporal_weight": args.weight}
    nexts = [int(x) for x in args.next.split(",") if x] or [None]
    variants = [(n, int(p)) for p in args.passes.split(",") for n in nexts]
    rows = [_row("independent", base, base)]
    sharp = {"independent": base["sharpness"]}
    loss = {"independent": base["losses"]}
    for n, passes in variants:
        video = VideoConfig(iterations_next=n, passes=passes, **extra)  # type: ignore[arg-type]
        name = f"next {video.next_iterations(args.iterations)}, {passes} pass"
        r = run(clip, folder / f"n{n}p{passes}.mp4", args.style, config, video)
        rows.append(_row(name + ("es" if passes > 1 else ""), r, base))
        sharp[rows[-1]["run"]] = r["sharpness"]
        loss[rows[-1]["run"]] = r["losses"]
        print(table(rows[-1:]), flush=True)
    if args.bicubic:
        video = VideoConfig(iterations_next=nexts[0], **extra)  # type: ignore[arg-type]
        with bicubic_carry():
            r = run(clip, folder / "bicubic.mp4", args.style, config, video)
        rows.append(_row(f"next {video.next_iterations(args.iterations)}, bicubic", r, base))
        sharp[rows[-1]["run"]], loss[rows[-1]["run"]] = r["sharpness"], r["losses"]
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    print("\nsharpness per frame (mean |gradient| of the grey frame, 0..255):")
    for name, values in sharp.items():
        print(f"  {name:24s} " + " ".join(f"{v:5.1f}" for v in values))
    print("content + style loss per frame (the saved frames):")
    for name, values in loss.items():
        print(f"  {name:24s} " + " ".join(f"{v:5.3g}" for v in values))
    if args.gif:
        panels = [clip, folder / "independent.mp4"]
        panels += [folder / f"n{n}p{passes}.mp4" for n, passes in variants]
        gif(panels, args.gif, vio.probe(clip).rate)
        print(f"wrote {args.gif} ({args.gif.stat().st_size / 1e6:.2f} MB)")


@contextlib.contextmanager
def bicubic_carry() -> Iterator[None]:
    """Frames carried as before the fix: bicubic sampling, nothing given back."""
    import cv2

    from nst.video import flow

    def carry(image: np.ndarray, f: np.ndarray) -> np.ndarray:
        h, w = f.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        src = np.ascontiguousarray(image, dtype=np.float32)
        out = cv2.remap(src, xs + f[..., 0], ys + f[..., 1], cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        return np.clip(out, 0, 255)

    real = flow.carry
    flow.carry = carry
    try:
        yield
    finally:
        flow.carry = real


def _row(name: str, r: dict, base: dict) -> dict:
    later, indep = r["sharpness"][1:], base["sharpness"][1:]
    ratios = r["later/1st"]
    return {
        "run": name,
        "warping error": r["warping"],
        "vs indep.": base["warping"] / max(r["warping"], 1e-12),
        "style loss": r["style"] / base["style"],
        "content+style": r["loss"] / base["loss"],
        "sharpness": float(np.mean(later) / np.mean(indep)) if later else float("nan"),
        "drift": later[-1] / later[0] if later else float("nan"),
        "reached 1st loss": f"{sum(x <= 1 for x in ratios)}/{len(ratios)}",
        "later/1st": float(np.median(ratios)) if ratios else float("nan"),
        "s/frame": r["s/frame"],
    }


def gif(videos: list[Path], path: Path, rate: object, scale: int = 2) -> None:
    """The videos side by side as an animated GIF."""
    info = vio.probe(videos[-1])
    size = (info.height, info.width)
    streams = [list(vio.read_frames(v, size)) for v in videos]
    images = []
    for frames in zip(*streams):
        row = np.concatenate(frames, axis=1)
        im = Image.fromarray(row)
        images.append(im.resize((im.width * scale, im.height * scale), Image.Resampling.LANCZOS))
    duration = round(1000 / float(rate))  # type: ignore[arg-type]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)


if __name__ == "__main__":
    main()
