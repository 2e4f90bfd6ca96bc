"""Nothing is lost: a failed final save falls back and says where; a log that stops being
writable warns once and the run goes on."""

import os
import resource
import signal
import subprocess
import sys

from PIL import Image
from typer.testing import CliRunner

from nst import imageio
from nst.cli import app
from nst.cli import run as cli_run
from tests.conftest import requires_weights
from tests.robustness import corpus

runner = CliRunner()


def _inputs(tmp_path):
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    c.write_bytes(corpus.png(48, 36, 0))
    s.write_bytes(corpus.png(40, 40, 1))
    return c, s


def test_a_failed_final_save_writes_the_result_elsewhere(tmp_path, tiny_network, monkeypatch):
    c, s = _inputs(tmp_path)
    out = tmp_path / "o.png"
    real = imageio.save_image

    def full_disk(image, path, mode=0o644):
        if str(path) == str(out):
            raise imageio.ImageError(str(path), "cannot write (No space left on device)")
        return real(image, path, mode)

    spare = tmp_path / "spare" / "rescued.png"
    spare.parent.mkdir()
    monkeypatch.setattr(cli_run, "save_image", full_disk)
    monkeypatch.setattr(cli_run, "fallback_path", lambda output: spare)
    r = runner.invoke(app, ["stylize", str(c), str(s), "-o", str(out), "--size", "32",
                            "--iterations", "2", "-q"])  # fmt: skip
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        f"nst: error: {out}: cannot write (No space left on device); the result was saved to "
        f"{spare} instead"
    ]
    assert Image.open(spare).size == (32, 24) and not out.exists()


def test_when_the_fallback_fails_too_the_line_says_the_result_is_lost(
    tmp_path, tiny_network, monkeypatch
):
    c, s = _inputs(tmp_path)

    def nothing_works(image, path, mode=0o644):
        raise imageio.ImageError(str(path), "cannot write (Read-only file system)")

    monkeypatch.setattr(cli_run, "save_image", nothing_works)
    r = runner.invoke(app, ["stylize", str(c), str(s), "-o", str(tmp_path / "o.png"), "--size",
                            "32", "--iterations", "1", "-q"])  # fmt: skip
    assert r.exit_code == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.endswith("failed too (cannot write (Read-only file system)): the result is lost")


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@requires_weights
def test_a_log_that_fills_the_disk_warns_once_and_the_run_goes_on(tmp_path):
    c, s = _inputs(tmp_path)
    out, log = tmp_path / "o.png", tmp_path / "run.jsonl"
    cmd = [sys.executable, "-m", "nst", "stylize", str(c), str(s), "-o", str(out), "--size", "32",
           "--iterations", "20", "--log", str(log), "-q", "--precision", "fp32"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(6000))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nst: warning: {log}: cannot write the log")
    assert out.exists() and Image.open(out).size == (32, 24)
    assert 0 < os.path.getsize(log) <= 6000
