"""``nst stylize`` and ``nst demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ... import builtins
from ...batch.cluster import Spreading
from ...config import Config
from ..options import with_config
from ..run import CheckpointEvery, Log, Outputs, Quiet, Restart, SaveEvery, paint


def default_output(content: str, styles: list[str]) -> Path:
    return Path(f"{builtins.stem(content)}_{builtins.stem(styles[0])}.png")


@with_config(cls=Spreading, name="spreading")
@with_config(mode="stylize")
def stylize(
    content: Annotated[str, typer.Argument(help="Content image (or builtin:NAME).")],
    style: Annotated[list[str], typer.Argument(help="Style image(s) (or builtin:NAME).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output image (.png, .jpg, ...); default: CONTENT_STYLE.png."
        ),
    ] = None,
    save_every: SaveEvery = 0,
    log: Log = None,
    quiet: Quiet = False,
    checkpoint_every: CheckpointEvery = "60",
    restart: Restart = False,
    *,
    config: Config,
    spreading: Spreading,
) -> None:
    """Paint CONTENT in the style of STYLE (several styles are blended).

    A stopped run (Ctrl-C, a kill, a reboot) continues where it was when the same command
    is given again (its checkpoints are kept in OUTPUT.work/)."""
    from ... import planning

    out = Outputs(output or default_output(content, style), log, save_every, quiet,
                  checkpoint_every, restart)  # fmt: skip
    paint(out, [content, *style], config, lambda c: planning.plan_stylize(content, style, c),
          spreading)  # fmt: skip


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
