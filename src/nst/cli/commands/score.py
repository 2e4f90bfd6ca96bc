"""``nst score``: how close a result is to its content and style, and how noisy."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ...errors import ConfigError, NstError
from ..output import fail


def score(
    output: Annotated[str, typer.Argument(help="The result to score.")],
    content: Annotated[str, typer.Option(help="The content image it was made from.")],
    style: Annotated[list[str], typer.Option(help="The style image(s) it was made from (repeat).")],
    style_blend: Annotated[
        str | None, typer.Option(help="Blend weights of several styles, e.g. 0.7,0.3.")
    ] = None,
    pooling: Annotated[str, typer.Option(help="The network's pooling: avg or max.")] = "avg",
    weights: Annotated[
        str | None, typer.Option(help="A torchvision VGG19 state_dict instead of the original.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score OUTPUT: conv4_2 distance and luminance SSIM to the content; style distance
    under the Gram matrices, W2 and sliced Wasserstein per layer, and to the nearest
    style patches (conv3_1 and deeper); high-frequency noise against the content's. Uses
    the optimizer's VGG19, in float32 (docs/QUALITY.md)."""
    from ...config import Config
    from ...score import score as measure

    try:
        given = {"pooling": pooling, "device": device, "weights": weights}
        if style_blend is not None:
            given["style_blend"] = style_blend
        config = Config.from_dict({k: v for k, v in given.items() if v is not None})
        blend = config.style_blend
        if blend is not None and len(blend) != len(style):
            raise ConfigError(
                f"style-blend has {len(blend)} weights for {len(style)} style image(s)"
            )
        s = measure(output, content, style, config, blend)
    except NstError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(s.to_record()))
        return
    typer.echo(f"content distance (conv4_2, relative): {s.content:.4g}")
    typer.echo(f"luminance SSIM to the content:        {s.ssim:.4f}")
    labels = (("gram", "Gram E_l"), ("w2", "W2 per channel"), ("swd", "sliced W"),
              ("mrf", "MRF patches"))  # fmt: skip
    for stat, label in labels:
        layers = "  ".join(f"{k} {v:.3g}" for k, v in s.style[stat].items())
        typer.echo(f"style, {label:<15} {s.style_total(stat):.4g}   ({layers})")
    typer.echo(
        f"high-frequency noise: {s.noise:.4g} (content {s.content_noise:.4g}, "
        f"ratio {s.noise_ratio:.3g})"
    )


def register(app: typer.Typer) -> None:
    app.command()(score)
