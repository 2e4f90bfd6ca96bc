"""nst video end to end on clips the tests make: 64x48 (or smaller), a few frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.cli import app
from nst.config import Config
from nst.errors import ConfigError
from tests.conftest import picture, requires_weights

av = pytest.importorskip("av", reason="make test installs nst[video]")
pytest.importorskip("cv2", reason="make test installs nst[video]")

from nst.video import VideoConfig, VideoStopped, stylize_video, video_metrics  # noqa: E402
from nst.video import io as vio  # noqa: E402
from nst.video.sample import sample_frames, write_clip  # noqa: E402

runner = CliRunner()
FAST = Config.from_dict({"size": 48, "iterations": 12, "seed": 0, "init": "noise"})


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    write_clip(path, sample_frames(64, 48, 6), fps=12, tone=440.0)
    return path


@pytest.fixture
def style(tmp_path) -> Path:
    path = tmp_path / "style.png"
    Image.fromarray(picture(40, 40, 1)).save(path)
    return path


def frames_of(path: Path) -> list[np.ndarray]:
    info = vio.probe(path)
    return list(vio.read_frames(path, (info.height, info.width)))


def test_frame_count_rate_aspect_and_sound_kept(tiny_network, clip, style, tmp_path):
    out = tmp_path / "out.mp4"
    result = stylize_video(clip, style, out, FAST)
    assert result.frames == 6 and result.warning is None
    info = vio.probe(out)
    assert (info.width, info.height) == (48, 36)  # 64x48 at size 48, aspect kept
    assert info.rate == Fraction(12) and len(frames_of(out)) == 6
    with av.open(str(out)) as c:
        (audio,) = c.streams.audio
        assert audio.codec_context.name == "aac"
        seconds = float(audio.duration * audio.time_base)
    assert abs(seconds - 0.5) < 0.1  # 6 frames at 12 fps
    assert not (tmp_path / "out.mp4.work").exists()  # the work folder goes when done


def test_frames_folder_and_other_containers(tiny_network, clip, style, tmp_path):
    out = tmp_path / "out.webm"
    stylize_video(clip, style, out, FAST.replace(iterations=4), frames_dir=tmp_path / "png")
    pngs = sorted((tmp_path / "png").glob("frame_*.png"))
    assert [p.name for p in pngs][:2] == ["frame_000001.png", "frame_000002.png"]
    assert len(pngs) == 6 and Image.open(pngs[0]).size == (48, 36)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        (audio,) = c.streams.audio  # AAC does not fit WebM: re-encoded
        assert audio.codec_context.name == "opus"


def test_temporal_loss_lowers_the_warping_error(tiny_network, clip, style, tmp_path):
    errors = {}
    for temporal in (True, False):
        out = tmp_path / f"t{temporal}.mp4"
        events = []
        stylize_video(
            clip, style, out, FAST, VideoConfig(temporal=temporal), on_event=events.append
        )
        terms = {n for e in events if type(e).__name__ == "Step" for n in e.terms}
        assert ("temporal" in terms) == temporal
        errors[temporal] = video_metrics(out, clip).warping_error
    assert errors[True] < errors[False] / 2, errors


def test_stop_keeps_frames_writes_a_playable_video_and_the_next_run_continues(
    tiny_network, clip, style, tmp_path
):
    out = tmp_path / "out.mp4"
    reference = tmp_path / "ref.mp4"
    stylize_video(clip, style, reference, FAST, frames_dir=tmp_path / "ref")
    done = []

    def stop() -> bool:
        return len(done) >= 3

    with pytest.raises(VideoStopped) as info:
        stylize_video(
            clip,
            style,
            out,
            FAST,
            stop=stop,
            on_event=lambda e: done.append(e) if type(e).__name__ == "FrameDone" else None,
            frames_dir=tmp_path / "partial",
        )
    assert info.value.done == 3 and info.value.written and info.value.interrupted
    assert len(frames_of(out)) == 3  # playable, the frames so far
    assert sorted(p.name for p in (tmp_path / "partial").iterdir()) == [
        f"frame_{i:06d}.png" for i in (1, 2, 3)
    ]  # --frames is filled on a stop too
    m = video_metrics(out, clip)  # 3 frames against the 6 of the input: said
    assert m.frames == 3 and m.warning == (
        f"{out} has 3 frames, {clip} has 6: measured over the first 3 (a stopped run's output "
        "is shorter than its input)"
    )
    r = runner.invoke(app, ["video-metrics", str(out), "--reference", str(clip)])
    assert r.exit_code == 0 and r.stderr.startswith(f"nst: warning: {out} has 3 frames")
    assert video_metrics(reference, clip).warning is None
    assert sorted(p.name for p in info.value.work.glob("0*.png"))[-1] == "000003.png"
    events = []
    result = stylize_video(
        clip, style, out, FAST, frames_dir=tmp_path / "got", on_event=events.append
    )
    assert result.frames == 6 and result.resumed == 3
    assert [e.resumed for e in events if type(e).__name__ == "FrameDone"] == [True] * 3 + [
        False
    ] * 3
    for i in range(1, 7):  # exactly the frames of an uninterrupted run
        a = np.asarray(Image.open(tmp_path / "ref" / f"frame_{i:06d}.png"))
        b = np.asarray(Image.open(tmp_path / "got" / f"frame_{i:06d}.png"))
        assert np.array_equal(a, b), f"frame {i}"


def _frame_events(events: list) -> list[tuple[int, int, bool]]:
    return [(e.pass_index, e.index, e.resumed) for e in events if type(e).__name__ == "FrameDone"]


def test_passes_alternate_direction_blend_the_neighbour_and_resume_exactly(
    tiny_network, clip, style, tmp_path
):
    """--passes 3: forward, backward, forward; every later frame starts from its last
    result blended with the neighbour just painted, the temporal term toward that
    neighbour; a stop in pass 2 resumes to exactly the frames of an unstopped run."""
    cfg = FAST.replace(iterations=4)
    video = VideoConfig(passes=3, iterations_next=3)
    events: list = []
    stylize_video(clip, style, tmp_path / "ref.mp4", cfg, video, frames_dir=tmp_path / "ref",
                  on_event=events.append)  # fmt: skip
    order = [(p, i) for p, i, _ in _frame_events(events)]
    assert order == [(1, i) for i in range(1, 7)] + [(2, i) for i in range(6, 0, -1)] + [
        (3, i) for i in range(1, 7)
    ]
    # the temporal term in every frame but the first of each pass (no neighbour yet)
    with_term = []
    terms: set[str] = set()
    for e in events:
        if type(e).__name__ == "Step":
            terms |= set(e.terms)
        elif type(e).__name__ == "FrameDone":
            with_term.append("temporal" in terms)
            terms = set()
    assert with_term == [i not in (0, 6, 12) for i in range(18)]
    frames = sorted((tmp_path / "ref").glob("frame_*.png"))
    assert len(frames) == 6 and len(frames_of(tmp_path / "ref.mp4")) == 6
    assert not (tmp_path / "ref.mp4.work").exists()
    # stopped after 3 frames of pass 2 (frames 6, 5, 4)
    done: list = []
    with pytest.raises(VideoStopped) as info:
        stylize_video(clip, style, tmp_path / "out.mp4", cfg, video, on_event=done.append,
                      stop=lambda: len(_frame_events(done)) >= 9)  # fmt: skip
    assert str(info.value) == "stopped at frame 3 of pass 2" and info.value.written
    assert len(frames_of(tmp_path / "out.mp4")) == 6  # all frames, some from pass 1
    (info.value.work / "input-000002.png").write_bytes(b"damaged")  # mended by the next run
    again: list = []
    stylize_video(clip, style, tmp_path / "out.mp4", cfg, video, frames_dir=tmp_path / "got",
                  on_event=again.append)  # fmt: skip
    got = _frame_events(again)
    assert [r for _, _, r in got] == [True] * 9 + [False] * 9
    for i in range(1, 7):
        a = np.asarray(Image.open(tmp_path / "ref" / f"frame_{i:06d}.png"))
        b = np.asarray(Image.open(tmp_path / "got" / f"frame_{i:06d}.png"))
        assert np.array_equal(a, b), f"frame {i}"


def test_progress_names_the_pass_and_counts_every_pass_in_the_eta(
    tiny_network, clip, style, tmp_path
):
    args = ["--size", "32", "--iterations", "2", "--iterations-next", "1", "--passes", "2"]
    log = tmp_path / "log.jsonl"
    r = runner.invoke(app, ["video", str(clip), str(style), "-o", str(tmp_path / "o.mp4"), *args,
                            "--log", str(log)])  # fmt: skip
    assert r.exit_code == 0, r.output
    # every iteration's record names the frame and pass it belongs to, backward too
    records = [json.loads(line) for line in log.read_text().splitlines()]
    owner = None
    for rec in reversed(records):
        if rec["type"] == "frame":
            owner = (rec["frame"], rec["pass"])
        else:
            assert (rec["frame"], rec["pass"]) == owner, rec
    assert sum(rec["type"] == "frame" for rec in records) == 12
    lines = [line for line in r.stderr.splitlines() if line.startswith("frame ")]
    heads = [line.split(":")[0] for line in lines]
    assert heads == [f"frame {i}/6 (pass 1/2)" for i in range(1, 7)] + [
        f"frame {i}/6 (pass 2/2)" for i in range(6, 0, -1)
    ]
    assert all(", ETA " in line for line in lines[:-1]) and ", ETA" not in lines[-1]


def test_a_stop_while_the_next_frame_is_decoded_names_that_frame(
    tiny_network, clip, style, tmp_path, monkeypatch
):
    """A signal that lands inside the decoder (before the loop moves on) still says the
    frame that was coming, as one landing between iterations does."""
    real = vio.read_frames

    def interrupted(path, size):
        frames = real(path, size)
        yield next(frames)
        raise KeyboardInterrupt

    monkeypatch.setattr(vio, "read_frames", interrupted)
    with pytest.raises(VideoStopped) as info:
        stylize_video(clip, style, tmp_path / "o.mp4", FAST.replace(iterations=2))
    assert str(info.value) == "stopped at frame 2" and info.value.done == 1


def test_passes_need_the_temporal_path(style, clip, tmp_path):
    with pytest.raises(ConfigError) as info:
        stylize_video(clip, style, tmp_path / "o.mp4", FAST, VideoConfig(passes=2, temporal=False))
    assert str(info.value) == (
        "passes: the later passes blend each frame with its neighbours along the flow; they "
        "need temporal consistency (drop --no-temporal)"
    )
    assert not (tmp_path / "o.mp4.work").exists()


@pytest.mark.parametrize("damage", ["truncated", "text", "resized"])
def test_a_damaged_kept_frame_is_found_at_start_and_painted_again(
    tiny_network, clip, style, tmp_path, damage
):
    out = tmp_path / "out.mp4"
    four = lambda: len(list(tmp_path.glob("*.work/0*.png"))) >= 4  # noqa: E731
    with pytest.raises(VideoStopped) as info:
        stylize_video(clip, style, out, FAST, stop=four)
    work = info.value.work
    frame = work / "000002.png"
    if damage == "truncated":
        frame.write_bytes(frame.read_bytes()[:60])
    elif damage == "text":
        frame.write_text("not a frame")
    else:
        Image.open(frame).resize((20, 10)).save(frame)
    events = []
    result = stylize_video(clip, style, out, FAST, on_event=events.append)
    notices = [e.message for e in events if type(e).__name__ == "Notice"]
    assert len(notices) == 1 and notices[0].startswith(f"{frame} is damaged (")
    assert notices[0].endswith("); frames 2-4 are painted again")
    kinds = [(type(e).__name__, getattr(e, "resumed", None)) for e in events]
    assert kinds.index(("Notice", None)) < kinds.index(("Started", None))  # before any work
    assert [e.resumed for e in events if type(e).__name__ == "FrameDone"] == [True] + [False] * 5
    assert result.frames == 6 and result.resumed == 1


def test_other_settings_refuse_the_work_folder_until_restart(tiny_network, clip, style, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoStopped):
        stylize_video(clip, style, out, FAST, stop=lambda: True)
    work = tmp_path / "out.mp4.work"
    assert work.is_dir()
    args = ["video", str(clip), str(style), "-o", str(out), "--size", "40", "--iterations", "2",
            "--init", "noise", "-q"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.stderr == (
        f"nst: error: {work} holds frames made with other settings: iterations (12 there, 2 now); "
        "size (48 there, 40 now); run with the same ones to continue, or add --restart "
        "to discard them\n"
    )
    r = runner.invoke(app, [*args, "--restart"])
    assert r.exit_code == 0, r.output
    assert vio.probe(out).width == 40


def _bad(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 20)
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as c:
        s = c.add_stream("aac", rate=8000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    half = tmp_path / "half.mp4"  # a run of bytes overwritten in the middle of the stream
    write_clip(half, sample_frames(64, 48, 12), tone=None)
    data = bytearray(half.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes((i * 37) % 256 for i in range(400))
    half.write_bytes(bytes(data))
    return {
        "text": (text, f"nst: error: {text}: not a video PyAV can read"),
        "sound": (sound, f"nst: error: {sound}: has no video stream"),
        "empty": (empty, f"nst: error: {empty}: empty file (0 bytes)"),
        "half": (
            half,
            f"nst: {half}: corrupt at frame 3 (Invalid data found when processing "
            "input); wrote 2 frames to ",
        ),
    }


@pytest.mark.parametrize("case", ["text", "sound", "empty", "half"])
def test_bad_inputs_get_one_line(tiny_network, style, tmp_path, case):
    path, line = _bad(tmp_path)[case]
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app,
        ["video", str(path), str(style), "-o", str(out), "--size", "32", "--iterations", "2", "-q"],
    )
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert line in r.stderr
    if case == "half":  # what was made before the damage is kept, and playable
        assert "the frames are kept in" in r.stderr
        assert (tmp_path / "out.mp4.work" / "000002.png").is_file()
        assert len(frames_of(out)) == 2


def test_zero_frames_and_pixel_limit(tiny_network, style, tmp_path, monkeypatch):
    clip = tmp_path / "c.mp4"
    write_clip(clip, sample_frames(64, 48, 2), tone=None)
    from nst import process

    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    monkeypatch.setenv("NST_MAX_PIXELS", str(64 * 48 - 1))  # the command sets it
    r = runner.invoke(app, ["video", str(clip), str(style), "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code == 2
    assert r.stderr == f"nst: error: {clip}: 64x48 frames exceed the pixel limit (3,071)\n"
    monkeypatch.undo()
    empty = _no_frames(tmp_path)
    r = runner.invoke(app, ["video", str(empty), str(style), "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code == 2
    assert r.stderr == f"nst: error: {empty}: has no frames\n"


def _no_frames(tmp_path: Path) -> Path:
    """A container with a video stream declared and no frame in it."""
    path = tmp_path / "none.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height = 32, 32
        s.pix_fmt = "yuv420p"
        c.start_encoding()  # the header, and nothing after it
    return path


def test_options_are_checked_before_any_work(style, clip, tmp_path):
    out = ["-o", str(tmp_path / "o.mp4")]
    cases = {
        ("--temporal-weight", "-1"): "temporal-weight must be between 0 and 1e+06 (got -1)",
        ("--iterations-next", "1.5"): "iterations-next: '1.5' is not an integer",
        ("--flow", "deepflow"): "flow must be one of dis, farneback (got 'deepflow')",
        ("--passes", "0"): "passes must be between 1 and 100 (got 0)",
        ("--passes", "2", "--no-temporal"): (
            "passes: the later passes blend each frame with its neighbours along the flow; "
            "they need temporal consistency (drop --no-temporal)"
        ),
    }
    for args, line in cases.items():
        r = runner.invoke(app, ["video", str(clip), str(style), *out, *args])
        assert r.exit_code == 2 and r.stderr == f"nst: error: {line}\n", (args, r.stderr)
    r = runner.invoke(app, ["video", str(clip), str(style), "-o", str(tmp_path / "o.flv")])
    assert r.exit_code == 2
    assert "unknown video extension '.flv'" in r.stderr


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, clip, style, tmp_path):
    import builtins as py

    real = py.__import__

    def no_av(name, *args, **kwargs):
        if name == "av" or name.startswith("av."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(py, "__import__", no_av)
    r = runner.invoke(app, ["video", str(clip), str(style), "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code == 2
    assert r.stderr == (
        "nst: error: video needs PyAV and OpenCV: pip install 'nst[video]' (make install does it)\n"
    )


@requires_weights
def test_a_killed_run_resumes_to_the_same_frames(clip, style, tmp_path):
    """SIGKILL mid-run (no chance to clean up), then the same command: the frames equal
    those of a run never interrupted (real weights, 32 px, separate processes)."""
    args = [str(clip), str(style), "--size", "32", "--iterations", "10", "--seed", "3", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nst", "video"]
    whole = tmp_path / "whole"
    subprocess.run(
        [*cmd, *args, "-o", str(tmp_path / "a.mp4"), "--frames", str(whole)],
        env=env,
        check=True,
        timeout=300,
    )
    out = tmp_path / "b.mp4"
    work = tmp_path / "b.mp4.work"
    proc = subprocess.Popen([*cmd, *args, "-o", str(out)], env=env)
    deadline = time.monotonic() + 240
    while not (work / "000003.png").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (work / "000002.png").exists() and not (work / "000006.png").exists()
    resumed = tmp_path / "resumed"
    r = subprocess.run(
        [*cmd, *args, "-o", str(out), "--frames", str(resumed)],
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    for i in range(1, 7):
        a = np.asarray(Image.open(whole / f"frame_{i:06d}.png"))
        b = np.asarray(Image.open(resumed / f"frame_{i:06d}.png"))
        assert np.array_equal(a, b), f"frame {i}"
    assert len(frames_of(out)) == 6


def test_video_metrics_of_one_frame_says_it_needs_two(tmp_path):
    one = tmp_path / "one.mp4"
    write_clip(one, sample_frames(64, 48, 1), fps=12)
    r = runner.invoke(app, ["video-metrics", str(one), "--reference", str(one)])
    assert r.exit_code == 2
    assert r.stderr == (
        f"nst: error: {one}: has 1 frame; the warping error compares consecutive frames, so it "
        "needs at least two\n"
    )
