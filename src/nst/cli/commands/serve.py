"""``nst serve``: the web app."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ...errors import ConfigError
from ...web.settings import ServeConfig, WebSettings
from ..options import with_config
from ..output import exit_now, fail, say


def _check_port(host: str, port: int) -> None:
    """Refuse, before starting, an address that cannot be bound (in use, not local)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


@with_config(cls=ServeConfig)
def serve(
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="Extra host name accepted in the Host header.", rich_help_panel="Server"),
    ] = None,
    list_jobs: Annotated[
        bool,
        typer.Option(
            "--list-jobs",
            help="List every visitor's jobs in the data folder and exit.",
            rich_help_panel="Sign-in",
        ),
    ] = False,
    *,
    config: ServeConfig,
) -> None:
    """The web app: pick or upload images, tune, watch it paint, download."""
    from ...web.access import new_token, read_token
    from ...web.settings import default_data_dir, make_private_dir

    host, port = config.host, config.port
    local = host in ("127.0.0.1", "localhost", "::1")
    folder = Path(config.data_dir) if config.data_dir else default_data_dir()
    if list_jobs:
        _list_jobs(folder)
        return
    try:
        if not local and not config.allow_remote:
            raise ConfigError(f"host {host} can be reached from other machines; add --allow-remote")
        token, source = read_token(config.token_file)
        try:
            make_private_dir(folder)
        except OSError as exc:
            raise ConfigError(f"data-dir {folder}: cannot use it ({exc.strerror or exc})") from None
        _check_port(host, port)
    except ConfigError as exc:
        fail(exc)
    made = token is None and not local  # another machine may reach it: never without sign-in
    if made:
        token = new_token()
    settings = config.settings(folder, tuple(allowed_host or ()), token)
    runner = None
    if config.address is not None:
        runner = _join(config)
        say(f"jobs run on the Ray cluster at {config.address}")
    try:
        welcome = _welcome(host, port, token if made else None, source)
        code, computing = _run(settings, config, welcome, runner)
    finally:
        if runner is not None:
            runner.close()
    if computing:  # a thread still in torch: no interpreter finalization under it
        exit_now(code)
    if code:
        raise typer.Exit(code)


def _join(config: ServeConfig) -> Any:
    """``--address``: the runner of jobs on the Ray cluster, joined now (one line if not)."""
    from ...batch.cluster import Cluster

    try:
        from ...batch.engine import import_ray

        import_ray()
        from ...web.cluster import ClusterRunner
        from ...web.jobs import api_runner

        where = Cluster(address=config.address, threads_per_worker=config.threads_per_worker,
                        spread_from=config.spread_from)  # fmt: skip
        runner = ClusterRunner(where, local=api_runner)
        runner.open()
    except ConfigError as exc:
        fail(exc)
    return runner


def _welcome(host: str, port: int, made: str | None, source: str | None) -> list[str]:
    """What the server says once it listens: where to open it and how to sign in (a token
    it made is shown once, in the address, as Jupyter does; one from a file never)."""
    name = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    url = f"http://{f'[{name}]' if ':' in name else name}:{port}/"
    if made is not None:
        return [f"open {url}?token={made}", "(sign-in token made for this run; "
                "--token-file or NST_TOKEN keeps one across runs)"]  # fmt: skip
    if source is not None:
        return [f"open {url} and sign in with the token from {source}"]
    return []  # no sign-in: the "serving" line says it all


def _list_jobs(folder: Path) -> None:
    """``--list-jobs``: every visitor's jobs, one line each (visitor ids shortened)."""
    import time

    from ...web.admin import listed

    jobs = listed(folder)
    if not jobs:
        typer.echo(f"no jobs in {folder}")
        return
    typer.echo(f"{'job':<32}  {'visitor':<12}  {'state':<11}  {'kind':<9}  {'created':<16}  size")
    for j in jobs:
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created)) if j.created else "?"
        who = j.visitor[:12] or "(no sign-in)"
        size = f"{j.size} px" if j.size else ""
        typer.echo(f"{j.id:<32}  {who:<12}  {j.state:<11}  {j.kind:<9}  {made:<16}  {size}")
    visitors = len({j.visitor for j in jobs})
    total = sum(j.bytes for j in jobs) / 2**20
    typer.echo(f"{len(jobs)} jobs of {visitors} visitors, {total:.1f} MB in {folder}")


class RedactToken(logging.Filter):
    """Takes the sign-in token out of any log line (an address with ``?token=`` in
    uvicorn's access log, a header quoted in an error): the token is never logged."""

    PATTERN = re.compile(r"(token=)[^&\s\"']+|(Bearer\s+)[^\s\"',]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.PATTERN.sub(lambda m: (m.group(1) or m.group(2)) + "…", message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class ClosedTabNoise(logging.Filter):
    """asyncio's "socket.send() raised exception." comes when a tab closes while its event
    stream is being written (the stream ends at its next check): nothing anyone can act on,
    and a class closing tabs made twenty of them. Other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "socket.send() raised exception."


def _run(
    settings: WebSettings, config: ServeConfig, welcome: list[str], runner: Any = None
) -> tuple[int, bool]:
    """Serve until a signal; returns the exit code (128 + the signal's number) and whether
    a thread of the server's still computes."""
    import uvicorn

    logging.getLogger("asyncio").addFilter(ClosedTabNoise())  # this process is the server's
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "nst", "nst.web"):
        logging.getLogger(name).addFilter(RedactToken())

    from ...web import create_app
    from ...web.guard import timed_protocol

    host, port, folder = settings.host, settings.port, settings.data_dir
    shown = f"[{host}]" if ":" in host else host
    app = create_app(settings, runner) if runner is not None else create_app(settings)

    class Server(uvicorn.Server):
        """Ctrl-C, SIGTERM or SIGHUP: end the event streams and cancel the jobs at once, so
        the server exits within seconds even while pages watch jobs, then exit 130, 143
        or 129 (uvicorn would raise the signal again, and SIGHUP would kill at once). A
        second signal stops waiting for the running job's next step."""

        received: int | None = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:  # listening, with the signal handlers below installed
                say(f"serving http://{shown}:{port}/ (jobs in {folder}); Ctrl-C stops")
                for line in welcome:
                    say(line)

        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.manager.begin_stop()
            if self.received is None:
                self.received = int(sig)
            else:  # a second signal: quit now, without waiting for a job's next step
                app.state.manager.hurry()
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
            # X-Forwarded-* only from the proxies the admin named (uvicorn's default trusts
            # 127.0.0.1 always)
            proxy_headers=config.proxy_headers or config.forwarded_allow_ips is not None,
            forwarded_allow_ips=config.forwarded_allow_ips or "127.0.0.1",
        )
    )  # fmt: skip
    server.run()
    code = 0
    if server.received is not None:
        say(f"stopped ({signal.Signals(server.received).name})")
        code = 128 + server.received
    return code, app.state.manager.computing()


def register(app: typer.Typer) -> None:
    app.command()(serve)
