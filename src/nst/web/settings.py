"""The settings of one server: its places and its limits (what options declare as caps)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

#: marks a folder as made by this app (only such folders are swept)
MARKER = ".nst-job"
#: job folders and files are the server user's alone
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_data_dir() -> Path:
    """A per-user folder: ``$XDG_DATA_HOME/nst/web`` (``~/.local/share/nst/web``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "nst" / "web"


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700, or raise OSError."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


@dataclass(frozen=True)
class WebSettings:
    """Limits and places of one server."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_waiting: int = 8
    max_body: int = 20 * 2**20
    max_size: int = 1024
    max_iterations: int = 2000
    max_styles: int = 4
    max_pixels: int = 40_000_000  # decoded pixels of one upload
    max_request_pixels: int = 60_000_000  # decoded pixels of all uploads of one job
    header_timeout: float = 10.0  # seconds for a request's headers
    body_timeout: float = 30.0  # seconds between two parts of a request body
    job_ttl: float = 30 * 86400.0
    preview_every: int = 5
    history_jobs: int = 50  # finished jobs kept (across restarts), oldest removed first
    history_mb: float = 500.0  # and their folders' total size
    event_tail: int = 200  # events a finished job keeps for replay (its curve is kept whole)
    max_events: int = 20_000  # events a running job keeps (the oldest are dropped)
    allowed_hosts: tuple[str, ...] = ()
    calibrate: bool = True  # a short test run at start-up, for estimates before any run

    def limits(self) -> dict[str, float]:
        """The numeric limits by name: what options declare as their ``cap``."""
        out: dict[str, float] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f.name] = value
        return out
