"""CLI options derived from the option declarations (:data:`nst.config.OPTIONS`).

Every declared option becomes ``--name`` (booleans ``--name/--no-name``) in its
help panel, with the declaration's help and default. Values arrive as text and go
through :meth:`Config.from_dict`, the parser the web form uses too, so every
front end accepts and refuses the same values with the same one line.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..config import Config
from ..errors import NstError
from ..options import BOOL, Declared, Option
from .output import fail


def _help(opt: Option) -> str:
    if "default" in opt.help:
        return opt.help
    default = opt.default_text or opt.to_text(opt.default) or "none"
    return f"{opt.help} \\[default: {default}]"  # escaped: rich would read [..] as markup


def config_parameters(
    replaced: tuple[str, ...] = (), cls: type[Declared] = Config, mode: str | None = None
) -> list[inspect.Parameter]:
    """One keyword parameter with a typer Option per option declared by ``cls`` that applies
    to ``mode`` (all with None), less those the command ``replaced`` by its own flags."""
    params = []
    declared = cls.OPTIONS if mode is None else cls.options_for(mode)
    for name, opt in declared.items():
        if name in replaced:
            continue
        if opt.kind is BOOL:
            decl = typer.Option(
                f"{opt.flag}/--no-{opt.what}", help=_help(opt), rich_help_panel=opt.panel,
                show_default=False,
            )  # fmt: skip
            annotation: Any = Annotated[bool | None, decl]
        else:
            decl = typer.Option(
                opt.flag, *([opt.short] if opt.short else []), help=_help(opt),
                rich_help_panel=opt.panel, show_default=False,
                metavar="CHOICE" if opt.choices else opt.kind.name.upper(),
            )  # fmt: skip
            annotation = Annotated[str | None, decl]
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    return params


def with_config(
    mode: str | None = None,
    replaced: tuple[str, ...] = (),
    cls: type[Declared] = Config,
    raw: bool = False,
    name: str = "config",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every option ``cls`` declares for ``mode`` (see
    :data:`nst.options.MODES`; all with None) except those it ``replaced`` with flags of its
    own; it receives them parsed as ``name=`` (``config=`` by default; the others keep their
    defaults), or with ``raw`` the given options as text (``options=``, checked), for front
    ends that merge them with others first. Decorators for several classes stack (each with
    its own ``name``)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name not in ("config", "options", name)
        ]
        cfg_params = config_parameters(replaced, cls, mode)
        names = {p.name for p in cfg_params}

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            given = {k: v for k, v in given.items() if v is not None}
            try:
                config = cls.from_dict(given)
            except NstError as exc:
                fail(exc)
            if raw:
                return func(options=given, **kwargs)
            return func(**{name: config}, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + cfg_params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in own + cfg_params}
        return wrapper

    return decorate
