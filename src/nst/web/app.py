"""``nst serve``: the web app (FastAPI). Two pages, a small JSON API under /api/.

Safe by default: the server binds 127.0.0.1; requests pass the ``Guard``
(``guard.py``: Host header, Origin, body cap and timeouts); uploads are decoded by the
project's loader in a worker thread, capped in pixels, re-encoded, and the job is
planned there once (``uploads.py``); parameters are limited per job by the options'
declarations; job ids are generated here, paths never leave a job's folder, and no
message names a server path. Jobs and their state belong to the job manager
(``manager.py``); the routes (``routes/``) read and ask it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..config import Config
from .access import Access, SignIn, session_key
from .calibration import start_calibration
from .guard import Guard
from .jobs import Runner, api_runner
from .manager import JobManager
from .routes import ROUTERS
from .routes.pages import static_dir
from .settings import WebSettings, make_private_dir
from .state import AppState, Problem, problem_reply
from .uploads import Preparer


def create_app(
    settings: WebSettings, runner: Runner = api_runner, config_class: type[Config] = Config
) -> FastAPI:
    """The app of one server: its job manager (started and stopped with the app), the
    Guard, the static files and the routers."""
    manager = JobManager(settings, runner)
    access = None
    if settings.token is not None:
        make_private_dir(settings.data_dir)
        access = Access(settings.token, session_key(settings.data_dir, settings.token))
    shared = AppState(settings, manager, Preparer(settings, config_class), config_class, access)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        shared.gallery.warm()
        if settings.calibrate:
            start_calibration(shared)
        yield
        manager.stop()

    app = FastAPI(
        title="nst",
        description="Neural style transfer (Gatys et al. 2016): the API the web page uses.",
        lifespan=lifespan,
        docs_url=None,  # our own page (routes/pages.py): Swagger's loads scripts from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.nst = shared
    app.add_exception_handler(Problem, problem_reply)
    app.state.manager = manager
    app.add_middleware(SignIn, access=access)  # inside the Guard: Host and Origin first
    app.add_middleware(
        Guard,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
        max_body=settings.max_body,
        body_timeout=settings.body_timeout,
    )
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
