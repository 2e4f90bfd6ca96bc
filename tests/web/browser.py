"""Helpers of the browser tests: Debian's chromium, a server in a thread, keyboard moves."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from nst.web import WebSettings, create_app
from nst.web.jobs import Runner

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def browser_or_skip() -> None:
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if missing:
        if os.environ.get("NST_REQUIRE_BROWSER"):
            pytest.fail(f"missing {' and '.join(missing)} (make test installs them)")
        pytest.skip(f"missing {' and '.join(missing)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(data_dir: Path, runner: Runner | None = None, **settings: object) -> Iterator[str]:
    """The web app on a free port in a thread; yields its URL; stops it after."""
    port = free_port()
    settings = {"calibrate": False, "measure_load": False, **settings}  # no test run, load 0
    web = WebSettings(data_dir=data_dir, port=port, **settings)  # type: ignore[arg-type]
    app = create_app(web, runner) if runner is not None else create_app(web)
    srv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.manager.begin_stop()
        srv.should_exit = True
        thread.join(15)


def tab_to(page, selector: str, limit: int = 120) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def job_of(url: str, page) -> dict:
    job_id = page.locator(".job").first.get_attribute("data-id")
    with urllib.request.urlopen(f"{url}/api/jobs/{job_id}") as r:
        return json.loads(r.read())


def open_page(chromium, url: str, width: int = 1366, height: int = 768, scheme: str = "light",
              init: str | None = None):  # fmt: skip
    """The Stylize page, its form and galleries loaded, its script errors collected
    (``init``: a script run before the page's own)."""
    page = chromium.new_page(viewport={"width": width, "height": height}, color_scheme=scheme)
    if init is not None:
        page.add_init_script(init)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    page.wait_for_selector("#content-gallery .thumb")
    page.wait_for_selector("#iterations")
    return page


def small_run(page, iterations: int = 4) -> None:
    page.fill("#size", "48")
    page.fill("#iterations", str(iterations))
    page.fill("#seed", "0")
