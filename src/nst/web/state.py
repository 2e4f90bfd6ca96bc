"""What the routes share: one object on ``app.state.nst``, read through :func:`state`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from ..config import Config
from .access import Access
from .gallery import Gallery
from .jobs import Job
from .manager import JobManager
from .settings import WebSettings
from .uploads import Preparer


@dataclass
class AppState:
    settings: WebSettings
    manager: JobManager
    preparer: Preparer
    config_class: type[Config] = Config
    access: Access | None = None  # sign-in (None: off)
    gallery: Gallery = field(default_factory=Gallery)  # built-ins encoded once
    saliency_busy: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


def state(request: Request) -> AppState:
    """The app's shared state (a FastAPI dependency)."""
    shared: AppState = request.app.state.nst
    return shared


def visitor(request: Request) -> str | None:
    """Who is asking (a FastAPI dependency): the signed-in visitor's id, or None on a
    server without sign-in (one person, who sees every job)."""
    who: str | None = getattr(request.state, "visitor", None)
    return who


def owner(who: str | None) -> str:
    """The owner a new job of ``who`` is filed under ("" without sign-in)."""
    return who or ""


def job_or_404(shared: AppState, job_id: str, who: str | None) -> Job:
    """The job if ``who`` may see it; else 404, as for an id that does not exist (another
    visitor learns nothing of it)."""
    job = shared.manager.get(job_id, who)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


class Problem(HTTPException):
    """An HTTP error about one field of a form: the reply is ``{"detail": ..., "field":
    ...}`` (``field`` the option's name, or null), so a page marks and focuses it."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(status, detail)
        self.field = field


async def problem_reply(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler of :class:`Problem`."""
    assert isinstance(exc, Problem)
    return JSONResponse({"detail": exc.detail, "field": exc.field}, status_code=exc.status_code)
