"""``nst serve``: the web app (FastAPI). One page, a small JSON API under /api/.

Safe by default: the server binds 127.0.0.1; the Host header must name this
server (DNS rebinding); state-changing requests from another Origin are refused
(CSRF); no CORS; bodies are capped; uploads go through the project's image loader
(allowlisted formats, pixel limit) and are re-encoded; parameters are limited per
job; job ids are generated here and paths never leave a job's folder.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import io
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import builtins
from ..config import INIT_KEYWORDS, OPTIONS, Config
from ..errors import ConfigError, ImageError, NstError
from ..imageio import load_image, save_image, to_tensor
from ..planning import Plan, plan_stylize
from .jobs import TERMINAL, Job, JobManager, QueueFull, Runner, WebSettings, api_runner, safe_child

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: parameters a browser may not set (server paths and hardware)
SERVER_ONLY = {"weights", "device", "mask", "init"}

ASGIApp = Callable[
    [dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: Host and Origin checks, body cap, multipart for uploads."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app = app
        self.settings = settings
        self.hosts = LOCAL_HOSTS | {settings.host} | set(settings.allowed_hosts)

    def host_ok(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.startswith("[") and "]:" in host:
            name = host.split("]:", 1)[0] + "]"
        return bool(host) and name.lower() in self.hosts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.host_ok(host):
            await _plain(send, 400, "invalid Host header")
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                await _plain(send, 403, "cross-origin request refused")
                return
            if origin is None:
                referer = headers.get("referer")
                if referer and urlsplit(referer).netloc != host:
                    await _plain(send, 403, "cross-origin request refused")
                    return
                if headers.get("sec-fetch-site") == "cross-site":
                    await _plain(send, 403, "cross-origin request refused")
                    return
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.settings.max_body:
                await _plain(send, 413, f"request body over {self.settings.max_body} bytes")
                return
            if scope["path"] == "/api/jobs" and scope["method"] == "POST":
                ctype = headers.get("content-type", "")
                if not ctype.startswith("multipart/form-data"):
                    await _plain(send, 415, "send the job as multipart/form-data")
                    return
        seen = 0
        limit = self.settings.max_body

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        started = False

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body over {limit} bytes")


async def _plain(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _image_status(exc: ImageError) -> int:
    if exc.reason.startswith(("not an image", "unsupported image format")):
        return 415
    if exc.reason.startswith("image is too large"):
        return 413
    return 422


def _static_dir() -> Path:
    return Path(str(importlib.resources.files("nst.web") / "static"))


def create_app(settings: WebSettings, runner: Runner = api_runner) -> FastAPI:
    manager = JobManager(settings, runner)

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
    app.add_middleware(Guard, settings=settings)
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
        fields = [opt.schema() for opt in OPTIONS.values() if opt.web != "server"]
        for f in fields:
            if f["name"] == "size":
                f["max"] = settings.max_size
            elif f["name"] == "iterations":
                f["max"] = settings.max_iterations
            elif f["name"] == "init":
                f["choices"] = list(INIT_KEYWORDS)
        limits = {
            "max_size": settings.max_size,
            "max_iterations": settings.max_iterations,
            "max_styles": settings.max_styles,
            "max_body": settings.max_body,
        }
        return {"fields": fields, "limits": limits, "init": list(INIT_KEYWORDS)}

    def _decode_upload(data: bytes, filename: str | None, target: Path) -> None:
        try:
            img = load_image(data, name=filename or target.stem, max_pixels=settings.max_pixels)
        except ImageError as exc:
            raise HTTPException(_image_status(exc), str(exc)) from None
        save_image(to_tensor(img), target)

    def _save_builtin(name: str, target: Path) -> None:
        if not builtins.is_builtin(name):
            raise HTTPException(422, f"unknown built-in image '{name}' (use builtin:NAME)")
        try:
            save_image(builtins.image(name), target)
        except ImageError as exc:
            raise HTTPException(422, str(exc)) from None

    def _config(params: dict[str, Any], extra: dict[str, Any]) -> Config:
        forbidden = sorted(set(params) & (SERVER_ONLY - {"init"}))
        if forbidden:
            raise HTTPException(422, f"parameter(s) not settable here: {', '.join(forbidden)}")
        init = params.pop("init", "noise") or "noise"
        if init not in INIT_KEYWORDS:
            raise HTTPException(422, f"init must be one of {', '.join(INIT_KEYWORDS)}")
        try:
            config = Config.from_dict({**params, **extra, "init": extra.get("init", init)})
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        sizes = [config.size, config.style_size or 0, *config.scales]
        if max(sizes) > settings.max_size:
            raise HTTPException(422, f"size: at most {settings.max_size} px on this server")
        if config.iterations > settings.max_iterations:
            raise HTTPException(
                422, f"iterations: at most {settings.max_iterations} on this server"
            )
        return config

    def _prepare(
        folder: Path,
        content: tuple[bytes, str | None] | None,
        content_builtin: str | None,
        styles: list[tuple[bytes, str | None]],
        style_builtins: list[str],
        mask: tuple[bytes, str | None] | None,
        init_from: Path | None,
        values: dict[str, Any],
    ) -> tuple[Plan, list[Path]]:
        """Decode the uploads, write the job's inputs and plan the run (a worker thread)."""
        content_path = folder / "content.png"
        if content is not None:
            _decode_upload(*content, content_path)
        else:
            _save_builtin(str(content_builtin), content_path)
        style_paths: list[Path] = []
        for data, name in styles:
            style_paths.append(folder / f"style_{len(style_paths)}.png")
            _decode_upload(data, name, style_paths[-1])
        for ref in style_builtins:
            style_paths.append(folder / f"style_{len(style_paths)}.png")
            _save_builtin(ref, style_paths[-1])
        extra: dict[str, Any] = {}
        if mask is not None:
            _decode_upload(*mask, folder / "mask.png")
            extra["mask"] = str(folder / "mask.png")
        if init_from is not None:
            shutil.copy(init_from, folder / "init.png")
            extra["init"] = str(folder / "init.png")
        config = _config(dict(values), extra)
        try:
            plan = plan_stylize(str(content_path), [str(p) for p in style_paths], config)
        except ImageError as exc:
            raise HTTPException(_image_status(exc), str(exc)) from None
        except NstError as exc:
            raise HTTPException(422, str(exc)) from None
        return plan, style_paths

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
        try:
            values = json.loads(params)
        except json.JSONDecodeError:
            raise HTTPException(422, "params: not valid JSON") from None
        if not isinstance(values, dict):
            raise HTTPException(422, "params: expected a JSON object")
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

        async def read(up: UploadFile | None) -> tuple[bytes, str | None] | None:
            return None if up is None else (await up.read(), up.filename)

        uploads = [await read(up) for up in style]
        job_id, folder = manager.new_folder()
        try:
            plan, style_paths = await run_in_threadpool(
                _prepare, folder, await read(content), content_builtin,
                [u for u in uploads if u is not None], style_builtin, await read(mask),
                init_from, values,
            )  # fmt: skip
            shown = {k: v for k, v in plan.config.to_dict().items() if k not in SERVER_ONLY}
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
        start = int(last) + 1 if last.isdigit() else 0

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
