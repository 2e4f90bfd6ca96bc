"""Running jobs from the command line: the one scaffold every painting command shares.

``Output``, ``Log``, ``SaveEvery`` and ``Quiet`` declare the options of a command that
writes one image; :func:`paint` is its whole run (checks, plan, progress, save);
:func:`guarded` is the signal and error handling that the commands with a loop of their
own (batch, video) share with it.

* Before any work: every output location (result, previews, log) is checked: its
  folder can be made and written, its name is allowed, and it names no input (by
  resolved path and by inode).
* Ctrl-C, SIGTERM and SIGHUP write the last iterate and exit 130, 143 and 129.
* A failed final save writes the result to a fallback place and says where (exit 1).
* A log or preview that cannot be written any more warns once; the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from .. import builtins
from ..batch.cluster import Spreading
from ..errors import ConfigError, ImageError, Interrupted, NstError, RunStopped
from ..events import Event, Started, Step
from .output import fail, say
from .progress import JsonLog, ProgressBar

if TYPE_CHECKING:
    from ..checkpoints import WorkFolder
    from ..config import Config
    from ..planning import Plan

Runner = Callable[[Callable[[Event], None], int], Any]

# -- the options of a command that writes one image (declared once) ------------------------
Output = Annotated[Path, typer.Option("-o", "--output", help="Output image (.png, .jpg, ...).")]
Log = Annotated[
    Path | None, typer.Option(help="Write the losses of every iteration as JSON lines.")
]
SaveEvery = Annotated[
    int, typer.Option(help="Also write the image every N iterations (OUT_00050.png).")
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress output or advice: errors only.")
]
CheckpointEvery = Annotated[
    str,
    typer.Option(
        help="Save the whole state of the run in OUT.work/ at most every this many seconds "
        "(and at each coarse-to-fine stage and on Ctrl-C), so the same command continues "
        "after any stop, even a kill; 0: after every iteration; none: never. "
        "docs/RELIABILITY.md.",
        metavar="SECONDS",
    ),
]
Restart = Annotated[
    bool,
    typer.Option(help="Discard the checkpoints of an earlier run (OUT.work/) and start anew."),
]


@dataclass(frozen=True)
class Outputs:
    """Where a painting command writes: the image, the log, intermediate images, output,
    and how it keeps checkpoints to continue from."""

    image: Path
    log: Path | None = None
    save_every: int = 0
    quiet: bool = False
    checkpoint_every: str = "60"
    restart: bool = False


# -- paths -----------------------------------------------------------------------------------
def preview_path(output: Path, iteration: int, stage: int, stages: int) -> Path:
    tag = f"s{stage + 1}_" if stages > 1 else ""
    return output.with_name(f"{output.stem}_{tag}{iteration:05d}{output.suffix}")


def _is_preview_of(output: Path, candidate: Path) -> bool:
    pattern = rf"{re.escape(output.stem)}_(s\d+_)?\d{{5,}}{re.escape(output.suffix)}"
    return candidate.parent == output.parent and re.fullmatch(pattern, candidate.name) is not None


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) when the file exists)."""
    try:
        resolved = str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        resolved = os.path.abspath(path)
    try:
        st = os.stat(path)
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def same_file(a: Path, b: Path) -> bool:
    ra, ia = _identity(a)
    rb, ib = _identity(b)
    return ra == rb or (ia is not None and ia == ib)


def check_writable(path: Path, what: str, make: bool = True) -> None:
    """Refuse, with one line, a place where a file cannot be written: a name that is too
    long, a symlink loop, a folder that cannot be made or written, a directory. With
    ``make=False`` (a dry run) a missing folder is not made: its nearest existing parent
    must be a folder that can be written."""
    name_max = 255
    with contextlib.suppress(OSError, ValueError):
        folder = path.parent if str(path.parent) else Path(".")
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    if len(os.fsencode(path.name)) > name_max:
        raise ConfigError(f"{what} {path}: the file name is longer than {name_max} bytes")
    try:
        path.resolve(strict=False)
    except (OSError, RuntimeError):
        raise ConfigError(f"{what} {path}: a loop of symbolic links") from None
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a directory")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path}: not a regular file")
    folder = path.parent if str(path.parent) else Path(".")
    if not make:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"{what} {path}: cannot write in {folder}")
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{what} {path}: cannot make the folder {folder} ({exc.strerror})"
        ) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".nst-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot write in {folder} ({exc.strerror})") from None


def check_paths(
    output: Path,
    inputs: Sequence[str | None],
    log: Path | None = None,
    previews: bool = False,
    extra_outputs: Sequence[Path] = (),
    check_format: Callable[[Path], object] | None = None,
) -> None:
    """Before any work: the output (and log, and any other output) can be written and none
    names an input or another output; ``check_format`` (default: the image formats) refuses
    an unknown extension."""
    (check_format or _output_format)(output)
    check_writable(output, "output")
    files = [Path(p) for p in inputs if p and not builtins.is_builtin(p)]
    for other in extra_outputs:
        check_writable(other, "output")
        if same_file(other, output):
            raise ConfigError(f"output {other} is also the image output; choose another name")
        for src in files:
            if same_file(other, src):
                raise ConfigError(f"output {other} is an input file; choose another name")
    for src in files:
        if same_file(output, src):
            raise ConfigError(f"output {output} is an input file; choose another name")
        if previews and _is_preview_of(output, src):
            raise ConfigError(
                f"output {output}: the image saved every few iterations would overwrite "
                f"the input {src}; choose another name"
            )
        if log is not None and same_file(log, src):
            raise ConfigError(f"log file {log} is an input file")
    if log is not None:
        if same_file(log, output) or (previews and _is_preview_of(output, log)):
            raise ConfigError(f"log file {log} is the output image")
        check_writable(log, "log file")


# -- signals -----------------------------------------------------------------------------------
class _Signals:
    """SIGTERM and SIGHUP raise KeyboardInterrupt (like Ctrl-C) while installed."""

    def __init__(self) -> None:
        self.received = signal.SIGINT

    def handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum)
        raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[_Signals]:
    state = _Signals()
    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {}
    try:
        for sig in wanted:
            previous[sig] = signal.signal(sig, state.handle)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- saving ------------------------------------------------------------------------------------
# nst.imageio (and so torch) is imported when an image is saved, not when --help is printed
def _output_format(path: Path) -> object:
    from ..imageio import output_format

    return output_format(path)


def save_image(image: Any, path: Path) -> None:
    from ..imageio import save_image as save

    save(image, path)


def fallback_path(output: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(tempfile.gettempdir())
    return folder / f"nst-rescued-{output.stem[:80]}-{stamp}-{os.getpid()}.png"


def save_or_rescue(image: Any, output: Path) -> None:
    """Save the result atomically; if that fails, save it elsewhere and say where (exit 1)."""
    try:
        save_image(image, output)
        return
    except ImageError as exc:
        problem = exc.reason
    spare = fallback_path(output)
    try:
        save_image(image, spare)
    except ImageError as exc:
        fail(ImageError(str(output), f"{problem}; saving to {spare} failed too ({exc.reason}): "
                                     "the result is lost"), 1)  # fmt: skip
    fail(ImageError(str(output), f"{problem}; the result was saved to {spare} instead"), 1)


# -- the job -----------------------------------------------------------------------------------
def run_job(
    run: Runner,
    output: Path,
    *,
    quiet: bool,
    log: Path | None,
    save_every: int,
    extra_handlers: tuple[Callable[[Event], None], ...] = (),
    work: WorkFolder | None = None,
    resumed: dict[str, Any] | None = None,
) -> None:
    """Run ``run(on_event, preview_every)`` with progress, log, previews and signal
    handling, then write its image to ``output`` atomically. ``work`` holds the run's
    checkpoints (removed once the image is written); ``resumed`` is the log's record of
    where a continued run goes on from."""
    handlers: list[Callable[[Event], None]] = list(extra_handlers)
    if not quiet:
        handlers.append(ProgressBar())
    try:
        json_log = JsonLog(log) if log is not None else None
    except NstError as exc:
        fail(exc)
    if json_log is not None:
        handlers.append(json_log)
        if resumed is not None:
            json_log.write(resumed)
    stages = [1]
    previews_ok = [True]

    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            stages[0] = event.stages
        for h in handlers:
            h(event)
        if isinstance(event, Step) and event.preview is not None and save_every and previews_ok[0]:
            target = preview_path(output, event.iteration, event.stage, stages[0])
            try:
                save_image(event.preview, target)
            except ImageError as exc:
                say(f"warning: {exc}; no more intermediate images are written")
                previews_ok[0] = False

    from .threads import command_threads  # torch: not imported before a command runs

    closing: list[_Closable] = [json_log] if json_log is not None else []
    fit = command_threads(None if quiet else say)
    if fit is not None:
        handlers.append(fit)
        closing.append(fit)
    with guarded(lambda: "interrupted before the first iteration; nothing written", closing) as sig:
        try:
            image = run(on_event, save_every)
        except RunStopped as exc:
            if json_log is not None:
                json_log.close()
            code = sig.exit_code if isinstance(exc, Interrupted) else exc.exit_code
            save_or_rescue(exc.image, output)
            what = "interrupted" if isinstance(exc, Interrupted) else "stopped"
            again = ""
            if work is not None and isinstance(exc, Interrupted) and work.last_saved:
                again = f" (the same command continues from {work.last_saved})"
            elif work is not None:  # a diverged run is not continued
                work.remove()
            say(f"{what}: {exc}{again}; wrote the last image to {output}")
            raise typer.Exit(code) from None
    save_or_rescue(image, output)
    if work is not None:
        work.remove()
    if not quiet:
        typer.echo(f"wrote {output}", err=True)


class _Closable(Protocol):
    def close(self) -> None: ...


@contextlib.contextmanager
def guarded(
    interrupted: Callable[[], str], closing: Sequence[_Closable] = ()
) -> Iterator[_Signals]:
    """The body runs with SIGTERM and SIGHUP raised as Ctrl-C. Ctrl-C (or those) says
    ``interrupted()`` and exits 130 (143, 129); an NstError is one line and exit 2; what
    ``closing`` holds (logs, the thread fitter) is closed either way."""
    with signals_as_interrupts() as signals:
        try:
            yield signals
        except KeyboardInterrupt:
            say(interrupted())
            raise typer.Exit(signals.exit_code) from None
        except NstError as exc:
            fail(exc)
        finally:
            for log in closing:
                log.close()


def paint(
    outputs: Outputs,
    images: Sequence[str],
    config: Config | Callable[[], Config],
    plan: Callable[[Config], Plan],
    spreading: Spreading | None = None,
) -> None:
    """The run of a command that paints one image (stylize, demo, reconstruct): the
    config (or its making), then every output place checked against the ``images`` read
    and the files the config names, then the plan, then :func:`run_job`. Any refusal is
    one line before work starts."""
    from ..checkpoints import WorkFolder, describe, parse_every, plan_fingerprint
    from ..execution import execute

    try:
        if outputs.save_every < 0:
            raise ConfigError(f"save-every must be >= 0 (got {outputs.save_every})")
        every = parse_every(outputs.checkpoint_every)
        final = config() if callable(config) else config
        inputs = [*images, *final.input_paths().values()]
        check_paths(outputs.image, inputs, outputs.log, previews=outputs.save_every > 0)
        ready = plan(final)
        work = WorkFolder(outputs.image, plan_fingerprint(ready, images), every, on_error=say)
        if outputs.restart:
            work.discard()
        loaded = work.load()
    except NstError as exc:
        fail(exc)
    for line in () if outputs.quiet else ready.advice:
        say(f"warning: {line}")
    for note in loaded.notes:
        say(f"warning: {note}")
    state, record = loaded.state, None
    if state is not None:
        say(describe(loaded, len(ready.stages)))
        saved = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loaded.saved_at))
        record = {"type": "resumed", "stage": state.stage, "iteration": state.iteration,
                  "saved": saved}  # fmt: skip
    spread = open_spread(spreading, ready, outputs.quiet) if spreading is not None else None
    try:
        run_job(
            lambda on_event, n: execute(ready, on_event, preview_every=n, resume=state,
                                        checkpoint=work, spread=spread),
            outputs.image, quiet=outputs.quiet, log=outputs.log, save_every=outputs.save_every,
            work=work, resumed=record,
        )  # fmt: skip
    finally:
        if spread is not None:
            spread.close()


def open_spread(spreading: Spreading, plan: Plan, quiet: bool) -> Any:
    """``--workers`` / ``--address``: the tile workers of this run, started (their
    networks loaded) before the run; None when not asked. A failed join is one line."""
    if not spreading.wanted:
        return None
    from ..execution import SPREAD_PIXELS, spread_pays

    try:
        from ..batch.engine import import_ray

        import_ray()
        from ..spread import NetworkSpec, RaySpread

        spread = RaySpread(spreading.cluster(), NetworkSpec.of(plan), spreading.workers)
        count = spread.open()
    except NstError as exc:
        fail(exc)
    if not quiet:
        where = spreading.address or "a local Ray"
        threads = count * spreading.threads_per_worker
        if spread_pays(threads):
            when = f"the stages of {SPREAD_PIXELS / 1e6:.2f} megapixels or more"
        else:
            when = (f"the stages cut in tiles for memory (their {threads} threads would not "
                    "beat this process on a stage it holds whole)")  # fmt: skip
        say(f"{count} tile workers on {where}, for {when}")
    return spread
