"""Shared helpers of the benchmarks: inputs, timing, a plain results table.

Benchmarks print ratios measured side by side in one run (ours / baseline), so the
numbers mean the same on any machine. Inputs are the paper's images from
../shared/images when present (Tuebingen, Starry Night), else built-in images.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NST_SHARED_IMAGES", ROOT.parent / "shared" / "images"))


def inputs() -> tuple[str, str]:
    """(content, style) paths or builtin names."""
    content, style = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
    if content.is_file() and style.is_file():
        return str(content), str(style)
    return "builtin:chelsea", "builtin:swirls"


def machine() -> str:
    import torch

    from nst.runtime import cpu_has_fast_bf16

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}, "
        f"native bf16: {cpu_has_fast_bf16()}, {gpu}"
    )


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1, sync: bool = False) -> float:
    """Median seconds of ``repeat`` calls after ``warmup`` calls."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def table(rows: list[dict[str, object]]) -> str:
    """A fixed-width text table of dict rows (same keys)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    cells = [[_fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def free_port() -> int:
    """A free TCP port on loopback (for a server a benchmark starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """The resident memory (VmRSS) of process ``pid``, in MB."""
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def geomean(values: list[float]) -> float:
    """The geometric mean (ratios averaged as ratios); values floored at 1e-30."""
    import math

    return math.exp(sum(math.log(max(v, 1e-30)) for v in values) / len(values))
