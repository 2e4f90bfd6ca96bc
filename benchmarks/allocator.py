"""Freed memory kept (glibc's malloc) against handed back: whole `nst stylize` runs.

Every evaluation allocates and frees the same large tensors. By default glibc hands
freed memory at its heap's top back to the system, which zeroes it page by page when it
is touched again; ``nst`` tells malloc to keep it (:func:`nst.runtime.keep_freed_memory`,
off with ``NST_KEEP_FREED_MEMORY=0``). Each row is one command as users run it, in a
fresh process, start-up included, the two settings interleaved over ``--rounds``: the
lower wall clock and the higher peak RSS of each, and the ratios kept / handed back.

    python benchmarks/allocator.py [--runs fast:512:60,fast:1024:15] [--rounds 3]
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

#: the child: the `nst` command, then its own peak RSS (MB) on stderr's last line
CHILD = (
    "import resource, sys\n"
    "sys.argv[0] = 'nst'\n"
    "from nst.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "    print(f'peak {peak:.1f}', file=sys.stderr)\n"
)


def once(preset: str, size: int, iterations: int, keep: bool, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS MB of one `nst stylize --preset PRESET` run."""
    env = {**os.environ, "NST_KEEP_FREED_MEMORY": "1" if keep else "0"}
    argv = ["stylize", "builtin:chelsea", "builtin:swirls", "--preset", preset, "--size",
            str(size), "--iterations", str(iterations), "--quiet", "-o", str(out)]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, float(done.stderr.strip().splitlines()[-1].split()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="fast:512:60,fast:1024:15",
                        help="PRESET:SIZE:ITERATIONS, comma-separated")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# freed memory kept or handed back, `nst stylize` ({machine()})")
    runs = [(p, int(s), int(i)) for p, s, i in (r.split(":") for r in args.runs.split(","))]
    best: dict[tuple[str, int, int, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for run in runs:
                for keep in (False, True):
                    s, peak = once(*run, keep, Path(tmp) / f"{run[1]}_{keep}.png")
                    was = best.get((*run, keep), [float("inf"), 0.0])
                    best[(*run, keep)] = [min(was[0], s), max(was[1], peak)]
    rows = []
    for preset, size, iterations in runs:
        (s0, p0), (s1, p1) = (
            best[(preset, size, iterations, False)],
            best[(preset, size, iterations, True)],
        )
        rows.append({"preset": preset, "size": size, "iterations": iterations, "handed back s": s0,
                     "kept s": s1, "kept/back time": s1 / s0, "handed back MB": p0,
                     "kept MB": p1, "kept/back peak": p1 / p0})  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
