"""The ``nst`` typer application; commands register themselves on it."""

from __future__ import annotations

import os
import sys

import typer

from ..errors import one_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).",
)


def main() -> None:
    """The console script: no traceback reaches the user unless NST_DEBUG=1 asks for it."""
    from . import commands  # noqa: F401  (registers the commands)

    try:
        app()
    except KeyboardInterrupt:  # outside a run (e.g. while loading)
        typer.echo("nst: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NST_DEBUG"):
            raise
        message = one_line(f"{type(exc).__name__}: {exc}")[:300]
        typer.echo(f"nst: internal error: {message} (NST_DEBUG=1 shows where)", err=True)
        sys.exit(1)
