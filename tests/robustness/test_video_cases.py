"""Hostile sources, styles, options, outputs and work folders for ``nst video``: each gets
exit 2 and the exact one line, before any frame is painted (tiny network)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from nst.cli.app import main
from tests.robustness import corpus

pytest.importorskip("av", reason="make test installs nst[video]")
pytest.importorskip("cv2", reason="make test installs nst[video]")

from nst.video.sample import sample_frames, write_clip

DIGITS = "9" * 5000


@pytest.fixture
def place(tmp_path, tiny_network, monkeypatch) -> Path:
    write_clip(tmp_path / "clip.mp4", sample_frames(64, 48, 3), fps=12, tone=None)
    (tmp_path / "style.png").write_bytes(corpus.png(40, 40, 1))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def nst(*args: str) -> tuple[int, list[str]]:
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        pytest.raises(SystemExit) as exc,
    ):
        main(list(args))
    assert "Traceback" not in err.getvalue()
    return int(exc.value.code or 0), err.getvalue().strip().splitlines()


RUN = ["--size", "32", "--iterations", "2", "-q"]


@pytest.mark.parametrize("name", sorted(corpus.BAD_FILES))
def test_every_hostile_file_as_the_source(place, name):
    """FFmpeg reads many image files as videos of one frame: those run (exit 0); every
    other file is refused in one line naming it, before any frame is painted."""
    bad = place / f"{name}.mp4"
    bad.write_bytes(corpus.BAD_FILES[name]())
    code, lines = nst("video", str(bad), "style.png", "-o", "out.mp4", *RUN)
    if code == 0:
        assert lines == [] and (place / "out.mp4").is_file()
        return
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"nst: error: {bad}: "), lines
    reasons = ("not a video PyAV can read", "has no video stream", "has no frames",
               "the video stream has no frame size", "the video stream has no decoder",
               "corrupt at frame 1", "frames of ")  # fmt: skip
    assert lines[0][len(f"nst: error: {bad}: ") :].startswith(reasons), lines
    assert not (place / "out.mp4").exists()
    assert not list(place.glob("out.mp4.work/0*.png"))


def _settings_of_another_run(place: Path) -> None:
    work = place / "out.mp4.work"
    work.mkdir()
    (work / "settings.json").write_text(json.dumps({"settings": {"input": "x"}, "seed": 1}))


def _damaged_settings(place: Path) -> None:
    work = place / "out.mp4.work"
    work.mkdir()
    (work / "settings.json").write_bytes(b"\xff{not json")


def _seed_not_a_number(place: Path) -> None:
    work = place / "out.mp4.work"
    work.mkdir()
    (work / "settings.json").write_text(json.dumps({"settings": {}, "seed": "x"}))


WORK_TAKEN = ("nst: error: out.mp4.work holds frames made with other settings: its settings.json "
              "(damaged, or of another nst version){more}; run with the same ones to continue, "
              "or add --restart to discard them")  # fmt: skip
CASES: dict[str, tuple[list[str], str, object]] = {
    "work folder is a file": (
        [], "nst: error: out.mp4.work: not a folder; nst video keeps its frames there (move it "
        "away)", lambda p: (p / "out.mp4.work").write_text("x")),
    "work folder is a symlink": (
        [], "nst: error: out.mp4.work: not a folder; nst video keeps its frames there (move it "
        "away)", lambda p: (p / "out.mp4.work").symlink_to(p)),
    "work folder of another run": ([], WORK_TAKEN.format(more=""), _settings_of_another_run),
    "damaged settings.json": ([], WORK_TAKEN.format(more="; seed (unreadable)"), _damaged_settings),
    "seed not a number": ([], WORK_TAKEN.format(more="; seed (unreadable)"), _seed_not_a_number),
    "work folder with other files": (
        [], "nst: error: out.mp4.work exists and is not a work folder of nst video",
        lambda p: ((p / "out.mp4.work").mkdir(), (p / "out.mp4.work" / "x.txt").write_text("x"))),
    "output is the source": (["-o", "clip.mp4"], "nst: error: output clip.mp4 is an input file; "
                             "choose another name", None),
    "output extension": (["-o", "out.txt"], "nst: error: out.txt: unknown video extension '.txt' "
                         "(use .avi, .gif, .m4v, .mkv, .mov, .mp4, .webm)", None),
    "output only an extension": (["-o", ".mp4"], "nst: error: .mp4: the name is only an "
                                 "extension; give a name such as result.mp4 (-o.mp4 reads as -o "
                                 ".mp4)", None),
    "iterations 0": (["--iterations", "0"], "nst: error: iterations must be between 1 and "
                     "1000000 (got 0)", None),
    "iterations-next 0": (["--iterations-next", "0"], "nst: error: iterations-next must be "
                          "between 1 and 100000 (got 0)", None),
    "size digits": (["--size", DIGITS], "nst: error: size: a number of 5,000 digits is out of "
                    "range (at most 18 digits)", None),
    "temporal weight nan": (["--temporal-weight", "nan"], "nst: error: temporal-weight must be a "
                            "finite number (got nan)", None),
    "flow unknown": (["--flow", "magic"], "nst: error: flow must be one of dis, farneback (got "
                     "'magic')", None),
    "a mask": (["--mask", "style.png"], "nst: error: video: no such option: --mask (see 'nst "
               "video --help')", None),
    "style missing": (["STYLE=missing.png"], "nst: error: missing.png: no such file", None),
    "style a text file": (["STYLE=notes.png"], "nst: error: notes.png: not an image file, or a "
                          "format nst cannot read", lambda p: (p / "notes.png").write_text(
                              "text")),
    "source missing": (["SOURCE=nope.mp4"], "nst: error: nope.mp4: no such file", None),
    "source a folder": (["SOURCE=."], "nst: error: .: is a directory, not an image file", None),
    "frames folder under a file": (["--frames", "style.png/frames"], "", None),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_video_run_is_one_line_before_any_frame(place, name):
    extra, line, setup = CASES[name]
    if callable(setup):
        setup(place)
    source, style = "clip.mp4", "style.png"
    args = []
    for a in extra:
        if a.startswith("STYLE="):
            style = a[6:]
        elif a.startswith("SOURCE="):
            source = a[7:]
        else:
            args.append(a)
    out = [] if "-o" in args else ["-o", "out.mp4"]
    code, lines = nst("video", source, style, *out, *RUN, *args)
    if not line:  # reported by the shell as one line, whatever the wording
        assert code == 2 and len(lines) == 1, lines
        return
    assert (code, lines) == (2, [line.format(p=place)])
    assert not (place / "out.mp4").exists()
    assert not list(place.glob("out.mp4.work/0*.png"))


def test_a_fifo_source_is_refused_unread(place):
    os.mkfifo(place / "pipe.mp4")
    code, lines = nst("video", "pipe.mp4", "style.png", "-o", "out.mp4", *RUN)
    assert (code, lines) == (2, ["nst: error: pipe.mp4: not a regular file (a pipe, device or "
                                 "socket)"])  # fmt: skip
