"""How long a batch would take, before it runs (``nst batch --dry-run``).

The speed is seconds per iteration per megapixel, measured: from the ok records of
earlier runs into the same folder (their seconds, iterations and output sizes), else by
a short test run here (a few iterations of the first job's settings at a small size, on
as many torch threads as one worker gets, fewer while other programs keep cores busy, as
a worker's). A job's work is its iterations times its pixels, stage by stage
(coarse-to-fine stages counted at their sizes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from .jobs import BatchJob

#: the test run: this many iterations at most this size
TEST_ITERATIONS = 8
TEST_SIZE = 160


@dataclass(frozen=True)
class Speed:
    seconds_per_iteration_megapixel: float
    basis: str  # what measured it, in words


def job_work(config: Config, aspect: float) -> float:
    """Iteration-megapixels of a run (``aspect``: the content's short side over its long)."""
    short = min(aspect, 1 / aspect)
    return sum(n * s * s * short / 1e6 for s, n in zip(config.stage_sizes, config.stage_iterations))


def content_aspect(path: str) -> float:
    """Height over width of a content image from its header (a built-in: its size)."""
    from .. import builtins
    from ..imageio import probe

    if path.startswith("builtin:"):
        w, h = builtins.image(path.split(":", 1)[1]).size
    else:
        w, h = probe(path)
    return h / w


def from_records(path: Path) -> Speed | None:
    """The median speed of the ok records in ``path`` whose outputs still exist."""
    from ..imageio import probe

    speeds = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            rec = json.loads(line)
            if rec.get("status") != "ok" or not rec.get("seconds"):
                continue
            w, h = probe(path.parent / rec["output"])
            config = Config.from_dict({k: v for k, v in rec["options"].items() if v is not None})
            work = job_work(config.replace(size=max(w, h)), h / w)
            speeds.append(float(rec["seconds"]) / work)
        except Exception:  # a damaged line, a moved output: not a measurement
            continue
    if not speeds:
        return None
    speeds.sort()
    n = len(speeds)
    return Speed(speeds[n // 2], f"{n} earlier job{'' if n == 1 else 's'} in {path}")


def test_run(job: BatchJob, threads: int, fit: bool = True) -> Speed:
    """A few iterations of ``job``'s settings at a small size, on ``threads`` threads, or,
    with ``fit``, on those of them that other programs leave, as a worker's jobs compute
    (:class:`nst.threads.PainterThreads`): beside a busy program, a run on every thread
    waits for the busy core at each step (16x slower beside one hog on 2 cores)."""
    import torch

    from ..api import stylize
    from ..events import Step
    from ..threads import PainterThreads, set_threads

    config = job.config.replace(
        size=min(job.config.size, TEST_SIZE), iterations=TEST_ITERATIONS, start_size=None,
        scales=(), preset=None,
    )  # fmt: skip
    times: list[float] = []
    used: list[int] = []  # the threads of each measured step

    def on_event(event: object) -> None:
        if isinstance(event, Step):
            times.append(time.perf_counter())
            used.append(torch.get_num_threads())

    before = torch.get_num_threads()
    try:
        with PainterThreads.fitted(threads, fit).job(on_event) as handler:
            stylize(job.content, list(job.styles), config, handler)
    finally:
        set_threads(before)
    aspect = content_aspect(job.content)
    # from the first step on (the loading is not the iterations'), and of a run whose
    # threads changed only its steps at the last number (those before the first look at
    # the load ran beside a busy program with every thread: 1 s each instead of 0.1)
    first = _steady_from(used)
    steps = len(times) - 1 - first
    seconds = times[-1] - times[first] if steps > 0 else 0.0
    work = job_work(config, aspect) * steps / max(1, config.iterations)
    now = used[-1] if used else threads
    how = (f"{threads} thread(s)" if now >= threads else
           f"{now} of {threads} threads: other programs kept cores busy")  # fmt: skip
    return Speed(seconds / work if work > 0 else 0.0, f"a test run here ({how})")


def _steady_from(used: list[int]) -> int:
    """The first step from which every step computed with the last number of threads
    (the first step when fewer than two did)."""
    first = len(used) - 1
    while first > 0 and used[first - 1] == used[-1]:
        first -= 1
    return first if len(used) - 1 - first >= 2 else 0
