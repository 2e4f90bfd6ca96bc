"""Joining a Ray cluster as Ray 2.60 ships it: token authentication.

A head started by ``ray start --head`` asks for a token when one exists on its machine
(``~/.ray/auth_token``, which any local ``ray.init`` makes) or when ``RAY_AUTH_MODE=token``.
A driver that joins must then use the same token, found the way Ray finds it: the
``RAY_AUTH_TOKEN`` variable, the file ``RAY_AUTH_TOKEN_PATH`` names, or
``~/.ray/auth_token``. Ray's own driver only looks for it when ``RAY_AUTH_MODE=token`` is
set; :func:`use_token_if_any` sets it when a token is there (as ``ray start`` does), and
:func:`join_failure` says in one line what is missing when joining fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

MODE = "RAY_AUTH_MODE"
TOKEN = "RAY_AUTH_TOKEN"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"


def default_token_file() -> Path:
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where this machine's Ray token is (a variable's name or a file), or None."""
    if os.environ.get(TOKEN, "").strip():
        return TOKEN
    named = os.environ.get(TOKEN_PATH, "").strip()
    if named:
        return named if Path(named).expanduser().is_file() else None
    default = default_token_file()
    return str(default) if default.is_file() else None


def use_token_if_any(address: str) -> str | None:
    """Before joining the cluster at ``address``: with ``RAY_AUTH_MODE`` unset, a token
    present and a cluster that refuses a client without one (asked once, in a fraction of
    a second), use token authentication for this process and its children. Returns the
    token's source, or None (no token, the mode set explicitly, or a cluster without
    token authentication: a token-mode driver's workers would never start there)."""
    if os.environ.get(MODE) is not None:
        return None
    source = token_source()
    if source is None or not _refuses_without_token(address):
        return None
    os.environ[MODE] = "token"
    with contextlib.suppress(ImportError, AttributeError):  # Ray caches its config: refresh
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
    logging.getLogger("ray").debug("token authentication with the token of %s", source)
    return source


def _refuses_without_token(address: str) -> bool:
    """Whether the cluster's GCS at ``HOST:PORT`` answers a client without a token with
    an authentication error (Ray's C++ client's warnings on stderr are kept quiet)."""
    if address.startswith("ray://"):
        return False
    if address == "auto":  # the head on this machine, found as Ray finds it
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto", None) or ""
        except Exception:  # no head here: ray.init says so
            return False
        if not address:
            return False
    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.exceptions import AuthenticationError
    except ImportError:
        return False
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                GcsClient(address=address)
            except AuthenticationError:
                return True
            except Exception:  # unreachable or else: ray.init says so
                return False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return False


def join_failure(address: str, error: str) -> str:
    """One line for a failed join. Ray's driver reports a refused token only as "Failed to
    connect", so the line says what to check about the token, by what is here."""
    head = f"cannot join the Ray cluster at {address} ({error[:120]})"
    if os.environ.get(MODE, "").lower() == "disabled":
        return f"{head}; {MODE}=disabled here: a cluster with token authentication refuses that"
    source = token_source()
    if source is None:
        return (
            f"{head}; if it uses token authentication (Ray's default), run `ray "
            f"get-auth-token` on the head and put its output in {default_token_file()} here "
            f"(mode 600), or set {TOKEN}"
        )
    return (
        f"{head}; if it uses token authentication, the token here ({source}) must be the "
        "head's (`ray get-auth-token` there)"
    )


def client_missing(address: str) -> str | None:
    """Why a ``ray://`` address cannot be used here, or None."""
    if not address.startswith("ray://"):
        return None
    try:
        import grpc  # noqa: F401  - what ray[client] adds
    except ImportError:
        return (
            f"{address}: Ray Client (ray://) needs the ray[client] extra, which nst does not "
            "install (pip install 'ray[client]'); or run nst batch on a node of the cluster "
            "with --address HEAD:6379"
        )
    return None
