"""The command's threads (nst.cli.threads): NST_THREADS fixes them, else they are fitted
to the load (nst.threads) and each change is said in a line."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from nst import process
from nst import threads as fitting
from nst.cli import threads
from nst.load import CpuTimes, MachineLoad
from tests.cli.test_usage import run_main
from tests.conftest import requires_weights
from tests.test_threads import Machine


def test_nst_threads_fixes_the_number_and_fits_nothing(two_threads, monkeypatch):
    monkeypatch.setattr(process, "_current", process.ProcessSettings(threads=1))
    assert threads.command_threads() is None
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(process, "_current", process.ProcessSettings(threads=None))
    torch.set_num_threads(2)
    fit = threads.command_threads()
    assert isinstance(fit, fitting.FitThreads) and fit.most == 2


@requires_weights
def test_the_command_beside_a_hog_computes_with_fewer_threads_and_says_so(
    two_threads, monkeypatch, capsys, tmp_path
):
    """`nst stylize` with NST_THREADS=auto on a machine whose load (faked) shows a hog:
    one line when it drops a thread, and its number back once the run ended."""
    m = Machine()

    def hogged() -> CpuTimes:
        m.run(1.0, busy=2.0, own=1.0)
        return m.read()

    seen: list[int] = []
    monkeypatch.setattr(fitting, "FIRST_LOOK", 0.0)
    monkeypatch.setattr(fitting, "MachineLoad", lambda: MachineLoad(2, hogged, clock=lambda: m.now))
    monkeypatch.setattr(fitting.FitThreads, "close", _recording_close(seen))
    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    monkeypatch.setenv("NST_THREADS", "auto")
    out = tmp_path / "x.png"
    code, _, err = run_main(capsys, "stylize", "builtin:chelsea", "builtin:swirls", "-o",
                            str(out), "--size", "24", "--iterations", "3")  # fmt: skip
    assert code == 0, err
    assert ("nst: other programs keep cores busy: computing with 1 of 2 threads "
            "(NST_THREADS=2 keeps them all)\n") in err  # fmt: skip
    assert seen == [1] and torch.get_num_threads() == 2 and out.is_file()


def _recording_close(seen: list[int]):
    close = fitting.FitThreads.close

    def recording(self) -> None:
        seen.append(torch.get_num_threads())  # what the run computed with at its end
        close(self)

    return recording


def test_a_batch_says_a_painters_change_of_threads_unless_quiet(capsys):
    """A painter's notice (its threads changed with the load) is a line of `nst batch`;
    step records are not; --quiet says nothing; the log gets both."""
    import io

    from nst.batch import JobEvents
    from nst.cli.commands.batch import BatchProgress

    job = SimpleNamespace(name="a_b.png")
    notice = {"type": "notice", "message": "worker host:1: computing with all 2 threads again"}
    step = {"type": "step", "iteration": 3}
    for quiet in (False, True):
        log = io.StringIO()
        BatchProgress(1, verbose=False, quiet=quiet, log=log)(JobEvents(job, [step, notice]))
        err = capsys.readouterr().err
        assert err == ("" if quiet else "nst: worker host:1: computing with all 2 threads again\n")
        assert [json.loads(line)["type"] for line in log.getvalue().splitlines()] == [
            "step",
            "notice",
        ]
