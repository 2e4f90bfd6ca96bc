"""A soak of the web app: many tiny jobs in a row against a real ``nst serve``.

Starts ``nst serve`` on a free loopback port with a fresh data folder, then submits tiny
stylizations (built-in photo x painting, 32 px, 2 iterations, real VGG19 weights) one
after another, each followed over its event stream to the end, and reads the server's
resident memory (VmRSS) after the first ``--warm`` jobs and after all of them.
Goal (issue 19): the RSS after 200 jobs within 10% of the RSS after 20.

    python benchmarks/web_soak.py [--jobs 200] [--warm 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import httpx

from common import free_port, machine, rss_mb

ORIGIN = "http://127.0.0.1"


def one_job(client: httpx.Client, k: int) -> None:
    params = {"size": 32, "iterations": 2, "seed": k}
    fields = {
        "content_builtin": "builtin:chelsea",
        "style_builtin": "builtin:swirls",
        "params": json.dumps(params),
    }
    r = client.post("/api/jobs", files=[(k, (None, v)) for k, v in fields.items()])
    r.raise_for_status()
    job = r.json()["id"]
    with client.stream("GET", f"/api/jobs/{job}/events") as events:
        for line in events.iter_lines():
            if line == "event: end":
                break
    state = client.get(f"/api/jobs/{job}").json()["state"]
    if state != "done":
        raise RuntimeError(f"job {k} ended {state}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warm", type=int, default=20)
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir", tmp]
        server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        base = f"{ORIGIN}:{port}"
        try:
            with httpx.Client(base_url=base, headers={"Origin": base}, timeout=120) as client:
                for _ in range(600):
                    try:
                        client.get("/api/config").raise_for_status()
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                start = time.perf_counter()
                marks: dict[int, float] = {}
                for k in range(1, args.jobs + 1):
                    one_job(client, k)
                    if k in (args.warm, args.jobs) or k % 50 == 0:
                        marks[k] = rss_mb(server.pid)
                        print(f"after {k:4d} jobs: RSS {marks[k]:7.1f} MB", flush=True)
                took = time.perf_counter() - start
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    first, last = marks[args.warm], marks[args.jobs]
    print(f"\n{machine()}")
    print(f"{args.jobs} jobs in {took:.0f} s; RSS after {args.jobs} / after {args.warm}: "
          f"{last / first:.3f} (goal <= 1.10)")  # fmt: skip
    if os.environ.get("NST_SOAK_STRICT") and last > 1.10 * first:
        sys.exit(1)


if __name__ == "__main__":
    main()
