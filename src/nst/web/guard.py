"""HTTP-level protections of the web app, before any route runs.

* ``Guard`` (ASGI middleware): the Host header must name this server (DNS rebinding);
  state-changing requests from another origin are refused (CSRF); request bodies are
  capped, by Content-Length and while streaming (chunked bodies too: 413); a body
  that stalls gets 408; a job must be posted as multipart/form-data. Once the body is
  read, ``receive`` only waits for the client to go: a long response (an event stream
  waits on it for its whole life) has no deadline.
* ``TimedH11Protocol``: uvicorn's HTTP/1.1 protocol with a deadline for a request's
  headers, so a client that trickles them in (slowloris) is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from uvicorn.protocols.http.h11_impl import H11Protocol

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

ASGIApp = Callable[
    [dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]


def megabytes(n: int) -> str:
    """A byte count as people say it: ``20 MB``."""
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


class _Refused(Exception):
    """The request body broke a rule; answered with ``status`` unless a response started."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def plain(send: Callable, status: int, detail: str) -> None:
    """A small JSON error response ``{"detail": ...}``."""
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


class Guard:
    """ASGI middleware: Host and Origin checks, body cap and timeouts, multipart for jobs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        allowed_hosts: tuple[str, ...] = (),
        max_body: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.hosts = LOCAL_HOSTS | {host} | set(allowed_hosts)
        self.max_body = max_body
        self.body_timeout = body_timeout

    def host_ok(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.startswith("[") and "]:" in host:
            name = host.split("]:", 1)[0] + "]"
        return bool(host) and name.lower() in self.hosts

    def refusal(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a request is refused before its body is read, or None."""
        host = headers.get("host", "")
        if not self.host_ok(host):
            return 400, "invalid Host header"
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            return 403, "cross-origin request refused"
        if origin is None:
            referer = headers.get("referer")
            if referer and urlsplit(referer).netloc != host:
                return 403, "cross-origin request refused"
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "cross-origin request refused"
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self.max_body:
            return 413, f"request body over {megabytes(self.max_body)}"
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        if scope["path"] == "/api/jobs" and scope["method"] == "POST" and not multipart:
            return 415, "send the job as multipart/form-data"
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self.refusal(scope, headers)
        if refused is not None:
            await plain(send, *refused)
            return
        seen = 0
        problem: list[_Refused] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * self.body_timeout

        body_done = False

        async def counted() -> dict[str, Any]:
            nonlocal seen, body_done
            if problem:
                raise problem[0]
            if body_done:  # what comes now is only the disconnect: no deadline
                return await receive()
            wait = max(0.0, min(self.body_timeout, deadline - loop.time()))
            try:
                message: dict[str, Any] = await asyncio.wait_for(receive(), wait)
            except asyncio.TimeoutError:
                problem.append(_Refused(408, "the request body came too slowly"))
                raise problem[0] from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    problem.append(_Refused(413, f"request body over {megabytes(self.max_body)}"))
                    raise problem[0]
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        started = False

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if problem:
                return  # the app answered an error of its own making; ours goes out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_Refused):
            await self.app(scope, counted, tracked_send)
        if problem and not started:
            await plain(send, problem[0].status, problem[0].detail)


class TimedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request headers do not
    arrive within ``header_timeout`` seconds (from connecting, or from the end of the
    previous response)."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._arm()
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def timed_protocol(header_timeout: float) -> type[TimedH11Protocol]:
    """The protocol class with this deadline (uvicorn takes a class)."""
    return type("TimedH11", (TimedH11Protocol,), {"header_timeout": header_timeout})
