"""Torch work on a thread of its own, which ends with it.

A thread that once ran a parallel torch operation keeps its OpenMP team for as long as it
lives. With a second live team in the process, MKL's LAPACK runs 4.5x slower on the
thread that computes (w2's float64 eigenvalues: 56 ms for a 512 x 512 matrix against
12.6 ms; docs/PERFORMANCE.md). Pooled threads live on: the web server's request threads,
a Ray actor's call threads. Their torch work runs here instead; a thread that ends takes
its team with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def on_own_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on a new thread that ends when it returns, waited for here; its
    result, or its exception raised here."""
    out: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            out.append(fn(*args))
        except BaseException as exc:  # raised again on the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, name="nst-own-thread", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out[0]
