"""A shared server in Chromium: two visitors in two browser contexts, each signed in its
own way (the address with the token, the form), each seeing only their own runs; the
sign-in page checked by axe in light and dark mode at desktop and phone width."""

from __future__ import annotations

import pytest

from tests.web.browser import serving, small_run
from tests.web.test_look import Look

pytestmark = pytest.mark.browser
TOKEN = "class-token-2026"
DONE = ".job[data-state='done']"


def stylize_page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def test_two_visitors_each_see_only_their_own_runs(chromium, tmp_path, tiny_network):
    from playwright.sync_api import expect

    with serving(tmp_path / "data", token=TOKEN) as url:
        size = {"width": 1366, "height": 768}
        alice_ctx, bob_ctx = (
            chromium.new_context(viewport=size),
            chromium.new_context(viewport=size),
        )
        alice = stylize_page(alice_ctx)
        alice.goto(f"{url}/?token={TOKEN}")  # the address the server printed
        alice.wait_for_url(f"{url}/")  # the token left the address bar
        alice.wait_for_selector("#content-gallery .thumb")
        cookie = next(c for c in alice_ctx.cookies() if c["name"] == "nst_session")
        assert (
            cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
        )
        small_run(alice)
        alice.click("#start")
        expect(alice.locator(DONE)).to_have_count(1, timeout=60_000)
        alice_job = alice.locator(".job").first.get_attribute("data-id")

        bob = stylize_page(bob_ctx)
        bob.goto(f"{url}/explore")
        expect(bob.locator("h2")).to_have_text("Sign in")  # no session: the form
        bob.fill("#token", "not-the-token")
        bob.click("button[type=submit]")
        expect(bob.locator(".error")).to_have_text("that token is not right")
        bob.fill("#token", TOKEN)
        bob.click("button[type=submit]")
        bob.wait_for_url(f"{url}/explore")  # on to the page asked for
        bob.goto(url)
        bob.wait_for_selector("#content-gallery .thumb")
        expect(bob.locator("#no-jobs")).to_be_visible()
        expect(bob.locator(".job")).to_have_count(0)
        seen = bob.request.get(f"{url}/api/jobs/{alice_job}/result.png")
        assert seen.status == 404  # not even by its address
        small_run(bob)
        bob.click("#start")
        expect(bob.locator(DONE)).to_have_count(1, timeout=60_000)
        bob_job = bob.locator(".job").first.get_attribute("data-id")
        assert bob_job != alice_job

        alice.reload()
        alice.wait_for_selector(DONE)
        assert alice.locator(".job").evaluate_all("ns => ns.map(n => n.dataset.id)") == [alice_job]
        expect(alice.locator("#signout")).to_be_visible()
        Look()(alice, "stylize signed in")
        alice.click("#signout button")  # the session ends; the runs stay on the server
        alice.wait_for_url(f"{url}/signin")
        alice.goto(url)
        expect(alice.locator("h2")).to_have_text("Sign in")
        assert not alice.errors and not bob.errors
        alice_ctx.close()
        bob_ctx.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_sign_in_page_passes_axe_and_fits_a_phone(chromium, tmp_path, scheme):
    look = Look()
    with serving(tmp_path / "data", token=TOKEN) as url:
        for width, height in ((1366, 768), (390, 844)):
            page = chromium.new_page(viewport={"width": width, "height": height},
                                     color_scheme=scheme)  # fmt: skip
            page.goto(url)
            page.wait_for_selector("#token")
            look(page, f"sign-in {scheme} {width}")
            page.fill("#token", "not-the-token")
            page.click("button[type=submit]")
            page.wait_for_selector(".error")
            look(page, f"sign-in wrong token {scheme} {width}")
            page.close()
