"""Fixtures of the web tests: a headless Chromium (Debian's, driven by Playwright), and
started job managers."""

import pytest

from nst.web.manager import JobManager
from nst.web.settings import WebSettings
from tests.web.browser import ARGS, CHROMIUM, browser_or_skip


@pytest.fixture
def chromium():
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def manager(tmp_path):
    """make(runner, load=None, **settings) -> a started JobManager (stopped after)."""
    made = []

    def make(runner, load=None, **settings):
        m = JobManager(WebSettings(data_dir=tmp_path / "data", **settings), runner, load)
        m.start()
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop(timeout=30)
