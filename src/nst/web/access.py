"""Sign-in by token, and who is asking (the visitor each job belongs to).

The convention is Jupyter's: the server has one secret token (``--token-file``,
``NST_TOKEN``, or made at start-up for ``--allow-remote``). A visitor shows it once, in
the address (``/?token=...``), in the sign-in form or, for API clients, in
``Authorization: Bearer TOKEN``, and gets a signed session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS) that names a visitor: a random id each job, upload
and result is filed under. The cookie is signed with a key kept in the data folder and
bound to the token, so visitors keep their jobs across a restart and lose their session
when the token changes.

Tokens are compared in constant time; wrong tokens are counted per client address and,
after a few, that address waits (429) before it may try again. No message says which
part of a sign-in was wrong, and the token is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ..errors import ConfigError
from .settings import FILE_MODE

COOKIE = "nst_session"
#: the environment variable a token may come from (as Jupyter's JUPYTER_TOKEN)
TOKEN_ENV = "NST_TOKEN"
#: a session lasts this long (seconds) before the token is asked again
SESSION_SECONDS = 30 * 86400
#: a token a person chose: this long at least, no spaces, printable
SHORTEST_TOKEN = 8
LONGEST_TOKEN = 256
TOKEN_TEXT = re.compile(r"[!-~]+")  # printable ASCII, no space
#: wrong tokens an address may send before it has to wait; the wait doubles, to this cap
FREE_TRIES = 5
LONGEST_WAIT = 60.0
#: addresses remembered by the throttle (the oldest forgotten first)
REMEMBERED = 10_000
#: paths open without a session: the sign-in page and what it is drawn with
OPEN_PATHS = ("/signin", "/static/", "/favicon.ico")
NOT_SIGNED_IN = (
    "not signed in: open the address the server printed, sign in with its token, "
    "or send Authorization: Bearer TOKEN"
)

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def new_token() -> str:
    """32 hex characters from :mod:`secrets` (what ``--allow-remote`` makes if none given)."""
    return secrets.token_hex(16)


def check_token(token: str, where: str) -> str:
    """A token read from ``where`` (a file or the variable), or a ConfigError naming it."""
    token = token.strip()
    if not token:
        raise ConfigError(f"{where}: the token is empty")
    if not TOKEN_TEXT.fullmatch(token):
        raise ConfigError(f"{where}: the token may hold only printable characters, no spaces")
    if not SHORTEST_TOKEN <= len(token) <= LONGEST_TOKEN:
        raise ConfigError(
            f"{where}: the token must have {SHORTEST_TOKEN} to {LONGEST_TOKEN} characters "
            f"(it has {len(token)})"
        )
    return token


def read_token(token_file: str | None) -> tuple[str | None, str | None]:
    """The token ``--token-file`` names, else ``NST_TOKEN``'s; and where it came from.
    (None, None) when neither is given. A file that cannot be read is a ConfigError."""
    if token_file:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"token-file {token_file}: cannot read it ({reason})") from None
        return check_token(text, f"token-file {token_file}"), str(path)
    if TOKEN_ENV in os.environ:
        return check_token(os.environ[TOKEN_ENV], TOKEN_ENV), TOKEN_ENV
    return None, None


def session_key(data_dir: Path, token: str) -> bytes:
    """The key cookies are signed with: a secret kept in the data folder (made once,
    private), bound to the token (a new token ends every session)."""
    path = data_dir / "session.key"
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = b""
    if len(secret) < 32:
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
    return hmac.new(secret, b"nst session\x00" + token.encode(), hashlib.sha256).digest()


def same(a: str, b: str) -> bool:
    """Whether two secrets are equal, in time that does not depend on where they differ
    (nor on their lengths: their digests are compared)."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(a.encode()).digest(), digest(b.encode()).digest())


@dataclass
class Throttle:
    """Wrong tokens per client address: after ``FREE_TRIES``, each one makes the address
    wait (1 s, 2 s, 4 s ... up to ``LONGEST_WAIT``) before its next try is looked at."""

    clock: Callable[[], float] = time.monotonic
    _wrong: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)

    def wait(self, address: str) -> float:
        """Seconds ``address`` must still wait before a token it sends is checked."""
        _, until = self._wrong.get(address, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, address: str) -> None:
        count, _ = self._wrong.pop(address, (0, 0.0))
        count += 1
        extra = count - FREE_TRIES
        until = self.clock() + min(LONGEST_WAIT, 2.0 ** (extra - 1)) if extra > 0 else 0.0
        self._wrong[address] = (count, until)
        while len(self._wrong) > REMEMBERED:
            self._wrong.popitem(last=False)

    def passed(self, address: str) -> None:
        self._wrong.pop(address, None)


@dataclass
class Access:
    """The server's token and session key: checks tokens, signs and reads cookies."""

    token: str
    key: bytes
    throttle: Throttle = field(default_factory=Throttle)
    clock: Callable[[], float] = time.time

    def cookie(self, visitor: str) -> str:
        """A session cookie's value for ``visitor``: the id, when issued, the signature."""
        issued = str(int(self.clock()))
        return f"{visitor}.{issued}.{self._sign(visitor, issued)}"

    def visitor(self, cookie: str | None) -> str | None:
        """The visitor a cookie names if its signature holds and it has not expired."""
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{32}", parts[0]):
            return None
        visitor, issued, signature = parts
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign(visitor, issued)):
            return None
        if not 0 <= self.clock() - int(issued) <= SESSION_SECONDS:
            return None
        return visitor

    def _sign(self, visitor: str, issued: str) -> str:
        return hmac.new(self.key, f"{visitor}.{issued}".encode(), hashlib.sha256).hexdigest()

    def set_cookie(self, visitor: str, secure: bool) -> bytes:
        """The ``Set-Cookie`` header's value of a new session."""
        flags = f"; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
        return f"{COOKIE}={self.cookie(visitor)}{flags}{'; Secure' if secure else ''}".encode()

    def check(self, token: str, address: str) -> bool | float:
        """True for the right token; False for a wrong one (counted against ``address``);
        or the seconds ``address`` must wait first (the token not looked at)."""
        wait = self.throttle.wait(address)
        if wait > 0:
            return wait
        if same(token, self.token):
            self.throttle.passed(address)
            return True
        self.throttle.failed(address)
        return False


# -- the middleware --------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _session_cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: no session
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _is_page(scope: Scope) -> bool:
    """A request a person's browser makes for a page (answered with the sign-in page),
    rather than an API call (answered with 401)."""
    return (scope["method"] in ("GET", "HEAD") and not scope["path"].startswith("/api/")) or (
        scope["path"] == "/api/docs"
    )


async def respond(
    send: Send,
    status: int,
    body: bytes,
    kind: bytes,
    extra: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    """A small response that is never cached and sends no address to another site (the
    sign-in form still posts with its origin, which ``no-referrer`` would make "null")."""
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"same-origin"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def signin_page(message: str = "", next_path: str = "/") -> bytes:
    """The small sign-in page (the app's stylesheet, its colours in light and dark)."""
    from .routes.pages import static_dir

    page = (static_dir() / "signin.html").read_text(encoding="utf-8")
    shown = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return (
        page.replace("{message}", shown)
        .replace("{next}", html.escape(next_path, quote=True))
        .encode("utf-8")
    )


def signed_in_page(target: str) -> bytes:
    """The answer to an address with the right token: the cookie is set and the page
    goes on to the address without the token (a same-site step, so a SameSite=Strict
    cookie is sent with it even when the link came from another site)."""
    t = html.escape(target, quote=True)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'  # the token's address goes nowhere
        f'<meta http-equiv="refresh" content="0;url={t}"><title>Signed in · nst</title>'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f'<body><main class="signin"><p>Signed in. <a href="{t}">Go on</a>.</p></main>'
        "</body></html>"
    ).encode()


def safe_next(path: str) -> str:
    """Where to go after signing in: a path of this server only (no other host)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


class SignIn:
    """ASGI middleware: every request but the sign-in page's needs a session (a signed
    cookie), a Bearer token or the token in its address; the visitor it names goes into
    ``scope["state"]["visitor"]`` for the routes (None when sign-in is off: one person,
    who sees everything)."""

    def __init__(self, app: Any, access: Access | None) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        access = self.access
        if access is None:
            state["visitor"] = None
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        visitor = access.visitor(_session_cookie(headers))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        secure = scope.get("scheme") == "https"
        if "token" in query and _is_page(scope):
            await self._by_address(scope, send, query, visitor, secure)
            return
        set_cookie: bytes | None = None
        if visitor is None:
            bearer = headers.get("authorization", "")
            if bearer[:7].lower() == "bearer ":
                got = access.check(bearer[7:].strip(), _address(scope))
                if got is not True:
                    await self._refuse(scope, send, got)
                    return
                visitor = secrets.token_hex(16)  # an API client keeps it by its cookie
                set_cookie = access.set_cookie(visitor, secure)
        if visitor is None and not scope["path"].startswith(OPEN_PATHS):
            await self._refuse(scope, send, None)
            return
        state["visitor"] = visitor
        if set_cookie is None:
            await self.app(scope, receive, send)
            return

        async def with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"set-cookie", set_cookie)]}
            await send(message)

        await self.app(scope, receive, with_cookie)

    async def _by_address(
        self, scope: Scope, send: Send, query: dict[str, str], visitor: str | None, secure: bool
    ) -> None:
        """A page asked with ``?token=``: right: a session and on to the page without the
        token; wrong: the sign-in page."""
        assert self.access is not None
        got = self.access.check(query.pop("token"), _address(scope))
        if got is not True:
            await self._refuse(scope, send, got, wrong=True)
            return
        rest = urlencode(query)
        target = scope["path"] + (f"?{rest}" if rest else "")
        cookie = self.access.set_cookie(visitor or secrets.token_hex(16), secure)
        await respond(send, 200, signed_in_page(target), b"text/html; charset=utf-8",
                      [(b"set-cookie", cookie)])  # fmt: skip

    async def _refuse(
        self, scope: Scope, send: Send, got: bool | float | None, wrong: bool = False
    ) -> None:
        """401 (the sign-in page for a page, a sentence for the API), or 429 while the
        address must wait after too many wrong tokens."""
        if isinstance(got, float):
            wait = max(1, round(got))
            detail = f"too many wrong tokens from this address; try again in {wait} s"
            extra = [(b"retry-after", str(wait).encode())]
            status = 429
        else:
            detail, extra, status = NOT_SIGNED_IN, [], 401
        if _is_page(scope):
            message = detail if status == 429 else ("that token is not right" if wrong else "")
            body = signin_page(message, safe_next(scope["path"]))
            await respond(send, status, body, b"text/html; charset=utf-8", extra)
            return
        import json

        body = json.dumps({"detail": detail}).encode()
        extra = [*extra, (b"www-authenticate", b"Bearer")] if status == 401 else extra
        await respond(send, status, body, b"application/json", extra)
