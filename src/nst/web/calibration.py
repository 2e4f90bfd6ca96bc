"""The start-up test run: a few iterations of a small stylization of the built-in images,
timed, so that the first visitor sees an estimate before any run of theirs.

It runs on its own thread through the job manager's runner (the same code path as a job,
never listed), in a folder of the data directory that is removed after; a failure only
leaves the estimate empty until the first real run. On a busy machine its speed is not
used: it is measured again once the machine is quiet (unless a real run was measured
first).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading

from ..errors import NstError
from .jobs import Job
from .state import AppState
from .uploads import Refusal, Submission

log = logging.getLogger("nst.web")

#: what the test run does: the page's default preset at a small size, a few iterations
PARAMS = {"preset": "fast", "size": 160, "iterations": 12, "seed": 0}
#: other programs wanting this many cores make the test run's speed unusable (a short run
#: suffers from a busy machine far more than a real one: 3.5x against 1.04x, measured)
BUSY = 0.5
#: how long the start-up test run waits for a quiet machine to measure again (seconds)
QUIET_WAIT = 600.0
QUIET_POLL = 5.0


def calibrate(shared: AppState, quiet_wait: float = QUIET_WAIT) -> float | None:
    """Run the test run now; on a busy machine (other programs wanted :data:`BUSY` cores
    or more meanwhile) its speed is not used, and it is run again once the machine is
    quiet, unless a real run was measured first or ``quiet_wait`` seconds pass. Returns
    the cores other programs wanted during the last test run (None: it did not finish)."""
    manager = shared.manager
    manager.expect_calibration(True)
    try:
        busy = _test_run(shared)
    finally:
        manager.expect_calibration(False)
    if busy is None or busy < BUSY:
        return busy
    log.info("the machine was busy during the start-up test run; measuring again when quiet")
    waited = 0.0
    while waited < quiet_wait and not manager.speeds.has_runs:
        if manager.closing.wait(QUIET_POLL):
            return busy
        waited += QUIET_POLL
        if manager.quiet():
            return _test_run(shared)
    return busy


def _test_run(shared: AppState) -> float | None:
    """One test run; its speed kept unless the machine was busy. Returns the cores other
    programs wanted meanwhile (None: it failed or was stopped)."""
    manager = shared.manager
    job_id, folder = manager.new_folder()
    try:
        sub = Submission(json.dumps(PARAMS), None, "builtin:chelsea", (), ("builtin:swirls",),
                         None, None)  # fmt: skip
        plan, styles = shared.preparer.prepare(folder, sub)
        job = Job(job_id, folder, plan, folder / "content.png", styles, dict(PARAMS))
        measured = manager.run_aside(job)
    except (NstError, Refusal, OSError) as exc:
        log.warning("the start-up test run failed (%s); estimates wait for a first run", exc)
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if measured is None:
        return None
    speed, busy = measured
    if busy < BUSY:  # (a short run on a busy machine was measured 3.5x slower; a real one not)
        manager.speeds.calibrate(speed)
    return busy


def start_calibration(shared: AppState) -> threading.Thread:
    """:func:`calibrate` on a thread of the job manager (the server answers meanwhile; a
    stop of the server stops it as a job, without waiting: it has nothing to keep, and its
    folder, if left, is swept at the next start)."""
    shared.manager.expect_calibration(True)  # from now: the first page waits for it
    return shared.manager.spawn(lambda: calibrate(shared), "nst-calibrate", wait=False)
