"""A request's torch work on a thread of its own, which ends with it.

A thread that once ran a parallel torch operation keeps its OpenMP team for as long as it
lives. The server's pooled threads (AnyIO's, which ``run_in_threadpool`` uses) live on, so
a request that decoded an upload or planned a job there left a second team in the
process, and with it MKL's LAPACK ran 4.5x slower on the job's thread (w2's float64
eigenvalues: 56 ms for a 512 x 512 matrix against 12.6 ms), which made the web's jobs
twice as slow as the command line (docs/PERFORMANCE.md). A thread that ends takes its team
with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


async def in_own_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on a new thread that ends when it returns; its result, or its
    exception raised here. A pooled thread only waits for it (and keeps no team)."""
    return await run_in_threadpool(on_own_thread, fn, *args)


def on_own_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on a new thread that ends when it returns, waited for here (for the
    server's synchronous handlers and helpers); its result, or its exception raised here."""
    out: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            out.append(fn(*args))
        except BaseException as exc:  # raised again on the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, name="nst-request", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out[0]
