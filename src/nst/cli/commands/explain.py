"""``nst saliency``, ``nst visualize``, ``nst top-patches``: looking inside the network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ...errors import ConfigError, NstError
from ...explain.config import ModelConfig, PatchesConfig, SaliencyConfig, VisualizeConfig
from ..options import with_config
from ..output import fail, say
from ..run import Runner, check_paths, run_job, signals_as_interrupts

if TYPE_CHECKING:
    import torch

    from ...events import EventHandler
    from ...explain.network import Network
    from ...explain.targets import Target


def _network(model: ModelConfig) -> Network:
    from ...config import Config
    from ...explain.network import network
    from ...planning import check_weights

    check_weights(Config(weights=model.weights, device=model.device))
    return network(model.weights, model.pooling, model.device)


@with_config(cls=ModelConfig, name="model")
@with_config(cls=SaliencyConfig)
def saliency(
    image: Annotated[str, typer.Argument(help="The image (or builtin:NAME).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The picture (.png, ...).")],
    raw: Annotated[
        Path | None,
        typer.Option(
            help="Also write the gradient as float32 HxWx3 RGB .npy, on the image's "
            "own pixel grid (pixels in 0..1 units).",
            rich_help_panel="Output",
        ),
    ] = None,
    *,
    config: SaliencyConfig,
    model: ModelConfig,
) -> None:
    """The gradient of one neuron, channel or class score with respect to the image's pixels
    (Zeiler & Fergus; Springenberg et al.; Simonyan et al.)."""
    import numpy as np

    from ...explain import attribution as attr
    from ...explain import targets as targets_mod
    from ...explain.saliency import display, overlay
    from ...imageio import save_array, save_image
    from ...planning import load

    try:
        if raw is not None and raw.suffix.lower() != ".npy":
            raise ConfigError(f"raw {raw}: give a .npy file name")
        check_paths(output, [image, model.weights], extra_outputs=[raw] if raw else [])
        wanted = targets_mod.parse(config.target)  # the target and the image before the network
        photo = load(image)
        if config.method.startswith("gradcam"):
            attr.cam_layer(wanted, config.layer)  # before the network, like the target
        result = attr.attribute(photo, config, net=_network(model))
        picture = (overlay(result.gradient, photo, config.clip) if config.on_photo
                   else display(result.gradient, config.drawn_as, config.clip))  # fmt: skip
        if raw is not None:
            save_array(result.gradient.permute(1, 2, 0).numpy().astype(np.float32), raw)
        save_image(picture, output)
    except NstError as exc:
        fail(exc)
    h, w = result.working_size
    chosen = f" (the strongest channel of {wanted.layer} here)" if wanted.kind == "auto" else ""
    say(
        f"{result.target.label}{chosen} by {result.method}: value {result.value:.4g} at "
        f"{w}x{h} px; wrote {output}" + (f" and {raw}" if raw else "")
    )
    if result.value == 0 and result.target.kind != "class" and config.method != "deconvnet":
        say(
            "note: the target does not fire on this image (value 0), so the map is empty; "
            "try another channel or position, or --method deconvnet"
        )


def _ascent_runner(target: str, config: VisualizeConfig, net: Network) -> Runner:
    from ...explain.ascent import visualize

    def run(on_event: EventHandler, every: int) -> torch.Tensor:
        return visualize(target, config, on_event, net=net, preview_every=every).image

    return run


@with_config(cls=ModelConfig, name="model")
@with_config(cls=VisualizeConfig)
def visualize(
    target: Annotated[
        str | None,
        typer.Argument(help="conv4_1:12, conv5_1:12@3,4 or class:tabby (needs --weights)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The image (.png, ...).")
    ] = None,
    grid: Annotated[
        str | None, typer.Option(help="Several channels on one sheet, e.g. conv4_1:0-15.")
    ] = None,
    save_every: Annotated[int, typer.Option(help="Also write the image every N steps.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    *,
    config: VisualizeConfig,
    model: ModelConfig,
) -> None:
    """Gradient ascent to the image that activates TARGET most (Simonyan et al.; Yosinski
    et al.'s regularizers)."""
    from ...explain import targets as targets_mod

    try:
        if output is None:
            raise ConfigError("give the output image with -o OUT.png")
        if (target is None) == (grid is None):
            raise ConfigError("give a TARGET or a --grid LAYER:FIRST-LAST (one of them)")
        if save_every < 0:
            raise ConfigError(f"save-every must be >= 0 (got {save_every})")
        check_paths(output, [model.weights], previews=save_every > 0)
        if grid is not None:  # the targets before the network
            wanted = targets_mod.parse_range(grid)
        else:
            assert target is not None
            wanted = [targets_mod.parse(target)]
        net = _network(model)
        for t in wanted:
            net.check(t, (config.size, config.size))
    except NstError as exc:
        fail(exc)
    if grid is None:
        assert target is not None
        run_job(
            _ascent_runner(target, config, net),
            output,
            quiet=quiet,
            log=None,
            save_every=save_every,
        )
        return
    _grid(wanted, config, net, output, quiet)


def _grid(
    targets: list[Target], config: VisualizeConfig, net: Network, output: Path, quiet: bool
) -> None:
    """One ascent per channel, drawn as a labelled sheet."""
    import math

    from ...explain.ascent import visualize
    from ...figures.sheets import Cell, Result, Sheet, render
    from ..run import save_or_rescue

    cells: list[Cell] = []
    results: dict[int, Result] = {}
    with signals_as_interrupts() as signals:  # SIGTERM and SIGHUP stop it like Ctrl-C
        try:
            for i, t in enumerate(targets, 1):
                r = visualize(t, config, net=net)
                cell = Cell(t.label, note=f"{r.value:.4g}")
                results[id(cell)] = Result(r.image, 0.0)
                cells.append(cell)
                if not quiet:
                    say(f"{t.label} ({i}/{len(targets)}): mean activation {r.value:.4g}")
        except KeyboardInterrupt:
            say("interrupted; the channels done so far are drawn")
            if not cells:
                raise typer.Exit(signals.exit_code) from None
    columns = max(1, math.ceil(math.sqrt(len(cells))))
    rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    sheet = Sheet(
        "grid",
        f"Gradient ascent, {len(cells)} channels of {targets[0].layer}",
        rows,
        caption=f"{config.iterations} steps, {config.size} px, seed {config.seed}",
    )
    save_or_rescue(render(sheet, results, (config.size, config.size)), output)
    if not quiet:
        typer.echo(f"wrote {output}", err=True)
    if len(cells) < len(targets):
        raise typer.Exit(signals.exit_code)


@with_config(cls=ModelConfig, name="model")
@with_config(cls=PatchesConfig)
def top_patches(
    target: Annotated[str, typer.Argument(help="A channel, e.g. conv5_1:30.")],
    images: Annotated[
        list[str] | None,
        typer.Argument(help="Images or folders (default: scikit-image's photos)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The sheet (.png, ...).")
    ] = None,
    *,
    config: PatchesConfig,
    model: ModelConfig,
) -> None:
    """The image patches (receptive-field crops) that activate a channel most."""
    from ...explain.patches import top_patches as find
    from ...figures.sheets import Cell, Result, Sheet, render
    from ..run import save_or_rescue

    try:
        if output is None:
            raise ConfigError("give the output image with -o OUT.png")
        from ...explain import targets as targets_mod
        from ...imageio import image_files

        wanted = targets_mod.parse(target)  # before the network
        sources = image_files(images, "images", recursive=True) if images else None
        for folder in (Path(i) for i in images or [] if os.path.isdir(i)):
            if Path(os.path.abspath(output)).is_relative_to(os.path.abspath(folder)):
                raise ConfigError(
                    f"output {output} is inside the image folder {folder}; the sheet would "
                    "become an image of the next run (write it elsewhere)"
                )
        check_paths(output, [*(sources or []), model.weights])
        patches = find(wanted, sources, config.k, size=config.size, per_image=config.per_image,
                       net=_network(model))  # fmt: skip
    except NstError as exc:
        fail(exc)
    if not patches:
        fail(ConfigError(f"{target}: the channel does not respond to any of these images"))
    cells, results = [], {}
    for p in patches:
        name = Path(p.source).name if not p.source.startswith("skimage:") else p.source[8:]
        cell = Cell(name, note=f"{p.value:.4g}")
        results[id(cell)] = Result(p.image, 0.0)
        cells.append(cell)
    side = max(max(p.image.shape[1:]) for p in patches)
    sheet = Sheet(
        "patches",
        f"Top patches of {target}",
        [cells],
        caption=f"receptive fields at {config.size} px; value of the centre neuron below",
    )
    save_or_rescue(render(sheet, results, (min(side, 160), min(side, 160))), output)
    say(f"{len(patches)} patches; wrote {output}")


def register(app: typer.Typer) -> None:
    app.command()(saliency)
    app.command()(visualize)
    app.command("top-patches")(top_patches)
