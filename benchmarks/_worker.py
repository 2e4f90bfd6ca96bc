"""Runs one stylization in a fresh process and prints a JSON line of measurements.

Used by scaling.py and time_to_quality.py, so peak memory (ru_maxrss) belongs to
that run alone.
"""

from __future__ import annotations

import json
import resource
import sys

import torch


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    from nst import api
    from nst.config import Config
    from nst.events import Step

    spec = json.loads(sys.argv[1])
    content, style = spec.pop("content"), spec.pop("style")
    curve = spec.pop("curve", False)
    config = Config.from_dict(spec)
    steps: list[Step] = []
    rss: dict[int, float] = {}  # iteration -> resident MB

    def on_event(e: object) -> None:
        if isinstance(e, Step):
            steps.append(e)
            rss[e.iteration] = rss_mb()

    plan = api.plan_stylize(content, style, config)
    api.execute(plan, on_event)
    last = [s for s in steps if s.stage == steps[-1].stage]
    warm = min(2, len(last) - 1)
    span = last[-1].elapsed - last[warm].elapsed
    n = max(1, last[-1].iteration - last[warm].iteration)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "s_per_iteration": span / n,
        "peak_rss_mb": peak_kb / 1024,
        "rss_first_mb": rss[min(rss)],
        "rss_last_mb": rss[max(rss)],
        "final_loss": steps[-1].loss,
        "s_per_evaluation": (last[-1].elapsed - last[0].elapsed)
        / max(1, last[-1].evaluations - last[0].evaluations),
        "evaluations": last[-1].evaluations - last[0].evaluations,
        "stage": plan.stages[-1].to_record() | {"history": plan.stages[-1].history},
        "elapsed": steps[-1].elapsed,
        "threads": torch.get_num_threads(),
    }
    if curve:
        out["curve"] = [(s.stage, s.iteration, s.elapsed, s.loss) for s in steps]
    out["rss_by_iteration"] = sorted(rss.items())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
