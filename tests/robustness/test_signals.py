"""SIGTERM and SIGHUP end a run like Ctrl-C: the last iterate is written, exit 128 + signal."""

import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.conftest import requires_weights
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
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
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
