"""Walk the README top to bottom as a new user would, at small sizes, and fail on any
mismatch.

Every ``sh`` block's ``nst`` command (and the Python API block) runs in a fresh folder
that holds the files the README names (``tubingen.jpg``, ``photo.jpg``, ``clip.mp4``,
``photos/``, ``jobs.csv``, ... made here from the built-in images), with the sizes and
iteration counts made small; every file a command promises (``-o``, ``--out``, ``--raw``,
a batch's folder, a figure's ``index.html``) must then exist and open. Commands that
start a server or a long benchmark are listed as skipped, with the reason.

    python scripts/walk_readme.py [--readme README.md] [--keep DIR]

Exit 0 when every command did what the README says; 1 with one line per mismatch.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: commands that are not run, and why (matched on the start of the command)
SKIPPED = {
    "make": "make targets are what runs this script",
    "python benchmarks/": "benchmarks take minutes; make bench runs them",
    ".venv/bin/pytest": "the test suite runs this script",
    "nst serve": "a server runs until stopped; tests/web covers it",
}
#: option values made small (the README's values are for real pictures)
SMALL = {
    "--size": "48",
    "--iterations": "2",
}
#: per command, what the README's own values become (a neuron at row 5 needs a map of 6)
SPECIAL = {
    "saliency": {"--size": "96"},
    "reconstruct style": {"--size": "48x32"},
    "figures": {"--size": "32", "--iterations": "2"},
    "top-patches": {"--size": "48"},
    "video": {"--size": "32", "--iterations": "2"},
}
#: flags added when the README gives none (keeps every run short)
ADDED = {
    "stylize": ["--size", "48", "--iterations", "2"],
    "reconstruct": ["--size", "48", "--iterations", "2"],
    "visualize": ["--size", "32", "--iterations", "2"],
    "top-patches": ["--size", "48"],
    "figures": ["--size", "32", "--iterations", "2"],
    "batch": ["--size", "32", "--iterations", "2", "--workers", "1"],
}
OUTPUT_FLAGS = ("-o", "--output", "--out", "--raw")


@dataclass
class Outcome:
    command: str
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None


def blocks(text: str) -> Iterator[tuple[str, str]]:
    """(language, body) of every fenced block."""
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        yield m.group(1), m.group(2)


def commands(body: str) -> Iterator[str]:
    """The commands of a shell block: comments removed, continuation lines joined."""
    joined = body.replace("\\\n", " ")
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            yield line


def prepare(folder: Path) -> None:
    """The files the README's examples name, made from the built-in images."""
    from nst import builtins
    from nst.video.sample import sample_frames, write_clip

    photo, painting = builtins.image("builtin:chelsea"), builtins.image("builtin:swirls")
    small = [im.copy() for im in (photo, painting)]
    for im in small:
        im.thumbnail((96, 96))
    photo_s, painting_s = small
    for name in ("tubingen.jpg", "photo.jpg"):
        photo_s.save(folder / name)
    for name in ("starry_night.jpg", "painting.jpg"):
        painting_s.save(folder / name)
    images = folder / "images"  # the paper's images as ../shared/images names them
    images.mkdir()
    photo_s.save(images / "tubingen.jpg")
    painting_s.save(images / "starry_night.jpg")
    (folder / "photos").mkdir()
    photo_s.save(folder / "photos" / "cat.jpg")
    (folder / "paintings").mkdir()
    painting_s.save(folder / "paintings" / "swirls.jpg")
    (folder / "jobs.csv").write_text("content,style\nphoto.jpg,painting.jpg\n")
    write_clip(folder / "clip.mp4", sample_frames(48, 32, 3), fps=12)


def rewrite(argv: list[str], nst: str) -> list[str]:
    """The README's command with small values, run by this interpreter's ``nst``."""
    argv = [nst, *argv[1:]]
    name = argv[1] if len(argv) > 1 else ""
    key = " ".join(argv[1:3]) if name == "reconstruct" else name
    special = {**SMALL, **SPECIAL.get(key, SPECIAL.get(name, {}))}
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i > 0 and argv[i - 1] in special:
            out.append(special[argv[i - 1]])
        elif arg == "../shared/images":
            out.append("images")
        else:
            out.append(arg)
    if "--help" not in out:
        extra = ADDED.get(name, [])
        for flag, value in zip(extra[::2], extra[1::2]):
            if flag not in out:
                out += [flag, value]
        if name == "figures" and "--only" not in out:
            out += ["--only", "fig5"]  # one small sheet stands for the paper's figures
    return out


def promised(argv: list[str]) -> list[Path]:
    """The files a command says it writes."""
    files = [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in OUTPUT_FLAGS]
    if len(argv) > 1 and argv[1] == "figures":
        out = argv[argv.index("--out") + 1] if "--out" in argv else "figs"
        files = [Path(out) / "index.html"]
        only = argv[argv.index("--only") + 1] if "--only" in argv else "fig5"
        files.append(Path(out) / f"{only}.png")
    if len(argv) > 1 and argv[1] == "batch":
        files = [Path(f) / "batch.jsonl" for f in files]
    return files


def check_file(path: Path) -> str | None:
    """None when ``path`` is a file that opens as what its name says."""
    if not path.is_file() or path.stat().st_size == 0:
        return f"{path} was not written"
    suffix = path.suffix.lower()
    try:
        if suffix in (".png", ".jpg", ".jpeg", ".webp"):
            from PIL import Image

            with Image.open(path) as im:
                im.verify()
        elif suffix == ".npy":
            import numpy as np

            np.load(path)
        elif suffix in (".mp4", ".mkv", ".webm"):
            from nst.video import io as vio

            vio.probe(path)
    except Exception as exc:
        return f"{path} does not open ({type(exc).__name__}: {exc})"
    return None


def run_command(line: str, folder: Path, nst: str, timeout: float) -> Outcome:
    outcome = Outcome(line)
    for start, why in SKIPPED.items():
        if line.startswith(start) or line.replace(".venv/bin/", "").startswith(start):
            outcome.skipped = why
            return outcome
    argv = shlex.split(line)
    if Path(argv[0]).name != "nst":
        outcome.skipped = "not an nst command"
        return outcome
    argv = rewrite(argv, nst)
    env = {**os.environ, "NST_DEBUG": ""}
    try:
        r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout,
                           env=env)  # fmt: skip
    except subprocess.TimeoutExpired:
        outcome.problems.append(f"did not finish in {timeout:.0f} s")
        return outcome
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        outcome.problems.append(f"exit {r.returncode}: {last}")
    if "Traceback" in r.stderr:
        outcome.problems.append("printed a traceback")
    for path in promised(argv):
        problem = check_file(folder / path)
        if problem:
            outcome.problems.append(problem)
    return outcome


def run_python(body: str, folder: Path, timeout: float) -> Outcome:
    """The Python API block, sizes made small; its ``nst.save_image`` must write its file."""
    code = body.replace("size=512", "size=48, iterations=2")
    outcome = Outcome("python: " + " ".join(body.split())[:60] + " ...")
    r = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True,
                       timeout=timeout)  # fmt: skip
    if r.returncode != 0:
        outcome.problems.append(f"exit {r.returncode}: {r.stderr.strip()[-300:]}")
    for name in re.findall(r"save_image\([^,]+,\s*\"([^\"]+)\"\)", code):
        problem = check_file(folder / name)
        if problem:
            outcome.problems.append(problem)
    return outcome


def walk(readme: Path, folder: Path, timeout: float = 300.0) -> list[Outcome]:
    nst = str(Path(sys.executable).with_name("nst"))
    prepare(folder)
    outcomes = []
    for language, body in blocks(readme.read_text(encoding="utf-8")):
        if language == "sh":
            outcomes += [run_command(line, folder, nst, timeout) for line in commands(body)]
        elif language == "python" and "import nst" in body:
            outcomes.append(run_python(body, folder, timeout))
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nst-readme-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        outcomes = walk(args.readme, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    bad = 0
    for o in outcomes:
        if o.skipped:
            print(f"skip  {o.command}  ({o.skipped})")
        elif o.problems:
            bad += 1
            print(f"FAIL  {o.command}: " + "; ".join(o.problems))
        else:
            print(f"ok    {o.command}")
    ran = sum(1 for o in outcomes if not o.skipped)
    print(f"{ran - bad} of {ran} README commands did what the README says")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
