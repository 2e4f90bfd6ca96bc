"""Our time per iteration / pastiche 1.6.0's, same images, size, layers and iterations.

pastiche runs from its own virtualenv (torch==2.13.0, pillow, numpy and
`pip install --no-deps pastiche==1.6.0`), made on first use under
benchmarks/.peers/. Both tools run as commands, one after the other, and each
reports its own elapsed time per step (pastiche: --info-step 1; ours: --log);
the steady-state rate after the warm-up steps is compared, so start-up and model
loading do not count. Both use L-BFGS, average pooling, content conv4_2 and
style conv1_1 … conv5_1 on the same content and style images, from noise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, inputs, machine, table

PEERS = ROOT / "benchmarks" / ".peers"


def pastiche_python() -> Path:
    venv = PEERS / "pastiche-venv"
    py = venv / "bin" / "python"
    if not (venv / "bin" / "pastiche").exists():
        print(f"# creating {venv} (torch==2.13.0, pillow, numpy, pastiche==1.6.0 --no-deps)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0", "pillow", "numpy"], check=True)
        subprocess.run([*pip, "--no-deps", "pastiche==1.6.0"], check=True)
    return py


def _materialize(path: str, folder: Path) -> str:
    if not path.startswith("builtin:"):
        return path
    from nst import api, save_image

    out = folder / (path.split(":", 1)[1] + ".png")
    save_image(api.load(path), out)
    return str(out)


def _rate(steps: list[tuple[int, float]], skip: int) -> float:
    """Seconds per step between step ``skip`` and the last one (steady state)."""
    (i0, t0), (i1, t1) = next(p for p in steps if p[0] >= skip), steps[-1]
    return (t1 - t0) / (i1 - i0)


def _pastiche_steps(output: str) -> list[tuple[int, float]]:
    # with --info-step 1 pastiche prints "STEP ELAPSED LOSS" per step
    steps = []
    for line in output.splitlines():
        m = re.match(r"^\s*(\d+)\s+([\d.]+)\s+[-\d.e+]+\s*$", line)
        if m:
            steps.append((int(m.group(1)), float(m.group(2))))
    return steps


def measure(size: int, precision: str, steps: int, skip: int) -> dict[str, object]:
    py = pastiche_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        content, style = (_materialize(p, folder) for p in inputs())
        out, log = str(folder / "out.png"), folder / "log.jsonl"
        pastiche = [
            str(py),
            "-m",
            "pastiche",
            "--device",
            "cpu",
            "--size",
            str(size),
            "--num-steps",
            str(steps),
            "--pooling",
            "avg",
            "--random-init",
            "--seed",
            "0",
            "--info-step",
            "1",
            "-c",
            content,
            "-s",
            style,
            "-o",
            out,
        ]
        run = subprocess.run(pastiche, check=True, capture_output=True, text=True)
        t_p = _rate(_pastiche_steps(run.stdout + run.stderr), skip)
        ours = [
            sys.executable,
            "-m",
            "nst",
            "stylize",
            content,
            style,
            "-o",
            out,
            "--size",
            str(size),
            "--iterations",
            str(steps),
            "--seed",
            "0",
            "--precision",
            precision,
            "--quiet",
            "--log",
            str(log),
        ]
        subprocess.run(ours, check=True)
        records = [json.loads(line) for line in log.read_text().splitlines()]
        t_o = _rate([(r["iteration"], r["elapsed"]) for r in records], skip)
    return {
        "size": size,
        "our precision": precision,
        "pastiche s/it": t_p,
        "ours s/it": t_o,
        "ours/pastiche": t_o / t_p,
        "speed-up": t_p / t_o,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip", type=int, default=4, help="warm-up steps not timed")
    args = parser.parse_args(argv)
    print(f"# peers benchmark ({machine()})")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for precision in args.precisions.split(","):
            rows.append(measure(size, precision, args.steps, args.skip))
            print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
