"""The ``nst`` command line: stylize, demo, reconstruct, figures, serve.

The options of ``stylize`` are derived from the fields of :class:`nst.config.Config`
(their help text lives there), so the CLI and the config cannot drift apart.
Library errors become one-line messages and exit codes here and only here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from .config import Config
from .errors import ConfigError, ImageError, Interrupted, NstError, RunStopped
from .events import Event, Finished, Started, Step

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural style transfer after Gatys, Ecker & Bethge (CVPR 2016).",
)

# -- options derived from Config ------------------------------------------------------------
_CLI_TYPES: dict[str, Any] = {
    "size": int, "style_size": int | None, "style_scale": float, "iterations": int,
    "optimizer": str, "lr": float | None, "lbfgs_history": int, "content_weight": float,
    "style_weight": float, "content_layers": str, "style_layers": str, "weighting": str,
    "tv_weight": float, "style_blend": str | None, "preserve_colors": str, "scales": str,
    "pooling": str, "normalize": bool, "weights": str | None, "init": str,
    "seed": int | None, "device": str, "precision": str, "mask": str | None, "regions": str,
}  # fmt: skip
_DEFAULT = Config()


def _cli_default(name: str) -> Any:
    value = getattr(_DEFAULT, name)
    if name in ("content_layers", "style_layers"):
        return _DEFAULT.to_dict()[name]
    if name in ("scales", "regions"):
        return ""
    return value


def config_parameters(exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter with a typer Option per Config field."""
    params = []
    for f in dataclasses.fields(Config):
        if f.name in exclude:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.name == "normalize":
            option = typer.Option(
                "--normalize/--no-normalize", help=help_text, rich_help_panel="Model"
            )
        else:
            option = typer.Option(flag, help=help_text, rich_help_panel=_panel(f.name))
        annotation = Annotated[_CLI_TYPES[f.name], option]  # type: ignore[valid-type,name-defined]
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_cli_default(f.name),
                annotation=annotation,
            )
        )
    return params


def _panel(name: str) -> str:
    if name in ("pooling", "normalize", "weights", "device", "precision"):
        return "Model"
    if name in ("iterations", "optimizer", "lr", "lbfgs_history", "init", "seed", "scales"):
        return "Optimization"
    return "Objective"


def with_config(
    exclude: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every Config field as an option; it receives ``config=Config(...)``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name != "config"
        ]
        cfg_params = config_parameters(exclude)
        names = {p.name for p in cfg_params}

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            for key in ("scales", "regions"):
                if values.get(key) == "":
                    values[key] = ()
            try:
                config = Config(**values)
            except NstError as exc:
                _fail(exc)
            return func(config=config, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + cfg_params)  # type: ignore[attr-defined]
        hints = {p.name: p.annotation for p in own + cfg_params}
        wrapper.__annotations__ = hints
        return wrapper

    return decorate


# -- output helpers ---------------------------------------------------------------------------
def _fail(exc: BaseException, code: int | None = None) -> None:
    message = str(exc) if isinstance(exc, NstError) else f"{type(exc).__name__}: {exc}"
    typer.echo(f"nst: error: {message}", err=True)
    raise typer.Exit(code if code is not None else getattr(exc, "exit_code", 1))


def _format_time(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Renders events as a progress bar on a terminal, or as sparse lines otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self.total = 0
        self.stage = (0, 1)
        self.stage_start = 0.0
        self.last_draw = 0.0
        self.last_line_step = -1
        self.first_iteration = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.total = event.iterations
            self.stage = (event.stage, event.stages)
            self.stage_start = -1.0
            if self.tty and event.stage > 0:
                self.stream.write("\n")
            where = f"stage {event.stage + 1}/{event.stages}: " if event.stages > 1 else ""
            self.stream.write(
                f"{where}{event.width}x{event.height} px, {event.iterations} iterations on "
                f"{event.device} ({event.precision}), seed {event.seed}\n"
            )
            self.stream.flush()
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Finished):
            if self.tty:
                self.stream.write("\n")
            self.stream.write(
                f"{event.reason}: {event.iterations} iterations, {event.evaluations} loss "
                f"evaluations, loss {event.loss:.4g}, {_format_time(event.elapsed)}\n"
            )
            self.stream.flush()

    def _step(self, e: Step) -> None:
        if self.stage_start < 0:
            self.stage_start = e.elapsed
            self.first_iteration = e.iteration
        now = time.monotonic()
        done = e.iteration
        last = done >= self.total
        if self.tty and not last and now - self.last_draw < 0.1:
            return
        spent = e.elapsed - self.stage_start
        steps = done - self.first_iteration
        rate = steps / spent if spent > 0 and steps > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        frac = done / self.total if self.total else 1.0
        fill = int(frac * self.width)
        bar = "#" * fill + "-" * (self.width - fill)
        stage = f"[{self.stage[0] + 1}/{self.stage[1]}] " if self.stage[1] > 1 else ""
        line = (
            f"{stage}[{bar}] {done}/{self.total} loss {e.loss:.4g} "
            f"{rate:.2f} it/s ETA {_format_time(eta)} ({e.evaluations} evals)"
        )
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self.last_draw = now
        else:
            step = max(1, self.total // 10)
            if (done % step == 0 or last) and done != self.last_line_step:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_line_step = done


class JsonLog:
    """``--log FILE.jsonl``: one JSON object per Step event."""

    def __init__(self, path: Path) -> None:
        try:
            self.file: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ImageError(str(path), f"cannot write the log ({exc.strerror})") from None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.file.write(json.dumps(event.to_log()) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.file.close()


def _check_paths(output: Path, inputs: list[str], log: Path | None) -> None:
    """Refuse, before any work, an unknown output format and outputs that name an input."""
    from .imageio import output_format, same_file

    output_format(output)
    for src in inputs:
        if same_file(output, src):
            raise ConfigError(f"output {output} is an input file; choose another name")
        if log is not None and same_file(log, src):
            raise ConfigError(f"log file {log} is an input file")
    if log is not None and same_file(log, output):
        raise ConfigError(f"log file {log} is the output image")


def _default_output(content: str, styles: list[str]) -> Path:
    def stem(name: str) -> str:
        return Path(name.split(":", 1)[1] if name.startswith("builtin:") else name).stem

    return Path(f"{stem(content)}_{stem(styles[0])}.png")


def _preview_path(output: Path, iteration: int, stage: int, stages: int) -> Path:
    tag = f"s{stage + 1}_" if stages > 1 else ""
    return output.with_name(f"{output.stem}_{tag}{iteration:05d}{output.suffix}")


def run_job(
    run: Callable[[Callable[[Event], None], int], Any],
    output: Path,
    *,
    quiet: bool,
    log: Path | None,
    save_every: int,
    extra_handlers: tuple[Callable[[Event], None], ...] = (),
) -> None:
    """Run ``run(on_event, preview_every)`` with progress, log, previews and Ctrl-C handling,
    then write its image to ``output`` atomically."""
    from .imageio import save_image

    handlers: list[Callable[[Event], None]] = list(extra_handlers)
    if not quiet:
        handlers.append(ProgressBar())
    json_log = JsonLog(log) if log is not None else None
    if json_log is not None:
        handlers.append(json_log)
    stages = [1]

    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            stages[0] = event.stages
        for h in handlers:
            h(event)
        if isinstance(event, Step) and event.preview is not None and save_every:
            save_image(
                event.preview, _preview_path(output, event.iteration, event.stage, stages[0])
            )

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        image = run(on_event, save_every)
    except RunStopped as exc:
        save_image(exc.image, output)
        what = "interrupted" if isinstance(exc, Interrupted) else "stopped"
        typer.echo(f"nst: {what}: {exc}; wrote the last image to {output}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("nst: interrupted before the first iteration; nothing written", err=True)
        raise typer.Exit(130) from None
    except NstError as exc:
        _fail(exc)
    finally:
        if json_log is not None:
            json_log.close()
    save_image(image, output)
    if not quiet:
        typer.echo(f"wrote {output}", err=True)


# -- commands --------------------------------------------------------------------------------
@app.command()
@with_config()
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
    from . import api

    out = output or _default_output(content, style)
    try:
        if start_size is not None:
            config = config.replace(scales=doubling_scales(start_size, config.size))
        _check_paths(out, [content, *style, config.init], log)
        plan = api.plan_stylize(content, style, config)
    except NstError as exc:
        _fail(exc)
    run_job(
        lambda on_event, every: api.execute(plan, on_event, preview_every=every),
        out,
        quiet=quiet,
        log=log,
        save_every=save_every,
    )


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
def demo(
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("outputs/demo.png"),
    size: Annotated[int, typer.Option(help="Longest side of the result.")] = 320,
    iterations: Annotated[int, typer.Option(help="L-BFGS iterations.")] = 200,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Stylize a built-in photo with the project's own generated painting."""
    from . import api
    from .demo import DEMO_CONTENT, DEMO_STYLE
    from .imageio import save_image

    output.parent.mkdir(parents=True, exist_ok=True)
    style_path = output.with_name(output.stem + "_style.png")
    content_path = output.with_name(output.stem + "_content.png")
    save_image(api.load(DEMO_STYLE), style_path)
    save_image(api.load(DEMO_CONTENT), content_path)
    config = Config(size=size, iterations=iterations, seed=0)
    plan = api.plan_stylize(DEMO_CONTENT, DEMO_STYLE, config)
    run_job(
        lambda on_event, every: api.execute(plan, on_event, preview_every=every),
        output,
        quiet=quiet,
        log=None,
        save_every=0,
    )
    typer.echo(f"content: {content_path}\nstyle:   {style_path}\nresult:  {output}")


reconstruct_app = typer.Typer(
    no_args_is_help=True,
    help="The paper's representations alone: feature inversion and texture synthesis.",
)
app.add_typer(reconstruct_app, name="reconstruct")

_NOT_FOR_CONTENT = ("content_layers", "style_layers", "style_size", "style_scale",
                    "style_blend", "preserve_colors", "mask", "regions", "content_weight",
                    "style_weight")  # fmt: skip
_NOT_FOR_STYLE = ("size", "content_layers", "style_layers", "style_blend", "preserve_colors",
                  "mask", "regions", "content_weight", "style_weight", "style_scale")  # fmt: skip


@reconstruct_app.command("content")
@with_config(exclude=_NOT_FOR_CONTENT)
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
    from . import api

    try:
        config = config.replace(content_layers=layer)
        _check_paths(output, [image, config.init], log)
    except NstError as exc:
        _fail(exc)
    run_job(
        lambda on_event, every: api.reconstruct_content(
            image, config, on_event, preview_every=every
        ),
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
@with_config(exclude=_NOT_FOR_STYLE)
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
    from . import api
    from .imageio import fit_size

    try:
        parsed = parse_size(size)
        if isinstance(parsed, int):
            src = api.load(image, "image")
            w, h = fit_size(src.shape[2], src.shape[1], parsed)
            out_size = (h, w)
        else:
            out_size = parsed
        config = config.replace(style_layers=layers, size=max(out_size))
        _check_paths(output, [image, config.init], log)
    except NstError as exc:
        _fail(exc)
    run_job(
        lambda on_event, every: api.synthesize_texture(
            image, config, out_size, on_event, preview_every=every
        ),
        output, quiet=quiet, log=log, save_every=save_every,
    )  # fmt: skip


@app.command()
def figures(
    images: Annotated[
        Path | None, typer.Option(help="Folder with the paper's images (../shared/images).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the sheets and index.html.")] = Path("figs"),
    size: Annotated[int, typer.Option(help="Longest side of every run.")] = 256,
    iterations: Annotated[int, typer.Option(help="L-BFGS iterations of every run.")] = 300,
    only: Annotated[
        list[str] | None, typer.Option(help="Only these figures (fig1 … fig6), repeatable.")
    ] = None,
    content: Annotated[
        str | None, typer.Option(help="Content photo (default tubingen.jpg).")
    ] = None,
    style: Annotated[
        list[str] | None,
        typer.Option(help="NAME=PATH[@RATIO] style image, repeatable (adds to the defaults)."),
    ] = None,
    photo_content: Annotated[
        str | None, typer.Option(help="fig6 content photo (default golden_gate.jpg).")
    ] = None,
    photo_style: Annotated[
        str | None, typer.Option(help="fig6 style photo (default hoovertowernight.jpg).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise initialisations.")] = 0,
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Reproduce the paper's experiments as labelled contact sheets plus an index.html."""
    from .figures import FIGURES, Roles, make_figures

    try:
        unknown = [f for f in only or [] if f not in FIGURES]
        if unknown:
            raise ConfigError(f"only: unknown figure {unknown[0]} (use {', '.join(FIGURES)})")
        if images is not None and not images.is_dir():
            raise ConfigError(f"images: {images} is not a folder")
        roles = Roles.from_dir(images, content, style or [], photo_content, photo_style)
        base = Config(size=size, iterations=iterations, seed=seed, precision=precision,
                      device=device, scales=(size,))  # fmt: skip
        log = (lambda msg: None) if quiet else (lambda msg: typer.echo(msg, err=True))
        start = time.perf_counter()
        made, skipped = make_figures(roles, out, base, only, log=log)
    except NstError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("nst: interrupted; sheets already written are kept", err=True)
        raise typer.Exit(130) from None
    took = time.perf_counter() - start
    typer.echo(
        f"{len(made)} sheet(s), {len(skipped)} skipped, {_format_time(took)}: {out / 'index.html'}"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    allow_remote: Annotated[
        bool, typer.Option(help="Allow binding an address other machines can reach.")
    ] = False,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="Extra host name accepted in the Host header.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Job files (default: a folder in the temp dir).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Jobs running at the same time.")] = 1,
    max_waiting: Annotated[int, typer.Option(help="Jobs allowed to wait; beyond: 429.")] = 8,
    max_size: Annotated[int, typer.Option(help="Largest output side a job may ask.")] = 1024,
    max_iterations: Annotated[int, typer.Option(help="Most iterations a job may ask.")] = 2000,
    job_ttl: Annotated[float, typer.Option(help="Seconds a finished job is kept.")] = 3600,
) -> None:
    """The web app: pick or upload images, tune, watch it paint, download."""
    import tempfile

    import uvicorn

    from .web import WebSettings, create_app

    local = host in ("127.0.0.1", "localhost", "::1")
    if not local and not allow_remote:
        _fail(ConfigError(f"host {host} can be reached from other machines; add --allow-remote"))
    if not local:
        typer.echo(
            f"nst: warning: serving on {host}: anyone who can reach it can run jobs "
            "(there is no login)", err=True,
        )  # fmt: skip
    folder = data_dir or Path(tempfile.gettempdir()) / "nst-web"
    settings = WebSettings(
        data_dir=folder, host=host, port=port, workers=workers, max_waiting=max_waiting,
        max_size=max_size, max_iterations=max_iterations, job_ttl=job_ttl,
        allowed_hosts=tuple(allowed_host or ()),
    )  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"nst: serving http://{shown}:{port}/ (jobs in {folder}); Ctrl-C stops", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # outside a run (e.g. while loading)
        typer.echo("nst: interrupted", err=True)
        sys.exit(130)
