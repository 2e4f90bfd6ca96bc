"""A request's torch work on a thread of its own, which ends with it
(:mod:`nst.own_thread`): the server's pooled request threads (AnyIO's, which
``run_in_threadpool`` uses) keep no OpenMP team beside the jobs'. Done there, decoding an
upload or planning a job made the web's jobs twice as slow as the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from ..own_thread import on_own_thread

T = TypeVar("T")


async def in_own_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on a new thread that ends when it returns; its result, or its
    exception raised here. A pooled thread only waits for it (and keeps no team)."""
    return await run_in_threadpool(on_own_thread, fn, *args)
