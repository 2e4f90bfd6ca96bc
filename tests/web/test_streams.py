"""Event streams that do not drop: five pages follow three jobs to their end over a real
uvicorn server, and every page sees every iteration of every job once, in order, while
the server logs nothing.

The cause of the dropped streams was the Guard's body deadline: it also bounded the
wait of Starlette's disconnect listener, so every stream quiet for ``body_timeout``
seconds was cut (uvicorn: "ASGI callable returned without completing response"; the
browser: ERR_INCOMPLETE_CHUNKED_ENCODING, then a reconnect). The deadline here is a
quarter of a second, so a stream of the old server breaks many times over.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request

import pytest

from tests.web.browser import serving
from tests.web.helpers import fake_runner

pytestmark = pytest.mark.browser

# Every EventSource the page opens reports what it receives, by job: the iterations of its
# steps, and the streams' errors (a dropped connection); and how many streams were open at
# once at most.
RECORDER = """
(() => {
  const Real = window.EventSource;
  window.__streams = {};
  window.__open = { now: 0, most: 0, errors: 0 };
  const of = (e) => {
    const job = JSON.parse(e.data).job;
    return (window.__streams[job] = window.__streams[job] || { steps: [] });
  };
  window.EventSource = function (url) {
    const source = new Real(url);
    const open = window.__open;
    open.now += 1;
    open.most = Math.max(open.most, open.now);
    const close = source.close.bind(source);
    source.close = () => { if (source.readyState !== 2) open.now -= 1; close(); };
    source.addEventListener("state", (e) => { of(e); });
    source.addEventListener("step", (e) => of(e).steps.push(JSON.parse(e.data).iteration));
    source.addEventListener("error", () => { open.errors += 1; });
    return source;
  };
  window.EventSource.prototype = Real.prototype;
  Object.assign(window.EventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
})();
"""


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


def gated(gate: threading.Event, steps: int):
    run = fake_runner(delay=0.02, steps=steps)

    def runner(job, on_event, stop, preview_every):
        gate.wait(60)
        return run(job, on_event, stop, preview_every)

    return runner


def post_job(url: str, iterations: int) -> str:
    import httpx

    files = {
        "style_builtin": (None, "builtin:swirls"),
        "content_builtin": (None, "builtin:chelsea"),
        "params": (None, json.dumps({"size": 32, "iterations": iterations})),
    }
    r = httpx.post(f"{url}/api/jobs", files=files, headers={"Origin": url}, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_five_pages_follow_three_jobs_without_a_drop(chromium, tmp_path):
    from playwright.sync_api import expect

    logs = Collect()
    watched = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "nst.web")]
    for logger in watched:
        logger.addHandler(logs)
    gate = threading.Event()
    iterations = 60
    try:
        with serving(tmp_path / "data", gated(gate, iterations), body_timeout=0.25,
                     preview_every=10) as url:  # fmt: skip
            jobs = [post_job(url, iterations) for _ in range(3)]
            pages = []
            for _ in range(5):
                page = chromium.new_page(viewport={"width": 1366, "height": 768})
                page.add_init_script(RECORDER)
                pages.append(page)
                page.errors = []
                page.on("pageerror", lambda e, page=page: page.errors.append(str(e)))
                page.goto(url)
            for page in pages:  # every page follows the three jobs before they run
                expect(page.locator(".job")).to_have_count(3, timeout=30_000)
                page.wait_for_function("Object.keys(window.__streams).length === 3")
            gate.set()
            for page in pages:
                expect(page.locator(".job[data-state='done']")).to_have_count(3, timeout=120_000)
            for page in pages:
                streams = page.evaluate("window.__streams")
                assert page.evaluate("window.__open.errors") == 0, "a stream dropped"
                for job_id in jobs:
                    assert streams[job_id]["steps"] == list(range(iterations + 1)), job_id
                assert not page.errors
            with urllib.request.urlopen(f"{url}/api/jobs") as r:
                assert [j["state"] for j in json.loads(r.read())] == ["done"] * 3
    finally:
        for logger in watched:
            logger.removeHandler(logs)
    assert logs.records == []


def test_a_job_list_read_before_a_stream_ended_does_not_reopen_it(chromium, tmp_path):
    """The page's periodic list of jobs can be read while a job runs and arrive after its
    stream said "end"; the page must not take that stale "running" for news and follow the
    job again (a new stream replays every iteration: the curve and the steps doubled)."""
    from playwright.sync_api import expect

    gate = threading.Event()
    iterations = 12
    with serving(tmp_path / "data", gated(gate, iterations)) as url:
        job_id = post_job(url, iterations)
        page = chromium.new_page(viewport={"width": 1366, "height": 768})
        page.add_init_script(RECORDER)
        page.goto(url)
        expect(page.locator(".job")).to_have_count(1, timeout=30_000)
        page.wait_for_function("Object.keys(window.__streams).length === 1")
        held = []

        def hold(route):
            if held or route.request.method != "GET":
                route.continue_()
            else:
                held.append(route)

        page.route("**/api/jobs", hold)
        page.evaluate("() => { window.__synced = window.nstPage.sync(); }")
        while not held:  # the request reaches the route handler during a Playwright call
            page.wait_for_timeout(20)
        stale = held[0].fetch()  # read now, while the job waits at the gate: "queued"/"running"
        assert json.loads(stale.body())[0]["state"] not in ("done", "failed", "cancelled")
        gate.set()
        expect(page.locator(".job[data-state='done']")).to_have_count(1, timeout=60_000)
        page.wait_for_function(
            "() => window.nstPage.state.followed.size === 0"
        )  # the page saw "end"
        held[0].fulfill(response=stale)
        page.evaluate("() => window.__synced")
        page.unroute("**/api/jobs")
        seen = page.evaluate("window.__streams")[job_id]
        assert seen["steps"] == list(range(iterations + 1))
        expect(page.locator(".job[data-state='done']")).to_have_count(1)


def test_ten_queued_runs_share_one_stream_and_the_page_still_works(chromium, tmp_path):
    """A browser opens at most six connections to a host: a stream per job froze the page
    with six unfinished runs (Start, Cancel and the estimate waited for a connection). All
    the jobs a page follows now come on one stream."""
    from playwright.sync_api import expect

    gate = threading.Event()
    with serving(tmp_path / "data", gated(gate, 5), max_waiting=16) as url:
        page = chromium.new_page(viewport={"width": 1366, "height": 768})
        page.add_init_script(RECORDER)
        page.goto(url)
        page.wait_for_selector("#iterations")
        jobs = [post_job(url, 5) for _ in range(10)]
        expect(page.locator(".job")).to_have_count(10, timeout=30_000)
        page.wait_for_function("Object.keys(window.__streams).length === 10")
        assert page.evaluate("window.__open.now") == 1
        # the page still works: a run started from it, one cancelled, an estimate answered
        page.fill("#size", "48")
        page.fill("#iterations", "5")
        page.click("#start")
        expect(page.locator(".job")).to_have_count(11, timeout=10_000)
        page.locator(f".job[aria-label='run {jobs[3][:8]}'] .cancel").click()
        expect(page.locator(f".job[aria-label='run {jobs[3][:8]}']")).to_have_attribute(
            "data-state", "cancelled", timeout=10_000
        )
        expect(page.locator("#estimate")).not_to_have_text("", timeout=10_000)
        gate.set()
        expect(page.locator(".job[data-state='done']")).to_have_count(10, timeout=120_000)
        seen = page.evaluate("window.__streams")
        for job_id in jobs[:3] + jobs[4:]:
            assert seen[job_id]["steps"] == list(range(6)), job_id
        assert page.evaluate("window.__open.most") == 1
        assert page.evaluate("window.__open.errors") == 0
