"""The two pages (plain HTML from ``nst/web/static``)."""

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
