"""The GPU table in one command: `python benchmarks/gpu.py` on any CUDA machine (< 5 min).

Prints, on the first CUDA device:
1. bare VGG19 forward+backward (truncated after conv5_1, channels_last), one evaluation of
   nst's default objective and one nst L-BFGS iteration (line search included), at 512 and
   1024 px (single stage), in bf16 and fp32, with each run's peak GPU memory;
2. the bare pass with cuDNN's autotuner off and on (nst turns it on for CUDA);
3. 500 iterations at 512 px end to end, `nst stylize` as a fresh process (loading torch,
   the weights and the images included), in the default precision, against neural-style's
   22 s (Adam) to 43 s (L-BFGS) on a Pascal Titan X;
4. a 4096x3072 stage evaluated in tiles (--memory-limit 8G: what a consumer card would do),
   seconds per iteration and peak memory.
`--device cpu --quick` runs the same code at toy sizes, to check the script without a GPU.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import inputs, machine, table, timed
from iteration import measure

NEURAL_STYLE_S = (22.0, 43.0)  # 500 iterations at 512 px, Pascal Titan X (Adam, L-BFGS)


def peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


Rows = list[dict[str, object]]


def iteration_rows(sizes: list[int], device: torch.device, iterations: int) -> Rows:
    rows = []
    for size in sizes:
        for precision in ("bf16", "fp32"):
            reset_peak(device)
            row = measure(size, precision, iterations=iterations, repeat=10, rounds=1,
                          device=device.type, scales=(size,))  # fmt: skip
            row["peak GPU MB"] = peak_mb(device)
            rows.append(row)
            print(table(rows[-1:]), flush=True)
    return rows


def autotune_rows(size: int, device: torch.device) -> Rows:
    from nst import runtime

    rows = []
    for precision in ("bf16", "fp32"):
        label, dtype = runtime.resolve_precision(precision, device)
        model = runtime.network(None, "avg", True, ["conv5_1"], device, dtype)
        x = torch.rand(1, 3, size, size * 4 // 3, device=device) * 255

        times = {}
        for tuned in (False, True):
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = tuned
            times[tuned] = timed(functools.partial(_bare, model, x), 10, warmup=3, sync=True)
        rows.append({"size": size, "precision": label, "bare s, autotune off": times[False],
                     "bare s, autotune on": times[True],
                     "speed-up": times[False] / times[True]})  # fmt: skip
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return rows


def _bare(model: torch.nn.Module, x: torch.Tensor) -> None:
    xi = x.detach().requires_grad_(True)
    out = model(xi, ["conv5_1"])["conv5_1"]
    torch.autograd.grad(out.float().sum(), xi)


def end_to_end(size: int, iterations: int, device: str) -> dict[str, object]:
    content, style = inputs()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "nst", "stylize", content, style, "--size", str(size),
                "--iterations", str(iterations), "--seed", "0", "--device", device, "-q",
                "-o", str(Path(tmp) / "out.png")]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(argv, check=True)
        seconds = time.perf_counter() - t
    low, high = NEURAL_STYLE_S
    return {"run": f"nst stylize, {iterations} it at {size} px, default precision",
            "wall s": seconds, "neural-style s (Titan X)": f"{low:.0f}-{high:.0f}",
            "speed-up": f"{low / seconds:.2g}-{high / seconds:.2g}"}  # fmt: skip


def tiled(
    size: int, limit: str, iterations: int, device: torch.device, tile: int | None = None
) -> dict[str, object]:
    from nst import api
    from nst.config import Config
    from nst.events import Step

    content, style = inputs()
    config = Config(size=size, scales=(size,), iterations=iterations, seed=0, init="content",
                    memory_limit=limit, tile=tile, device=device.type)  # fmt: skip
    plan = api.plan_stylize(content, style, config)
    stage = plan.stages[-1]
    steps: list[Step] = []
    reset_peak(device)
    api.execute(plan, lambda e: steps.append(e) if isinstance(e, Step) else None)
    span = steps[-1].elapsed - steps[1].elapsed
    h, w = plan.out_size
    return {"stage": f"{w}x{h}", "memory limit": limit, "tile px": stage.tile or "untiled",
            "planned MB": stage.memory / 2**20 if stage.memory else "-",
            "s/iteration": span / max(1, steps[-1].iteration - steps[1].iteration),
            "peak GPU MB": peak_mb(device)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="toy sizes (a check of the script)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device on this machine: nothing measured (--device cpu --quick checks "
              "the script)")  # fmt: skip
        raise SystemExit(1)
    quick = args.quick
    sizes = [64, 128] if quick else [512, 1024]
    print(f"# GPU table ({machine()})")
    started = time.perf_counter()
    print("\n## bare pass, evaluation and iteration (single stage)")
    rows = iteration_rows(sizes, device, iterations=8 if quick else 30)
    print("\n## cuDNN autotuner (bare pass)")
    tuned = autotune_rows(sizes[0], device)
    print(table(tuned), flush=True)
    print("\n## 500 iterations at 512 px, end to end (a fresh `nst stylize` process)")
    e2e = end_to_end(64 if quick else 512, 5 if quick else 500, args.device)
    print(table([e2e]), flush=True)
    print("\n## a print-size stage in tiles")
    if quick:
        big = tiled(256, "none", 3, device, tile=128)
    else:
        big = tiled(4096, "8G", 4, device)
    print(table([big]), flush=True)
    print(f"\n# all of it again, in one place ({time.perf_counter() - started:.0f} s)")
    for part in (rows, tuned, [e2e], [big]):
        print(table(part))
        print()


if __name__ == "__main__":
    main()
