"""``nst serve``: the web app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...errors import ConfigError
from ..app import app
from ..output import fail


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

    from ...web import WebSettings, create_app

    local = host in ("127.0.0.1", "localhost", "::1")
    if not local and not allow_remote:
        fail(ConfigError(f"host {host} can be reached from other machines; add --allow-remote"))
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
