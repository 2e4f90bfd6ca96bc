"""One event stream for every job a page follows (Server-Sent Events, multiplexed).

A browser opens at most six connections to one host over HTTP/1.1: a stream per job
left a page with six unfinished runs unable to start, cancel or estimate anything. The
page follows all its jobs on one stream instead: ``GET /api/events?follow=ID:SEQ,...``
sends each job's records from sequence number SEQ on, each with its ``job``, then an
``end`` for a job that has ended (and ``gone`` for one that no longer exists). A page
that follows another job, or lost the stream, opens a new one with the positions it
has (each record carries its ``seq``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from ..jobs import Job
from ..manager import JobManager
from ..state import AppState, state, visitor
from .jobs import next_records, sse_response

router = APIRouter(prefix="/api")
Shared = Annotated[AppState, Depends(state)]
#: ``ID:SEQ``: a job and the first record wanted
POSITION = re.compile(r"([0-9a-f]{32}):([0-9]{1,12})")
#: jobs one stream may follow
MOST_FOLLOWED = 200


def positions(follow: str) -> dict[str, int]:
    """``ID:SEQ,ID:SEQ`` as {job id: first sequence number}; a malformed one is a 422."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in follow.split(",") if p.strip()):
        m = POSITION.fullmatch(part)
        if m is None:
            raise HTTPException(422, f"follow: {part[:40]!r} is not JOB_ID:SEQ")
        out[m.group(1)] = int(m.group(2))
    if len(out) > MOST_FOLLOWED:
        raise HTTPException(422, f"follow: at most {MOST_FOLLOWED} jobs on one stream")
    return out


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


@router.get("/events")
async def follow_jobs(
    request: Request,
    shared: Shared,
    who: Annotated[str | None, Depends(visitor)],
    follow: Annotated[str, Query(description="JOB_ID:SEQ,... the jobs and where to go on")] = "",
) -> StreamingResponse:
    """Server-Sent Events of several jobs on one connection: their records (each with its
    ``job`` and ``seq``) from the positions given, an ``end`` per job that ended."""
    wanted = positions(follow)
    manager = shared.manager
    return sse_response(_stream(manager, request, wanted, who))


async def _stream(
    manager: JobManager, request: Request, wanted: dict[str, int], who: str | None
) -> AsyncIterator[str]:
    jobs: dict[str, Job] = {}
    for job_id in wanted:
        job = manager.get(job_id, who)
        if job is None:  # (another visitor's: as if it did not exist)
            yield _sse("gone", {"job": job_id})
        else:
            jobs[job_id] = job
    waiter = asyncio.Event()
    for job in jobs.values():
        manager.watch(job, waiter)
    try:
        while jobs:
            waiter.clear()  # before reading: a record made after the read wakes us
            for job_id, job in list(jobs.items()):
                batch, wanted[job_id], ended = manager.events_since(job, wanted[job_id])
                for event in batch:
                    yield _sse(event["type"], {**event, "job": job_id})
                if ended:
                    yield _sse("end", {"job": job_id})
                    manager.unwatch(job, waiter)
                    del jobs[job_id]
            if not jobs or (comment := await next_records(manager, waiter, request)) is None:
                return
            if comment:  # a keep-alive on a quiet stream
                yield comment
    finally:
        for job in jobs.values():
            manager.unwatch(job, waiter)
