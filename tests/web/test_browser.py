"""End to end in headless Chromium (Debian's, driven by Playwright): upload, paint, cancel.

`make test` installs chromium and sets NST_REQUIRE_BROWSER=1, so there a missing
browser fails the test instead of skipping it.
"""

import re

import pytest
from PIL import Image

from tests.conftest import picture, requires_weights
from tests.web.browser import ARGS, CHROMIUM, browser_or_skip, serving

pytestmark = [pytest.mark.browser, requires_weights]


@pytest.fixture
def server(tmp_path):
    browser_or_skip()
    with serving(tmp_path / "data", preview_every=2, max_size=256) as url:
        yield url


def test_upload_start_watch_download_cancel_reload(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(picture(96, 64, 0)).save(content)
    Image.fromarray(picture(64, 64, 1)).save(style)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda req: requested.append(req.url))
        page.goto(server)
        expect(page.locator("#content-gallery img")).to_have_count(4)
        expect(page.locator("#style-gallery img")).to_have_count(2)
        page.set_input_files("#content-file", str(content))
        page.set_input_files("#style-file", str(style))
        expect(page.locator("#style-chosen img")).to_have_count(1)
        page.fill("#size", "128")
        page.fill("#iterations", "12")
        page.fill("#seed", "0")
        page.click("#start")

        first = page.locator(".job").first
        expect(first.locator(".progress-text")).to_contain_text("iteration", timeout=60_000)
        expect(first).to_have_attribute("data-state", "done", timeout=120_000)
        expect(first.locator("img.result")).to_be_visible()
        assert any("/preview.png" in url for url in requested), "no preview was shown"
        assert first.locator(".progress-text").inner_text().startswith("iteration 12/12")
        assert first.locator(".plot").is_visible()
        with page.expect_download() as info:
            first.locator(".download").click()
        path = info.value.path()
        assert Image.open(path).size == (128, 85)
        first.locator(".format").select_option("webp")
        with page.expect_download() as info:
            first.locator(".download").click()
        assert info.value.suggested_filename.endswith(".webp")
        with Image.open(info.value.path()) as im:
            assert im.format == "WEBP" and im.size == (128, 85)

        page.fill("#iterations", "2000")
        page.click("#start")
        second = page.locator(".job").first  # the newest run comes first
        expect(second.locator(".progress-text")).to_contain_text(
            re.compile(r"iteration [1-9]\d*/2000"), timeout=60_000
        )
        second.locator(".cancel").click()
        expect(second).to_have_attribute("data-state", "cancelled", timeout=60_000)
        expect(second).to_have_attribute("data-has-result", "1")

        page.reload()  # the page re-attaches to the server's jobs
        expect(page.locator(".job")).to_have_count(2)
        expect(page.locator(".job[data-state='cancelled']")).to_have_count(1)
        browser.close()


def test_explore_the_network(server):
    """Pick a photo and a layer, click a neuron, see its three saliency maps, run ascent."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(server + "/explore")
        expect(page.locator("#photo-gallery button")).to_have_count(4)
        page.locator("#photo-gallery button[data-name='builtin:coffee']").click()
        page.wait_for_function("document.querySelector('#photo').naturalWidth > 0")
        page.select_option("#layer", "conv3_1")
        page.fill("#channel", "20")
        page.select_option("#work-size", "128")
        box = page.locator("#photo").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        expect(page.locator("#target-text")).to_have_text(re.compile(r"conv3_1:20@\d+,\d+"))
        page.click("#show")
        expect(page.locator("#maps")).to_have_attribute("data-shown", "1", timeout=60_000)
        for method in ("gradient", "deconvnet", "guided"):
            src = page.locator(f"#maps figure[data-method='{method}'] img").get_attribute("src")
            assert src and src.startswith("data:image/png;base64,")
        expect(page.locator("#saliency-status")).to_contain_text("conv3_1:20@")
        page.fill("#iterations", "6")
        page.fill("#size", "64")
        page.click("#ascend")
        expect(page.locator("#ascent-image")).to_have_attribute(
            "data-state", "done", timeout=120_000
        )
        assert page.locator("#ascent-image").is_visible()
        page.fill("#channel", "999")
        page.click("#show")
        expect(page.locator("#saliency-status")).to_contain_text("out of range", timeout=30_000)
        browser.close()
