"""Joining a cluster with Ray's token authentication: where the token is found, when it
is used, and the one line said when joining fails (no Ray cluster needed)."""

from __future__ import annotations

import os

import pytest

from nst.batch import auth


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in (auth.MODE, auth.TOKEN, auth.TOKEN_PATH):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_token_is_found_as_ray_finds_it(home, monkeypatch):
    assert auth.token_source() is None
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("t" * 64)
    assert auth.token_source() == str(home / ".ray" / "auth_token")
    monkeypatch.setenv(auth.TOKEN_PATH, str(home / "elsewhere"))  # named, but missing
    assert auth.token_source() is None
    monkeypatch.setenv(auth.TOKEN, "abc")
    assert auth.token_source() == auth.TOKEN


def test_token_mode_only_for_a_cluster_that_asks_for_it(home, monkeypatch):
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("t" * 64)
    asks = {"yes": True, "no": False}
    monkeypatch.setattr(auth, "_refuses_without_token", lambda address: asks[address])
    assert auth.use_token_if_any("no") is None and auth.MODE not in os.environ
    assert auth.use_token_if_any("yes") == str(home / ".ray" / "auth_token")
    assert os.environ[auth.MODE] == "token"
    monkeypatch.setenv(auth.MODE, "disabled")  # set explicitly: left alone
    assert auth.use_token_if_any("yes") is None


def test_a_failed_join_says_what_to_check(home, monkeypatch):
    line = auth.join_failure("10.0.0.1:6379", "Failed to connect to Ray cluster at 10.0.0.1:6379")
    assert line == (
        "cannot join the Ray cluster at 10.0.0.1:6379 (Failed to connect to Ray cluster at "
        "10.0.0.1:6379); if it uses token authentication (Ray's default), run `ray "
        f"get-auth-token` on the head and put its output in {home}/.ray/auth_token here "
        "(mode 600), or set RAY_AUTH_TOKEN"
    )
    monkeypatch.setenv(auth.TOKEN, "abc")
    assert auth.join_failure("h:1", "x").endswith(
        "if it uses token authentication, the token here (RAY_AUTH_TOKEN) must be the head's "
        "(`ray get-auth-token` there)"
    )
    monkeypatch.setenv(auth.MODE, "disabled")
    assert auth.join_failure("h:1", "x").endswith(
        "RAY_AUTH_MODE=disabled here: a cluster with token authentication refuses that"
    )


def test_ray_client_addresses_are_refused_without_the_client_extra():
    pytest.importorskip("ray")
    try:
        import grpc  # noqa: F401
    except ImportError:
        assert auth.client_missing("ray://h:10001") == (
            "ray://h:10001: Ray Client (ray://) needs the ray[client] extra, which nst does "
            "not install (pip install 'ray[client]'); or run nst batch on a node of the "
            "cluster with --address HEAD:6379"
        )
    else:
        assert auth.client_missing("ray://h:10001") is None
    assert auth.client_missing("h:6379") is None
