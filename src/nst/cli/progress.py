"""Renderers of the event stream: a progress bar (or sparse lines) and the JSON-lines log."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..errors import ImageError
from ..events import Event, Finished, Progress, Started, Step
from .output import format_time, say

#: without a terminal, a progress line at least this often (seconds) besides every tenth
LINE_EVERY = 10.0


class ProgressBar:
    """Renders events as a progress bar on a terminal, or as sparse lines otherwise (every
    tenth of the run, and at least every :data:`LINE_EVERY` seconds).

    Done, total and ETA cover the whole run (every coarse-to-fine stage, each weighted
    by its pixels); it/s is the current stage's.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        width: int = 24,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self.progress = Progress()
        self.stage_start: tuple[float, int] | None = None
        self.clock = clock
        self.last_draw = clock()
        self.last_line = -1

    def __call__(self, event: Event) -> None:
        self.progress.update(event)
        if isinstance(event, Started):
            self.stage_start = None
            if self.tty and event.stage > 0:
                self.stream.write("\n")
            where = f"stage {event.stage + 1}/{event.stages}: " if event.stages > 1 else ""
            stage = event.plan[event.stage]
            tiles = f", in tiles of {stage.tile} px" if stage.tile else ""
            if stage.lean_whole:
                tiles = ", lean to fit the memory limit (~5% slower)"
            if event.workers:
                tiles = (tiles or ", in tiles") + f" on {event.workers} workers"
            peak = f", ~{stage.memory / (1 << 30):.1f} GB peak" if stage.memory else ""
            self.stream.write(
                f"{where}{event.width}x{event.height} px, {event.iterations_text} on "
                f"{event.device} ({event.precision}){tiles}{peak}, seed {event.seed}\n"
            )
            self.stream.flush()
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Finished):
            if self.tty:
                self.stream.write("\n")
            self.stream.write(
                f"{event.why}: {event.iterations} iterations, {event.evaluations} loss "
                f"evaluations, loss {event.loss:.4g}, {format_time(event.elapsed)}\n"
            )
            self.stream.flush()

    def _step(self, e: Step) -> None:
        if self.stage_start is None:
            self.stage_start = (e.elapsed, e.iteration)
        p = self.progress
        done, total = p.done, p.total
        last = done >= total
        now = self.clock()
        if self.tty and not last and now - self.last_draw < 0.1:
            return
        t0, i0 = self.stage_start
        rate = (e.iteration - i0) / (e.elapsed - t0) if e.elapsed > t0 else 0.0
        eta = p.eta
        fill = int(p.fraction * self.width)
        bar = "#" * fill + "-" * (self.width - fill)
        stages = len(p.plan)
        stage = f"[{e.stage + 1}/{stages}] " if stages > 1 else ""
        line = (
            f"{stage}[{bar}] {done}/{total} loss {e.loss:.4g} {rate:.2f} it/s "
            f"ETA {format_time(eta) if eta is not None else '-'} ({e.evaluations} evals)"
        )
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self.last_draw = now
        else:
            step = max(1, total // 10)
            due = done % step == 0 or last or now - self.last_draw >= LINE_EVERY
            if due and done != self.last_line:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_line = done
                self.last_draw = now


def _lines_in(path: Path) -> int:
    """The lines already in a log (0: none, or no file); a last line a killed run cut short
    is ended, so the next record starts on a line of its own."""
    try:
        f = open(path, "r+b")  # noqa: SIM115
    except FileNotFoundError:
        return 0
    with f:
        lines, last = 0, b""
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
        if last and last != b"\n":
            f.write(b"\n")
            lines += 1
        return lines


class JsonLog:
    """``--log FILE.jsonl``: the record of every Step event, one JSON object per line.

    An existing log is never truncated: the new run's records are appended after a
    ``restarted`` record (on a fresh line, even when a killed run cut its last line).
    A log that stops being writable mid-run (a full disk) warns once and is dropped;
    the run goes on.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            before = _lines_in(path)
            self.file: TextIO | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ImageError(str(path), f"cannot write the log ({exc.strerror})") from None
        if before:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.write({"type": "restarted", "time": stamp, "records_before": before})

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.write(event.to_record())

    def write(self, record: dict[str, Any]) -> None:
        """One record as a line (front ends with records of their own use it directly)."""
        if self.file is None:
            return
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as exc:
            say(f"warning: {self.path}: cannot write the log any more ({exc.strerror}); "
                "the run goes on without it")  # fmt: skip
            self.close()

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
