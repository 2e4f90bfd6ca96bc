"""``nst figures``: the paper's experiments as labelled contact sheets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ...config import Config
from ...errors import ConfigError, NstError
from ..output import fail, format_time, say
from ..run import check_writable, signals_as_interrupts


def figures(
    images: Annotated[
        Path | None, typer.Option(help="Folder with the paper's images (tubingen.jpg, ...).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the sheets and index.html.")] = Path("figs"),
    size: Annotated[int, typer.Option(help="Longest side of every run.")] = 256,
    iterations: Annotated[int, typer.Option(help="L-BFGS iterations of every run.")] = 300,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Only these sheets (fig1, fig3 … fig7, inversion, lecture), repeatable."),
    ] = None,
    content: Annotated[
        str | None, typer.Option(help="Content photo (default tubingen.jpg).")
    ] = None,
    style: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=PATH or NAME=PATH@RATIO: a style image, repeatable (adds to the defaults)."
        ),
    ] = None,
    photo_content: Annotated[
        str | None, typer.Option(help="fig7 content photo (default golden_gate.jpg).")
    ] = None,
    photo_style: Annotated[
        str | None, typer.Option(help="fig7 style photo (default hoovertowernight.jpg).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise initialisations.")] = 0,
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Reproduce the paper's experiments as labelled contact sheets plus an index.html."""
    from ...figures import FIGURES, Roles, make_figures

    if quiet:  # no advice either (nst.NstWarning lines)
        import warnings

        from ...errors import NstWarning

        warnings.simplefilter("ignore", NstWarning)
    with signals_as_interrupts() as signals:  # SIGTERM and SIGHUP stop it like Ctrl-C
        try:
            unknown = [f for f in only or [] if f not in FIGURES]
            if unknown:
                raise ConfigError(f"only: unknown figure {unknown[0]} (use {', '.join(FIGURES)})")
            if images is not None and not images.is_dir():
                raise ConfigError(f"images: {images} is not a folder")
            check_writable(out / "index.html", "out")
            roles = Roles.from_dir(images, content, style or [], photo_content, photo_style)
            given = {
                "size": size,
                "iterations": iterations,
                "seed": seed,
                "precision": precision,
                "init": "noise",
            }  # the paper's start, whatever the iterations
            base = Config.from_dict({**given, "device": device, "scales": [size]})
            log = (lambda msg: None) if quiet else say
            start = time.perf_counter()
            made, skipped = make_figures(roles, out, base, only, log=log)
        except NstError as exc:
            fail(exc)
        except KeyboardInterrupt:
            say(
                f"interrupted; the sheet so far is written to {out}, and its finished panels "
                "are kept: the same command continues"
            )
            raise typer.Exit(signals.exit_code) from None
    took = time.perf_counter() - start
    typer.echo(
        f"{len(made)} sheet(s), {len(skipped)} skipped, {format_time(took)}: {out / 'index.html'}"
    )


def register(app: typer.Typer) -> None:
    app.command()(figures)
