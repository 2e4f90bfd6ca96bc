"""A server a class shares: sign-in by token (address, form, header), each visitor's jobs
their own (every route of another's job is a 404), a cap per visitor and visitors in turn
in the queue, the token kept out of logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from nst.web.access import NOT_SIGNED_IN
from tests.web.browser import free_port
from tests.web.helpers import BASE, TestClient, held_runner, submit, wait_state

TOKEN = "class-token-2026"
ORIGIN = {"Origin": BASE}


def signed_in(client: TestClient) -> TestClient:
    """Another visitor of ``client``'s server: its own cookie jar, signed in by header."""
    other = TestClient(client.app, base_url=BASE)
    r = other.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json() == []
    return other


def test_without_a_session_the_api_answers_401_and_pages_the_sign_in_form(make_client):
    client = make_client(token=TOKEN)
    r = client.get("/api/jobs")
    assert r.status_code == 401 and r.json() == {"detail": NOT_SIGNED_IN}
    assert r.headers["www-authenticate"] == "Bearer"
    for path in ("/api/config", "/api/events?follow=", "/api/explain/layers"):
        assert client.get(path).status_code == 401, path
    assert submit(client).status_code == 401
    page = client.get("/explore")
    assert page.status_code == 401 and 'action="/signin"' in page.text
    assert 'name="next" value="/explore"' in page.text
    assert client.get("/static/style.css").status_code == 200  # the form is drawn with it
    assert client.get("/signin").status_code == 200


def test_the_token_in_the_address_becomes_a_session_cookie_and_leaves_the_address(make_client):
    client = make_client(token=TOKEN)
    r = client.get(f"/explore?token={TOKEN}&layer=conv4_1")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("nst_session=") and TOKEN not in cookie
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
    assert '<meta http-equiv="refresh" content="0;url=/explore?layer=conv4_1">' in r.text
    assert TOKEN not in r.text
    assert '<meta name="referrer" content="no-referrer">' in r.text  # the next step too
    assert client.get("/explore").status_code == 200  # the cookie is the session now
    assert client.get("/api/jobs").status_code == 200
    wrong = TestClient(client.app, base_url=BASE).get("/?token=not-the-token")
    assert wrong.status_code == 401 and "that token is not right" in wrong.text
    assert "set-cookie" not in wrong.headers


def test_the_cookie_is_secure_when_the_request_came_over_https(make_client):
    client = make_client(token=TOKEN)
    https = TestClient(client.app, base_url="https://127.0.0.1:8000")
    r = https.get(f"/?token={TOKEN}")
    assert "secure" in {f.strip().lower() for f in r.headers["set-cookie"].split(";")}


def test_sign_in_by_form_goes_on_to_the_page_asked_for(make_client):
    client = make_client(token=TOKEN)
    r = client.post("/signin", data={"token": TOKEN, "next": "/explore"}, headers=ORIGIN,
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/explore"
    assert client.get("/api/jobs").status_code == 200
    other = TestClient(client.app, base_url=BASE)
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil"):  # never another host
        r = other.post("/signin", data={"token": TOKEN, "next": bad}, headers=ORIGIN,
                       follow_redirects=False)  # fmt: skip
        assert r.headers["location"] == "/", bad
    third = TestClient(client.app, base_url=BASE)
    r = third.post("/signin", data={"token": "wrong-token", "next": "/"}, headers=ORIGIN)
    assert r.status_code == 401 and "that token is not right" in r.text
    assert third.get("/api/jobs").status_code == 401


def test_a_wrong_bearer_token_and_a_forged_cookie_get_the_same_401(make_client):
    client = make_client(token=TOKEN)
    wrong = client.get("/api/jobs", headers={"Authorization": "Bearer wrong-token"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": NOT_SIGNED_IN}
    right = client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "nst_session=" in right.headers["set-cookie"]
    value = client.cookies["nst_session"]
    visitor, issued, signature = value.split(".")
    forged = TestClient(client.app, base_url=BASE)
    other_visitor = ("0" if visitor[0] != "0" else "1") + visitor[1:]
    later = int(issued) + 1
    for cookie in (f"{other_visitor}.{issued}.{signature}", f"{visitor}.{later}.{signature}",
                   "garbage", f"{visitor}.{issued}.{signature[:-1]}"):  # fmt: skip
        forged.cookies.set("nst_session", cookie)
        r = forged.get("/api/jobs")
        assert r.status_code == 401 and r.json() == {"detail": NOT_SIGNED_IN}, cookie


def test_wrong_tokens_from_one_address_make_it_wait(make_client):
    client = make_client(token=TOKEN)
    now = [1000.0]
    client.app.state.nst.access.throttle.clock = lambda: now[0]
    bearer = {"Authorization": "Bearer wrong-token"}
    codes = [client.get("/api/jobs", headers=bearer).status_code for _ in range(6)]
    assert codes == [401] * 6  # five free tries; the sixth wrong one starts a 1 s wait
    r = client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"  # not even looked at
    assert r.json() == {"detail": "too many wrong tokens from this address; try again in 1 s"}
    assert client.post("/signin", data={"token": TOKEN}, headers=ORIGIN).status_code == 429
    now[0] += 1.0
    assert client.get("/api/jobs", headers=bearer).status_code == 401  # wait doubles: 2 s
    assert client.get("/api/jobs", headers=bearer).status_code == 429
    now[0] += 2.0
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/jobs", headers=bearer).status_code == 200  # the session counts now


def job_routes(job_id: str) -> list[tuple[str, str]]:
    """Every route of one job (method, path)."""
    base = f"/api/jobs/{job_id}"
    return [("GET", base), ("GET", f"{base}/events"), ("GET", f"{base}/result.png"),
            ("GET", f"{base}/result.png?download=1"), ("GET", f"{base}/result.jpg"),
            ("GET", f"{base}/result.webp"), ("GET", f"{base}/preview.png"),
            ("GET", f"{base}/inputs/content.png"), ("GET", f"{base}/inputs/style_0.png"),
            ("POST", f"{base}/cancel"), ("POST", f"{base}/continue"),
            ("DELETE", base)]  # fmt: skip


def test_another_visitors_job_is_not_there_on_any_route(make_client):
    alice = make_client(runner=held_runner(), token=TOKEN, workers=2)
    alice.get(f"/?token={TOKEN}")
    done = submit(alice).json()
    wait_state(alice, done["id"])
    running = submit(alice, params={"size": 32, "iterations": 500}).json()
    wait_state(alice, running["id"], states=("running",))
    bob = signed_in(alice)
    for job in (done, running):
        for method, path in job_routes(job["id"]):
            r = bob.request(method, path, headers=ORIGIN)
            assert r.status_code == 404, (method, path, r.status_code)
            assert r.json() == {"detail": "no such job"}, (method, path)
    follow = bob.get(f"/api/events?follow={done['id']}:0,{running['id']}:0").text
    assert follow.count("event: gone") == 2 and "event: state" not in follow
    assert bob.get("/api/jobs").json() == []
    r = submit(bob, init_job=done["id"])
    assert r.status_code == 422 and r.json()["detail"] == "init_job: no such job"
    # Alice's jobs are untouched by all that, and hers to use
    assert [j["id"] for j in alice.get("/api/jobs").json()] == [done["id"], running["id"]]
    assert alice.get(f"/api/jobs/{running['id']}").json()["state"] == "running"
    for method, path in job_routes(done["id"])[:-3]:
        if "preview" not in path:
            assert alice.request(method, path).status_code == 200, path
    alice.post(f"/api/jobs/{running['id']}/cancel", headers=ORIGIN)
    assert wait_state(alice, running["id"])["state"] == "cancelled"


def test_each_visitor_may_have_so_many_jobs_waiting_or_running(make_client):
    alice = make_client(runner=held_runner(), token=TOKEN, visitor_jobs=2)
    alice.get(f"/?token={TOKEN}")
    held = {"size": 32, "iterations": 500}
    first = submit(alice, params=held).json()
    wait_state(alice, first["id"], states=("running",))
    assert submit(alice, params=held).status_code == 201  # waits
    r = submit(alice, params=held)
    assert r.status_code == 429
    assert r.json()["detail"] == (
        "you have 2 runs waiting or running, the most this server allows each person; "
        "wait for one to end or cancel one"
    )
    bob = signed_in(alice)
    assert submit(bob, params=held).status_code == 201  # another visitor is not held up
    alice.post(f"/api/jobs/{first['id']}/cancel", headers=ORIGIN)
    wait_state(alice, first["id"])
    assert submit(alice, params=held).status_code == 201  # one ended: room again
    for client in (alice, bob):
        for job in client.get("/api/jobs").json():
            client.post(f"/api/jobs/{job['id']}/cancel", headers=ORIGIN)


def test_the_queue_takes_visitors_in_turn(make_client):
    alice = make_client(runner=held_runner(), token=TOKEN, visitor_jobs=5, max_waiting=10)
    alice.get(f"/?token={TOKEN}")
    held = {"size": 32, "iterations": 500}
    a1 = submit(alice, params=held).json()
    wait_state(alice, a1["id"], states=("running",))
    a2, a3, a4 = (submit(alice, params=held).json() for _ in range(3))
    assert [a2["position"], a3["position"], a4["position"]] == [1, 2, 3]
    bob = signed_in(alice)
    b1 = submit(bob, params=held).json()
    assert b1["position"] == 2  # after Alice's next, before her other two
    places = {j["id"]: j["position"] for j in alice.get("/api/jobs").json()}
    assert [places[a2["id"]], places[a3["id"]], places[a4["id"]]] == [1, 3, 4]
    records = alice.app.state.manager.get(a3["id"]).events  # its page learns it moved
    assert [(e["type"], e["position"]) for e in records] == [("state", 2), ("place", 3)]
    started = []
    for job_id in (a1["id"], a2["id"], b1["id"], a3["id"], a4["id"]):
        client = bob if job_id == b1["id"] else alice
        wait_state(client, job_id, states=("running",))
        started.append(job_id)
        client.post(f"/api/jobs/{job_id}/cancel", headers=ORIGIN)
        wait_state(client, job_id)
    assert started == [a1["id"], a2["id"], b1["id"], a3["id"], a4["id"]]


def test_the_estimate_counts_only_the_runs_a_new_run_waits_for(make_client):
    import time

    from nst.config import Config
    from nst.web.estimates import Measured
    from nst.web.manager import _work_left

    alice = make_client(runner=held_runner(), token=TOKEN, visitor_jobs=5, max_waiting=10)
    alice.get(f"/?token={TOKEN}")
    manager = alice.app.state.manager
    kind = Config().style_loss
    manager.speeds.keep(Measured(time.time(), 2.0, kind))  # 2 s per iteration-megapixel
    held = {"size": 32, "iterations": 500}
    a1 = submit(alice, params=held).json()
    wait_state(alice, a1["id"], states=("running",))
    queued = [submit(alice, params=held).json()["id"] for _ in range(3)]
    bob = signed_in(alice)
    left = [_work_left(manager.get(i)) for i in (a1["id"], *queued)]
    ask = "/api/estimate?size=32&iterations=10"
    mine, theirs = alice.get(ask).json(), bob.get(ask).json()
    assert mine["wait"] == pytest.approx(2.0 * sum(left), abs=0.06)  # after all hers
    assert theirs["wait"] == pytest.approx(2.0 * sum(left[:2]), abs=0.06)  # after one of hers
    assert theirs["wait"] < mine["wait"]
    for job_id in (*queued, a1["id"]):
        alice.post(f"/api/jobs/{job_id}/cancel", headers=ORIGIN)


def test_without_a_token_one_person_sees_every_job_and_no_visitor_cap(make_client):
    client = make_client(runner=held_runner(), visitor_jobs=1)
    held = {"size": 32, "iterations": 500}
    jobs = [submit(client, params=held) for _ in range(3)]
    assert [r.status_code for r in jobs] == [201, 201, 201]
    assert len(client.get("/api/jobs").json()) == 3
    for r in jobs:
        client.post(f"/api/jobs/{r.json()['id']}/cancel", headers=ORIGIN)


def test_visitors_keep_their_jobs_across_a_restart_and_lose_them_with_a_new_token(make_client):
    alice = make_client(token=TOKEN)
    alice.get(f"/?token={TOKEN}")
    job = submit(alice).json()
    wait_state(alice, job["id"])
    cookie = alice.cookies["nst_session"]
    alice.__exit__(None, None, None)
    again = make_client(token=TOKEN)  # the same data folder
    again.cookies.set("nst_session", cookie)
    assert [j["id"] for j in again.get("/api/jobs").json()] == [job["id"]]
    assert signed_in(again).get(f"/api/jobs/{job['id']}").status_code == 404
    again.__exit__(None, None, None)
    renewed = make_client(token="a-new-token-for-term-2")
    renewed.cookies.set("nst_session", cookie)
    assert renewed.get("/api/jobs").status_code == 401


def test_list_jobs_shows_the_admin_every_visitors_jobs(make_client, tmp_path):
    from typer.testing import CliRunner

    from nst.cli import app

    alice = make_client(token=TOKEN)
    alice.get(f"/?token={TOKEN}")
    bob = signed_in(alice)
    ids = [wait_state(c, submit(c).json()["id"])["id"] for c in (alice, bob)]
    r = CliRunner().invoke(app, ["serve", "--list-jobs", "--data-dir", str(tmp_path / "data")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    for job_id in ids:
        assert any(line.startswith(job_id) and " done " in line for line in lines), r.output
    assert lines[-1].startswith("2 jobs of 2 visitors, ")


def serve(tmp_path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str, str]:
    """``nst serve`` in a process: it, its address and what it said until it listens."""
    port = free_port()
    cmd = [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir",
           str(tmp_path / "data"), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # until it listens and said how to sign in: events, not a clock
        seen.append(line)
        if line.startswith("nst: open "):
            break
    else:
        raise AssertionError("".join(seen))
    return proc, f"http://127.0.0.1:{port}", "".join(seen)


def stopped(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return out + err


def fetch(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.spawns
@pytest.mark.parametrize("how", ["file", "variable"])
def test_a_given_token_is_never_in_the_servers_output(tmp_path, how):
    (tmp_path / "token").write_text(TOKEN + "\n")
    args = ("--token-file", str(tmp_path / "token")) if how == "file" else ()
    env = {"NST_TOKEN": TOKEN} if how == "variable" else None
    proc, url, said = serve(tmp_path, *args, env=env)
    try:
        assert fetch(f"{url}/?token={TOKEN}") == 200
        assert fetch(f"{url}/api/jobs", {"Authorization": f"Bearer {TOKEN}"}) == 200
        assert fetch(f"{url}/?token={TOKEN}x") == 401
        assert fetch(f"{url}/api/jobs") == 401
    finally:
        output = said + stopped(proc)
    assert TOKEN not in output
    source = str(tmp_path / "token") if how == "file" else "NST_TOKEN"
    assert f"sign in with the token from {source}" in output


@pytest.mark.spawns
def test_allow_remote_makes_a_token_and_shows_it_once_in_the_address(tmp_path):
    proc, url, said = serve(tmp_path, "--host", "0.0.0.0", "--allow-remote")
    output = said + stopped(proc)
    tokens = re.findall(r"open http://\S+:\d+/\?token=([0-9a-f]{32})\n", output)
    assert len(tokens) == 1, output
    assert output.count(tokens[0]) == 1
    port = url.rsplit(":", 1)[1]
    assert f":{port}/?token=" in output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the token is empty"),
        ("short", "the token must have 8 to 256 characters (it has 5)"),
        ("two words here", "the token may hold only printable characters, no spaces"),
    ],
)
def test_a_bad_token_file_is_refused_in_one_line(tmp_path, content, message):
    from typer.testing import CliRunner

    from nst.cli import app

    path = tmp_path / "token"
    path.write_text(content)
    r = CliRunner().invoke(app, ["serve", "--token-file", str(path), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == f"nst: error: token-file {path}: {message}"
    missing = tmp_path / "nope"
    r = CliRunner().invoke(app, ["serve", "--token-file", str(missing)])
    assert r.output.strip() == (
        f"nst: error: token-file {missing}: cannot read it (No such file or directory)"
    )
