"""The start-up test run: a few iterations of a small stylization of the built-in images,
timed, so that the first visitor sees an estimate before any run of theirs.

It runs on its own thread through the job manager's runner (the same code path as a job,
never listed), in a folder of the data directory that is removed after; a failure only
leaves the estimate empty until the first real run.
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


def calibrate(shared: AppState) -> float | None:
    """Run the test run now; returns its seconds per iteration per megapixel (or None)."""
    manager = shared.manager
    manager.expect_calibration(True)
    job_id, folder = manager.new_folder()
    try:
        sub = Submission(json.dumps(PARAMS), None, "builtin:chelsea", (), ("builtin:swirls",),
                         None, None)  # fmt: skip
        plan, styles = shared.preparer.prepare(folder, sub)
        job = Job(job_id, folder, plan, folder / "content.png", styles, dict(PARAMS))
        return manager.calibrate(job)
    except (NstError, Refusal, OSError) as exc:
        log.warning("the start-up test run failed (%s); estimates wait for a first run", exc)
        return None
    finally:
        manager.expect_calibration(False)
        shutil.rmtree(folder, ignore_errors=True)


def start_calibration(shared: AppState) -> threading.Thread:
    """:func:`calibrate` on a thread of the job manager (the server answers meanwhile; a
    stop of the server stops it and waits for it, as for a job)."""
    shared.manager.expect_calibration(True)  # from now: the first page waits for it
    return shared.manager.spawn(lambda: calibrate(shared), "nst-calibrate")
