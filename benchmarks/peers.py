"""Our time per iteration / pastiche 1.6.0's, same images, size, layers and iterations.

pastiche runs from its own virtualenv (torch==2.13.0, pillow, numpy and
`pip install --no-deps pastiche==1.6.0`), made on first use under
benchmarks/.peers/. Both tools run as commands; each is timed at two iteration
counts and the difference is divided by the extra iterations, so start-up and
model loading cancel out. Both use L-BFGS, average pooling, content conv4_2 and
style conv1_1 … conv5_1 on the same content and style images.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
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


def _run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def measure(size: int, precision: str, n1: int, n2: int) -> dict[str, object]:
    py = pastiche_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        content, style = (_materialize(p, folder) for p in inputs())
        out = str(folder / "out.png")

        def pastiche(n: int) -> list[str]:
            return [str(py), "-m", "pastiche", "--device", "cpu", "--size", str(size),
                    "--num-steps", str(n), "--pooling", "avg", "--random-init", "--seed", "0",
                    "--no-verbose", "-c", content, "-s", style, "-o", out]  # fmt: skip

        def ours(n: int) -> list[str]:
            return [sys.executable, "-m", "nst", "stylize", content, style, "-o", out,
                    "--size", str(size), "--iterations", str(n), "--seed", "0",
                    "--precision", precision, "--quiet"]  # fmt: skip

        t_p = (_run(pastiche(n2)) - _run(pastiche(n1))) / (n2 - n1)
        t_o = (_run(ours(n2)) - _run(ours(n1))) / (n2 - n1)
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
    parser.add_argument("--n1", type=int, default=3)
    parser.add_argument("--n2", type=int, default=13)
    args = parser.parse_args(argv)
    print(f"# peers benchmark ({machine()})")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for precision in args.precisions.split(","):
            rows.append(measure(size, precision, args.n1, args.n2))
            print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
