"""The web app: ``nst serve`` (FastAPI + uvicorn), one page and a JSON API.

The names are imported on first use, so reading the server's declared settings
(``nst serve --help``) loads neither FastAPI nor torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, install

if TYPE_CHECKING:
    from .app import create_app
    from .manager import JobManager
    from .settings import WebSettings

_WHERE = homes(app=["create_app"], manager=["JobManager"], settings=["WebSettings"])
__all__ = ["JobManager", "WebSettings", "create_app"]
install(__name__, _WHERE)
