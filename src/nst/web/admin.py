"""What the person who runs a server sees: every visitor's jobs in its data folder
(``nst serve --list-jobs``), read from the files, with or without the server running."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .jobs import JOB_ID, TERMINAL
from .settings import MARKER


@dataclass(frozen=True)
class Listed:
    """One job folder: its id, the visitor it belongs to ("": no sign-in), its state
    ("unfinished": queued or running in a live server, or left by a crash), kind,
    when made, and its size on disk."""

    id: str
    visitor: str
    state: str
    kind: str
    created: float | None
    size: int | None
    bytes: int


def listed(data_dir: Path) -> list[Listed]:
    """Every job folder this app made under ``data_dir``, oldest first."""
    out = []
    try:
        children = list(data_dir.iterdir())
    except OSError:
        return []
    for child in children:
        marker = child / MARKER
        if not (JOB_ID.fullmatch(child.name) and child.is_dir() and marker.is_file()):
            continue
        try:
            visitor = marker.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            visitor = "?"
        record: dict = {}
        try:
            loaded = json.loads((child / "job.json").read_text(encoding="utf-8"))
            record = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            pass
        state = record.get("state")
        given = record.get("params")
        params: dict = given if isinstance(given, dict) else {}
        created = record.get("created")
        out.append(
            Listed(
                id=child.name,
                visitor=str(record.get("owner") or visitor),
                state=str(state) if state in TERMINAL else "unfinished",
                kind=str(record.get("kind") or "stylize"),
                created=float(created) if isinstance(created, (int, float)) else _mtime(child),
                size=params.get("size") if isinstance(params.get("size"), int) else None,
                bytes=sum(_size(p) for p in child.rglob("*")),
            )
        )
    return sorted(out, key=lambda j: j.created or 0.0)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0
