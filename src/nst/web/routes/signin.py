"""The sign-in page and its form (when the server has a token: ``access.py``), and
signing out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..access import COOKIE, Access, safe_next, signin_page
from ..schemas import SessionView
from ..state import AppState, state

router = APIRouter(include_in_schema=False)
Shared = Annotated[AppState, Depends(state)]


def _page(message: str, next_path: str, status: int) -> HTMLResponse:
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    return HTMLResponse(signin_page(message, next_path).decode(), status, headers)


@router.get("/signin", response_class=HTMLResponse)
def signin_form(shared: Shared, next: str = "/") -> Response:
    """The sign-in form (a server without a token: on to the page)."""
    if shared.access is None:
        return RedirectResponse(safe_next(next), 303)
    return _page("", safe_next(next), 200)


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    shared: Shared,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """The form's token: right: a session cookie and on to ``next``; wrong: the form
    again (401); too many wrong ones from this address: 429 and how long to wait."""
    access: Access | None = shared.access
    target = safe_next(next[:2048])
    token = token[:1024]  # longer is wrong anyway (tokens have at most 256 characters)
    if access is None:
        return RedirectResponse(target, 303)
    address = request.client.host if request.client else "unknown"
    got = access.check(token, address) if token else False
    if isinstance(got, float):
        wait = max(1, round(got))
        page = _page(f"too many wrong tokens from this address; try again in {wait} s", target, 429)
        page.headers["Retry-After"] = str(wait)
        return page
    if got is not True:
        return _page("that token is not right" if token else "type the token", target, 401)
    visitor = request.state.visitor or secrets.token_hex(16)  # signed in already: the same
    reply = RedirectResponse(target, 303)
    cookie = access.set_cookie(visitor, request.url.scheme == "https")
    reply.headers.append("set-cookie", cookie.decode())
    return reply


@router.post("/signout")
def signout(shared: Shared) -> Response:
    """End this browser's session (its runs stay on the server until they expire)."""
    reply = RedirectResponse("/signin" if shared.access else "/", 303)
    reply.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return reply


@router.get("/api/session", include_in_schema=True)
def session(shared: Shared) -> SessionView:
    """Whether this server asks for a token (a page shows Sign out then)."""
    return SessionView(signin=shared.access is not None)
