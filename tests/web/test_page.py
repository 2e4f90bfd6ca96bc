"""The Stylize page in headless Chromium: drag and drop, keyboard only, per-style weights,
painted regions, the history across a restart, Ctrl-C with a page open (axe-core: test_look).

Jobs run on the tiny random network (the server runs in this process), except the
Ctrl-C test, which runs ``nst serve`` as a real process on the real weights.
"""

from __future__ import annotations

import base64
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from tests.conftest import requires_weights
from tests.web.browser import free_port, job_of, open_page, serving, small_run, tab_to
from tests.web.helpers import png

pytestmark = pytest.mark.browser
DONE = ".job[data-state='done']"


def drop(page, zone: str, name: str, data: bytes, mime: str = "image/png") -> None:
    """Drop a file onto ``[data-drop=zone]`` the way a browser does (a DataTransfer)."""
    page.evaluate(
        """([zone, name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const target = document.querySelector(`[data-drop="${zone}"]`);
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: dt, bubbles: true, cancelable: true };
                target.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [zone, name, base64.b64encode(data).decode(), mime],
    )


def test_drag_and_drop_content_and_style(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        page = open_page(chromium, url)
        drop(page, "content", "mine.png", png(60, 40, 3))
        drop(page, "style", "paint.png", png(40, 40, 4))
        expect(page.locator("#content-chosen img")).to_have_attribute("alt", "content: mine.png")
        expect(page.locator("#style-chosen li")).to_have_count(1)  # replaces the built-in one
        expect(page.locator("#note")).to_have_text(  # and says so
            "Your painting replaces the built-in swirls; click it to blend it in."
        )
        page.click("#style-gallery .thumb[data-name='builtin:mosaic']")  # and blends with it
        expect(page.locator("#style-chosen li")).to_have_count(2)
        drop(page, "style", "notes.txt", b"hello", "text/plain")
        expect(page.locator("#message")).to_contain_text("notes.txt is not an image")
        # a file dropped elsewhere does not replace the page
        page.evaluate("""() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["x"], "x.png", { type: "image/png" }));
            const ev = new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true });
            document.querySelector("header").dispatchEvent(ev);
            window.__dropPrevented = ev.defaultPrevented;
        }""")
        assert page.evaluate("window.__dropPrevented") is True
        small_run(page)
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        job = job_of(url, page)
        assert len(job["inputs"]["styles"]) == 2
        with urllib.request.urlopen(url + job["inputs"]["content"]) as r:
            assert Image.open(r).size == (60, 40)  # the dropped photo was the content
        assert not page.errors


def test_keyboard_only_job_from_builtins(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        page = open_page(chromium, url)
        tab_to(page, "#content-gallery .thumb[data-name='builtin:coffee']")
        page.keyboard.press("Enter")
        tab_to(page, "#style-gallery .thumb[data-name='builtin:mosaic']")
        page.keyboard.press("Space")
        expect(page.locator("#style-gallery .thumb[aria-pressed='true']")).to_have_count(2)
        tab_to(page, "#style-chosen li:first-child .remove-input")  # drop swirls again
        page.keyboard.press("Enter")
        for field, value in (("#size", "48"), ("#iterations", "3"), ("#seed", "1")):
            tab_to(page, field)
            page.keyboard.press("Control+A")
            page.keyboard.type(value)
        tab_to(page, "#start")
        page.keyboard.press("Enter")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        expect(page.locator("#announce")).to_contain_text("Run done")
        job = job_of(url, page)
        assert job["params"]["size"] == 48 and job["params"]["iterations"] == 3
        assert len(job["inputs"]["styles"]) == 1
        with urllib.request.urlopen(url + job["inputs"]["styles"][0]) as r:
            style = Image.open(r).convert("RGB")
        with urllib.request.urlopen(url + "/api/builtins/mosaic.png") as r:
            assert style.size == Image.open(r).size  # the one painting chosen by keyboard


def test_per_style_weights_and_validation_reach_the_server(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        page = open_page(chromium, url)
        page.click("#style-gallery .thumb[data-name='builtin:mosaic']")
        sliders = page.locator("#style-chosen .style-weight")
        expect(sliders).to_have_count(2)
        sliders.nth(1).fill("0.25")
        small_run(page)
        page.fill("#iterations", "")
        page.click("#start")
        expect(page.locator("#message")).to_have_text("Iterations: a value is needed")
        page.fill("#iterations", "99999999")
        page.click("#start")
        expect(page.locator("#message")).to_have_text(
            "Iterations: must be from 1 to 2000 (got 99999999)"  # the server's cap
        )
        page.fill("#iterations", "3")
        page.fill("#tv_weight", "1e30")
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("must be from 0 to 10000 (got 1e30)")
        page.fill("#tv_weight", "0")
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        assert job_of(url, page)["params"]["style_blend"] == [1, 0.25]


def test_a_painted_mask_reaches_the_job(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        page = open_page(chromium, url)
        page.click("#style-gallery .thumb[data-name='builtin:mosaic']")
        page.click("#mask-panel summary")
        page.wait_for_function("document.querySelector('#mask-photo').naturalWidth > 0")
        page.locator("#mask-canvas").scroll_into_view_if_needed()
        box = page.locator("#mask-canvas").bounding_box()
        page.click("#brushes [data-brush='2']")
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] * 0.3)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3, steps=8)
        page.mouse.up()
        page.click("#brushes [data-brush='keep']")
        page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.1)
        small_run(page)
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        job = job_of(url, page)
        assert job["params"]["regions"] == "#ff0000=1,#0000ff=2,#00ff00=content"
        with urllib.request.urlopen(url + job["inputs"]["mask"]) as r:
            colours = {c for _, c in Image.open(r).convert("RGB").getcolors(1 << 20)}
        assert colours == {(255, 0, 0), (0, 0, 255), (0, 255, 0)}  # labels only, no blends


def test_history_survives_a_restart(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    data = tmp_path / "data"
    with serving(data) as url:
        page = open_page(chromium, url)
        small_run(page, iterations=6)
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        first = page.locator(".job").first.get_attribute("data-id")
        page.close()
    with serving(data) as url:  # a new server on the same data folder
        page = open_page(chromium, url)
        card = page.locator(f".job[data-id='{first}']")
        expect(card).to_have_attribute("data-state", "done")
        expect(card.locator("img.result")).to_be_visible()
        expect(card).to_have_attribute("data-points", "7")  # the loss curve came back too
        expect(card.locator(".progress-text")).to_contain_text("took")
        page.once("dialog", lambda d: d.accept())
        card.locator(".remove").click()
        expect(page.locator(".job")).to_have_count(0)
        assert not (data / first).exists()


def test_a_job_removed_in_another_tab_goes_here_too(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        one, two = open_page(chromium, url), open_page(chromium, url)
        small_run(one)
        one.click("#start")
        expect(one.locator(DONE)).to_have_count(1, timeout=60_000)
        expect(two.locator(DONE)).to_have_count(1, timeout=15_000)  # shown in the other tab
        two.locator(".job .remove").click()
        expect(one.locator(".job")).to_have_count(0, timeout=15_000)


@requires_weights
def test_ctrl_c_with_a_page_watching_exits_within_5_seconds(chromium, tmp_path):
    from playwright.sync_api import expect

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir",
         str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/api/jobs").close()
                break
            except OSError:
                time.sleep(0.2)
        page = open_page(chromium, url)
        page.fill("#size", "128")
        page.fill("#iterations", "2000")
        page.click("#start")
        expect(page.locator(".job .progress-text")).to_contain_text("iteration", timeout=60_000)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
        # the job alone would run for minutes; the server must not wait for it (under any
        # load: the bound is far from the seconds it takes and far below the job's time)
        assert took < 30, f"took {took:.1f} s to stop"
        for bad in ("Traceback", "CancelledError", "terminate called"):
            assert bad not in err, err
        expect(page.locator("#connection")).to_be_visible(timeout=15_000)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_first_visit_starts_from_the_fast_preset_and_a_preset_sets_the_form(
    chromium, tmp_path, tiny_network
):
    from nst.config import PRESETS, Config

    def shows(page, preset: str) -> None:
        """The form holds the preset's options, its balance on the slider (in tenths of a
        decade), Balanced pressed, and sends the preset's weights exactly."""
        default = Config()
        bundle = {"content_weight": default.content_weight,
                  "style_weight": default.style_weight, **PRESETS[preset]}  # fmt: skip
        for name, value in bundle.items():
            if name not in ("content_weight", "style_weight"):
                shown = page.input_value(f"#{name}")
                assert shown == (f"{value:g}" if isinstance(value, float) else str(value)), name
        balance = math.log10(bundle["content_weight"] / bundle["style_weight"])
        assert float(page.input_value("#ratio")) == pytest.approx(round(balance, 1), abs=1e-9)
        assert page.get_attribute("[data-preset=balanced]", "aria-pressed") == "true"
        sent = page.evaluate("async () => (await import('/static/form.js')).params()")
        assert sent["style_weight"] / sent["content_weight"] == pytest.approx(
            bundle["style_weight"] / bundle["content_weight"], rel=1e-4
        )

    with serving(tmp_path / "data") as url:
        page = open_page(chromium, url)
        assert page.input_value("#preset") == "fast"
        shows(page, "fast")
        page.click("[data-preset=strong]")  # a decade more style than the preset's own
        sent = page.evaluate("async () => (await import('/static/form.js')).params()")
        assert sent["style_weight"] == pytest.approx(10 * PRESETS["fast"]["style_weight"], rel=1e-4)
        page.select_option("#preset", "quality")  # a preset brings its balance back
        shows(page, "quality")
        page.select_option("#preset", "paper")
        shows(page, "paper")
        page.reload()  # the choice is kept
        page.wait_for_selector("#iterations")
        assert page.input_value("#preset") == "paper" and page.input_value("#style_loss") == "gram"
        # a style loss with layers of its own (mrf) brings them, and takes them back
        page.click("details:has(#advanced-options) summary")
        paper_layers = page.input_value("#style_layers")
        page.select_option("#style_loss", "mrf")
        assert page.input_value("#style_layers") == "conv3_1:0.5,conv4_1:0.5"
        assert page.input_value("#optimizer") == "adam"
        page.select_option("#style_loss", "w2")
        assert page.input_value("#style_layers") == paper_layers
        assert page.input_value("#optimizer") == "lbfgs"
        page.fill("#style_layers", "conv4_1")  # chosen by hand: kept
        page.locator("#style_layers").dispatch_event("change")
        page.select_option("#style_loss", "mrf")
        assert page.input_value("#style_layers") == "conv4_1"
        assert not page.errors
