"""``nst stylize`` and ``nst demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ... import builtins
from ...config import Config
from ...errors import ConfigError, NstError
from ..app import app
from ..options import with_config
from ..output import fail
from ..run import check_paths, run_job


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


@app.command()
@with_config(mode="stylize")
def stylize(
    content: Annotated[str, typer.Argument(help="Content image (or builtin:NAME).")],
    style: Annotated[list[str], typer.Argument(help="Style image(s) (or builtin:NAME).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output image (.png, .jpg, ...).")
    ] = None,
    start_size: Annotated[
        int | None,
        typer.Option(
            help="Coarse-to-fine from this size, doubling up to --size.",
            rich_help_panel="Optimization",
        ),
    ] = None,
    save_every: Annotated[
        int, typer.Option(help="Also write the image every N iterations (OUT_00050.png).")
    ] = 0,
    log: Annotated[
        Path | None, typer.Option(help="Write the losses of every iteration as JSON lines.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    *,
    config: Config,
) -> None:
    """Paint CONTENT in the style of STYLE (several styles are blended)."""
    from ... import execution, planning

    out = output or default_output(content, style)
    try:
        if save_every < 0:
            raise ConfigError(f"save-every must be >= 0 (got {save_every})")
        if start_size is not None:
            config = config.replace(scales=doubling_scales(start_size, config.size))
        inputs = [content, *style, *config.input_paths().values()]
        check_paths(out, inputs, log, previews=save_every > 0)
        plan = planning.plan_stylize(content, style, config)
    except NstError as exc:
        fail(exc)
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        out, quiet=quiet, log=log, save_every=save_every,
    )  # fmt: skip


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("outputs/demo.png"),
    size: Annotated[int, typer.Option(help="Longest side of the result.")] = 320,
    iterations: Annotated[int, typer.Option(help="L-BFGS iterations.")] = 200,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Stylize a built-in photo with the project's own generated painting."""
    from ... import execution, planning
    from ...imageio import save_image

    style_path = output.with_name(output.stem + "_style.png")
    content_path = output.with_name(output.stem + "_content.png")
    try:
        config = Config.from_dict({"size": size, "iterations": iterations, "seed": 0})
        check_paths(output, [])
        save_image(planning.load(builtins.DEMO_STYLE), style_path)
        save_image(planning.load(builtins.DEMO_CONTENT), content_path)
        plan = planning.plan_stylize(builtins.DEMO_CONTENT, builtins.DEMO_STYLE, config)
    except NstError as exc:
        fail(exc)
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        output, quiet=quiet, log=None, save_every=0,
    )  # fmt: skip
    typer.echo(f"content: {content_path}\nstyle:   {style_path}\nresult:  {output}")
