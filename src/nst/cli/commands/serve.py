"""``nst serve``: the web app."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ...errors import ConfigError
from ..output import fail, say


def _check_settings(
    port: int, workers: int, max_waiting: int, max_size: int, max_iterations: int, ttl: float
) -> None:
    checks = [
        (0 <= port <= 65535, f"port must be between 0 and 65535 (got {port})"),
        (1 <= workers <= 64, f"workers must be between 1 and 64 (got {workers})"),
        (0 <= max_waiting <= 10_000,
         f"max-waiting must be between 0 and 10000 (got {max_waiting})"),
        (16 <= max_size <= 16384, f"max-size must be between 16 and 16384 (got {max_size})"),
        (0 <= max_iterations <= 1_000_000,
         f"max-iterations must be between 1 and 1000000 (got {max_iterations})"),
        (ttl > 0, f"job-ttl must be > 0 seconds (got {ttl:g})"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _check_port(host: str, port: int) -> None:
    """Refuse, before starting, an address that cannot be bound (in use, not local)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


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
        Path | None,
        typer.Option(help="Job files (default: ~/.local/share/nst/web, private to you)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Jobs running at the same time.")] = 1,
    max_waiting: Annotated[int, typer.Option(help="Jobs allowed to wait; beyond: 429.")] = 8,
    max_size: Annotated[int, typer.Option(help="Largest output side a job may ask.")] = 1024,
    max_iterations: Annotated[int, typer.Option(help="Most iterations a job may ask.")] = 2000,
    job_ttl: Annotated[
        float, typer.Option(help="Seconds a finished job is kept (default 30 days).")
    ] = 30 * 86400,
    history_jobs: Annotated[
        int, typer.Option(help="Finished jobs kept across restarts (oldest removed first).")
    ] = 50,
    history_mb: Annotated[
        float, typer.Option(help="Largest total size of the kept jobs, in MB.")
    ] = 500,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MB.")] = 20,
    max_pixels: Annotated[
        int, typer.Option(help="Most decoded pixels of one uploaded image.")
    ] = 40_000_000,
) -> None:
    """The web app: pick or upload images, tune, watch it paint, download."""
    import uvicorn

    from ...web import WebSettings, create_app
    from ...web.guard import timed_protocol
    from ...web.settings import default_data_dir, make_private_dir

    local = host in ("127.0.0.1", "localhost", "::1")
    try:
        if not local and not allow_remote:
            raise ConfigError(f"host {host} can be reached from other machines; add --allow-remote")
        _check_settings(port, workers, max_waiting, max_size, max_iterations, job_ttl)
        if not 0 < max_body_mb <= 1024:
            raise ConfigError(f"max-body-mb must be > 0 and at most 1024 (got {max_body_mb:g})")
        if not 0 <= history_jobs <= 100_000:
            raise ConfigError(f"history-jobs must be between 0 and 100000 (got {history_jobs})")
        if not 0 <= history_mb <= 1_000_000:
            raise ConfigError(f"history-mb must be between 0 and 1000000 (got {history_mb:g})")
        if not 1 <= max_pixels <= 400_000_000:
            raise ConfigError(f"max-pixels must be between 1 and 400000000 (got {max_pixels})")
        folder = data_dir or default_data_dir()
        try:
            make_private_dir(folder)
        except OSError as exc:
            raise ConfigError(f"data-dir {folder}: cannot use it ({exc.strerror or exc})") from None
        _check_port(host, port)
    except ConfigError as exc:
        fail(exc)
    if not local:
        say(f"warning: serving on {host}: anyone who can reach it can run jobs (there is no login)")
    settings = WebSettings(
        data_dir=folder, host=host, port=port, workers=workers, max_waiting=max_waiting,
        max_size=max_size, max_iterations=max_iterations, job_ttl=job_ttl,
        allowed_hosts=tuple(allowed_host or ()), max_body=int(max_body_mb * 2**20),
        max_pixels=max_pixels, max_request_pixels=max(max_pixels, 60_000_000),
        history_jobs=history_jobs, history_mb=history_mb,
    )  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    app = create_app(settings)

    class Server(uvicorn.Server):
        """Ctrl-C, SIGTERM or SIGHUP: end the event streams and cancel the jobs at once, so
        the server exits within seconds even while pages watch jobs, then exit 130, 143
        or 129 (uvicorn would raise the signal again, and SIGHUP would kill at once)."""

        received: int | None = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:  # listening, with the signal handlers below installed
                say(f"serving http://{shown}:{port}/ (jobs in {folder}); Ctrl-C stops")

        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.manager.begin_stop()
            if self.received is None:
                self.received = int(sig)
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            names = ("SIGINT", "SIGTERM", "SIGHUP")
            wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
            before = {sig: signal.signal(sig, self.handle_exit) for sig in wanted}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

    server = Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning",
            http=timed_protocol(settings.header_timeout), timeout_graceful_shutdown=3,
        )
    )  # fmt: skip
    server.run()
    if server.received is not None:
        say(f"stopped ({signal.Signals(server.received).name})")
        raise typer.Exit(128 + server.received)


def register(app: typer.Typer) -> None:
    app.command()(serve)
