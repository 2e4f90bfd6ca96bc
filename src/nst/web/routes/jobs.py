"""The jobs: create (uploads planned in a worker thread), list, follow (Server-Sent
Events woken by the job manager, no polling), cancel, delete, and their files."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import NstError
from ...imageio import atomic_write
from ...own_thread import on_own_thread
from ..jobs import CONFIG, INPUT_NAME, Job, safe_child
from ..manager import JobManager, QueueFull
from ..offload import in_own_thread
from ..schemas import JobView
from ..settings import FILE_MODE
from ..state import AppState, Problem, job_or_404, owner, state, visitor
from ..uploads import Refusal, Submission, Upload

router = APIRouter(prefix="/api/jobs")
Shared = Annotated[AppState, Depends(state)]
Who = Annotated[str | None, Depends(visitor)]
LAST_EVENT_ID = re.compile(r"[0-9]{1,12}")
#: seconds between keep-alive comments on a quiet stream
KEEP_ALIVE = 15.0


@router.post("", status_code=201)
async def create_job(
    shared: Shared,
    who: Who,
    content: UploadFile | None = File(None, description="Content image file"),
    content_builtin: str | None = Form(None, description="or a builtin:NAME"),
    style: list[UploadFile] = File([], description="Style image file(s)"),
    style_builtin: list[str] = Form([], description="and/or builtin:NAME style(s)"),
    mask: UploadFile | None = File(None, description="Region mask (with params.regions)"),
    init_job: str | None = Form(None, description="Start from this job's result"),
    params: str = Form("{}", description="JSON object of Config parameters"),
) -> JobView:
    """Create a style-transfer job; it waits in the queue, visitors in turn (429 when the
    queue is full or you have as many jobs waiting or running as each visitor may)."""
    settings, manager = shared.settings, shared.manager
    n_styles = len(style) + len(style_builtin)
    if (content is None) == (content_builtin is None):
        raise HTTPException(422, "give one content image (a file or a built-in)")
    if not 1 <= n_styles <= settings.max_styles:
        raise HTTPException(422, f"give 1 to {settings.max_styles} style images")
    init_from = None
    if init_job is not None:
        source = manager.get(init_job, who)
        if source is None:
            raise HTTPException(422, "init_job: no such job")
        if not manager.has_result(source):
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
    job_id, folder = await run_in_threadpool(manager.new_folder, owner(who))
    try:
        try:
            plan, style_paths = await in_own_thread(shared.preparer.prepare, folder, submission)
        except Refusal as exc:
            raise Problem(exc.status, exc.detail, exc.field) from None
        hidden = shared.config_class.server_only()
        shown = {k: v for k, v in plan.config.to_dict().items() if k not in hidden}
        shown["init"] = "previous result" if init_job else plan.config.init
        shown["seed"] = plan.seed
        config = json.dumps(plan.config.to_dict()).encode()  # to plan it again (Continue)
        await run_in_threadpool(atomic_write, folder / CONFIG, lambda f: f.write(config), FILE_MODE)
        photo = folder / "content.png"
        job = Job(job_id, folder, plan, photo, style_paths, shown, owner=owner(who))
        try:
            view = manager.submit(job)
        except QueueFull as exc:
            raise HTTPException(429, str(exc)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return JobView.model_validate(view)


@router.get("")
def list_jobs(shared: Shared, who: Who) -> list[JobView]:
    """Your jobs (every job on a server without sign-in), oldest first."""
    return [JobView.model_validate(v) for v in shared.manager.all(who)]


@router.get("/{job_id}")
def job_status(job_id: str, shared: Shared, who: Who) -> JobView:
    """One job: state, parameters, progress, result."""
    return JobView.model_validate(shared.manager.view(job_or_404(shared, job_id, who)))


@router.post("/{job_id}/cancel", status_code=202)
def cancel_job(job_id: str, shared: Shared, who: Who) -> JobView:
    """Stop a job; a running one keeps its last image as the result."""
    return JobView.model_validate(shared.manager.cancel(job_or_404(shared, job_id, who)))


@router.post("/{job_id}/continue", status_code=202)
def continue_job(job_id: str, shared: Shared, who: Who) -> JobView:
    """Queue again a run the server's stop interrupted; it goes on from its checkpoint
    (409 when the job cannot continue, 429 when the queue is full)."""
    job = job_or_404(shared, job_id, who)
    try:
        view = on_own_thread(shared.manager.continue_job, job)  # plans again: torch
    except QueueFull as exc:
        raise HTTPException(429, str(exc)) from None
    except NstError as exc:
        raise HTTPException(409, str(exc)) from None
    return JobView.model_validate(view)


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: str, shared: Shared, who: Who) -> Response:
    """Forget a job and delete its files (a running job is stopped first)."""
    shared.manager.delete(job_or_404(shared, job_id, who))
    return Response(status_code=204)


@router.get("/{job_id}/events")
async def job_events(job_id: str, request: Request, shared: Shared, who: Who) -> StreamingResponse:
    """Server-Sent Events: the job's past events, then new ones until it ends."""
    manager = shared.manager
    job = job_or_404(shared, job_id, who)
    last = request.headers.get("last-event-id", "")
    start = int(last) + 1 if LAST_EVENT_ID.fullmatch(last) else 0

    async def stream() -> AsyncIterator[str]:
        seq = start
        waiter = manager.watch(job)
        try:
            while True:
                waiter.clear()  # before reading: a record made after the read wakes us
                batch, seq, ended = manager.events_since(job, seq)
                for event in batch:
                    head = f"id: {event['seq']}\nevent: {event['type']}\n"
                    yield f"{head}data: {json.dumps(event)}\n\n"
                if ended:
                    yield "event: end\ndata: {}\n\n"
                    return
                if (comment := await next_records(manager, waiter, request)) is None:
                    return
                if comment:  # a keep-alive on a quiet stream
                    yield comment
        finally:
            manager.unwatch(job, waiter)

    return sse_response(stream())


async def next_records(manager: JobManager, waiter: asyncio.Event, request: Request) -> str | None:
    """Wait until ``waiter`` is set: "" then; on a quiet stream a keep-alive comment to
    send; None when the server stops (the page will retry) or the client has gone: the
    stream ends."""
    if manager.closing.is_set():
        return None
    try:
        await asyncio.wait_for(waiter.wait(), KEEP_ALIVE)
        return ""
    except asyncio.TimeoutError:
        return None if await request.is_disconnected() else ": keep-alive\n\n"


def sse_response(stream: AsyncIterator[str]) -> StreamingResponse:
    """An event stream as Server-Sent Events, never cached or buffered by a proxy."""
    return StreamingResponse(
        stream,
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


def _result(shared: AppState, job_id: str, who: str | None) -> Job:
    job = job_or_404(shared, job_id, who)
    if not shared.manager.has_result(job):
        raise HTTPException(404, "no result yet")
    return job


@router.get("/{job_id}/result.png", response_class=FileResponse)
def job_result(job_id: str, shared: Shared, who: Who, download: bool = False) -> FileResponse:
    """The result as PNG (download=1: as an attachment)."""
    return _file(_result(shared, job_id, who), "result.png", download)


@router.get("/{job_id}/result.{ext}", response_class=Response)
def job_result_as(job_id: str, ext: str, shared: Shared, who: Who) -> Response:
    """The result as JPEG (quality 92) or WebP (quality 90), as an attachment."""
    kinds = {"jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
    if ext not in kinds:
        raise HTTPException(404, "no such format (png, jpg or webp)")
    job = _result(shared, job_id, who)
    path = safe_child(job.folder, "result.png")
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


@router.get("/{job_id}/preview.png", response_class=FileResponse)
def job_preview(job_id: str, shared: Shared, who: Who) -> FileResponse:
    """The latest preview image."""
    return _file(job_or_404(shared, job_id, who), "preview.png")


@router.get("/{job_id}/inputs/{name}", response_class=FileResponse)
def job_input(job_id: str, name: str, shared: Shared, who: Who) -> FileResponse:
    """An input image of the job (content.png, style_N.png, mask.png), re-encoded."""
    job = job_or_404(shared, job_id, who)
    if not INPUT_NAME.fullmatch(name):
        raise HTTPException(404, "no such file")
    return _file(job, name)
