"""``stylize_video`` and ``video_metrics``: files in, files out (the video's API layer).

A run keeps every finished frame as a PNG in a work folder next to the output
(``OUT.work/``, with ``settings.json``). Running it again with the same inputs and
settings continues at the next frame; a stop (Ctrl-C, ``stop``) or a decoding error
keeps the frames made. The video is written atomically at the end, or, when stopped,
from the frames so far, so there is always something to play.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import Config
from ..errors import ConfigError, ImageError, Interrupted, NstError, one_line
from ..events import Event, Finished, FrameDone, Notice
from ..execution import StopSignal, stop_function
from ..imageio import atomic_write, fit_size, load_image, save_image
from ..layers import deepest, min_side
from ..planning import ImageLike, as_list, load
from . import io as vio
from .config import VideoConfig
from .temporal import Earlier, stylize_frame

VideoEvent = Event | FrameDone | Notice
VideoHandler = Callable[[Any], None]


class VideoStopped(NstError):
    """A video run stopped early (Ctrl-C, ``stop``, or an input that broke half-way);
    ``done`` frames are kept in ``work`` and, when ``written``, in the output video."""

    def __init__(
        self, message: str, done: int, work: Path, written: bool, interrupted: bool
    ) -> None:
        super().__init__(message)
        self.done = done
        self.work = work
        self.written = written
        self.interrupted = interrupted


@dataclass(frozen=True)
class VideoResult:
    output: Path
    frames: int
    resumed: int  # frames read back from an earlier run
    seconds: float
    warning: str | None = None


def work_folder(output: str | os.PathLike[str]) -> Path:
    out = Path(output)
    return out.with_name(out.name + ".work")


def working_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(h, w): the longest side ``size``, aspect kept, both even (H.264 needs it)."""
    w, h = fit_size(width, height, size)
    return max(2, h - h % 2), max(2, w - w % 2)


def _fingerprint(path: str) -> dict[str, Any]:
    if path.startswith("builtin:"):
        return {"path": path}
    st = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _settings(
    source: str, styles: Sequence[ImageLike], config: Config, video: VideoConfig
) -> dict[str, Any]:
    def style_key(s: ImageLike) -> Any:
        if isinstance(s, (str, os.PathLike)):
            return _fingerprint(os.fspath(s))
        t = load(s, "style")
        return {"tensor": hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]}

    options = config.to_dict()
    options.pop("seed")
    return {
        "input": _fingerprint(source),
        "styles": [style_key(s) for s in styles],
        "config": options,
        "video": video.to_dict(),
    }


def _short(value: Any) -> str:
    text = one_line(str(value))
    return text if len(text) <= 24 else text[:21] + "..."


def _differences(saved: Any, now: dict[str, Any]) -> list[str]:
    """What differs between a work folder's settings and this run's, named as the
    options are (``size (512 there, 256 now)``; ``the input video``, ``style 1``)."""
    groups = ("input", "styles", "config", "video")
    if not isinstance(saved, dict) or not all(k in saved for k in groups):
        return ["its settings.json (damaged, or of another nst version)"]
    out = []
    if saved.get("input") != now["input"]:
        out.append("the input video")
    before, after = saved.get("styles"), now["styles"]
    if not isinstance(before, list) or len(before) != len(after):
        out.append("the number of style images")
    else:
        out += [f"style {i}" for i, (a, b) in enumerate(zip(before, after), 1) if a != b]
    for group in ("config", "video"):
        found = saved.get(group)
        old: dict[str, Any] = found if isinstance(found, dict) else {}
        for key in sorted(set(old) | set(now[group])):
            if old.get(key) != now[group].get(key):
                was, is_ = _short(old.get(key)), _short(now[group].get(key))
                out.append(f"{key.replace('_', '-')} ({was} there, {is_} now)")
    return out


class _Work:
    """The work folder: settings, seed and the finished frames (000001.png, ...); with
    ``--passes``, the input frames too (input-000001.png) and how far the passes after
    the first have come (passes.json)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def frame(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def input(self, index: int) -> Path:
        return self.folder / f"input-{index:06d}.png"

    def read_input(self, index: int) -> np.ndarray:
        return np.asarray(load_image(self.input(index)), dtype=np.uint8)

    def keep_input(self, index: int, frame: np.ndarray) -> None:
        """Written on every run (atomically), so a damaged copy is mended by the next."""
        save_image(Image.fromarray(frame), self.input(index))

    def passed(self, count: int) -> tuple[int, int]:
        """(the pass under way, frames it has done), from passes.json; (2, 0) when no
        later pass has started or the file does not match ``count`` frames."""
        try:
            state = json.loads((self.folder / "passes.json").read_text())
            at, done = state["pass"], state["done"]
            ok = state["frames"] == count and isinstance(at, int) and isinstance(done, int)
        except (OSError, ValueError, TypeError, KeyError):
            ok = False
        return (at, done) if ok and at >= 2 and 0 <= done <= count else (2, 0)

    def set_passed(self, at: int, done: int, count: int) -> None:
        data = json.dumps({"pass": at, "done": done, "frames": count}).encode()
        atomic_write(self.folder / "passes.json", lambda f: f.write(data))

    def open(
        self,
        settings: dict[str, Any],
        seed: int | None,
        restart: bool,
        size: tuple[int, int],
        notice: Callable[[str], None],
    ) -> tuple[int, int]:
        """(frames already done, the seed); refuses another run's frames. Every kept frame
        is decoded and its size checked now, not when the video is written: from the first
        damaged one on, frames are removed and painted again (``notice`` says so)."""
        meta = self.folder / "settings.json"
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise ConfigError(
                f"{self.folder}: not a folder; nst video keeps its frames there (move it away)"
            )
        if restart and self.folder.exists():
            shutil.rmtree(self.folder)
        if meta.exists():
            try:
                saved = json.loads(meta.read_text())
            except (OSError, ValueError):
                saved = {}
            saved = saved if isinstance(saved, dict) else {}
            differ = _differences(saved.get("settings"), json.loads(json.dumps(settings)))
            if not isinstance(saved.get("seed"), int) or isinstance(saved.get("seed"), bool):
                differ.append("seed (unreadable)")
            elif seed is not None and saved.get("seed") != seed:
                differ.append(f"seed ({saved['seed']} there, {seed} now)")
            if differ:
                shown = "; ".join(differ[:3]) + (
                    f"; {len(differ) - 3} more" if len(differ) > 3 else ""
                )
                raise ConfigError(
                    f"{self.folder} holds frames made with other settings: {shown}; run with "
                    "the same ones to continue, or add --restart to discard them"
                )
            done = 0
            while self.frame(done + 1).exists():
                done += 1
            good = self._check_frames(done, size, notice)
            for index in range(good + 1, done + 1):
                self.frame(index).unlink(missing_ok=True)
            if good < done:  # the later passes start again once the first is complete
                (self.folder / "passes.json").unlink(missing_ok=True)
            return good, int(saved["seed"])
        if self.folder.exists() and any(self.folder.iterdir()):
            raise ConfigError(f"{self.folder} exists and is not a work folder of nst video")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageError(str(self.folder), f"cannot write ({exc.strerror})") from None
        seed = seed if seed is not None else secrets.randbelow(2**31)
        data = json.dumps({"settings": settings, "seed": seed}, indent=1).encode()
        atomic_write(meta, lambda f: f.write(data))
        return 0, seed

    def _check_frames(self, done: int, size: tuple[int, int], notice: Callable[[str], None]) -> int:
        """How many of the first ``done`` frames decode at ``size`` (h, w)."""
        for index in range(1, done + 1):
            try:
                frame = self.read(index)
                problem = None if frame.shape[:2] == size else (
                    f"{frame.shape[1]}x{frame.shape[0]} px, not {size[1]}x{size[0]}")  # fmt: skip
            except ImageError as exc:
                problem = exc.reason
            if problem:
                notice(f"{self.frame(index)} is damaged ({problem}); frames {index}-{done} "
                       "are painted again")  # fmt: skip
                return index - 1
        return done

    def read(self, index: int) -> np.ndarray:
        return np.asarray(load_image(self.frame(index)), dtype=np.uint8)

    def frames(self, count: int) -> Iterator[np.ndarray]:
        for i in range(1, count + 1):
            yield self.read(i)


def _as_array(image: torch.Tensor) -> np.ndarray:
    """A result as the 8-bit frame that is saved, and used for the next frame (so that a
    resumed run continues from exactly what an uninterrupted run would)."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return np.ascontiguousarray(arr.numpy())


def stylize_video(
    source: str | os.PathLike[str],
    style: ImageLike | Sequence[ImageLike],
    output: str | os.PathLike[str],
    config: Config | None = None,
    video: VideoConfig | None = None,
    *,
    frames_dir: str | os.PathLike[str] | None = None,
    restart: bool = False,
    on_event: VideoHandler | None = None,
    stop: StopSignal = None,
) -> VideoResult:
    """Stylize every frame of ``source`` and write ``output`` (codec by extension, the
    sound copied). Raises :class:`VideoStopped` when stopped or when the input breaks
    half-way (frames kept), other :class:`~nst.errors.NstError` before any work."""
    run = _VideoRun(source, style, output, config or Config(), video or VideoConfig(),
                    on_event or (lambda e: None), stop, restart)  # fmt: skip
    try:
        run.first_pass()
        run.later_passes()
    except (KeyboardInterrupt, Interrupted):
        # (a signal can come while the next frame is decoded, before ``index`` moves on)
        raise run.stopped(f"stopped at frame {run.at or run.total + 1}", True, frames_dir) from None
    except ImageError as exc:
        if run.total == 0:
            raise
        raise run.stopped(str(exc), False, frames_dir) from None
    return run.finish(frames_dir)


def _check(config: Config, video: VideoConfig, styles: list[ImageLike]) -> None:
    """Refuse, before any work, what a video cannot take."""
    if config.mask:
        raise ConfigError("mask: not available for videos (a mask fits one image)")
    if video.passes > 1 and not video.temporal:
        raise ConfigError(
            "passes: the later passes blend each frame with its neighbours along the flow; "
            "they need temporal consistency (drop --no-temporal)"
        )
    if not styles:
        raise ConfigError("give at least one style image")


class _VideoRun:
    """One run over a video: its settings, its work folder and the frames painted so far;
    the first pass and the later ones (``--passes``) are methods over this state."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        style: ImageLike | Sequence[ImageLike],
        output: str | os.PathLike[str],
        config: Config,
        video: VideoConfig,
        emit: VideoHandler,
        stop: StopSignal,
        restart: bool,
    ) -> None:
        self.name = name = os.fspath(source)
        self.out = Path(output)
        vio.check_output(self.out)
        styles = as_list(style)
        _check(config, video, styles)
        self.info = info = vio.probe(name)
        self.styles = [load(s, "style") for s in styles]
        h, w = self.size = working_size(info.width, info.height, config.size)
        layers = [n for n, _ in config.content_layers] + [n for n, _ in config.style_layers]
        if min(h, w) < min_side(layers):
            raise ConfigError(
                f"{name}: frames of {info.width}x{info.height} px are {w}x{h} px at size "
                f"{config.size}; the layers in use (down to {deepest(layers)}) need at least "
                f"{min_side(layers)} px on each side (use a larger --size)"
            )
        self.video, self.emit, self.stop = video, emit, stop
        self.should_stop = stop_function(stop) or (lambda: False)
        self.work = _Work(work_folder(self.out))
        settings = _settings(name, styles, config, video)
        self.done, seed = self.work.open(settings, config.seed, restart, (h, w),
                                         lambda m: emit(Notice(m)))  # fmt: skip
        self.first = config.replace(size=max(h, w), seed=seed)
        nxt = video.next_iterations(config.budget)
        most = (
            {"max_iterations": nxt}
            if config.auto and video.iterations_next is None
            else {"iterations": nxt}
        )  # auto: the later frames settle too, within their budget
        self.later = self.first.replace(scales=(max(h, w),), **most)
        if not video.temporal and video.iterations_next is None:
            self.later = self.first  # independent frames: each one as the first
        self.keep = max(video.offsets, default=1)
        self.weight = video.temporal_weight if video.temporal else 0.0
        self.made = 0
        self.at = ""  # in a later pass: "N of pass P" (in the first, the frame after those made)
        self.started = time.perf_counter()

    @property
    def total(self) -> int:
        """Frames of the first pass painted, by this run and the runs before."""
        return self.done + self.made

    def paint(self, frame: np.ndarray, config: Config, earlier: list[Earlier],
              last: np.ndarray | None) -> tuple[np.ndarray, Finished | None]:  # fmt: skip
        finished: list[Finished] = []

        def relay(event: Any) -> None:
            if isinstance(event, Finished):
                finished.append(event)
            self.emit(event)

        image = stylize_frame(
            frame, self.styles, config, earlier, temporal_weight=self.weight,
            flow_method=self.video.flow, last=last, on_event=relay, stop=self.stop,
        )  # fmt: skip
        return _as_array(image), (finished[-1] if finished else None)

    def first_pass(self) -> None:
        """Every frame in order, each from the frames before it (those a run before made
        are read back)."""
        video, work, done = self.video, self.work, self.done
        # (input frame, result) of the frames before, the previous one first
        history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.keep)
        for index, frame in enumerate(vio.read_frames(self.name, self.size), start=1):
            if video.passes > 1:
                work.keep_input(index, frame)
            if index <= done:
                if index > done - self.keep:
                    history.appendleft((frame, work.read(index)))
                self.emit(FrameDone(index, self.info.frames, 0, 0.0, 0.0, resumed=True,
                                    passes=video.passes))  # fmt: skip
                continue
            if self.should_stop():
                raise KeyboardInterrupt
            earlier = [Earlier(k, before, result)
                       for k, (before, result) in enumerate(history, start=1)
                       if k in video.offsets]  # fmt: skip
            t0 = time.perf_counter()
            result, fin = self.paint(frame, self.first if index == 1 else self.later, earlier,
                                     None)  # fmt: skip
            save_image(Image.fromarray(result), work.frame(index))
            self.made += 1
            history.appendleft((frame, result))
            self.emit(_frame_done(index, self.info.frames, fin, t0, 1, video.passes))

    def later_passes(self) -> None:
        """Passes 2.. (even ones backward): each frame again from its last result, blended
        with the neighbour just painted."""
        video, work, total = self.video, self.work, self.total
        first_pass, skip = work.passed(total) if video.passes > 1 else (2, 0)
        for number in range(first_pass, video.passes + 1):
            # even passes run backward, odd ones forward; "earlier" is the way the pass goes
            step = -1 if number % 2 == 0 else 1
            order = range(total, 0, -1) if step < 0 else range(1, total + 1)
            recent: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # this pass: (input, result)
            for n, index in enumerate(order):
                self.at = f"{index} of pass {number}"
                if number == first_pass and n < skip:
                    self.emit(FrameDone(index, total, 0, 0.0, 0.0, resumed=True,
                                        pass_index=number, passes=video.passes))  # fmt: skip
                    continue
                if self.should_stop():
                    raise KeyboardInterrupt
                near = [(k, index - step * k) for k in video.offsets]
                earlier = [Earlier(k, *(recent.get(i) or (work.read_input(i), work.read(i))))
                           for k, i in near if 1 <= i <= total]  # fmt: skip
                t0 = time.perf_counter()
                shot = work.read_input(index)
                result, fin = self.paint(shot, self.later, earlier, work.read(index))
                save_image(Image.fromarray(result), work.frame(index))
                recent[index] = (shot, result)
                recent.pop(index - step * self.keep, None)  # farther back than any offset
                work.set_passed(number, n + 1, total)
                self.emit(_frame_done(index, total, fin, t0, number, video.passes))

    def stopped(self, message: str, interrupted: bool,
                frames_dir: str | os.PathLike[str] | None) -> VideoStopped:  # fmt: skip
        """The stop, with the frames made so far written as a video where they can be."""
        count, written = self.total, False
        if count:
            with contextlib.suppress(NstError):  # the frames stay in the work folder anyway
                _copy_frames(self.work, count, frames_dir)
            try:
                vio.write_video(self.out, self.work.frames(count), self.info.rate,
                                audio_from=self.name)  # fmt: skip
                written = True
            except NstError:
                pass
        return VideoStopped(message, count, self.work.folder, written, interrupted)

    def finish(self, frames_dir: str | os.PathLike[str] | None) -> VideoResult:
        """Write the video (and the frames where asked); the work folder goes."""
        total = self.total
        _copy_frames(self.work, total, frames_dir)
        count, warning = vio.write_video(self.out, self.work.frames(total), self.info.rate,
                                         audio_from=self.name)  # fmt: skip
        shutil.rmtree(self.work.folder, ignore_errors=True)
        return VideoResult(self.out, count, self.done, time.perf_counter() - self.started,
                           warning)  # fmt: skip


def _frame_done(
    index: int, total: int, fin: Finished | None, t0: float, number: int, passes: int
) -> FrameDone:
    iterations, loss = (fin.iterations, fin.loss) if fin else (0, float("nan"))
    seconds = time.perf_counter() - t0
    return FrameDone(index, total, iterations, loss, seconds, pass_index=number, passes=passes)


def _copy_frames(work: _Work, count: int, frames_dir: str | os.PathLike[str] | None) -> None:
    """The first ``count`` frames into ``frames_dir`` (``frame_000001.png``, ...)."""
    if frames_dir is None:
        return
    folder = Path(frames_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, count + 1):
            shutil.copyfile(work.frame(i), folder / f"frame_{i:06d}.png")
    except OSError as exc:
        raise ImageError(str(folder), f"cannot write ({exc.strerror})") from None


@dataclass(frozen=True)
class VideoMetrics:
    frames: int
    warping_error: float  # mean over consecutive pairs
    warping_errors: tuple[float, ...]
    style_loss: float | None  # mean per frame (None without style images)
    style_losses: tuple[float, ...]
    warning: str | None = None  # the two videos' frame counts differ

    def to_record(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "warping_error": self.warping_error,
            "style_loss": self.style_loss,
            "warping_errors": list(self.warping_errors),
            "style_losses": list(self.style_losses),
            "warning": self.warning,
        }


def video_metrics(
    output: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    style: ImageLike | Sequence[ImageLike] | None = None,
    config: Config | None = None,
    flow: str = "dis",
) -> VideoMetrics:
    """Warping error of ``output`` with the flow of ``reference`` (the input video, read
    at the output's size), and with ``style`` the mean style loss per frame."""
    from .metrics import style_losses, warping_errors

    out_name, ref_name = os.fspath(output), os.fspath(reference)
    info = vio.probe(out_name)
    vio.probe(ref_name)
    size = (info.height, info.width)
    outs, refs = vio.read_frames(out_name, size), vio.read_frames(ref_name, size)
    seen = {"out": 0, "ref": 0}

    def counted(frames: Iterator[np.ndarray], key: str) -> Iterator[np.ndarray]:
        for frame in frames:
            seen[key] += 1
            yield frame

    outs, refs = counted(outs, "out"), counted(refs, "ref")
    errors = warping_errors(outs, refs, flow)
    # the pairs stop with the shorter video: the rest of the longer one is only counted
    for rest in (outs, refs):
        for _ in rest:
            pass
    n_out, n_ref = seen["out"], seen["ref"]
    if min(n_out, n_ref) < 2:
        short, n = (out_name, n_out) if n_out <= n_ref else (ref_name, n_ref)
        raise ImageError(
            short,
            f"has {n} frame{'s' if n != 1 else ''}; the warping error compares consecutive "
            "frames, so it needs at least two",
        )
    warning = None
    if n_out != n_ref:
        warning = (
            f"{out_name} has {n_out} frames, {ref_name} has {n_ref}: measured over the first "
            f"{min(n_out, n_ref)} (a stopped run's output is shorter than its input)"
        )
    losses: list[float] = []
    if style is not None:
        styles = as_list(style)
        style_t = [load(s, "style") for s in styles]
        losses = style_losses(vio.read_frames(out_name, size), style_t, config or Config())
    frames = len(errors) + 1
    return VideoMetrics(
        frames,
        float(np.mean(errors)) if errors else 0.0,
        tuple(errors),
        float(np.mean(losses)) if losses else None,
        tuple(losses),
        warning,
    )
