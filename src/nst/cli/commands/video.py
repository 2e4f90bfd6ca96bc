"""``nst video`` and ``nst video-metrics``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ...config import Config, start_advice
from ...errors import NstError
from ...events import FrameDone, Notice, Started, Step
from ...video.config import VideoConfig
from ..options import with_config
from ..output import fail, format_time, say
from ..progress import LINE_EVERY, JsonLog
from ..run import check_paths, guarded


def following(event: FrameDone) -> tuple[int, int]:
    """(frame, pass) painted after ``event``'s: even passes run backward; after a pass's
    last frame, the next pass's first (a pass past ``passes`` means the end)."""
    backward = event.pass_index % 2 == 0
    if event.index != (1 if backward else event.total):
        return event.index + (-1 if backward else 1), event.pass_index
    if event.passes == 1:
        return event.index + 1, 1
    number = event.pass_index + 1
    return (event.total if number % 2 == 0 else 1), number


class VideoProgress:
    """One line per frame (a live bar on a terminal): frame (and pass), iteration,
    seconds per frame and the ETA over the frames left in every pass."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.clock = clock
        self.last_line = clock()
        self.begun = False
        self.frame = 1
        self.total = 0
        self.iterations = 0
        self.times: list[float] = []
        self.resumed = 0
        self.painted = 0  # frames painted or read back, over all passes
        self.where = ""

    def __call__(self, event: Any) -> None:
        if isinstance(event, Started):
            self.iterations = sum(s.iterations for s in event.plan)
            if not self.begun:  # at once, so a redirected log is never quiet for a frame
                self.begun = True
                self._line(f"first frame: {event}")
        elif isinstance(event, Step):
            text = f"it {event.iteration}/{self.iterations} loss {event.loss:.4g}"
            if self.tty:
                self._draw(text)
            elif self.clock() - self.last_line >= LINE_EVERY:  # plain lines, now and then
                self._line(f"frame {self.frame}/{self.total or '?'}{self.where}: {text}")
        elif isinstance(event, FrameDone):
            self.total = event.total
            self.painted += 1
            self.frame, number = following(event)
            if event.passes > 1:
                self.where = f" (pass {min(number, event.passes)}/{event.passes})"
            if event.resumed:
                self.resumed += 1
                return
            if self.resumed and not self.times:
                self._line(f"continuing after {self.resumed} frames made earlier")
            self.times.append(event.seconds)
            shown = f" (pass {event.pass_index}/{event.passes})" if event.passes > 1 else ""
            self._line(
                f"frame {event.index}/{event.total or '?'}{shown}: {event.iterations} "
                f"iterations, loss {event.loss:.4g}, {event.seconds:.1f} s"
                f"{self._eta(event.passes)}"
            )

    def _eta(self, passes: int) -> str:
        if not self.total or not self.times:
            return ""
        recent = self.times[1:] or self.times  # the first frame costs more
        left = max(0, self.total * passes - self.painted)
        return f", ETA {format_time(left * sum(recent) / len(recent))}" if left else ""

    def _draw(self, text: str) -> None:
        total = self.total or "?"
        self.stream.write(f"\rframe {self.frame}/{total}{self.where}: {text}\x1b[K")
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line = self.clock()


class VideoEvents:
    """Where a video's events go: notices and the advice (once the first frame starts) as
    lines, the progress ``handlers``, and the log, each record tagged with its frame and
    pass."""

    def __init__(self, handlers: list[Any], log: JsonLog | None, advice: list[str]) -> None:
        self.handlers, self.log, self.advice = handlers, log, advice
        self.frame = (1, 1)  # (frame, pass) being painted

    def __call__(self, event: Any) -> None:
        if isinstance(event, Notice):
            say(event.message)
        if isinstance(event, Started) and self.advice:  # once the first frame starts
            for line in self.advice:
                say(f"warning: {line}")
            self.advice.clear()
        for h in self.handlers:
            h(event)
        if self.log is None:
            return
        if isinstance(event, FrameDone):
            self.log.write(event.to_record())
            self.frame = following(event)
        else:
            self.log.write({"frame": self.frame[0], "pass": self.frame[1], **event.to_record()})


@with_config(mode="video")
@with_config(cls=VideoConfig, name="video")
def video(
    source: Annotated[str, typer.Argument(help="Input video (any format PyAV reads).")],
    style: Annotated[list[str], typer.Argument(help="Style image(s) (or builtin:NAME).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output video (.mp4, .mkv, .mov, .webm, .gif).")
    ],
    frames: Annotated[
        Path | None, typer.Option(help="Also write every frame as PNG into this folder.")
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Discard the frames of an earlier run instead of continuing.")
    ] = False,
    log: Annotated[
        Path | None, typer.Option(help="Write every frame's events as JSON lines.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress output or advice: errors only.")
    ] = False,
    *,
    config: Config,
    video: VideoConfig,
) -> None:
    """Paint every frame of SOURCE in the style of STYLE, consistent along optical flow.

    Finished frames are kept in OUTPUT.work/; the same command continues an interrupted
    run; Ctrl-C writes the frames so far as a playable video.
    """
    from ...video import VideoStopped, stylize_video
    from ...video.io import check_output

    handlers: list[Any] = [] if quiet else [VideoProgress()]
    try:
        check_paths(
            output,
            [source, *style, *config.input_paths().values()],
            log,
            check_format=check_output,
        )
        json_log = JsonLog(log) if log is not None else None
    except NstError as exc:
        fail(exc)
    advice = [] if quiet else list(start_advice(config, True))
    from ..threads import command_threads

    fit = command_threads(None if quiet else say)
    closing: list[Any] = [json_log] if json_log is not None else []
    if fit is not None:
        handlers.append(fit)
        closing.append(fit)
    on_event = VideoEvents(handlers, json_log, advice)
    start = time.monotonic()
    with guarded(lambda: "interrupted before the first frame; nothing written", closing) as sig:
        try:
            result = stylize_video(
                source,
                style,
                output,
                config,
                video,
                frames_dir=frames,
                restart=restart,
                on_event=on_event,
            )
        except VideoStopped as exc:
            where = f"wrote {exc.done} frames to {output}" if exc.written else "no video written"
            say(f"{exc}; {where}; the frames are kept in {exc.work}; the same command continues")
            raise typer.Exit(sig.exit_code if exc.interrupted else 2) from None
    if result.warning:
        say(f"warning: {result.warning}")
    if not quiet:
        per = (time.monotonic() - start) / max(1, result.frames - result.resumed)
        typer.echo(f"wrote {output}: {result.frames} frames ({per:.1f} s per frame)", err=True)


@with_config(mode="metrics")
def video_metrics(
    output: Annotated[str, typer.Argument(help="The stylized video.")],
    reference: Annotated[
        str, typer.Option(help="The input video it was made from (its flow is used).")
    ],
    style: Annotated[
        list[str] | None,
        typer.Option(help="Style image(s): also report the mean style loss per frame."),
    ] = None,
    flow: Annotated[str, typer.Option(help="Optical flow: dis or farneback.")] = "dis",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    *,
    config: Config,
) -> None:
    """Temporal consistency of OUTPUT: the warping error between consecutive frames over
    reliable pixels, the flow taken from the input video (Lai et al. 2018)."""
    from ...video import video_metrics as measure
    from ...video.config import FLOW_METHODS as METHODS

    try:
        if flow not in METHODS:
            raise NstError(f"flow must be one of {', '.join(METHODS)} (got {flow!r})")
        m = measure(output, reference, style or None, config, flow)
    except NstError as exc:
        fail(exc, 2)
    if m.warning:
        say(f"warning: {m.warning}")
    if as_json:
        typer.echo(json.dumps(m.to_record()))
        return
    typer.echo(f"frames:        {m.frames}")
    typer.echo(f"warping error: {m.warping_error:.6g}")
    if m.style_loss is not None:
        typer.echo(f"style loss:    {m.style_loss:.6g} (mean per frame)")


def register(app: typer.Typer) -> None:
    app.command()(video)
    app.command("video-metrics")(video_metrics)
