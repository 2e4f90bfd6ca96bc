"""SIGTERM and SIGHUP end a run like Ctrl-C: the last iterate is written, exit 128 + signal."""

import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.conftest import default_sigint, requires_weights
from tests.robustness import corpus

pytestmark = requires_weights


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGINT, 130)])  # fmt: skip
def test_a_signal_keeps_the_last_iterate(tmp_path, sig, code):
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    c.write_bytes(corpus.png(48, 36, 0))
    s.write_bytes(corpus.png(40, 40, 1))
    out, log = tmp_path / "out.png", tmp_path / "l.jsonl"
    cmd = [sys.executable, "-m", "nst", "stylize", str(c), str(s), "-o", str(out), "--size",
           "32", "--iterations", "100000", "--log", str(log), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    (line,) = err.strip().splitlines()
    assert line.startswith("nst: interrupted: interrupted after iteration ")
    assert line.endswith(f"; wrote the last image to {out}")
    assert Image.open(out).size == (32, 24)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def _wait_for_line(proc: subprocess.Popen, marker: str) -> list[str]:
    """Read stderr lines until one holds ``marker`` (the event the test waits on)."""
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError("".join(seen))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGINT, 130)])  # fmt: skip
def test_a_signal_stops_a_batch_like_ctrl_c(tmp_path, sig, code):
    """Ray's own SIGTERM handling (a core dump and exit -6) never takes over."""
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    (tmp_path / "c" / "a.png").write_bytes(corpus.png(48, 36, 0))
    (tmp_path / "s" / "b.png").write_bytes(corpus.png(40, 40, 1))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nst", "batch", "--contents", str(tmp_path / "c"), "--styles",
           str(tmp_path / "s"), "-o", str(out), "--size", "32", "--iterations", "100000",
           "--workers", "1", "-v"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        before = _wait_for_line(proc, "workers ready")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines[-1] == "nst: interrupted: 0 done, 1 left; the same command finishes the rest"
    for bad in ("SIGTERM received", "Traceback", "core dumped", "Aborted"):
        assert bad not in err + "".join(before), err
    assert not (out / "batch.jsonl").exists() or "ok" not in (out / "batch.jsonl").read_text()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGINT, 130)])  # fmt: skip
def test_a_signal_stops_the_server_gracefully(tmp_path, sig, code):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data-dir",
           str(tmp_path / "data")]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        _wait_for_line(proc, "nst: serving http://")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err.strip() == f"nst: stopped ({sig.name})"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_a_video_with_the_frames_kept(tmp_path, sig, code):
    pytest.importorskip("av", reason="make test installs nst[video]")
    from nst.video.sample import sample_frames, write_clip

    clip, style = tmp_path / "clip.mp4", tmp_path / "s.png"
    write_clip(clip, sample_frames(64, 48, 4), fps=12, tone=None)
    style.write_bytes(corpus.png(40, 40, 1))
    out, log = tmp_path / "out.mp4", tmp_path / "l.jsonl"
    cmd = [sys.executable, "-m", "nst", "video", str(clip), str(style), "-o", str(out), "--size",
           "32", "--iterations", "3", "--iterations-next", "100000", "--log", str(log),
           "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        while proc.poll() is None:  # the event: frame 1 done
            if log.exists() and '"type": "frame"' in log.read_text():
                break
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    (line,) = err.strip().splitlines()
    assert line.startswith("nst: stopped at frame 2; wrote 1 frames to "), line
    assert (tmp_path / "out.mp4.work" / "000001.png").is_file()
