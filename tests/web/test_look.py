"""What a person sees, checked by axe-core: both pages in light and dark mode, at desktop
(1366×768) and phone (390×844) width, empty, with a run going, with runs finished, with
the full-size view open and every panel open; and no page scrolls sideways.

Screenshots of every state go to ``$NST_SCREENSHOTS`` when it is set (to look at them).
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from tests.web.browser import open_page, serving, small_run
from tests.web.helpers import held_runner

pytestmark = pytest.mark.browser
SIZES = ((1366, 768), (390, 844))
RUNNING = ".job[data-state='running']"
DONE = ".job[data-state='done']"


class Look:
    """axe-core and the page's width, for one page in one state; a screenshot if asked."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        folder = os.environ.get("NST_SCREENSHOTS")
        self.shots = Path(folder) if folder else None
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, label: str) -> None:
        page.evaluate("for (const d of document.querySelectorAll('details')) d.open = true")
        found = self.axe.run(page).response["violations"]
        problems = [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in found]
        assert problems == [], label
        wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], f"{label}: the page is {wide[0]} px wide in {wide[1]} px"
        if self.shots:
            name = label.replace(" ", "-").replace(",", "")
            page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


def delete_all(url: str) -> None:
    with urllib.request.urlopen(f"{url}/api/jobs") as r:
        jobs = json.loads(r.read())
    for job in jobs:
        req = urllib.request.Request(f"{url}/api/jobs/{job['id']}", method="DELETE",
                                     headers={"Origin": url})  # fmt: skip
        urllib.request.urlopen(req).close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_pages_in_every_state_pass_axe_and_fit_the_width(
    chromium, tmp_path, tiny_network, scheme
):
    from playwright.sync_api import expect

    look = Look()
    with serving(tmp_path / "data", held_runner(), preview_every=1, workers=2) as url:
        for width, height in SIZES:
            at = f"{scheme} {width}"
            page = open_page(chromium, url, width, height, scheme)
            look(page, f"stylize empty {at}")
            small_run(page)
            page.click("#start")
            expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
            small_run(page, iterations=1000)  # held running until cancelled
            page.click("#start")
            expect(page.locator(f"{RUNNING} .progress-text")).to_contain_text("ETA")
            look(page, f"stylize running and done {at}")
            page.locator(f"{DONE} .preview").focus()
            page.keyboard.press("Enter")
            page.wait_for_selector("#zoom-view[data-ready='1']")
            look(page, f"stylize full-size view {at}")
            page.keyboard.press("Escape")
            page.locator(f"{RUNNING} .cancel").click()
            expect(page.locator(".job[data-state='cancelled']")).to_have_count(1)
            look(page, f"stylize done and cancelled {at}")
            assert not page.errors
            page.close()

            page = chromium.new_page(viewport={"width": width, "height": height},
                                     color_scheme=scheme)  # fmt: skip
            page.goto(url + "/explore")
            page.wait_for_selector("#photo-gallery .thumb")
            page.wait_for_function("document.querySelector('#photo').naturalWidth > 0")
            look(page, f"explore empty {at}")
            page.fill("#channel", "1")  # the tiny network's conv5_1 has few channels
            page.click("#show")
            expect(page.locator("#maps")).to_have_attribute("data-shown", "1", timeout=60_000)
            page.fill("#iterations", "1000")
            page.fill("#size", "64")
            page.click("#ascend")
            expect(page.locator("#ascent-status")).to_contain_text("step")
            look(page, f"explore maps and a running ascent {at}")
            page.close()
            delete_all(url)
