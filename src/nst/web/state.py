"""What the routes share: one object on ``app.state.nst``, read through :func:`state`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from ..config import Config
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
    builtin_png: dict[str, bytes] = field(default_factory=dict)  # built-ins encoded once
    saliency_busy: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


def state(request: Request) -> AppState:
    """The app's shared state (a FastAPI dependency)."""
    shared: AppState = request.app.state.nst
    return shared


def job_or_404(shared: AppState, job_id: str) -> Job:
    job = shared.manager.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job
