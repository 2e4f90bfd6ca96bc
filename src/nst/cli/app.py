"""The composition root of the ``nst`` command: the typer app, its commands registered in
one place (:data:`nst.cli.commands.MODULES`), and the console script."""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer

try:  # typer >= 0.20 carries its own click
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as cx  # type: ignore[no-redef]

from ..errors import one_line
from .commands import MODULES


def _with_process_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` that first sets the process's settings (once its arguments are parsed:
    ``--help`` stays quick, without torch)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if problem := _process_settings():
            typer.echo(f"nst: error: {problem}", err=True)
            raise typer.Exit(2)
        return command(*args, **kwargs)

    return run


def _process_settings() -> str | None:
    """Set what the command sets for the whole process (:mod:`nst.process`, from the
    environment: the library reads none); a bad value's problem, in one line."""
    from .. import process

    try:
        process.from_environment(dict(os.environ))
    except ValueError as exc:
        return str(exc)
    return None


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
        if info.callback is not None:
            info.callback = _with_process_settings(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _tidy(group.typer_instance)


app = build_app()


def main(args: Sequence[str] | None = None) -> None:
    """The console script: every usage error is one line (``NST_DEBUG=1`` shows click's
    full usage box), and no traceback reaches the user unless NST_DEBUG=1 asks for it."""
    _warnings_as_lines()
    try:
        code = app(args=args, prog_name="nst", standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:  # ``nst`` alone: its help
        exc.show()
        sys.exit(2)
    except cx.UsageError as exc:
        if os.environ.get("NST_DEBUG"):
            exc.show()
            sys.exit(exc.exit_code)
        typer.echo(usage_line(exc), err=True)
        sys.exit(2)
    except cx.ClickException as exc:  # e.g. a file click itself opens
        typer.echo(f"nst: error: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # outside a run (e.g. while loading)
        typer.echo("nst: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NST_DEBUG"):
            raise
        message = one_line(f"{type(exc).__name__}: {exc}")[:300]
        typer.echo(f"nst: internal error: {message} (NST_DEBUG=1 shows where)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: cx.UsageError) -> str:
    """``nst: error: COMMAND: what is wrong (see 'nst COMMAND --help')`` for a usage error."""
    path = exc.ctx.command_path if exc.ctx is not None else "nst"
    message = one_line(exc.format_message()).rstrip(".")
    if isinstance(exc, cx.NoSuchOption) and exc.ctx is not None:
        flags = [f for p in exc.ctx.command.params for f in (*p.opts, *p.secondary_opts)]
        near = similar_options(exc.option_name, [f for f in flags if f.startswith("--")])
        message = f"no such option: {one_line(exc.option_name)}" + (
            f" (did you mean {', '.join(near)}?)" if near else ""
        )
    message = message[:1].lower() + message[1:]
    # click names a missing argument by its metavar, typer's is "{name}"
    message = re.sub(r"'\{(\w+)\}'", lambda m: m.group(1).upper(), message)
    message = re.sub(r"argument '(\w+)'", lambda m: "argument " + m.group(1).upper(), message)
    command = path.removeprefix("nst").strip()
    where = f"{command}: " if command else ""
    return f"nst: error: {where}{message} (see '{path} --help')"


def similar_options(given: str, flags: Sequence[str], limit: int = 3) -> list[str]:
    """The flags most like ``given``, word by word as well as whole (``--colour`` finds
    ``--preserve-colors``, which click's whole-name match misses)."""
    import difflib

    def words(flag: str) -> list[str]:
        return flag.lstrip("-").lower().replace("_", "-").split("-")

    def likeness(flag: str) -> float:
        whole = difflib.SequenceMatcher(None, given.lstrip("-").lower(), flag.lstrip("-"))
        parts = [
            difflib.SequenceMatcher(None, a, b).ratio()
            for a in words(given) if len(a) > 2
            for b in words(flag) if len(b) > 2
        ]  # fmt: skip
        return max([whole.ratio(), *parts])

    scored = sorted(((likeness(f), f) for f in set(flags)), key=lambda t: (-t[0], t[1]))
    return [f for score, f in scored[:limit] if score >= 0.75]


def _warnings_as_lines() -> None:
    """The library's advice (:class:`nst.errors.NstWarning`, e.g. from the runs of
    ``figures``) as ``nst: warning: ...`` lines, each message once; other warnings as
    Python shows them."""
    import warnings

    from ..errors import NstWarning

    shown: set[str] = set()
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, NstWarning):
            default(message, category, filename, lineno, file, line)
        elif str(message) not in shown:
            shown.add(str(message))
            typer.echo(f"nst: warning: {one_line(str(message))}", err=True)

    warnings.showwarning = show
