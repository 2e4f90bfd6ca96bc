"""``nst serve``: the web app (FastAPI). One page, a small JSON API under /api/.

Safe by default: the server binds 127.0.0.1; requests pass the ``Guard``
(``guard.py``: Host header, Origin, body cap and timeouts); uploads are decoded by the
project's loader in a worker thread, capped in pixels, re-encoded, and the job is
planned there once (``uploads.py``); parameters are limited per job; job ids are
generated here, paths never leave a job's folder, and no message names a server path.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import io
import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import builtins
from ..config import INIT_KEYWORDS, Config
from .explore import add_explore_routes
from .guard import Guard
from .jobs import TERMINAL, Job, JobManager, QueueFull, Runner, WebSettings, api_runner, safe_child
from .uploads import Preparer, Refusal, Submission, Upload

LAST_EVENT_ID = re.compile(r"[0-9]{1,12}")


def _static_dir() -> Path:
    return Path(str(importlib.resources.files("nst.web") / "static"))


def create_app(
    settings: WebSettings, runner: Runner = api_runner, config_class: type[Config] = Config
) -> FastAPI:
    manager = JobManager(settings, runner)
    preparer = Preparer(settings, config_class)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        yield
        manager.stop()

    app = FastAPI(
        title="nst",
        description="Neural style transfer (Gatys et al. 2016): the API the web page uses.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.manager = manager
    app.add_middleware(
        Guard,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
        max_body=settings.max_body,
        body_timeout=settings.body_timeout,
    )
    app.mount("/static", StaticFiles(directory=_static_dir()), name="static")
    builtin_png: dict[str, bytes] = {}

    def job_or_404(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((_static_dir() / "index.html").read_text(encoding="utf-8"))

    @app.get("/explore", response_class=HTMLResponse, include_in_schema=False)
    def explore() -> HTMLResponse:
        return HTMLResponse((_static_dir() / "explore.html").read_text(encoding="utf-8"))

    add_explore_routes(app, settings, manager)

    @app.get("/api/builtins")
    def builtin_list() -> list[dict[str, str]]:
        """The built-in example images: photos (content) and generated paintings (styles)."""
        return [
            {"name": b.ref, "kind": b.kind, "title": b.title, "url": f"/api/builtins/{n}.png"}
            for n, b in builtins.BUILTINS.items()
        ]

    @app.get("/api/builtins/{name}.png", response_class=Response)
    def builtin_image(name: str) -> Response:
        if name not in builtins.BUILTINS:
            raise HTTPException(404, "no such built-in image")
        if name not in builtin_png:
            buf = io.BytesIO()
            builtins.image(name).save(buf, format="PNG")
            builtin_png[name] = buf.getvalue()
        return Response(builtin_png[name], media_type="image/png")

    @app.get("/api/config")
    def config_schema() -> dict[str, Any]:
        """Every option a job may set (kind, default, range, choices, help) and this
        server's limits: the page builds its form and checks from this."""
        fields = config_class.web_schema(settings.limits())
        limits = {
            "max_size": settings.max_size,
            "max_iterations": settings.max_iterations,
            "max_styles": settings.max_styles,
            "max_body": settings.max_body,
            "max_pixels": settings.max_pixels,
        }
        return {"fields": fields, "limits": limits, "init": list(INIT_KEYWORDS)}

    @app.post("/api/jobs", status_code=201)
    async def create_job(
        content: UploadFile | None = File(None, description="Content image file"),
        content_builtin: str | None = Form(None, description="or a builtin:NAME"),
        style: list[UploadFile] = File([], description="Style image file(s)"),
        style_builtin: list[str] = Form([], description="and/or builtin:NAME style(s)"),
        mask: UploadFile | None = File(None, description="Region mask (with params.regions)"),
        init_job: str | None = Form(None, description="Start from this job's result"),
        params: str = Form("{}", description="JSON object of Config parameters"),
    ) -> dict[str, Any]:
        """Create a style-transfer job; it waits in the queue (429 when the queue is full)."""
        n_styles = len(style) + len(style_builtin)
        if (content is None) == (content_builtin is None):
            raise HTTPException(422, "give one content image (a file or a built-in)")
        if not 1 <= n_styles <= settings.max_styles:
            raise HTTPException(422, f"give 1 to {settings.max_styles} style images")
        init_from = None
        if init_job is not None:
            source = manager.get(init_job)
            if source is None:
                raise HTTPException(422, "init_job: no such job")
            if not source.has_result:
                raise HTTPException(422, "init_job: that job has no result yet")
            init_from = source.folder / "result.png"

        async def read(up: UploadFile | None, role: str) -> Upload | None:
            if up is None:
                return None
            return Upload(await up.read(), up.filename or role)

        styles = [await read(up, f"style {i + 1}") for i, up in enumerate(style)]
        submission = Submission(
            params, await read(content, "content"), content_builtin,
            tuple(s for s in styles if s is not None), tuple(style_builtin),
            await read(mask, "mask"), init_from,
        )  # fmt: skip
        job_id, folder = manager.new_folder()
        try:
            try:
                plan, style_paths = await run_in_threadpool(preparer.prepare, folder, submission)
            except Refusal as exc:
                raise HTTPException(exc.status, exc.detail) from None
            hidden = config_class.server_only()
            shown = {k: v for k, v in plan.config.to_dict().items() if k not in hidden}
            shown["init"] = "previous result" if init_job else plan.config.init
            shown["seed"] = plan.seed
            job = Job(job_id, folder, plan, folder / "content.png", style_paths, shown)
            try:
                position = manager.submit(job)
            except QueueFull:
                raise HTTPException(
                    429, f"the queue is full ({settings.max_waiting} jobs waiting); try later"
                ) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {**job.to_dict(), "position": position}

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        """All jobs this server knows, oldest first."""
        return [j.to_dict() for j in manager.all()]

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        """One job: state, parameters, progress, result."""
        return job_or_404(job_id).to_dict()

    @app.post("/api/jobs/{job_id}/cancel", status_code=202)
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Stop a job; a running one keeps its last image as the result."""
        job = job_or_404(job_id)
        manager.cancel(job)
        return job.to_dict()

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str) -> Response:
        """Forget a job and delete its files (a running job is stopped first)."""
        manager.delete(job_or_404(job_id))
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """Server-Sent Events: the job's past events, then new ones until it ends."""
        job = job_or_404(job_id)
        last = request.headers.get("last-event-id", "")
        start = int(last) + 1 if LAST_EVENT_ID.fullmatch(last) else 0

        async def stream() -> AsyncIterator[str]:
            i = start
            beat = time.monotonic()
            while True:
                batch = job.events[i:]
                for event in batch:
                    head = f"id: {event['seq']}\nevent: {event['type']}\n"
                    yield f"{head}data: {json.dumps(event)}\n\n"
                i += len(batch)
                if job.state in TERMINAL and i >= len(job.events):
                    yield "event: end\ndata: {}\n\n"
                    return
                if manager.closing.is_set():  # the server stops: the page will retry
                    return
                if await request.is_disconnected():
                    return
                if time.monotonic() - beat > 15:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.1)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _file(job: Job, name: str, download: bool = False) -> FileResponse:
        path = safe_child(job.folder, name)
        if path is None:
            raise HTTPException(404, "no such file")
        headers = {"Cache-Control": "no-store"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="nst-{job.id[:8]}.png"'
        return FileResponse(path, media_type="image/png", headers=headers)

    @app.get("/api/jobs/{job_id}/result.png", response_class=FileResponse)
    def job_result(job_id: str, download: bool = False) -> FileResponse:
        """The result as PNG (download=1: as an attachment)."""
        job = job_or_404(job_id)
        if not job.has_result:
            raise HTTPException(404, "no result yet")
        return _file(job, "result.png", download)

    @app.get("/api/jobs/{job_id}/result.{ext}", response_class=Response)
    def job_result_as(job_id: str, ext: str) -> Response:
        """The result as JPEG (quality 92) or WebP (quality 90), as an attachment."""
        kinds = {"jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
        if ext not in kinds:
            raise HTTPException(404, "no such format (png, jpg or webp)")
        job = job_or_404(job_id)
        path = safe_child(job.folder, "result.png") if job.has_result else None
        if path is None:
            raise HTTPException(404, "no result yet")
        fmt, media = kinds[ext]
        from PIL import Image

        with Image.open(path) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format=fmt, quality=92 if fmt == "JPEG" else 90)
        headers = {
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="nst-{job.id[:8]}.{ext}"',
        }
        return Response(buf.getvalue(), media_type=media, headers=headers)

    @app.get("/api/estimate")
    def estimate(size: int, iterations: int, aspect: float = 0.75) -> dict[str, Any]:
        """Seconds a run would take on this server, from the measured seconds per
        iteration per megapixel of its recent runs (null before the first run)."""
        from ..config import Config
        from ..errors import NstError

        try:
            config = Config.from_dict({"size": size, "iterations": iterations})
            if not 0.05 <= aspect <= 20:
                raise HTTPException(422, "aspect must be between 0.05 and 20")
        except NstError as exc:
            raise HTTPException(422, str(exc)) from None
        speed = manager.speed()
        short = min(aspect, 1 / aspect)  # the short side over the long one
        work = sum(
            n * s * s * short / 1e6 for s, n in zip(config.stage_sizes, config.stage_iterations)
        )
        return {
            "seconds": None if speed is None else speed * work,
            "seconds_per_iteration_megapixel": speed,
        }

    @app.get("/api/jobs/{job_id}/preview.png", response_class=FileResponse)
    def job_preview(job_id: str) -> FileResponse:
        """The latest preview image."""
        return _file(job_or_404(job_id), "preview.png")

    @app.get("/api/jobs/{job_id}/inputs/{name}", response_class=FileResponse)
    def job_input(job_id: str, name: str) -> FileResponse:
        """An input image of the job (content.png, style_N.png, mask.png), re-encoded."""
        job = job_or_404(job_id)
        if not (
            name in ("content.png", "mask.png")
            or (name.startswith("style_") and name.endswith(".png"))
        ):
            raise HTTPException(404, "no such file")
        return _file(job, name)

    return app
