"""How the command line speaks: one-line errors, exit codes, times."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

import typer

from ..errors import NstError, one_line


def fail(exc: BaseException, code: int | None = None) -> NoReturn:
    """Print ``nst: error: <one line>`` on stderr and exit (the error's code by default)."""
    message = str(exc) if isinstance(exc, NstError) else f"{type(exc).__name__}: {exc}"
    typer.echo(f"nst: error: {one_line(message)}", err=True)
    raise typer.Exit(code if code is not None else getattr(exc, "exit_code", 1))


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` at once, stdout and stderr flushed, without the interpreter's
    finalization: where a thread is still inside torch's C++ code (a server's start-up test
    run, which is not waited for; a job after a second Ctrl-C), the C++ destructors the
    finalization runs under it abort the process ("terminate called without an active
    exception", exit 134)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def say(message: str) -> None:
    """One line on stderr, prefixed ``nst:``."""
    typer.echo(f"nst: {one_line(message)}", err=True)


def format_time(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
