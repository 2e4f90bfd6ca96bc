"""``nst reconstruct content|style``: the paper's representations alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...config import Config
from ...errors import ConfigError, NstError
from ..app import app
from ..options import with_config
from ..output import fail
from ..run import check_paths, run_job

reconstruct_app = typer.Typer(
    no_args_is_help=True,
    help="The paper's representations alone: feature inversion and texture synthesis.",
)
app.add_typer(reconstruct_app, name="reconstruct")


@reconstruct_app.command("content")
@with_config(mode="content", replaced=("content_layers",))  # --layer
def reconstruct_content_cmd(
    image: Annotated[str, typer.Argument(help="The image whose content is reconstructed.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output image.")],
    layer: Annotated[
        str, typer.Option(help="Layer(s) to match, e.g. conv4_2 or conv1_2,conv2_2.")
    ] = "conv4_2",
    log: Annotated[Path | None, typer.Option(help="Loss log (JSON lines).")] = None,
    save_every: Annotated[int, typer.Option(help="Also write every N iterations.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    *,
    config: Config,
) -> None:
    """Feature inversion: from white noise, match one layer's content representation."""
    from ... import execution, planning

    try:
        config = Config.from_dict({"content_layers": layer}, base=config)
        inputs = [image, *config.input_paths().values()]
        check_paths(output, inputs, log, previews=save_every > 0)
        plan = planning.plan_content(image, config)
    except NstError as exc:
        fail(exc)
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        output, quiet=quiet, log=log, save_every=save_every,
    )  # fmt: skip


def parse_size(text: str) -> tuple[int, int] | int:
    """``400x300`` -> (300, 400) as (h, w); ``400`` -> 400 (the longest side)."""
    t = text.lower().strip()
    try:
        if "x" in t:
            w, h = (int(v) for v in t.split("x", 1))
            return (h, w)
        return int(t)
    except ValueError:
        raise ConfigError(f"size: '{text}' is neither N nor WxH (e.g. 512 or 640x480)") from None


@reconstruct_app.command("style")
@with_config(mode="texture", replaced=("size", "style_layers"))  # --size WxH, --layers
def reconstruct_style_cmd(
    image: Annotated[str, typer.Argument(help="The texture (style) image.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output image.")],
    layers: Annotated[
        str, typer.Option(help="Style layers (equal weights unless given).")
    ] = "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
    size: Annotated[
        str, typer.Option(help="Output size, WxH or the longest side N (default 512).")
    ] = "512",
    log: Annotated[Path | None, typer.Option(help="Loss log (JSON lines).")] = None,
    save_every: Annotated[int, typer.Option(help="Also write every N iterations.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    *,
    config: Config,
) -> None:
    """Texture synthesis: from white noise, match only the Gram matrices of the layers.

    The source is scaled to --style-size (default: the output's longest side); the
    output may have any size and aspect.
    """
    from ... import execution, planning
    from ...imageio import fit_size

    try:
        parsed = parse_size(size)
        if isinstance(parsed, int):
            config = Config.from_dict({"size": parsed}, base=config)
            src = planning.load(image, "image")
            w, h = fit_size(src.shape[2], src.shape[1], parsed)
            out_size = (h, w)
        else:
            out_size = parsed
        config = Config.from_dict({"style_layers": layers, "size": max(out_size)}, base=config)
        inputs = [image, *config.input_paths().values()]
        check_paths(output, inputs, log, previews=save_every > 0)
        plan = planning.plan_texture(image, config, out_size)
    except NstError as exc:
        fail(exc)
    run_job(
        lambda on_event, every: execution.execute(plan, on_event, preview_every=every),
        output, quiet=quiet, log=log, save_every=save_every,
    )  # fmt: skip
