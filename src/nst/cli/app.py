"""The composition root of the ``nst`` command: the typer app, its commands registered in
one place (:data:`nst.cli.commands.MODULES`), and the console script."""

from __future__ import annotations

import os
import sys

import typer

from ..errors import one_line
from .commands import MODULES


def build_app() -> typer.Typer:
    """A new ``nst`` app with every command."""
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).",
    )
    for module in MODULES:
        module.register(app)
    return app


app = build_app()


def main() -> None:
    """The console script: no traceback reaches the user unless NST_DEBUG=1 asks for it."""
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
