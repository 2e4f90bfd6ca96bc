"""A class on one server: 30 signed-in visitors against a real ``nst serve`` on loopback.

Starts ``nst serve`` (sign-in on: ``NST_TOKEN``; ``--workers 2``) on a free port with a
fresh data folder. Two visitors start a real stylization each (built-in photo x painting,
real VGG19 weights, long enough to run the whole time) and follow it over the page's
event stream (``/api/events?follow=``); every visitor (the two included) polls its job
list every ``--poll`` seconds and asks for an estimate every 20 s, as the page does, each
with its own session cookie, for ``--seconds``. Reported:

* the API's answers while the jobs run: p50, p99, max (ms) and errors (any non-2xx,
  any refused connection);
* the first event after a job's step: from the record's ``at`` (when the server made it)
  to when the visitor read it, p50 / p99 (ms);
* the server's resident memory (VmRSS) each second: first, after the first quarter, last.

Goal (issue 36): p99 of the API <= 200 ms while the jobs run, no errors, RSS flat.

    python benchmarks/web_load.py [--visitors 30] [--seconds 90] [--size 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import httpx

from common import free_port, machine, rss_mb

TOKEN = "web-load-benchmark-token"


def quantile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


class Load:
    """What the visitors measured."""

    def __init__(self) -> None:
        self.api: list[float] = []  # seconds per answer
        self.events: list[float] = []  # seconds from a step's record to its reading
        self.errors: list[str] = []
        self.steps = 0


async def visitor(base: str, k: int, load: Load, until: float, args, job: bool) -> None:
    headers = {"Origin": base, "Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        first = await client.get("/api/jobs")  # signs in: the cookie is this visitor
        first.raise_for_status()
        client.headers.pop("Authorization")
        follow = None
        if job:
            params = {"size": args.size, "iterations": 2000, "seed": k}
            fields = {"content_builtin": "builtin:chelsea", "style_builtin": "builtin:swirls",
                      "params": json.dumps(params)}  # fmt: skip
            r = await client.post("/api/jobs", files=[(n, (None, v)) for n, v in fields.items()])
            r.raise_for_status()
            follow = asyncio.create_task(stream(client, r.json()["id"], load, until))
        next_estimate = 0.0
        await asyncio.sleep(args.poll * k / args.visitors)  # spread over the interval
        while time.time() < until:
            paths = ["/api/jobs"]
            if time.time() >= next_estimate:
                paths.append(f"/api/estimate?size={args.size}&iterations=300")
                next_estimate = time.time() + 20
            for path in paths:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    if r.status_code >= 300:
                        load.errors.append(f"{path}: {r.status_code}")
                except httpx.HTTPError as exc:
                    load.errors.append(f"{path}: {type(exc).__name__}")
                    continue
                load.api.append(time.perf_counter() - t0)
            await asyncio.sleep(args.poll)
        if follow is not None:
            await follow
            for j in (await client.get("/api/jobs")).json():
                await client.post(f"/api/jobs/{j['id']}/cancel")


async def stream(client: httpx.AsyncClient, job_id: str, load: Load, until: float) -> None:
    """Follow the job as the page does; each step's delay from its record to here."""
    try:
        async with client.stream("GET", f"/api/events?follow={job_id}:0", timeout=None) as r:
            kind = None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "step":
                    record = json.loads(line[6:])
                    load.events.append(time.time() - record["at"])
                    load.steps += 1
                if time.time() >= until:
                    return
    except httpx.HTTPError as exc:
        load.errors.append(f"events: {type(exc).__name__}")


async def run(base: str, args, load: Load) -> None:
    until = time.time() + args.seconds
    await asyncio.gather(*(visitor(base, k, load, until, args, job=k < 2)
                           for k in range(args.visitors)))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between list polls")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir", tmp,
               "--workers", "2", "--visitor-jobs", "2"]  # fmt: skip
        env = {**os.environ, "NST_TOKEN": TOKEN}
        server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        base = f"http://127.0.0.1:{port}"
        assert server.stderr is not None
        for line in server.stderr:  # until it listens
            if "Ctrl-C stops" in line:
                break
        load = Load()
        rss: list[float] = []

        async def sample() -> None:
            while server.poll() is None and (not rss or len(rss) < args.seconds + 5):
                rss.append(rss_mb(server.pid))
                await asyncio.sleep(1.0)

        async def both() -> None:
            sampler = asyncio.create_task(sample())
            await run(base, args, load)
            sampler.cancel()

        try:
            asyncio.run(both())
        finally:
            server.terminate()
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
    ms = 1000.0
    print(machine())
    print(f"{args.visitors} visitors, 2 jobs of {args.size} px running, {args.seconds:.0f} s, "
          f"a list poll every {args.poll:g} s per visitor")  # fmt: skip
    print(f"API answers: {len(load.api)}, p50 {quantile(load.api, 0.5) * ms:.0f} ms, "
          f"p99 {quantile(load.api, 0.99) * ms:.0f} ms, max {max(load.api) * ms:.0f} ms "
          "(goal p99 <= 200 ms)")  # fmt: skip
    p50, p99 = quantile(load.events, 0.5) * ms, quantile(load.events, 0.99) * ms
    print(f"step events: {load.steps}, from record to reader p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"errors: {len(load.errors)} {sorted(set(load.errors))[:5]}")
    quarter = rss[len(rss) // 4] if rss else float("nan")
    print(
        f"server RSS: first {rss[0]:.0f} MB, after a quarter {quarter:.0f} MB, "
        f"last {rss[-1]:.0f} MB, last / quarter {rss[-1] / quarter:.3f}"
    )


if __name__ == "__main__":
    main()
