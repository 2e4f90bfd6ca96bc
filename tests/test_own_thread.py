"""Torch work on a thread of its own that ends with it (nst.own_thread): pooled threads
(the server's, a Ray actor's) keep no OpenMP team."""

import threading

import pytest

from nst.own_thread import on_own_thread


def _where(*args):
    return threading.current_thread(), args


def test_on_own_thread_waits_for_a_new_thread_and_raises_its_exception():
    thread, args = on_own_thread(_where, 3)
    assert args == (3,) and thread is not threading.current_thread()
    assert thread.name == "nst-own-thread" and not thread.is_alive()

    def fail():
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        on_own_thread(fail)
