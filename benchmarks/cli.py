"""How instant the command line is: each command run as a fresh process, as a user runs it.

Prints the median wall time (and peak memory) of `nst --help`, `nst stylize --help` and a
bad-argument error, which must not import torch, and the time from starting `nst stylize`
at 256 px to its first L-BFGS iteration (read from its --log as the line appears), which
includes importing torch and loading the weights. Goals: 0.5 s, 0.5 s, 3 s. For scale, a
bare `python -c "import torch"` in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import inputs, table

NST = str(Path(sys.executable).with_name("nst"))


def wall(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    elapsed = time.perf_counter() - t
    proc.returncode = 0  # reaped above
    return elapsed, usage.ru_maxrss / 1024


def first_iteration(size: int, folder: Path) -> float:
    """Seconds from starting `nst stylize` to the first iteration's line in its log."""
    content, style = inputs()
    log = folder / "run.jsonl"
    log.unlink(missing_ok=True)
    argv = [NST, "stylize", content, style, "--size", str(size), "--iterations", "2",
            "-o", str(folder / "out.png"), "--log", str(log), "-q", "--seed", "0"]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if log.exists():
                for line in log.read_text().splitlines():
                    if line.endswith("}") and json.loads(line).get("iteration", 0) >= 1:
                        return time.perf_counter() - t
            if proc.poll() is not None:
                raise RuntimeError(f"nst stylize ended without an iteration: {proc.stderr}")
            time.sleep(0.005)
    finally:
        proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    print(f"# command-line start-up ({os.cpu_count()} CPUs, one fresh process per run)")
    cases = {
        "nst --help": ([NST, "--help"], 0.5),
        "nst stylize --help": ([NST, "stylize", "--help"], 0.5),
        "nst stylize a b --size x (error)": ([NST, "stylize", "a", "b", "--size", "x"], 0.5),
        "python -c 'import torch'": ([sys.executable, "-c", "import torch"], None),
    }
    rows: list[dict[str, object]] = []
    for name, (cmd, goal) in cases.items():
        runs = [wall(cmd) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        rows.append({"command": name, "median s": seconds, "max s": max(r[0] for r in runs),
                     "peak MB": max(r[1] for r in runs), "goal s": goal if goal else "-",
                     "met": ("yes" if seconds <= goal else "NO") if goal else "-"})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        firsts = [first_iteration(args.size, Path(tmp)) for _ in range(args.repeat)]
    seconds = statistics.median(firsts)
    rows.append({"command": f"nst stylize to iteration 1 at {args.size} px",
                 "median s": seconds, "max s": max(firsts), "peak MB": "-", "goal s": 3.0,
                 "met": "yes" if seconds <= 3.0 else "NO"})  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
