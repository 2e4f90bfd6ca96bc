"""``nst saliency``, ``nst visualize``, ``nst top-patches``: looking inside the network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ...errors import ConfigError, NstError
from ...explain.config import VisualizeConfig
from ..options import with_config
from ..output import fail, say
from ..run import Runner, check_paths, run_job, signals_as_interrupts

if TYPE_CHECKING:
    import torch

    from ...events import EventHandler
    from ...explain.network import Network
    from ...explain.targets import Target

Weights = Annotated[
    str | None,
    typer.Option(
        help="A torchvision VGG19/VGG16 state_dict; with classifier.* for class: "
        "targets (default: the built-in VGG19 convolutions).",
        rich_help_panel="Model",
    ),
]
Pooling = Annotated[
    str, typer.Option(help="max (the network as trained) or avg.", rich_help_panel="Model")
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.", rich_help_panel="Model")]


def _network(weights: str | None, pooling: str, device: str) -> Network:
    from ...config import Config
    from ...explain.network import network
    from ...planning import check_weights

    if pooling not in ("max", "avg"):
        raise ConfigError(f"pooling must be one of max, avg (got {pooling!r})")
    check_weights(Config(weights=weights, device=device))
    return network(weights, pooling, device)


def saliency(
    image: Annotated[str, typer.Argument(help="The image (or builtin:NAME).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The picture (.png, ...).")],
    target: Annotated[
        str,
        typer.Option(
            help="conv5_1:12 (a channel), conv5_1:12@3,4 (the neuron at row 3, "
            "column 4 of its map), class:283 or class:tabby (needs --weights); auto: the "
            "channel of conv5_1 that responds most to this image (conv4_1:auto: of conv4_1), "
            "named in the output."
        ),
    ] = "auto",
    method: Annotated[
        str,
        typer.Option(
            help="gradient, deconvnet or guided (the backward rule at each ReLU); gradcam or "
            "gradcam++ (a layer's maps weighted by the gradient); integrated (integrated "
            "gradients); smoothgrad (--rule averaged over noisy copies)."
        ),
    ] = "guided",
    layer: Annotated[
        str | None,
        typer.Option(
            help="Grad-CAM: the layer whose maps are weighed (default: the target's own; "
            "conv5_4 for a class).",
            rich_help_panel="Attribution",
        ),
    ] = None,
    steps: Annotated[
        int,
        typer.Option(
            help="Integrated gradients: steps of the path.", rich_help_panel="Attribution"
        ),
    ] = 64,
    baseline: Annotated[
        str,
        typer.Option(
            help="Integrated gradients: black, blur or noise.", rich_help_panel="Attribution"
        ),
    ] = "black",
    samples: Annotated[
        int, typer.Option(help="SmoothGrad: noisy copies.", rich_help_panel="Attribution")
    ] = 25,
    noise: Annotated[
        float,
        typer.Option(
            help="SmoothGrad: sigma as a fraction of the image's range.",
            rich_help_panel="Attribution",
        ),
    ] = 0.15,
    rule: Annotated[
        str,
        typer.Option(
            help="SmoothGrad: the rule averaged (gradient, deconvnet, guided).",
            rich_help_panel="Attribution",
        ),
    ] = "gradient",
    seed: Annotated[
        int,
        typer.Option(
            help="SmoothGrad's noise and the noise baseline.", rich_help_panel="Attribution"
        ),
    ] = 0,
    clip: Annotated[
        float, typer.Option(help="The display's percentile clip of the non-zero |values|.")
    ] = 99.5,
    raw: Annotated[
        Path | None,
        typer.Option(
            help="Also write the gradient as float32 HxWx3 RGB .npy, on the image's "
            "own pixel grid (pixels in 0..1 units)."
        ),
    ] = None,
    overlay: Annotated[bool, typer.Option(help="Draw the map over the photo.")] = False,
    display: Annotated[
        str | None,
        typer.Option(
            help="rgb (the gradient, grey at 0), magnitude (max |gradient| over the "
            "colours), signed (blue < 0 < red) or heat; default: magnitude for gradient and "
            "smoothgrad of it, signed for integrated, heat over the photo for gradcam, rgb "
            "for the others."
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Longest side the network sees (default: the image's own, up to 512)."),
    ] = None,
    weights: Weights = None,
    pooling: Pooling = "max",
    device: Device = "auto",
) -> None:
    """The gradient of one neuron, channel or class score with respect to the image's pixels
    (Zeiler & Fergus; Springenberg et al.; Simonyan et al.)."""
    import numpy as np

    from ...explain import attribution as attr
    from ...explain import targets as targets_mod
    from ...explain.rules import METHODS
    from ...explain.saliency import DISPLAYS
    from ...explain.saliency import display as draw
    from ...explain.saliency import overlay as over
    from ...explain.saliency import saliency as compute
    from ...imageio import save_array, save_image
    from ...planning import load

    try:
        every = (*METHODS, *attr.ATTRIBUTIONS)
        if method not in every:
            raise ConfigError(f"method must be one of {', '.join(every)} (got {method!r})")
        cam = method.startswith("gradcam")
        shown = rule if method == "smoothgrad" else method
        mode = display or ("signed" if method == "integrated" else "heat" if cam
                           else "magnitude" if shown == "gradient" else "rgb")  # fmt: skip
        if mode not in DISPLAYS:
            raise ConfigError(f"display must be one of {', '.join(DISPLAYS)} (got {mode!r})")
        if not 0 < clip <= 100:
            raise ConfigError(f"clip must be a percentile in (0, 100] (got {clip:g})")
        if size is not None and not 16 <= size <= 4096:
            raise ConfigError(f"size must be between 16 and 4096 (got {size})")
        if raw is not None and raw.suffix.lower() != ".npy":
            raise ConfigError(f"raw {raw}: give a .npy file name")
        check_paths(output, [image, weights], extra_outputs=[raw] if raw else [])
        wanted = targets_mod.parse(target)  # the target and the image before the network
        photo = load(image)
        if cam:
            attr.cam_layer(wanted, layer)  # before the network, like the target
        elif layer is not None:
            raise ConfigError("layer: only gradcam and gradcam++ take a --layer")
        net = _network(weights, pooling, device)
        if cam:
            result = attr.gradcam(photo, wanted, layer=layer, plus=method == "gradcam++",
                                  size=size, net=net)  # fmt: skip
        elif method == "integrated":
            result = attr.integrated_gradients(photo, wanted, steps=steps, base=baseline,
                                               seed=seed, size=size, net=net)  # fmt: skip
        elif method == "smoothgrad":
            result = attr.smoothgrad(photo, wanted, rule=rule, samples=samples, noise=noise,
                                     seed=seed, size=size, net=net)  # fmt: skip
        else:
            result = compute(photo, wanted, method, size=size, net=net)
        heat_on_photo = overlay or (cam and display is None)
        picture = (over(result.gradient, photo, clip) if heat_on_photo
                   else draw(result.gradient, mode, clip))  # fmt: skip
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
    if result.value == 0 and result.target.kind != "class" and method != "deconvnet":
        say(
            "note: the target does not fire on this image (value 0), so the map is empty; "
            "try another channel or position, or --method deconvnet"
        )


def _ascent_runner(target: str, config: VisualizeConfig, net: Network) -> Runner:
    from ...explain.ascent import visualize

    def run(on_event: EventHandler, every: int) -> torch.Tensor:
        return visualize(target, config, on_event, net=net, preview_every=every).image

    return run


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
    weights: Weights = None,
    pooling: Pooling = "max",
    device: Device = "auto",
    *,
    config: VisualizeConfig,
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
        check_paths(output, [weights], previews=save_every > 0)
        if grid is not None:  # the targets before the network
            wanted = targets_mod.parse_range(grid)
        else:
            assert target is not None
            wanted = [targets_mod.parse(target)]
        net = _network(weights, pooling, device)
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


def top_patches(
    target: Annotated[str, typer.Argument(help="A channel, e.g. conv5_1:30.")],
    images: Annotated[
        list[str] | None,
        typer.Argument(help="Images or folders (default: scikit-image's photos)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The sheet (.png, ...).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="How many patches.")] = 8,
    size: Annotated[int, typer.Option(help="Longest side each image is seen at.")] = 224,
    per_image: Annotated[int, typer.Option(help="At most this many patches per image.")] = 2,
    weights: Weights = None,
    pooling: Pooling = "max",
    device: Device = "auto",
) -> None:
    """The image patches (receptive-field crops) that activate a channel most."""
    from ...explain.patches import top_patches as find
    from ...figures.sheets import Cell, Result, Sheet, render
    from ..run import save_or_rescue

    try:
        if output is None:
            raise ConfigError("give the output image with -o OUT.png")
        if not 16 <= size <= 2048:
            raise ConfigError(f"size must be between 16 and 2048 (got {size})")
        if not 1 <= per_image <= 64:
            raise ConfigError(f"per-image must be between 1 and 64 (got {per_image})")
        if not 1 <= k <= 256:
            raise ConfigError(f"k must be between 1 and 256 (got {k})")
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
        check_paths(output, [*(sources or []), weights])
        net = _network(weights, pooling, device)
        patches = find(wanted, sources, k, size=size, per_image=per_image, net=net)
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
        caption=f"receptive fields at {size} px; value of the centre neuron below",
    )
    save_or_rescue(render(sheet, results, (min(side, 160), min(side, 160))), output)
    say(f"{len(patches)} patches; wrote {output}")


def register(app: typer.Typer) -> None:
    app.command()(saliency)
    app.command()(visualize)
    app.command("top-patches")(top_patches)
