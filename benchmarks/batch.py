"""The batch runner against nst.stylize in a loop, and two ways to use 2 cores.

1. Per-job overhead: the same jobs (built-in photos x paintings, 128 px, 50 iterations,
   seed 0) by ``nst.stylize`` called in a loop in this process with 2 torch threads,
   against ``run_batch`` with 1 worker x 2 threads on a local Ray. Goal: <= 1.05x, once
   Ray has started (the start is reported apart: it is paid once per batch).
2. Throughput: 1 worker x 2 threads against 2 workers x 1 thread.
3. ``--crowded``: two painters of 2 threads on this machine's cores (two Ray nodes of 2
   CPUs each), which fit their threads to each other's load; ``--nice0``: 1 worker x 2
   threads with Ray's workers at nice 0 instead of Ray's 15.

    python benchmarks/batch.py [--size 128] [--iterations 50] [--preset fast] [--rounds 2]
        [--crowded] [--nice0]

``--preset`` (default none: the ``paper`` settings, Gram) measures a preset's jobs;
``fast`` and ``quality`` (w2) are what a painter's pooled threads slowed 1.9x once
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

import nst
from common import machine, table
from nst.batch import Cluster, Records, WorkersReady, cross, run_batch

CONTENTS = ["builtin:chelsea", "builtin:astronaut", "builtin:coffee", "builtin:rocket"]
STYLES = ["builtin:swirls", "builtin:mosaic"]


def loop(jobs, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for job in jobs:
        nst.save_image(nst.stylize(job.content, list(job.styles), job.config), job.output)
    return time.perf_counter() - start


def batch(jobs, out: Path, workers: int, threads: int, nodes: int = 0) -> tuple[float, float]:
    """(seconds to start Ray and warm the workers, seconds for the jobs once they run).
    ``nodes``: a cluster of a head (no CPUs for work) and that many worker nodes of
    ``threads`` CPUs each, on this machine (``ray.cluster_utils``)."""
    import ray

    start = time.perf_counter()
    nodes_cluster = None
    if nodes:
        from ray.cluster_utils import Cluster as RayCluster

        nodes_cluster = RayCluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(nodes):
            nodes_cluster.add_node(num_cpus=threads)
        nodes_cluster.wait_for_nodes()
    address = nodes_cluster.address if nodes_cluster else None
    cluster = Cluster(address=address, workers=workers, threads_per_worker=threads)
    ready = []

    def on_event(event):
        if isinstance(event, WorkersReady):
            ready.append(time.perf_counter())

    counts = run_batch(jobs, Records(out), cluster, on_event)
    done = time.perf_counter()
    ray.shutdown()
    if nodes_cluster is not None:
        nodes_cluster.shutdown()
    assert counts["ok"] == len(jobs), counts
    return ready[0] - start, done - ready[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument(
        "--crowded",
        action="store_true",
        help="add 2 nodes x 1 worker x 2 threads on this machine (more Ray "
        "CPUs than cores: the painters fit their threads to each other)",
    )
    parser.add_argument(
        "--nice0",
        action="store_true",
        help="add 1 worker x 2 threads with Ray's workers at nice 0 "
        "(RAY_worker_niceness; Ray's default is 15)",
    )
    args = parser.parse_args(argv)
    print(f"# batch benchmark ({machine()}); {args.rounds} interleaved rounds, the lower kept")
    defaults = {"size": args.size, "iterations": args.iterations, "seed": 0,
                "precision": args.precision}  # fmt: skip
    if args.preset:
        defaults["preset"] = args.preset
        print(f"jobs: --preset {args.preset} --size {args.size} --iterations {args.iterations}")
    kinds = {"one": (1, 2, 0), "two": (2, 1, 0), "nodes": (2, 1, 2)}
    if args.crowded:
        kinds["crowded"] = (2, 2, 2)
    if args.nice0:
        kinds["nice0"] = (1, 2, 0)
    best = {k: float("inf") for k in ("loop", *kinds)}
    starts = {k: float("inf") for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def jobs():
            out = Path(tmp) / str(next(counter))
            out.mkdir()
            return cross(CONTENTS, STYLES, defaults, out), out

        warm, _ = jobs()
        loop(warm[:2], 2)  # the network loaded and both built-in paintings made
        for _ in range(args.rounds):
            best["loop"] = min(best["loop"], loop(jobs()[0], 2))
            for key, (workers, threads, nodes) in kinds.items():
                js, out = jobs()
                nice = "0" if key == "nice0" else "15"  # read by the Ray this run starts
                os.environ["RAY_worker_niceness"] = nice  # noqa: SIM112 (Ray spells it so)
                start, took = batch(js, out, workers, threads, nodes)
                best[key] = min(best[key], took)
                starts[key] = min(starts[key], start)
    n = len(CONTENTS) * len(STYLES)
    names = {
        "loop": "nst.stylize in a loop, 2 threads",
        "one": "batch, 1 worker x 2 threads",
        "two": "batch, 2 workers x 1 thread",
        "nodes": "batch, 2 nodes x 1 worker x 1 thread",
        "crowded": "batch, 2 nodes x 1 worker x 2 threads (fitted)",
        "nice0": "batch, 1 worker x 2 threads, workers at nice 0",
    }
    rows = [
        {
            "run": names[k],
            "jobs": n,
            "start s": starts.get(k, 0.0),
            "jobs s": best[k],
            "s/job": best[k] / n,
            "vs loop": best[k] / best["loop"],
            "jobs/min": n / best[k] * 60,
        }
        for k in ("loop", *kinds)
    ]
    print(table(rows))
    print(
        f"per-job overhead, 1 worker x 2 threads vs the loop: {best['one'] / best['loop']:.3f}x "
        "(goal <= 1.05x; Ray's start and the workers' warm-up, paid once per batch, apart)"
    )
    print(
        f"throughput, 2 workers x 1 thread vs 1 worker x 2 threads: "
        f"{best['one'] / best['two']:.2f}x"
    )
    print(
        f"two Ray nodes on this machine vs one node, 2 workers each: "
        f"{best['two'] / best['nodes']:.2f}x (the same two cores)"
    )


if __name__ == "__main__":
    main()
