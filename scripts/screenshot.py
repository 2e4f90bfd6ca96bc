"""Make docs/screenshot.png: the web app mid-run, built-in images only.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png]

Needs Debian's chromium (make browser) and the playwright package (make install).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from nst.web import WebSettings, create_app

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--iterations", type=int, default=150)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="nst-shot-"))
    settings = WebSettings(data_dir=data, port=port, preview_every=5)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#content-gallery img")
        page.fill("#size", "256")
        page.fill("#iterations", str(args.iterations))
        page.fill("#seed", "0")
        page.click("#start")
        page.wait_for_function(
            f"document.querySelector('.progress-text')?.textContent.includes('/{args.iterations}')"
            f" && Number(document.querySelector('.bar').value) > 0.6",
            timeout=600_000,
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out))
        browser.close()
    server.should_exit = True
    thread.join(30)
    shutil.rmtree(data, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
