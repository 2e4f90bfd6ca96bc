"""Settings of the whole process, which only the front end that owns the process sets:
the ``nst`` command (from its environment), a batch worker (from its driver), a program
that uses the library (by calling :func:`configure`). The library reads them here and
never sets them itself, nor reads the environment. No torch import: setting them costs
nothing before a command has parsed its arguments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: decoded pixels allowed per input image (width * height) by default
MAX_PIXELS = 80_000_000
#: the most torch threads NST_THREADS may ask for
MAX_THREADS = 1024


@dataclass(frozen=True)
class ProcessSettings:
    #: decoded pixels one input image or video frame may have
    max_pixels: int = MAX_PIXELS
    #: cuDNN's autotuner on (CUDA): every stage evaluates one image size many times, so
    #: the convolution algorithms are best chosen once per size (1.35-1.5x in the peers'
    #: tables; ``benchmarks/gpu.py`` measures it). Off unless a front end turns it on: it
    #: changes the process's torch for every other user of it too
    tune_convolutions: bool = False
    #: glibc's malloc keeps freed memory for the next evaluation instead of handing it
    #: back to the system (:func:`nst.runtime.keep_freed_memory`): every evaluation
    #: allocates and frees the same large tensors, and memory the system hands out anew is
    #: zeroed page by page on first touch. Off unless a front end turns it on: it changes
    #: the allocator of the whole process, and glibc has no way back
    keep_freed_memory: bool = False
    #: torch threads the ``nst`` command computes with; None: torch's default number, fewer
    #: while other programs keep cores busy (the command fits them to the load at its
    #: steps: :mod:`nst.threads`; so do a batch's painters, which a number here keeps at
    #: their ``--threads-per-worker``). The library itself sets no threads
    threads: int | None = None


_current = ProcessSettings()


def current() -> ProcessSettings:
    """The settings in force."""
    return _current


def configure(**changes: object) -> ProcessSettings:
    """Change some settings (by field name); returns the new ones. A bad value raises
    :class:`ValueError` naming it."""
    global _current
    limit = changes.get("max_pixels", _current.max_pixels)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"max_pixels must be a positive whole number (got {limit!r})")
    _current = dataclasses.replace(_current, **changes)  # type: ignore[arg-type]
    return _current


def from_environment(environ: dict[str, str]) -> ProcessSettings:
    """What the ``nst`` command sets: the autotuner on, freed memory kept unless
    NST_KEEP_FREED_MEMORY is 0, NST_MAX_PIXELS if given, and NST_THREADS (a number, or
    ``auto``: fitted to the load). A bad value raises :class:`ValueError` with one line
    naming the variable."""
    value = environ.get("NST_MAX_PIXELS", "").strip()
    keep = environ.get("NST_KEEP_FREED_MEMORY", "").strip()
    if keep not in ("", "0", "1"):
        raise ValueError(f"NST_KEEP_FREED_MEMORY must be 0 or 1 (got {keep[:40]!r})")
    threads = environ.get("NST_THREADS", "").strip()
    fixed = None
    if threads.lower() not in ("", "auto"):
        if not _whole(threads) or not 1 <= int(threads) <= MAX_THREADS:
            raise ValueError(f"NST_THREADS must be a whole number from 1 to {MAX_THREADS} or "
                             f"auto (got {threads[:40]!r})")  # fmt: skip
        fixed = int(threads)
    changes: dict[str, object] = {"tune_convolutions": True, "keep_freed_memory": keep != "0",
                                  "threads": fixed}  # fmt: skip
    if value:
        if not _whole(value) or int(value) < 1:
            raise ValueError(f"NST_MAX_PIXELS must be a positive whole number (got {value[:40]!r})")
        changes["max_pixels"] = int(value)
    return configure(**changes)


def _whole(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` takes "²", which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 18
