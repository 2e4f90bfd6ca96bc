"""The `nst` command beside another busy program: threads fitted to the load against a
fixed number (issue 40: beside one CPU hog on 2 cores, a run with 2 threads took 16.7x
as long as on a quiet machine). For the batch, ``NST_THREADS`` set fixes its painters'
threads too.

Each row is one `nst stylize` as users run it (the built-in photo and painting, a fresh
process, start-up included), or with ``--command batch`` one `nst batch` of four photos
with the swirls on a local Ray (one painter with every core's thread; Ray's start-up
included): with ``NST_THREADS`` set to the machine's cores (every
thread whatever the load, as the command was) and with it unset (``auto``: fitted to the
load at its steps, nst.threads), on a quiet machine and beside ``--hogs`` busy loops
(programs of one thread that never sleep, started here and stopped after each run). The
settings interleaved over ``--rounds``, the lower wall clock of each, and the ratios.

    python benchmarks/busy_machine.py [--command batch] [--preset fast] [--size 256]
        [--iterations 100] [--skip-fixed-busy]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, table

HOG = "while True: pass"
#: ``--command batch``'s jobs (each with the swirls)
BATCH_CONTENTS = ["builtin:chelsea", "builtin:astronaut", "builtin:coffee", "builtin:rocket"]


def once(args: argparse.Namespace, threads: str, hogs: int, out: Path) -> float:
    """Wall seconds of one command run beside ``hogs`` busy loops."""
    env = {**os.environ, "NST_THREADS": threads}
    common = ["--preset", args.preset, "--size", str(args.size), "--iterations",
              str(args.iterations), "--seed", "0", "--quiet", "-o", str(out)]  # fmt: skip
    if args.command == "batch":
        cores = str(len(os.sched_getaffinity(0)))
        contents = [a for c in BATCH_CONTENTS for a in ("--contents", c)]
        argv = ["batch", *contents, "--styles", "builtin:swirls", "--workers", "1",
                "--threads-per-worker", cores, *common]  # fmt: skip
    else:
        argv = ["stylize", "builtin:chelsea", "builtin:swirls", *common]
    busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nst", *argv], env=env, check=True,
                       capture_output=True)  # fmt: skip
        return time.perf_counter() - start
    finally:
        for p in busy:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--command", choices=["stylize", "batch"], default="stylize")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--skip-fixed-busy",
        action="store_true",
        help="leave out every thread beside the hogs (the slow one)",
    )
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    print(f"# busy machine ({machine()}); {args.rounds} interleaved rounds, the lower kept")
    runs = [(str(cores), 0), ("auto", 0), (str(cores), args.hogs), ("auto", args.hogs)]
    if args.skip_fixed_busy:  # (the batch's took 22 minutes)
        runs.remove((str(cores), args.hogs))
    best = {r: float("inf") for r in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for threads, hogs in runs:
                seconds = once(args, threads, hogs, Path(tmp) / f"{threads}_{hogs}_{i}.png")
                best[threads, hogs] = min(best[threads, hogs], seconds)
                print(f"  NST_THREADS={threads}, {hogs} hogs: {seconds:.1f} s", flush=True)
    rows = [{"NST_THREADS": t, "hogs": h, "seconds": best[t, h],
             "vs quiet": best[t, h] / best[t, 0]} for t, h in runs]  # fmt: skip
    what = f"--preset {args.preset} --size {args.size} --iterations {args.iterations}"
    print(f"{args.command} {what}:")
    print(table(rows))
    fixed, fitted = best.get((str(cores), args.hogs)), best["auto", args.hogs]
    if fixed is not None:
        print(f"beside {args.hogs} hog(s): fitted / fixed {fitted / fixed:.3f}")
    print(f"quiet: fitted / fixed {best['auto', 0] / best[str(cores), 0]:.3f}")


if __name__ == "__main__":
    main()
