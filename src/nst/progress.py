"""``nst.progress()``: a ready progress display for scripts and notebooks.

    import nst
    image = nst.stylize("photo.jpg", "painting.jpg", on_event=nst.progress())

A bar over the whole run (every coarse-to-fine stage, weighted by its pixels, as the
command line's) with the loss and the ETA: tqdm's ``auto`` bar, a widget in Jupyter and
text elsewhere; without tqdm, a plain line every tenth of the run. It renders the same
events as every front end (:class:`nst.events.Progress`).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .events import Event, Finished, Progress, Started, Step


class ProgressDisplay:
    """The handler :func:`progress` returns; call it with each event."""

    def __init__(self, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.stream = stream
        self.progress = Progress()
        self.bar: Any = None
        self.use_bar = _has_tqdm() if bar is None else bar
        self.shown = -1

    def __call__(self, event: Event) -> None:
        self.progress.update(event)
        if isinstance(event, Started):
            self._line(str(event))
            if self.use_bar and self.bar is None:
                self.bar = _tqdm(self.progress.total, self.stream)
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Finished):
            if self.bar is not None:
                self.bar.n = self.progress.total
                self.bar.refresh()
                self.bar.close()
                self.bar = None
            self._line(str(event))

    def _step(self, e: Step) -> None:
        p = self.progress
        eta = p.eta
        if self.bar is not None:
            self.bar.n = p.done
            self.bar.set_postfix_str(f"loss {e.loss:.4g}", refresh=False)
            self.bar.refresh()
            return
        tenth = int(p.fraction * 10)
        if tenth != self.shown:
            self.shown = tenth
            left = f", {eta:.0f} s left" if eta is not None else ""
            self._line(f"{p.done}/{p.total} loss {e.loss:.4g}{left}")

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
            return
        out = self.stream or sys.stderr
        out.write(text + "\n")
        out.flush()


def progress(stream: TextIO | None = None, bar: bool | None = None) -> ProgressDisplay:
    """An ``on_event`` handler that shows a run's progress: a tqdm bar (``bar=None``: when
    tqdm is installed; a widget in Jupyter) or plain lines, on ``stream`` (stderr)."""
    return ProgressDisplay(stream, bar)


def _has_tqdm() -> bool:
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        return False
    return True


def _tqdm(total: int, stream: TextIO | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="it", file=stream, dynamic_ncols=True, leave=True)
