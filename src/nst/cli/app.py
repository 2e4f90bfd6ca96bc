"""The ``nst`` typer application; commands register themselves on it."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).",
)


def main() -> None:
    from . import commands  # noqa: F401  (registers the commands)

    try:
        app()
    except KeyboardInterrupt:  # outside a run (e.g. while loading)
        typer.echo("nst: interrupted", err=True)
        sys.exit(130)
