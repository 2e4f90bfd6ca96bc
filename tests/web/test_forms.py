"""The Stylize form in Chromium: one validation with the server (its rules from
/api/config, its 422s marked on their field), estimates before any run and the warning
over 10 minutes, galleries that show at once, paste, and the interrupted state."""

from __future__ import annotations

import json
import re

import pytest

from tests.web.browser import open_page, serving, small_run
from tests.web.helpers import fake_runner, held_runner, png

pytestmark = pytest.mark.browser


def posts(page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: r.method == "POST" and "/api/jobs" in r.url and sent.append(r.url))
    return sent


def close_panels(page) -> None:
    page.evaluate("for (const d of document.querySelectorAll('details')) d.open = false")


def put(page, field: str, value: str) -> None:
    page.eval_on_selector(f"#{field}", "(e, v) => { e.value = v; }", value)


CASES = [  # field, value, message (the page's own check: nothing is sent)
    ("size", "1.5", "Size (longest side): a whole number is needed (got 1.5)"),
    ("size", "2000", "Size (longest side): must be from 16 to 1024 px (got 2000)"),
    ("size", "", "Size (longest side): a value is needed"),
    ("style_scale", "0", "Style scale: must be more than 0 and at most 8 (got 0)"),
    ("style_scale", "-1", "Style scale: must be more than 0 and at most 8 (got -1)"),
    ("lr", "0", "Step size: must be more than 0 and at most 10000 (got 0)"),
    ("lr", "-3", "Step size: must be more than 0 and at most 10000 (got -3)"),
    ("seed", "-1", "Seed: must be from 0 to 2^63−1 (got -1)"),
    ("iterations", "2.5", "Iterations: a whole number is needed (got 2.5)"),
]


def test_the_page_checks_by_the_servers_rules_and_marks_the_field(chromium, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url)
        sent = posts(page)
        small_run(page)
        for field, value, text in CASES:
            close_panels(page)
            put(page, field, value)  # in a closed panel too
            page.click("#start")
            expect(page.locator("#message")).to_have_text(text)
            expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
            expect(page.locator(f"#{field}")).to_be_focused()  # its panel was opened for it
            # the message is at the field too, and read with it
            note = page.locator(f"#{field}-error")
            expect(note).to_have_text(text.split(": ", 1)[1])
            expect(page.locator(f"#{field}")).to_have_attribute(
                "aria-errormessage", f"{field}-error"
            )
            put(
                page,
                field,
                {"size": "48", "iterations": "4", "seed": "0", "style_scale": "1"}.get(field, ""),
            )
        # a number the input cannot hold is not taken for an empty field
        page.locator("#size").focus()
        page.keyboard.type("1e999")
        page.click("#start")
        expect(page.locator("#message")).to_have_text(
            "Size (longest side): not a number the form can read"
        )
        assert sent == []

        # what only the server can check comes back on its field, in the form's words
        page.fill("#size", "48")
        close_panels(page)
        layers = page.input_value("#style_layers")
        put(page, "style_layers", "conv9_9:1")
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("Style layers: ")
        expect(page.locator("#message")).to_contain_text("conv9_9")
        expect(page.locator("#style_layers")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#style_layers")).to_be_focused()
        assert len(sent) == 1
        page.fill("#style_layers", layers)
        page.click("#start")
        expect(page.locator(".job[data-state='done']")).to_have_count(1, timeout=60_000)
        expect(page.locator("[aria-invalid]")).to_have_count(0)
        assert not page.errors


def test_an_estimate_before_any_run_and_a_warning_over_ten_minutes(chromium, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner(), calibrate=True) as url:
        page = open_page(chromium, url)
        expect(page.locator("#estimate")).to_contain_text(
            "on this server (from a test run at start-up)", timeout=60_000
        )
        # the page's warning, on a server that says 11 minutes
        reply = {"seconds": 660.0, "seconds_per_iteration_megapixel": 1.0, "basis": "runs",
                 "measuring": False}  # fmt: skip
        page.route("**/api/estimate?*", lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(reply)))  # fmt: skip
        page.fill("#iterations", "1999")
        page.dispatch_event("#iterations", "change")
        # the fast preset is chosen (the first visit's): it is not advised again
        assert page.input_value("#preset") == "fast"
        expect(page.locator("#estimate")).to_have_text(
            "about 11:00 on this server: over 10 minutes; a smaller size or fewer iterations "
            "is quicker"
        )
        expect(page.locator("#estimate")).to_have_class("long")
        page.select_option("#preset", "paper")
        page.fill("#iterations", "1999")
        page.dispatch_event("#iterations", "change")
        expect(page.locator("#estimate")).to_have_text(
            "about 11:00 on this server: over 10 minutes; a smaller size, fewer iterations "
            "or the fast preset is quicker"
        )
        # the recent runs vary, the machine is busy and two runs are queued
        reply.update(seconds=200.0, low=170.0, high=230.0, slowdown=1.5, wait=120.0)
        page.fill("#iterations", "300")
        page.dispatch_event("#iterations", "change")
        expect(page.locator("#estimate")).to_have_text(
            "about 2:50 to 3:50 on this server; the machine is busy: runs take about 1.5× as "
            "long now; it starts after about 2:00 of runs queued before it"
        )
        expect(page.locator("#estimate")).not_to_have_class("long")


def test_galleries_show_their_thumbnails_at_once(chromium, tmp_path):
    with serving(tmp_path / "data", fake_runner()) as url:
        page = chromium.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(url)
        page.wait_for_selector("#style-gallery .thumb")
        sources = page.eval_on_selector_all(".gallery .thumb img", "els => els.map(e => e.src)")
        assert len(sources) == 6 and all(s.startswith("data:image/jpeg;base64,") for s in sources)
        # the thumbnails are inlined: no gallery image is a request of its own
        assert not [u for u in asked if "/api/builtins/" in u and "swirls" in u]


def paste(page, name: str, data: bytes) -> None:
    page.evaluate(
        """([name, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
            document.activeElement.dispatchEvent(new ClipboardEvent('paste',
                { clipboardData: dt, bubbles: true, cancelable: true }));
        }""",
        [name, list(data)],
    )


def test_paste_an_image_as_the_content_or_as_a_style(chromium, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url)
        page.locator("body").focus()
        paste(page, "clip.png", png(40, 30, 3))
        expect(page.locator("#content-chosen img")).to_have_attribute("alt", "content: clip.png")
        expect(page.locator("#announce")).to_have_text("Pasted as the content photo")
        page.locator("#style-file").focus()
        paste(page, "brush.png", png(20, 20, 4))
        expect(page.locator("#style-chosen li")).to_have_count(1)
        expect(page.locator("#style-chosen li")).to_contain_text("brush.png")
        small_run(page)
        page.click("#start")
        expect(page.locator(".job[data-state='done']")).to_have_count(1, timeout=60_000)
        assert not page.errors


def test_an_old_answer_that_the_server_is_there_does_not_undo_a_newer_one_that_it_is_gone(
    chromium, tmp_path
):
    """The page asks for the job list every few seconds and when its stream fails; on a
    busy machine the answers can come back out of order. A "there" to the older question
    arriving after a "gone" to the newer one leaves the page offline (a stale ETA came
    back on a page whose server had stopped)."""
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        # no periodic questions: only the two this test asks
        page = open_page(chromium, url, init="window.setInterval = () => 0;")
        page.wait_for_load_state("networkidle")
        asked: list = []

        def jobs(route):
            asked.append(route)
            if len(asked) == 2:
                route.abort()  # the newer question: the server is gone
            # the older one is answered late (below); any later one hangs, as a request
            # to a server shutting down can

        page.route("**/api/jobs", jobs)
        page.evaluate("() => { window.older = window.nstPage.sync(); window.nstPage.sync(); }")
        expect(page.locator("#connection")).to_be_visible()
        assert len(asked) == 2
        asked[0].continue_()  # now the older question's "there"
        page.evaluate("() => window.older")  # its answer taken (or not)
        expect(page.locator("#connection")).to_be_visible()
        assert page.evaluate("window.nstPage.state.online") is False
        assert len(asked) == 2  # and no new question came of it
        assert not page.errors


def test_a_run_the_server_stopped_reads_interrupted_after_a_restart(chromium, tmp_path):
    from playwright.sync_api import expect

    data = tmp_path / "data"
    with serving(data, held_runner(), preview_every=1) as url:
        page = open_page(chromium, url)
        small_run(page, iterations=1000)  # held running
        page.click("#start")
        page.fill("#iterations", "4")
        page.click("#start")  # queued behind it
        expect(page.locator(".job[data-state='running'] .progress-text")).to_contain_text("ETA")
        expect(page.locator(".job[data-state='queued']")).to_have_count(1)
    # the server is gone: no stale ETA on the page
    expect(page.locator("#connection")).to_be_visible(timeout=30_000)
    expect(page.locator(".job .progress-text").last).not_to_contain_text("ETA")
    with serving(data, held_runner()) as url:
        page = open_page(chromium, url)
        expect(page.locator(".job")).to_have_count(2)
        states = page.locator(".job .state")
        expect(states.first).to_have_text("interrupted (server stopped)")
        expect(states.last).to_have_text("interrupted (server stopped)")
        running = page.locator(".job").last  # oldest last: the one that ran
        # how long it ran depends on the machine's load: the iteration is what is fixed
        took = re.compile(r"^iteration 2/1000 · took \d+:\d\d$")
        expect(running.locator(".progress-text")).to_have_text(took)
        assert float(running.locator(".bar").evaluate("b => b.value")) == pytest.approx(0.002)
        expect(running.locator(".again")).to_be_visible()
        expect(running.locator(".cancel")).to_be_hidden()
        # "Run again" fills the form and says so where Start is
        running.locator(".again").click()
        expect(page.locator("#note")).to_have_text(
            f"The settings and images of run {running.get_attribute('aria-label')[4:]} are "
            "in the form: press Start to run it again."
        )
        expect(page.locator("#start")).to_be_focused()


def test_every_wrong_value_is_marked_at_its_field_at_once_and_nothing_is_sent(chromium, tmp_path):
    """Three wrong values: three messages, each beside its field and outlined, the focus
    on the first, a summary at Start; no job and no estimate request while any is wrong."""
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url)
        sent = posts(page)
        asked: list[str] = []
        page.on("request", lambda r: "/api/estimate" in r.url and asked.append(r.url))
        small_run(page)
        close_panels(page)
        page.fill("#size", "20000")
        page.dispatch_event("#size", "change")
        put(page, "iterations", "0")
        put(page, "lr", "-3")
        page.click("#start")
        expect(page.locator("#message")).to_have_text(
            "3 settings need a change: Size (longest side), Iterations, Step size"
        )
        for field, text in [("size", "must be from 16 to 1024 px (got 20000)"),
                            ("iterations", "must be from 1 to 2000 (got 0)"),
                            ("lr", "must be more than 0 and at most 10000 (got -3)")]:  # fmt: skip
            expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
            expect(page.locator(f"#{field}-error")).to_have_text(text)
        expect(page.locator("#size")).to_be_focused()
        put(page, "iterations", "4")
        put(page, "lr", "1")
        # a right value is estimated (the requests go in order: a wrong one would be first)
        with page.expect_request(lambda r: "/api/estimate" in r.url and "size=48" in r.url):
            page.fill("#size", "48")
            page.dispatch_event("#size", "change")
        assert sent == [] and not [u for u in asked if "size=20000" in u]
        page.click("#start")
        expect(page.locator(".job")).to_have_count(1, timeout=30_000)
        expect(page.locator("[aria-invalid]")).to_have_count(0)
        expect(page.locator(".field-error:visible")).to_have_count(0)
        assert len(sent) == 1 and not page.errors


def test_the_connection_banner_is_in_sight_on_a_scrolled_phone(chromium, tmp_path):
    """Scrolled to the runs on a phone, the page still shows that the server is gone."""
    from playwright.sync_api import expect

    with serving(tmp_path / "data", fake_runner()) as url:
        page = open_page(chromium, url, width=390, height=844)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert page.evaluate("window.scrollY") > 400  # far below the top
    # the server is gone: the next check of the list says so
    expect(page.locator("#connection")).to_be_visible(timeout=30_000)
    top = page.evaluate("document.querySelector('#connection').getBoundingClientRect().top")
    assert 0 <= top < 5, top
