"""A request's torch work runs on a thread of its own that ends with it (nst.web.offload):
the server's pooled threads never keep an OpenMP team beside the jobs'."""

import asyncio
import threading

import pytest

from nst.web import uploads
from nst.web.offload import in_own_thread
from tests.web.helpers import submit, wait_state


def _where(*args):
    return threading.current_thread(), args


def test_in_own_thread_runs_on_a_new_thread_and_hands_back_the_result():
    async def go():
        return await in_own_thread(_where, 1, "two")

    thread, args = asyncio.run(go())
    assert args == (1, "two")
    assert thread is not threading.current_thread() and thread.name == "nst-own-thread"
    thread.join()  # it ends once it has answered


def test_in_own_thread_raises_the_functions_exception_in_the_caller():
    def fail():
        raise KeyError("gone")

    async def go():
        return await in_own_thread(fail)

    with pytest.raises(KeyError, match="gone"):
        asyncio.run(go())


def test_a_submitted_job_is_prepared_on_a_thread_that_ends(make_client, monkeypatch):
    """Decoding and planning (torch) are not done on AnyIO's pooled threads, which live on."""
    seen = []
    prepare = uploads.Preparer.prepare

    def recording(self, folder, sub):
        seen.append(threading.current_thread())
        return prepare(self, folder, sub)

    monkeypatch.setattr(uploads.Preparer, "prepare", recording)
    client = make_client()
    r = submit(client)
    assert r.status_code == 201, r.text
    assert wait_state(client, r.json()["id"])["state"] == "done"
    [thread] = [t for t in seen if t.name != "nst-calibrate"]
    assert thread.name == "nst-own-thread"  # not "AnyIO worker thread"
