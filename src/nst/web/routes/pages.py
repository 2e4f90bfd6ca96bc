"""The pages (plain HTML from ``nst/web/static``): Stylize, Explore and the API's
documentation, each drawn by the page itself from the server's own files."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def static_dir() -> Path:
    return Path(str(importlib.resources.files("nst.web") / "static"))


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    return HTMLResponse((static_dir() / "index.html").read_text(encoding="utf-8"))


@router.get("/explore", response_class=HTMLResponse)
def explore() -> HTMLResponse:
    return HTMLResponse((static_dir() / "explore.html").read_text(encoding="utf-8"))


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs() -> HTMLResponse:
    """The API's documentation, drawn in the page from /api/openapi.json (offline)."""
    return HTMLResponse((static_dir() / "apidocs.html").read_text(encoding="utf-8"))
