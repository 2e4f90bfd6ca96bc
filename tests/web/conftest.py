"""Fixtures of the web tests: a headless Chromium (Debian's, driven by Playwright)."""

import pytest

from tests.web.browser import ARGS, CHROMIUM, browser_or_skip


@pytest.fixture
def chromium():
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()
