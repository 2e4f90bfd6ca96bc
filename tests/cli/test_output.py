"""How the command line ends: ``exit_now`` (nst.cli.output) beside a thread inside torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: a thread computing convolutions when the process ends, then ``exit_now(130)``
COMPUTING = """
import threading, torch
from nst.cli.output import exit_now
torch.manual_seed(0)
x, w = torch.randn(1, 64, 128, 128), torch.randn(64, 64, 3, 3)
inside = threading.Event()
def work():
    while True:
        inside.set()
        torch.nn.functional.conv2d(x, w, padding=1)
threading.Thread(target=work, daemon=True).start()
inside.wait()
print("leaving", flush=True)
exit_now(130)
"""


@pytest.mark.spawns
def test_exit_now_beside_a_thread_inside_torch_exits_with_its_code():
    """The interpreter's finalization under a thread in torch's C++ code aborts ("terminate
    called without an active exception", exit 134, a server stopped by Ctrl-C while its
    start-up test run loaded the network); exit_now leaves with the code, output kept."""
    done = subprocess.run([sys.executable, "-c", COMPUTING], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.stdout == "leaving\n"
    assert "terminate called" not in done.stderr
    assert done.returncode == 130, done.stderr
