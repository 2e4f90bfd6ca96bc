"""The multiplexed event stream over the API: several jobs on one connection, each record
tagged with its job and sequence number, an end per job, positions honoured, unknown
jobs reported, bad positions refused."""

from __future__ import annotations

import json

from tests.web.helpers import BASE, fake_runner


def events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def submit(client, iterations: int = 3) -> str:
    params = json.dumps({"size": 32, "iterations": iterations})
    files = {"style_builtin": (None, "builtin:swirls"),
             "content_builtin": (None, "builtin:chelsea"), "params": (None, params)}  # fmt: skip
    r = client.post("/api/jobs", files=files, headers={"Origin": BASE})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def done(client, job_id: str) -> None:
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        for _ in r.iter_lines():
            pass


def test_several_jobs_on_one_stream_from_their_positions(make_client):
    client = make_client(fake_runner(steps=3))
    a, b = submit(client), submit(client)
    done(client, a)
    done(client, b)
    got = events(client.get(f"/api/events?follow={a}:0,{b}:0").text)
    for job in (a, b):
        mine = [(kind, e) for kind, e in got if e["job"] == job]
        assert [e["seq"] for _, e in mine[:-1]] == list(range(len(mine) - 1))
        assert mine[-1][0] == "end" and [e["iteration"] for k, e in mine if k == "step"] == [
            0, 1, 2, 3]  # fmt: skip
    # from a position on: only what comes after it
    first = [e for _, e in got if e["job"] == a]
    later = events(client.get(f"/api/events?follow={a}:{first[2]['seq'] + 1}").text)
    assert [e.get("seq") for _, e in later[:-1]] == [e["seq"] for e in first[3:-1]]
    assert later[-1] == ("end", {"job": a})


def test_unknown_jobs_and_bad_positions(make_client):
    client = make_client()
    missing = "f" * 32
    assert events(client.get(f"/api/events?follow={missing}:0").text) == [
        ("gone", {"job": missing})]  # fmt: skip
    assert client.get("/api/events").text == ""  # nothing followed: the stream ends at once
    for bad in ("nothing", f"{missing}:-1", f"{missing}", "x:1", f"{missing}:{'9' * 13}"):
        r = client.get(f"/api/events?follow={bad}")
        assert r.status_code == 422 and "is not JOB_ID:SEQ" in r.json()["detail"], bad
