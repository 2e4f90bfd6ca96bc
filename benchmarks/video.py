"""Temporal consistency against independent frames, on the sample clip (a built-in photo
panned and zoomed, a square moving across it), real VGG19 weights.

Per temporal weight, and for ``--no-temporal`` at the same settings: the warping error
(Lai et al.; flow from the input clip), the mean style loss per frame, seconds per frame,
and for frames after the first the iteration at which their content + style loss reaches
the first frame's final one. Goals (issue 13): warping error >= 3x lower than
independent frames with the style loss within 10%; later frames reach the first frame's
loss in <= half of its iterations. ``--gif`` writes input | independent | temporal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import machine, table
from nst.config import Config
from nst.events import FrameDone, Step
from nst.video import VideoConfig, stylize_video, video_metrics
from nst.video import io as vio
from nst.video.sample import sample_frames, write_clip


def run(clip: Path, out: Path, style: str, config: Config, video: VideoConfig) -> dict:
    frames: list[dict] = []
    current: dict = {}

    def on_event(event: object) -> None:
        if isinstance(event, Step):
            loss = sum(
                event.factors[n] * v for n, v in event.terms.items() if not n.startswith("temporal")
            )
            current.setdefault("curve", []).append(loss)
        elif isinstance(event, FrameDone):
            frames.append({**current, "seconds": event.seconds})
            current.clear()

    start = time.perf_counter()
    stylize_video(clip, style, out, config, video, restart=True, on_event=on_event)
    seconds = time.perf_counter() - start
    m = video_metrics(out, clip, style, config)
    target = frames[0]["curve"][-1]
    reach = []
    for f in frames[1:]:
        hit = next((i for i, v in enumerate(f["curve"]) if v <= target), None)
        reach.append(hit)
    finals = [f["curve"][-1] / target for f in frames[1:]]
    return {
        "final/1st": float(np.median(finals)),
        "warping": m.warping_error,
        "style": m.style_loss,
        "s/frame 1": frames[0]["seconds"],
        "s/frame next": float(np.mean([f["seconds"] for f in frames[1:]])),
        "reach": reach,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--weights", default="0.02", help="temporal weights to try")
    parser.add_argument("--style", default="builtin:swirls")
    parser.add_argument("--gif", type=Path, default=None)
    args = parser.parse_args(argv)
    print(f"# video benchmark ({machine()})")
    w, h = args.size, args.size * 3 // 4
    folder = Path(tempfile.mkdtemp(prefix="nst-video-bench-"))
    clip = folder / "clip.mp4"
    write_clip(clip, sample_frames(w, h, args.frames, pan=w / 48, zoom=0.01, square=w / 24))
    config = Config.from_dict({"size": args.size, "iterations": args.iterations, "seed": 0})
    print(
        f"clip: {w}x{h}, {args.frames} frames; first frame {args.iterations} iterations, "
        f"next {VideoConfig().next_iterations(args.iterations)}; style {args.style}"
    )
    base = run(clip, folder / "independent.mp4", args.style, config, VideoConfig(temporal=False))
    rows = []
    for weight in [float(x) for x in args.weights.split(",")]:
        r = run(
            clip,
            folder / f"t{weight:g}.mp4",
            args.style,
            config,
            VideoConfig(temporal_weight=weight),
        )
        reached = [x for x in r["reach"] if x is not None]
        rows.append(
            {
                "temporal weight": weight,
                "warping error": r["warping"],
                "independent": base["warping"],
                "ratio": base["warping"] / max(r["warping"], 1e-12),
                "style loss / indep.": r["style"] / base["style"],
                "reached 1st loss": f"{len(reached)}/{len(r['reach'])}",
                "median it. to reach": float(np.median(reached)) if reached else float("nan"),
                "next final / 1st final": r["final/1st"],
                "s/frame 1st": r["s/frame 1"],
                "s/frame next": r["s/frame next"],
                "s/frame indep.": base["s/frame next"],
            }
        )
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    best = rows[0]
    half = args.iterations / 2
    style_ok = best["style loss / indep."] <= 1.1  # lower is closer to the style
    print(
        f"goals: warping error >= 3x lower: {'met' if best['ratio'] >= 3 else 'NOT met'}; "
        f"style loss at most 10% above: {'met' if style_ok else 'NOT met'}; "
        f"first frame's loss within {half:g} iterations: "
        f"{'met' if best['median it. to reach'] <= half else 'NOT met'}"
    )
    if args.gif:
        first = float(args.weights.split(",")[0])
        panels = [clip, folder / "independent.mp4", folder / f"t{first:g}.mp4"]
        gif(panels, args.gif, vio.probe(clip).rate)
        print(f"wrote {args.gif} ({args.gif.stat().st_size / 1e6:.2f} MB)")


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
