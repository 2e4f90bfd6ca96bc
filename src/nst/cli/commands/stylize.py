"""``nst stylize`` and ``nst demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ... import builtins
from ...config import Config
from ...errors import ConfigError
from ..options import with_config
from ..run import Log, Outputs, Quiet, SaveEvery, paint


def default_output(content: str, styles: list[str]) -> Path:
    return Path(f"{builtins.stem(content)}_{builtins.stem(styles[0])}.png")


def doubling_scales(start: int, size: int) -> tuple[int, ...]:
    """start, 2*start, ... up to size (inclusive)."""
    if start < 16:
        raise ConfigError(f"start-size must be at least 16 (got {start})")
    scales = []
    s = start
    while s < size:
        scales.append(s)
        s *= 2
    return (*scales, size)


@with_config(mode="stylize")
def stylize(
    content: Annotated[str, typer.Argument(help="Content image (or builtin:NAME).")],
    style: Annotated[list[str], typer.Argument(help="Style image(s) (or builtin:NAME).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output image (.png, .jpg, ...) [default: CONTENT_STYLE.png]."
        ),
    ] = None,
    start_size: Annotated[
        int | None,
        typer.Option(
            help="Coarse-to-fine from this size, doubling up to --size.",
            rich_help_panel="Optimization",
        ),
    ] = None,
    save_every: SaveEvery = 0,
    log: Log = None,
    quiet: Quiet = False,
    *,
    config: Config,
) -> None:
    """Paint CONTENT in the style of STYLE (several styles are blended)."""
    from ... import planning

    def final() -> Config:
        if start_size is None:
            return config
        return config.replace(scales=doubling_scales(start_size, config.size))

    out = Outputs(output or default_output(content, style), log, save_every, quiet)
    paint(out, [content, *style], final, lambda c: planning.plan_stylize(content, style, c))


def demo(
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("outputs/demo.png"),
    size: Annotated[int, typer.Option(help="Longest side of the result.")] = 320,
    iterations: Annotated[int, typer.Option(help="L-BFGS iterations.")] = 200,
    quiet: Quiet = False,
) -> None:
    """Stylize a built-in photo with the project's own generated painting."""
    from ... import planning
    from ...imageio import save_image

    style_path = output.with_name(output.stem + "_style.png")
    content_path = output.with_name(output.stem + "_content.png")

    def plan(config: Config) -> planning.Plan:
        save_image(planning.load(builtins.DEMO_STYLE), style_path)
        save_image(planning.load(builtins.DEMO_CONTENT), content_path)
        return planning.plan_stylize(builtins.DEMO_CONTENT, builtins.DEMO_STYLE, config)

    settings = {"size": size, "iterations": iterations, "seed": 0}
    paint(Outputs(output, quiet=quiet), [], lambda: Config.from_dict(settings), plan)
    typer.echo(f"content: {content_path}\nstyle:   {style_path}\nresult:  {output}")


def register(app: typer.Typer) -> None:
    app.command()(stylize)
    app.command()(demo)
