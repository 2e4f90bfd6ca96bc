"""Renderers of the event stream: a progress bar (or sparse lines) and the JSON-lines log."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..errors import ImageError
from ..events import Event, Finished, Progress, Started, Step
from .output import format_time, say


class ProgressBar:
    """Renders events as a progress bar on a terminal, or as sparse lines otherwise.

    Done, total and ETA cover the whole run (every coarse-to-fine stage, each weighted
    by its pixels); it/s is the current stage's.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self.progress = Progress()
        self.stage_start: tuple[float, int] | None = None
        self.last_draw = 0.0
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
            peak = f", ~{stage.memory / (1 << 30):.1f} GB peak" if stage.memory else ""
            self.stream.write(
                f"{where}{event.width}x{event.height} px, {event.iterations} iterations on "
                f"{event.device} ({event.precision}){tiles}{peak}, seed {event.seed}\n"
            )
            self.stream.flush()
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Finished):
            if self.tty:
                self.stream.write("\n")
            self.stream.write(
                f"{event.reason}: {event.iterations} iterations, {event.evaluations} loss "
                f"evaluations, loss {event.loss:.4g}, {format_time(event.elapsed)}\n"
            )
            self.stream.flush()

    def _step(self, e: Step) -> None:
        if self.stage_start is None:
            self.stage_start = (e.elapsed, e.iteration)
        p = self.progress
        done, total = p.done, p.total
        last = done >= total
        now = time.monotonic()
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
            if (done % step == 0 or last) and done != self.last_line:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_line = done


class JsonLog:
    """``--log FILE.jsonl``: the record of every Step event, one JSON object per line.

    A log that stops being writable mid-run (a full disk) warns once and is dropped;
    the run goes on.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file: TextIO | None = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ImageError(str(path), f"cannot write the log ({exc.strerror})") from None

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
