"""The composition root of the ``nst`` command: the typer app, its commands registered in
one place (:data:`nst.cli.commands.MODULES`), and the console script."""

from __future__ import annotations

import inspect
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
    _tidy(app)
    return app


def _tidy(app: typer.Typer) -> None:
    """Each command's help in paragraphs wrapped by the terminal's width, not by the
    source's line breaks (the command list shows the first paragraph)."""
    for info in app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _tidy(group.typer_instance)


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
