"""Reading and writing video files with PyAV, streamed: one frame in memory at a time.

Every failure of the container or the decoder becomes one :class:`~nst.errors.ImageError`
naming the file (not a video, no video stream, no frames, too many pixels, corrupt at
frame N).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError
from ..imageio import file_problem
from ..process import current
from .deps import import_av

#: output codec by extension (H.264 unless the container needs another)
CODECS = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx-vp9",
    ".avi": "mpeg4",
    ".gif": "gif",
}


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    rate: Fraction  # frames per second
    frames: int  # as the container says (0: unknown)
    has_audio: bool

    @property
    def duration_frames(self) -> int:
        return self.frames


def _av_error(av: Any) -> tuple[type[BaseException], ...]:
    return (av.error.FFmpegError, OSError, ValueError, EOFError, IndexError, RuntimeError)


def _open(path: str) -> Any:
    av = import_av()
    problem = file_problem(path)
    if problem:
        raise ImageError(path, problem)
    try:
        return av.open(path, "r")
    except _av_error(av) as exc:
        raise ImageError(path, f"not a video PyAV can read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).split("\n")[0].split(": '")[0][:120]


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """The video's size, frame rate and frame count; refuses what cannot be stylized."""
    name = os.fspath(path)
    container = _open(name)
    with container:
        if not container.streams.video:
            raise ImageError(name, "has no video stream")
        vs = container.streams.video[0]
        if vs.codec_context is None:  # e.g. an SVG: a stream FFmpeg has no decoder for
            raise ImageError(name, "the video stream has no decoder (not a video nst can read)")
        w, h = vs.codec_context.width, vs.codec_context.height
        if not w or not h:
            raise ImageError(name, "the video stream has no frame size")
        if w * h > (limit := current().max_pixels):
            raise ImageError(name, f"{w}x{h} frames exceed the pixel limit ({limit:,})")
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        frames = int(vs.frames or 0)
        if not frames and vs.duration and vs.time_base:
            frames = round(float(vs.duration * vs.time_base * rate))
        return VideoInfo(name, w, h, Fraction(rate), frames, bool(container.streams.audio))


def read_frames(path: str | os.PathLike[str], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Every frame, resized to ``size`` (h, w), as HxWx3 uint8 RGB; streamed."""
    av = import_av()
    name = os.fspath(path)
    container = _open(name)
    h, w = size
    index = 0
    with container:
        if not container.streams.video:
            raise ImageError(name, "has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if frame.width * frame.height > current().max_pixels:
                    raise ImageError(name, f"frame {index + 1} exceeds the pixel limit")
                image = frame.to_image()
                if image.size != (w, h):
                    image = image.resize((w, h), Image.Resampling.LANCZOS)
                index += 1
                yield np.asarray(image.convert("RGB"), dtype=np.uint8)
        except ImageError:
            raise
        except _av_error(av) as exc:
            raise ImageError(name, f"corrupt at frame {index + 1} ({_reason(exc)})") from None
    if index == 0:
        raise ImageError(name, "has no frames")


def check_output(path: str | os.PathLike[str]) -> str:
    """The codec for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    name = Path(path).name
    if not ext and name.lower() in CODECS:  # "-o.mp4" reads as "-o .mp4"
        raise ImageError(str(path), f"the name is only an extension; give a name such as "
                         f"result{name} (-o{name} reads as -o {name})")  # fmt: skip
    if ext not in CODECS:
        known = ", ".join(sorted(CODECS))
        raise ImageError(str(path), f"unknown video extension '{ext or '(none)'}' (use {known})")
    return CODECS[ext]


def _add_video(out: Any, codec: str, rate: Fraction, w: int, h: int) -> Any:
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = w, h
    if codec == "gif":
        stream.pix_fmt = "rgb8"
    else:
        stream.pix_fmt = "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": "18", "preset": "medium"}
    elif codec == "libvpx-vp9":
        stream.options = {"crf": "30", "b:v": "0"}
    return stream


class _Sound:
    """The source's first audio stream into an output whose streams are being declared
    (before anything is muxed: containers write their header then): copied as it is when
    the container can hold its codec, else re-encoded (AAC, or Opus for WebM)."""

    def __init__(self, av: Any, out: Any, source: str) -> None:
        self.av = av
        self.src: Any = None
        self.a_in: Any = None
        self.a_out: Any = None
        self.resampler: Any = None
        self.warning: str | None = None
        try:
            self.src = av.open(source, "r")
        except _av_error(av):
            self.warning = "the sound could not be read again; the video has none"
            return
        if not self.src.streams.audio:
            self.close()
            return
        self.a_in = self.src.streams.audio[0]
        try:
            if self.a_in.codec_context.name in out.supported_codecs:
                self.a_out = out.add_stream_from_template(self.a_in)
            else:
                codec = next(c for c in ("aac", "libopus") if c in out.supported_codecs)
                rate = 48000 if codec == "libopus" else (self.a_in.rate or 44100)
                self.a_out = out.add_stream(codec, rate=rate)
                self.a_out.layout = "stereo" if self.a_in.channels > 1 else "mono"
                self.resampler = av.AudioResampler(
                    format=self.a_out.format.name, layout=self.a_out.layout.name, rate=rate
                )
        except (StopIteration, *_av_error(av)):  # type: ignore[misc]
            self.warning = "the sound's codec does not fit this container; the video has none"
            self.a_out = None
            self.close()

    def copy(self, out: Any, seconds: float) -> None:
        """Mux the sound up to ``seconds``."""
        if self.a_out is None:
            return
        try:
            for packet in self.src.demux(self.a_in):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.pts * self.a_in.time_base > seconds:
                    break
                if self.resampler is None:
                    packet.stream = self.a_out
                    out.mux(packet)
                    continue
                for frame in packet.decode():
                    for part in self.resampler.resample(frame):
                        part.pts = None
                        out.mux(self.a_out.encode(part))
            if self.resampler is not None:
                out.mux(self.a_out.encode(None))
        except _av_error(self.av) as exc:
            self.warning = f"part of the sound was dropped ({_reason(exc)})"

    def close(self) -> None:
        if self.src is not None:
            self.src.close()
            self.src = None


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    rate: Fraction,
    audio_from: str | None = None,
) -> tuple[int, str | None]:
    """Encode ``frames`` (HxWx3 uint8) atomically to ``path`` (codec by extension), with
    the sound of ``audio_from`` copied up to the video's length. Returns (frames written,
    a warning about the sound or None)."""
    av = import_av()
    target = Path(path)
    codec = check_output(target)
    tmp = target.with_name(f".{target.stem}.partial{target.suffix}")
    count = 0
    warning = None
    images = iter(frames)
    first = next(images, None)
    if first is None:
        raise ImageError(str(target), "no frames to write")
    sound = None
    try:
        with av.open(os.fspath(tmp), "w") as out:
            h, w = first.shape[:2]
            stream = _add_video(out, codec, rate, w - w % 2, h - h % 2)
            if audio_from and codec != "gif":
                sound = _Sound(av, out, audio_from)
            for image in itertools.chain([first], images):
                image = image[: stream.height, : stream.width]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
                count += 1
            for packet in stream.encode():
                out.mux(packet)
            if sound is not None:
                sound.copy(out, float(count / rate))
                warning = sound.warning
        os.replace(tmp, target)
    except _av_error(av) as exc:
        raise ImageError(str(target), f"cannot write the video ({_reason(exc)})") from None
    finally:
        if sound is not None:
            sound.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
    return count, warning
