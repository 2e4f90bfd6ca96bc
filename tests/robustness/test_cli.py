"""Hostile inputs to the command line: each gets the expected exit code and exactly one
line on stderr naming the file or parameter; no traceback; inputs unchanged; no partial
output. Runs on the tiny network (the checks happen before any real work)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nst.cli import app
from tests.robustness import corpus

runner = CliRunner()

#: hostile files whose pixels still decode (damaged metadata is ignored): they run
DECODABLE = {
    "png_bad_iccp",
    "png_bad_exif",
    "jpeg_exif_bad_offset",
    "jpeg_exif_bad_orientation",
    "jpeg_exif_loop",
    "jpeg_exif_truncated",
    "jpeg_cmyk_bad_icc",
    "webp_bad_exif",
    "webp_exif_not_tiff",
    "webp_exif_short",
    "tiny_2x2",
}  # fmt: skip  (a 2x2 image is scaled up to the working size)
#: hostile files refused because the network cannot see them at --size 32
TOO_SMALL = {"strip_1x5000", "wide_4_to_1"}


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 50_000_000:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def place(tmp_path):
    """Inputs in ``in/`` (content, style, mask, weights, init), outputs go to ``out/``."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    (inp / "content.png").write_bytes(corpus.png(48, 36, 0))
    (inp / "style.png").write_bytes(corpus.png(40, 40, 1))
    (inp / "init.png").write_bytes(corpus.png(48, 36, 2))
    (inp / "mask.png").write_bytes(corpus.png(48, 36, 3))
    (inp / "weights.pth").write_bytes(b"\x80\x02not really weights" * 10)
    return tmp_path


def run_case(place: Path, args: list[str], code: int, *fragments: str, output: str = "o.png"):
    """Run ``nst ARGS`` and check everything the robustness contract promises."""
    inp, out = place / "in", place / "out"
    before = _digest(inp)
    values = {"in": str(inp), "out": str(out)}
    argv = [a.format(**values) for a in args]
    result = runner.invoke(app, argv)
    err_lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(err_lines) == 1, err_lines
    line = err_lines[0]
    for fragment in fragments:
        assert fragment.format(**values) in line, (fragment, line)
    assert _digest(inp) == before, "an input changed"
    left = [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or ".nst-probe" in p.name]
    assert left == [], left
    if code != 0:
        with contextlib.suppress(OSError):  # a name the file system refuses: nothing there
            assert not (out / output).is_file(), "partial output"
    return line


BASE = ["stylize", "{in}/content.png", "{in}/style.png", "--size", "32", "--iterations", "1"]


@pytest.mark.parametrize("name", sorted(corpus.BAD_FILES))
def test_every_hostile_file_as_the_content(place, tiny_network, name):
    bad = place / "in" / f"{name}.img"
    bad.write_bytes(corpus.BAD_FILES[name]())
    args = ["stylize", str(bad), "{in}/style.png", "--size", "32", "--iterations", "1",
            "-o", "{out}/o.png", "-q"]  # fmt: skip
    if name in DECODABLE:
        result = runner.invoke(app, [a.format(**{"in": place / "in", "out": place / "out"})
                                     for a in args])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (place / "out" / "o.png").exists()
        return
    line = run_case(place, args, 2, str(bad))
    if name in TOO_SMALL:
        assert "is too small" in line


@dataclass
class Case:
    args: list[str]
    code: int
    fragments: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    output: str = "o.png"
    marks: list = field(default_factory=list)


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda place: os.mkfifo(place / "in" / name)


def _symlink_loop(place: Path) -> None:
    os.symlink(place / "out" / "loop2.png", place / "out" / "loop1.png")
    os.symlink(place / "out" / "loop1.png", place / "out" / "loop2.png")


def _input_loop(place: Path) -> None:
    os.symlink(place / "in" / "b.png", place / "in" / "a.png")
    os.symlink(place / "in" / "a.png", place / "in" / "b.png")


def _hardlink(place: Path) -> None:
    os.link(place / "in" / "content.png", place / "out" / "hard.png")


def _symlink_to_content(place: Path) -> None:
    os.symlink(place / "in" / "content.png", place / "out" / "link.png")


def _file_as_folder(place: Path) -> None:
    (place / "out" / "afile").write_text("x")


def _preview_named_like_content(place: Path) -> None:
    (place / "in" / "o_00000.png").write_bytes(corpus.png(48, 36, 4))


LONG = "x" * 300
CASES: dict[str, Case] = {
    # paths: every output location checked before any work (exit 2)
    "output symlink loop": Case([*BASE, "-o", "{out}/loop1.png"], 2, ("{out}/loop1.png", "loop"),
                                _symlink_loop, "loop1.png"),
    "output name over 255 bytes": Case([*BASE, "-o", "{out}/" + LONG + ".png"], 2,
                                       ("longer than 255 bytes",), output=LONG + ".png"),
    "output folder under a file": Case([*BASE, "-o", "{out}/afile/o.png"], 2,
                                       ("{out}/afile/o.png", "cannot make the folder"),
                                       _file_as_folder),
    "output in /proc": Case([*BASE, "-o", "/proc/nst-out.png"], 2, ("/proc/nst-out.png",)),
    "output is a directory": Case([*BASE, "-o", "{out}"], 2, ("unknown output extension",)),
    "output directory named .png": Case([*BASE, "-o", "{out}/d.png"], 2, ("is a directory",),
                                        lambda p: (p / "out" / "d.png").mkdir(), "d.png/x"),
    "log in /proc": Case([*BASE, "-o", "{out}/o.png", "--log", "/proc/nst.jsonl"], 2,
                         ("log file /proc/nst.jsonl",)),
    "log is a directory": Case([*BASE, "-o", "{out}/o.png", "--log", "{out}"], 2,
                               ("log file {out}", "is a directory")),
    "log under a file": Case([*BASE, "-o", "{out}/o.png", "--log", "{out}/afile/l.jsonl"], 2,
                             ("log file", "cannot make the folder"), _file_as_folder),
    "unknown output extension": Case([*BASE, "-o", "{out}/o.gif"], 2, ("'.gif'",), None, "o.gif"),
    "input symlink loop": Case(["stylize", "{in}/a.png", "{in}/style.png", "-o", "{out}/o.png"],
                               2, ("{in}/a.png", "loop"), _input_loop),
    "input name too long": Case(["stylize", "{in}/" + LONG + ".png", "{in}/style.png", "-o",
                                 "{out}/o.png"], 2, ("too long",)),
    "input is a directory": Case(["stylize", "{in}", "{in}/style.png", "-o", "{out}/o.png"], 2,
                                 ("{in}", "is a directory")),
    "missing style": Case([*BASE[:2], "{in}/nope.png", "-o", "{out}/o.png"], 2,
                          ("{in}/nope.png: no such file",)),
    # inputs never overwritten (by path or inode)
    "output is the mask": Case([*BASE, "--mask", "{in}/mask.png", "--regions", "#000000=1",
                                "-o", "{in}/mask.png"], 2, ("is an input file",)),
    "output is the weights": Case([*BASE, "--weights", "{in}/weights.png", "-o",
                                   "{in}/weights.png"], 2, ("is an input file",),
                                  lambda p: (p / "in" / "weights.png").write_bytes(b"w" * 99)),
    "log is the weights": Case([*BASE, "--weights", "{in}/weights.pth", "-o", "{out}/o.png",
                                "--log", "{in}/weights.pth"], 2, ("log file", "is an input")),
    "log is the mask": Case([*BASE, "--mask", "{in}/mask.png", "--regions", "#000000=1", "-o",
                             "{out}/o.png", "--log", "{in}/mask.png"], 2, ("is an input",)),
    "output is the init": Case([*BASE, "--init", "{in}/init.png", "-o", "{in}/init.png"], 2,
                               ("is an input file",)),
    "output hard-linked to the content": Case([*BASE, "-o", "{out}/hard.png"], 2,
                                              ("is an input file",), _hardlink, "nothing.png"),
    "output symlinked to the content": Case([*BASE, "-o", "{out}/link.png"], 2,
                                            ("is an input file",), _symlink_to_content,
                                            "nothing.png"),
    "preview would overwrite the content": Case(
        ["stylize", "{in}/o_00000.png", "{in}/style.png", "--size", "32", "-o", "{in}/o.png",
         "--save-every", "1"], 2, ("would overwrite the input",), _preview_named_like_content),
    # not regular files: refused, never read (a FIFO would hang)
    "weights FIFO": Case([*BASE, "--weights", "{in}/w.fifo", "-o", "{out}/o.png"], 2,
                         ("{in}/w.fifo: not a regular file",), _fifo("w.fifo")),
    "weights directory": Case([*BASE, "--weights", "{in}", "-o", "{out}/o.png"], 2,
                              ("is a directory",)),
    "weights empty": Case([*BASE, "--weights", "{in}/empty.pth", "-o", "{out}/o.png"], 2,
                          ("empty file",), lambda p: (p / "in" / "empty.pth").touch()),
    "content FIFO": Case(["stylize", "{in}/c.fifo", "{in}/style.png", "-o", "{out}/o.png"], 2,
                         ("{in}/c.fifo: not a regular file",), _fifo("c.fifo")),
    "style /dev/zero": Case([*BASE[:2], "/dev/zero", "-o", "{out}/o.png"], 2,
                            ("/dev/zero: not a regular file",)),
    "mask FIFO": Case([*BASE, "--mask", "{in}/m.fifo", "--regions", "#000000=1", "-o",
                       "{out}/o.png"], 2, ("{in}/m.fifo: not a regular file",), _fifo("m.fifo")),
    "init FIFO": Case([*BASE, "--init", "{in}/i.fifo", "-o", "{out}/o.png"], 2,
                      ("{in}/i.fifo: not a regular file",), _fifo("i.fifo")),
    # sizes: bounded, and checked against the layers in use
    "style scale 600": Case([*BASE, "--style-scale", "600", "-o", "{out}/o.png"], 2,
                            ("style-scale must be > 0 and at most 8",)),
    "style scale 1e-9": Case(["stylize", "{in}/content.png", "{in}/init.png", "--style-scale",
                              "1e-9", "-o", "{out}/o.png"], 2,
                             ("style image {in}/init.png", "too small")),
    "style size 100000": Case([*BASE, "--style-size", "100000", "-o", "{out}/o.png"], 2,
                              ("style-size must be between 16 and 16384",)),
    "size 100000": Case([*BASE, "--size", "100000", "-o", "{out}/o.png"], 2,
                        ("size must be between 16 and 16384",)),
    "size 16 on 4:3": Case([*BASE, "--size", "16", "-o", "{out}/o.png"], 2,
                           ("content image {in}/content.png", "16x12", "at least 16 px")),
    "scales 16,32": Case([*BASE, "--scales", "16,32", "-o", "{out}/o.png"], 2,
                         ("coarse-to-fine stage 1", "16x12")),
    "content layer pool5 at 24 px": Case([*BASE, "--size", "24", "--content-layers", "pool5",
                                          "-o", "{out}/o.png"], 2, ("down to pool5", "32 px")),
    "iterations 1e9": Case([*BASE, "--iterations", "1e9", "-o", "{out}/o.png"], 2,
                           ("iterations: '1e9' is not an integer",)),
    # option values
    "scales 256.7,512": Case([*BASE, "--scales", "256.7,512", "-o", "{out}/o.png"], 2,
                             ("scales: '256.7' is not an integer",)),
    "size abc": Case([*BASE, "--size", "abc", "-o", "{out}/o.png"], 2, ("size: 'abc'",)),
    "style weight nan": Case([*BASE, "--style-weight", "nan", "-o", "{out}/o.png"], 2,
                             ("style-weight must be a finite number",)),
    "tv weight inf": Case([*BASE, "--tv-weight", "inf", "-o", "{out}/o.png"], 2,
                          ("tv-weight must be a finite number",)),
    "empty content layers": Case([*BASE, "--content-layers", ",", "-o", "{out}/o.png"], 2,
                                 ("content-layers: at least one layer",)),
    "regions without mask": Case([*BASE, "--regions", "#ff0000=1", "-o", "{out}/o.png"], 2,
                                 ("regions: give a --mask",)),
    "negative blend": Case([*BASE[:3], "{in}/style.png", *BASE[3:], "--style-blend", "1,-1",
                            "-o", "{out}/o.png"], 2, ("style-blend must be between 0",)),
    "save-every negative": Case([*BASE, "--save-every", "-3", "-o", "{out}/o.png"], 2,
                                ("save-every must be >= 0",)),
    "start-size 4": Case([*BASE, "--start-size", "4", "-o", "{out}/o.png"], 2,
                         ("start-size must be between 16 and 16384 (got 4)",)),
    "precision fp16 on the CPU": Case([*BASE, "--precision", "fp16", "-o", "{out}/o.png"], 2,
                                      ("fp16 needs a GPU",)),
    "unknown device": Case([*BASE, "--device", "tpu", "-o", "{out}/o.png"], 2, ("device",)),
    # one line means one line: control characters in names are escaped
    "newline in a file name": Case(["stylize", "{in}/a\nb.png", "{in}/style.png", "-o",
                                    "{out}/o.png"], 2, ("a\\nb.png: no such file",)),
    "escape sequence in a name": Case(["stylize", "{in}/a\x1b[31mb.png", "{in}/style.png", "-o",
                                       "{out}/o.png"], 2, ("a\\x1b[31mb.png",)),
    # reconstruct
    "reconstruct style 16x16 from 4:3": Case(["reconstruct", "style", "{in}/content.png",
                                              "--size", "16x16", "-o", "{out}/o.png"], 2,
                                             ("16x12", "too small")),
    "reconstruct content into /proc": Case(["reconstruct", "content", "{in}/content.png", "-o",
                                            "/proc/x.png"], 2, ("/proc/x.png",)),
    "reconstruct content output is the input": Case(
        ["reconstruct", "content", "{in}/content.png", "-o", "{in}/content.png"], 2,
        ("is an input file",)),
    "reconstruct style size garbage": Case(["reconstruct", "style", "{in}/style.png", "--size",
                                            "10xx", "-o", "{out}/o.png"], 2,
                                           ("size: '10xx' is neither N nor WxH",)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_option_or_path(place, tiny_network, name):
    case = CASES[name]
    if case.setup is not None:
        case.setup(place)
    run_case(place, case.args, case.code, *case.fragments, output=case.output)


def test_serve_refuses_bad_settings_with_one_line(tmp_path):
    import socket

    (tmp_path / "afile").write_text("x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--port", "70000"], "port must be between 0 and 65535 (got 70000)"),
            (["--workers", "0"], "workers must be between 1 and 64 (got 0)"),
            (["--max-size", "8"], "max-size must be between 16 and 16384 (got 8)"),
            (["--job-ttl", "0"], "job-ttl must be > 0 and at most 1e+12 (got 0)"),
            (["--max-body-mb", "2000"], "max-body-mb must be > 0 and at most 1024 (got 2000)"),
            (["--max-pixels", "lots"], "max-pixels: 'lots' is not an integer"),
            (["--data-dir", str(tmp_path / "afile" / "d")], f"data-dir {tmp_path}/afile/d: "),
            (["--port", str(port)], f"cannot listen on 127.0.0.1:{port} ("),
            (["--host", "0.0.0.0"], "host 0.0.0.0 can be reached from other machines"),
        ]
        for args, fragment in cases:
            r = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "d"), *args])
            assert r.exit_code == 2, (args, r.output)
            (line,) = r.stderr.strip().splitlines()
            assert line.startswith("nst: error: ") and fragment in line, line
