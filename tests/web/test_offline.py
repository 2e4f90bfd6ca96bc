"""Nothing from outside: every page of the app, the API's documentation included, loads
in Chromium with every request to another host refused, makes none, and the docs page
describes the API from the server's own /api/openapi.json (and passes axe)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.web.browser import serving
from tests.web.helpers import fake_runner

pytestmark = pytest.mark.browser


def test_every_page_loads_with_nothing_from_outside(chromium, tmp_path):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        local = urlparse(url).netloc
        outside: list[str] = []
        context = chromium.new_context(viewport={"width": 1366, "height": 768})

        def only_here(route):
            if urlparse(route.request.url).netloc == local:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_here)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path in ("/", "/explore", "/api/docs"):
            page.goto(url + path, wait_until="networkidle")
        # the docs page drew every request of the API and its types from the schema
        expect(page.locator("section.operation")).not_to_have_count(0)
        expect(page.locator("#post-_api_jobs h3")).to_contain_text("POST")
        expect(page.locator("#get-_api_jobs__job_id__events")).to_contain_text("Server-Sent Events")
        expect(page.locator("#schema-JobView")).to_be_visible()
        found = Axe().run(page).response["violations"]
        assert [v["id"] for v in found] == []
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: no sideways scroll
        wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], wide
        context.close()
    assert outside == [] and errors == []
