"""Run the benchmarks: `python benchmarks/run.py [--quick] [SUITE ...]`.

--quick (what `make bench` runs): the iteration benchmark at 256 and 512 px in fp32
and bf16 (iteration / bare network pass), seconds per iteration against pastiche
1.6.0 at 256 px, and the command line's start-up: a few minutes on 2 cores (the
first time also makes pastiche's virtualenv under benchmarks/.peers/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import batch
import checkpoint
import cli
import coarse_to_fine
import explain
import iteration
import memory
import peers
import print_size
import quality
import scaling
import time_to_quality
import video

SUITES = {
    "iteration": iteration.main,
    "cli": cli.main,
    "coarse_to_fine": coarse_to_fine.main,
    "peers": peers.main,
    "scaling": scaling.main,
    "time_to_quality": time_to_quality.main,
    "quality": quality.main,
    "explain": explain.main,
    "batch": batch.main,
    "memory": memory.main,
    "print_size": print_size.main,
    "video": video.main,
    "checkpoint": checkpoint.main,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=", ".join(SUITES))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite {unknown[0]} (use {', '.join(SUITES)})")
    if args.quick or not args.suites:
        iteration.main([])
        print()
        peers.main(["--sizes", "256", "--steps", "12"])
        print()
        cli.main([])
        return
    for name in args.suites:
        SUITES[name]([])
        print()


if __name__ == "__main__":
    main()
