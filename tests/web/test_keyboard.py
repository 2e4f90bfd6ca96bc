"""Everything by keyboard, in Chromium: the result opens full size with Enter and zooms and
moves by keys (and by wheel and pinch); a neuron of /explore is picked with the arrow
keys; painted regions are made with a box driven by keys, or from an uploaded mask."""

from __future__ import annotations

import io
import urllib.request

import pytest
from PIL import Image

from tests.web.browser import job_of, open_page, serving, small_run, tab_to
from tests.web.helpers import fake_runner

pytestmark = pytest.mark.browser
DONE = ".job[data-state='done']"


def scale(page) -> float:
    return float(page.get_attribute("#zoom-view", "data-scale"))


def image_box(page) -> dict:
    return page.evaluate("""() => {
        const r = document.querySelector('#enlarge-img').getBoundingClientRect();
        const v = document.querySelector('#zoom-view').getBoundingClientRect();
        return { left: r.left - v.left, top: r.top - v.top, width: r.width, height: r.height,
                 viewWidth: v.width, viewHeight: v.height };
    }""")


def pointer(page, kind: str, pid: int, x: float, y: float) -> None:
    """A touch pointer event at view coordinates (x, y) on the zoom view."""
    page.evaluate(
        """([kind, pid, x, y]) => {
            const v = document.querySelector('#zoom-view'), r = v.getBoundingClientRect();
            v.dispatchEvent(new PointerEvent(kind, { pointerId: pid, pointerType: 'touch',
                clientX: r.left + x, clientY: r.top + y, bubbles: true, isPrimary: pid === 1 }));
        }""",
        [kind, pid, x, y],
    )


def test_the_result_opens_with_enter_and_zooms_by_keys_wheel_and_pinch(chromium, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url, 390, 844)  # a phone
        small_run(page)
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        page.locator("#job-form").focus()
        tab_to(page, f"{DONE} .preview")
        page.keyboard.press("Enter")
        expect(page.locator("#enlarge")).to_have_attribute("open", "")
        page.wait_for_selector("#zoom-view[data-ready='1']")
        assert page.evaluate("document.activeElement.id") == "zoom-view"
        box = image_box(page)  # fitted: the 40×30 result fills the view's height or width
        fit = min(box["viewWidth"] / 40, box["viewHeight"] / 30)
        assert scale(page) == pytest.approx(fit, rel=1e-6)
        page.keyboard.press("0")  # 100%: one screen pixel per pixel
        box = image_box(page)
        assert (box["width"], box["height"]) == (
            pytest.approx(40, abs=0.5),
            pytest.approx(30, abs=0.5),
        )
        page.keyboard.press("+")
        assert scale(page) == pytest.approx(1.25)
        page.keyboard.press("-")
        assert scale(page) == pytest.approx(1.0)

        for _ in range(10):
            page.keyboard.press("+")  # 1.25^10 = 9.3: 373×279 px, wider than the phone's view
        assert image_box(page)["width"] > image_box(page)["viewWidth"]

        # wheel: zooms in about the pointer; the picture's point under it stays put
        before, s0 = image_box(page), scale(page)
        cx, cy = before["viewWidth"] / 2 + 20, before["viewHeight"] / 2
        v = page.locator("#zoom-view").bounding_box()
        page.mouse.move(v["x"] + cx, v["y"] + cy)
        page.mouse.wheel(0, -300)
        page.wait_for_function(f"Number(document.querySelector('#zoom-view').dataset.scale) > {s0}")
        after, s1 = image_box(page), scale(page)
        assert s1 == pytest.approx(s0 * 1.5683, rel=0.01)  # exp(300 * 0.0015)
        assert (cx - after["left"]) / s1 == pytest.approx((cx - before["left"]) / s0, abs=0.05)

        # pinch: two fingers twice as far apart, twice the scale
        mid_x, mid_y = before["viewWidth"] / 2, before["viewHeight"] / 2
        pointer(page, "pointerdown", 1, mid_x - 40, mid_y)
        pointer(page, "pointerdown", 2, mid_x + 40, mid_y)
        pointer(page, "pointermove", 1, mid_x - 40, mid_y)  # the pinch starts
        pointer(page, "pointermove", 2, mid_x + 80, mid_y)
        pointer(page, "pointermove", 1, mid_x - 80, mid_y)
        pointer(page, "pointerup", 1, mid_x - 80, mid_y)
        pointer(page, "pointerup", 2, mid_x + 80, mid_y)
        assert scale(page) == pytest.approx(s1 * 2, rel=0.01)

        # arrows move a picture larger than the view
        start = image_box(page)
        page.keyboard.press("ArrowRight")
        assert image_box(page)["left"] == pytest.approx(start["left"] - 40, abs=0.5)
        page.keyboard.press("Shift+ArrowLeft")
        assert image_box(page)["left"] == pytest.approx(start["left"] + 160, abs=0.5)
        page.keyboard.press("ArrowDown")
        assert image_box(page)["top"] == pytest.approx(start["top"] - 40, abs=0.5)
        page.keyboard.press("f")
        assert scale(page) == pytest.approx(fit, rel=1e-6)
        page.keyboard.press("Escape")
        expect(page.locator("#enlarge")).not_to_have_attribute("open", "")
        assert page.evaluate("document.activeElement.classList.contains('preview')")
        assert not page.errors


def test_a_neuron_is_picked_with_the_arrow_keys(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data") as url:
        page = chromium.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url + "/explore")
        page.wait_for_function("document.querySelector('#photo').naturalWidth > 0")
        page.select_option("#layer", "conv3_1")
        page.fill("#channel", "1")
        rows, cols = page.evaluate(
            "() => { const g = window.nstExplore.grid(); return [g.rows, g.cols]; }"
        )
        tab_to(page, "#pick")
        expect(page.locator("#marker")).to_be_hidden()
        page.keyboard.press("ArrowRight")  # the first press: the centre
        r, c = rows // 2, cols // 2
        expect(page.locator("#target-text")).to_have_text(f"conv3_1:1@{r},{c}")
        expect(page.locator("#marker")).to_be_visible()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowDown")
        expect(page.locator("#target-text")).to_have_text(f"conv3_1:1@{r + 4},{c + 1}")
        expect(page.locator("#pick-announce")).to_have_text(
            f"neuron: row {r + 5} of {rows}, column {c + 2} of {cols}"
        )
        # what the page shows counts rows and columns as what it announces does (from 1)
        expect(page.locator("#neuron")).to_have_text(
            f"row {r + 5}, column {c + 2} of the conv3_1 map"
        )
        # the cursor covers that neuron's cell of the image
        cell = page.evaluate("""() => {
            const m = document.querySelector('#marker').getBoundingClientRect();
            const p = document.querySelector('#photo').getBoundingClientRect();
            return [(m.left - p.left) / p.width, (m.top - p.top) / p.height];
        }""")
        assert cell == [
            pytest.approx((c + 1) / cols, abs=0.01),
            pytest.approx((r + 4) / rows, abs=0.01),
        ]
        for _ in range(40):
            page.keyboard.press("Shift+ArrowLeft")  # held at the edge
        expect(page.locator("#target-text")).to_have_text(f"conv3_1:1@{r + 4},0")
        page.keyboard.press("Enter")
        expect(page.locator("#maps")).to_have_attribute("data-shown", "1", timeout=60_000)
        expect(page.locator("#saliency-status")).to_contain_text(f"conv3_1:1@{r + 4},0")
        page.keyboard.press("Escape")
        expect(page.locator("#target-text")).to_have_text("conv3_1:1")
        expect(page.locator("#marker")).to_be_hidden()
        # the maps' captions show only with their maps
        page.goto(url + "/explore")
        page.wait_for_selector("#photo-gallery .thumb")
        expect(page.locator("#maps figcaption").first).to_be_hidden()


def colours_of(url: str, job: dict) -> Image.Image:
    with urllib.request.urlopen(url + job["inputs"]["mask"]) as r:
        return Image.open(io.BytesIO(r.read())).convert("RGB")


def test_regions_by_a_keyboard_box_and_by_an_uploaded_mask(chromium, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url)
        tab_to(page, "#style-gallery .thumb[data-name='builtin:mosaic']")
        page.keyboard.press("Enter")  # two styles
        tab_to(page, "#mask-panel summary")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#mask-photo').naturalWidth > 0")
        tab_to(page, "#brushes [data-brush='2']")
        page.keyboard.press("Enter")
        tab_to(page, "#mask-canvas")
        expect(page.locator("#mask-box")).to_be_visible()
        for _ in range(5):  # the box: from (0.25, 0.25) 0.5×0.5 to (0, 0.25) 0.25×0.5
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("Shift+ArrowLeft")
        expect(page.locator("#mask-announce")).to_have_text(
            "box at 0% across, 25% down, 25% wide, 50% high"
        )
        page.keyboard.press("Enter")
        expect(page.locator("#mask-announce")).to_have_text("box painted: style 2")
        small_run(page)
        tab_to(page, "#start")
        page.keyboard.press("Enter")
        expect(page.locator(DONE)).to_have_count(1, timeout=60_000)
        job = job_of(url, page)
        assert job["params"]["regions"] == "#ff0000=1,#0000ff=2,#00ff00=content"
        mask = colours_of(url, job)
        w, h = mask.size
        blue = [(x, y) for x in range(w) for y in range(h) if mask.getpixel((x, y)) == (0, 0, 255)]
        xs, ys = [p[0] for p in blue], [p[1] for p in blue]
        assert (min(xs), max(xs) + 1) == (0, pytest.approx(w / 4, abs=1))
        assert (min(ys), max(ys) + 1) == (
            pytest.approx(h / 4, abs=1),
            pytest.approx(3 * h / 4, abs=1),
        )

        # an uploaded mask: left half style 2 (blue), right half the photo (green)
        art = Image.new("RGB", (80, 60), (0, 0, 255))
        art.paste((0, 255, 0), (40, 0, 80, 60))
        buf = io.BytesIO()
        art.save(buf, format="PNG")
        upload = {"name": "regions.png", "mimeType": "image/png", "buffer": buf.getvalue()}
        page.set_input_files("#mask-file", files=[upload])
        expect(page.locator("#mask-announce")).to_have_text("mask regions.png loaded")
        page.click("#start")
        expect(page.locator(DONE)).to_have_count(2, timeout=60_000)
        mask = colours_of(url, job_of(url, page))
        counts = {c: n for n, c in mask.getcolors(1 << 20)}
        assert set(counts) == {(0, 0, 255), (0, 255, 0)}
        assert counts[(0, 0, 255)] == pytest.approx(mask.size[0] * mask.size[1] / 2, rel=0.05)
        assert not page.errors
