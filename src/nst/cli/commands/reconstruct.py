"""``nst reconstruct content|style``: the paper's representations alone."""

from __future__ import annotations

from typing import Annotated

import typer

from ...config import MAX_SIDE, Config
from ...errors import ConfigError
from ...numbers import parse_int, quote
from ..options import with_config
from ..run import CheckpointEvery, Log, Output, Outputs, Quiet, Restart, SaveEvery, paint


@with_config(mode="content", replaced=("content_layers",))  # by --layer
def content(
    image: Annotated[str, typer.Argument(help="The image whose content is reconstructed.")],
    output: Output,
    layer: Annotated[
        str, typer.Option(help="Layer(s) to match, e.g. conv4_2 or conv1_2,conv2_2.")
    ] = "conv4_2",
    log: Log = None,
    save_every: SaveEvery = 0,
    quiet: Quiet = False,
    checkpoint_every: CheckpointEvery = "60",
    restart: Restart = False,
    *,
    config: Config,
) -> None:
    """Feature inversion: from white noise, match one layer's content representation."""
    from ... import planning

    paint(
        Outputs(output, log, save_every, quiet, checkpoint_every, restart),
        [image],
        lambda: Config.from_dict({"content_layers": layer}, base=config),
        lambda c: planning.plan_content(image, c),
    )


def parse_size(text: str) -> tuple[int, int] | int:
    """``400x300`` -> (300, 400) as (h, w); ``400`` -> 400 (the longest side)."""
    t = text.lower().strip()
    parts = t.split("x", 1)
    if not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise ConfigError(f"size: {quote(text)} is neither N nor WxH (e.g. 512 or 640x480)")
    sides = [parse_int(p, "size", 16, MAX_SIDE) for p in parts]
    return (sides[1], sides[0]) if len(sides) == 2 else sides[0]


@with_config(mode="texture", replaced=("size", "style_layers"))  # by --size WxH and --layers
def style(
    image: Annotated[str, typer.Argument(help="The texture (style) image.")],
    output: Output,
    layers: Annotated[
        str, typer.Option(help="Style layers (equal weights unless given).")
    ] = "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
    size: Annotated[
        str, typer.Option(help="Output size, WxH or the longest side N (default 512).")
    ] = "512",
    log: Log = None,
    save_every: SaveEvery = 0,
    quiet: Quiet = False,
    checkpoint_every: CheckpointEvery = "60",
    restart: Restart = False,
    *,
    config: Config,
) -> None:
    """Texture synthesis: from white noise, match only the Gram matrices of the layers.

    The source is scaled to --style-size (default: the output's longest side); the
    output may have any size and aspect.
    """
    from ... import planning
    from ...imageio import fit_size

    out_size: list[tuple[int, int]] = []

    def final() -> Config:
        parsed = parse_size(size)
        base = config
        if isinstance(parsed, int):
            base = Config.from_dict({"size": parsed}, base=config)
            src = planning.load(image, "image")
            w, h = fit_size(src.shape[2], src.shape[1], parsed)
            out_size.append((h, w))
        else:
            out_size.append(parsed)
        return Config.from_dict({"style_layers": layers, "size": max(out_size[0])}, base=base)

    paint(
        Outputs(output, log, save_every, quiet, checkpoint_every, restart),
        [image],
        final,
        lambda c: planning.plan_texture(image, c, out_size[0]),
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        help="The paper's representations alone: feature inversion and texture synthesis.",
    )
    group.command("content")(content)
    group.command("style")(style)
    app.add_typer(group, name="reconstruct")
