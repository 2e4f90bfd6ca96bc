"""Does a web job run as fast as the command line? (issue 40: the web's jobs ran 2x slower)

Two parts, side by side in one run:

* the cause: ``torch.linalg.eigh`` of a 512 x 512 float64 matrix (w2's cross term at
  conv4_1) on a new thread, on a new thread while another live thread has run one
  parallel torch operation (as the server's pooled request threads did when they decoded
  an upload), and on the main thread, each the best of ``--repeat``;
* the whole run: the page's default run (the built-in photo and painting, ``fast``,
  256 px, 300 iterations, seed 0) as a job of a fresh ``nst serve`` (its start-up test run
  done first), and the same run by ``nst stylize``; the seconds each spent running it (the
  job's ``elapsed``, which counts its loading and encoding too; the command's own figure,
  from its log's last step), and their ratio.

    python benchmarks/web_speed.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import free_port, machine, table
from estimate_load import CONTENT, DEFAULT_RUN, STYLE, run_job, wait_for


def eigh_ms(repeat: int) -> dict[str, float]:
    """eigh's milliseconds where it runs: a new thread while no other thread keeps an
    OpenMP team, a new thread beside another thread that keeps one, the main thread (last:
    its team then lives as long as the process)."""
    import torch

    from nst.own_thread import on_own_thread as on_thread

    def matrix() -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        b = torch.randn(512, 512, dtype=torch.float64, generator=g)
        return b @ b.T + 512 * torch.eye(512, dtype=torch.float64)

    a = on_thread(matrix)  # a parallel product: on a thread that ends

    def best() -> float:
        torch.linalg.eigh(a)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            torch.linalg.eigh(a)
            times.append(time.perf_counter() - t)
        return min(times) * 1e3

    row = {"a new thread": on_thread(best)}
    release = threading.Event()
    ready = threading.Event()

    def other() -> None:  # one parallel operation, then it lives on (a pooled request thread)
        torch.nn.functional.interpolate(torch.rand(1, 3, 512, 512), size=(256, 256))
        ready.set()
        release.wait()

    keeper = threading.Thread(target=other, daemon=True)
    keeper.start()
    ready.wait()
    row["beside another team"] = on_thread(best)
    release.set()
    keeper.join()
    row["main thread"] = best()
    return row


def web_seconds() -> float:
    """The page's default run as a job of a fresh ``nst serve``: its elapsed seconds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="nst-web-speed-")
    server = subprocess.Popen(
        [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            wait_for(client, "/api/estimate?size=256&iterations=300",
                     lambda e: not e["measuring"])  # fmt: skip
            job = run_job(client, url)
            if job["state"] != "done":
                raise SystemExit(f"the web job ended {job['state']}: {job.get('error')}")
            return float(job["elapsed"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def cli_seconds() -> float:
    """The same run by ``nst stylize``: the elapsed seconds of its log's last step."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        options = [f"--{k}={v}" for k, v in DEFAULT_RUN.items()]
        subprocess.run(["nst", "stylize", CONTENT, STYLE, *options, "--quiet", "--log", str(log),
                        "-o", str(Path(tmp) / "out.png")], check=True)  # fmt: skip
        steps = [json.loads(line) for line in log.read_text().splitlines()]
        return max(float(s["elapsed"]) for s in steps if s.get("type") == "step")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"# a web job against the command line ({machine()})")
    ms = eigh_ms(args.repeat)
    print("eigh, 512 x 512 float64, ms:")
    print(table([{k: round(v, 1) for k, v in ms.items()}]))
    web, cli = web_seconds(), cli_seconds()
    print(f"\nthe page's default run ({json.dumps(DEFAULT_RUN)}):")
    print(table([{"web job s": web, "nst stylize s": cli, "web / command": web / cli}]))


if __name__ == "__main__":
    main()
