"""The settings of one server: its places and its limits (what options declare as caps)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..options import BOOL, FLOAT, INT, TEXT, Declared, declare, option

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


@declare
@dataclass(frozen=True)
class ServeConfig(Declared):
    """What ``nst serve`` takes: one declaration per setting, from which its flags, help,
    defaults and range checks derive (and :class:`WebSettings`' defaults)."""

    host: str = option(
        "127.0.0.1", "Address to bind.", TEXT, panel="Server", identity=False,
    )  # fmt: skip
    port: int = option(8000, "Port.", INT, lo=0, hi=65535, panel="Server")
    allow_remote: bool = option(
        False, "Allow binding an address other machines can reach.", BOOL, panel="Server",
    )  # fmt: skip
    data_dir: str | None = option(
        None, "Job files (default: ~/.local/share/nst/web, private to you).", TEXT,
        nullable=True, panel="Server",
    )  # fmt: skip
    token_file: str | None = option(
        None, "Sign-in: a file holding the token visitors must give (or NST_TOKEN); "
        "--allow-remote makes one if none is given.", TEXT, nullable=True, panel="Sign-in",
    )  # fmt: skip
    visitor_jobs: int = option(
        2, "Jobs each signed-in visitor may have waiting or running; beyond: 429.", INT,
        lo=1, hi=10_000, panel="Sign-in",
    )  # fmt: skip
    proxy_headers: bool = option(
        False, "Trust X-Forwarded-For/-Proto from the proxies --forwarded-allow-ips names "
        "(HTTPS through a reverse proxy).", BOOL, panel="Sign-in",
    )  # fmt: skip
    forwarded_allow_ips: str | None = option(
        None, "The reverse proxies' addresses, comma-separated (implies --proxy-headers; "
        "default 127.0.0.1).", TEXT, nullable=True, panel="Sign-in",
    )  # fmt: skip
    address: str | None = option(
        None, "Run the jobs on a Ray cluster: HOST:6379 or auto (joined as nst batch joins "
        "one; its token as Ray reads it). --workers jobs run at a time.", TEXT,
        nullable=True, panel="Cluster",
    )  # fmt: skip
    threads_per_worker: int = option(
        1, "With --address: torch threads (and Ray CPUs) per job.", INT, lo=1, hi=256,
        panel="Cluster",
    )  # fmt: skip
    spread_from: int = option(
        2048, "With --address: a job of this size or larger spreads its tiles over tile "
        "workers started on the cluster's free CPUs (0: never).", INT, lo=0, hi=65536,
        panel="Cluster", unit="px",
    )  # fmt: skip
    workers: int = option(1, "Jobs running at the same time.", INT, lo=1, hi=64, panel="Limits")
    max_waiting: int = option(
        8, "Jobs allowed to wait; beyond: 429.", INT, lo=0, hi=10_000, panel="Limits",
    )  # fmt: skip
    max_size: int = option(
        1024, "Largest output side a job may ask.", INT, lo=16, hi=16384, panel="Limits",
        unit="px",
    )  # fmt: skip
    max_iterations: int = option(
        2000, "Most iterations a job may ask.", INT, lo=1, hi=1_000_000, panel="Limits",
    )  # fmt: skip
    job_ttl: float = option(
        30 * 86400.0, "Seconds a finished job is kept (default 30 days).", FLOAT, lo=0,
        lo_open=True, hi=1e12, panel="Limits",
    )  # fmt: skip
    history_jobs: int = option(
        50, "Finished jobs kept across restarts (oldest removed first).", INT, lo=0,
        hi=100_000, panel="Limits",
    )  # fmt: skip
    history_mb: float = option(
        500.0, "Largest total size of the kept jobs, in MB.", FLOAT, lo=0, hi=1_000_000,
        panel="Limits",
    )  # fmt: skip
    max_body_mb: float = option(
        20.0, "Largest request body, in MB.", FLOAT, lo=0, lo_open=True, hi=1024,
        panel="Limits",
    )  # fmt: skip
    max_pixels: int = option(
        40_000_000, "Most decoded pixels of one uploaded image.", INT, lo=1,
        hi=400_000_000, panel="Limits",
    )  # fmt: skip

    def settings(
        self, data_dir: Path, allowed_hosts: tuple[str, ...] = (), token: str | None = None
    ) -> WebSettings:
        """The server's settings with these values (``token``: sign-in on)."""
        return WebSettings(
            token=token, visitor_jobs=self.visitor_jobs,
            data_dir=data_dir, host=self.host, port=self.port, workers=self.workers,
            max_waiting=self.max_waiting, max_size=self.max_size,
            max_iterations=self.max_iterations, job_ttl=self.job_ttl,
            allowed_hosts=allowed_hosts, max_body=int(self.max_body_mb * 2**20),
            max_pixels=self.max_pixels,
            max_request_pixels=max(self.max_pixels, REQUEST_PIXELS),
            history_jobs=self.history_jobs, history_mb=self.history_mb,
        )  # fmt: skip


def _default(name: str) -> Any:
    """A setting's declared default (:class:`ServeConfig`)."""
    return ServeConfig.OPTIONS[name].default


#: decoded pixels of all uploads of one job (or ``max_pixels`` if that is larger)
REQUEST_PIXELS = 60_000_000


@dataclass(frozen=True)
class WebSettings:
    """Limits and places of one server (the defaults are :class:`ServeConfig`'s)."""

    data_dir: Path
    host: str = _default("host")
    port: int = _default("port")
    workers: int = _default("workers")
    max_waiting: int = _default("max_waiting")
    max_body: int = int(_default("max_body_mb") * 2**20)
    max_size: int = _default("max_size")
    max_iterations: int = _default("max_iterations")
    max_styles: int = 4
    max_pixels: int = _default("max_pixels")
    max_request_pixels: int = REQUEST_PIXELS
    header_timeout: float = 10.0  # seconds for a request's headers
    body_timeout: float = 30.0  # seconds between two parts of a request body
    job_ttl: float = _default("job_ttl")
    preview_every: int = 5
    history_jobs: int = _default("history_jobs")
    history_mb: float = _default("history_mb")
    event_tail: int = 200  # events a finished job keeps for replay (its curve is kept whole)
    max_events: int = 20_000  # events a running job keeps (the oldest are dropped)
    allowed_hosts: tuple[str, ...] = ()
    #: sign-in: the token visitors give (None: off, one person who sees every job)
    token: str | None = field(default=None, repr=False)
    visitor_jobs: int = _default("visitor_jobs")  # with sign-in: jobs per visitor
    calibrate: bool = True  # a short test run at start-up, for estimates before any run
    measure_load: bool = True  # estimates corrected for the machine's load (nst.load)

    def limits(self) -> dict[str, float]:
        """The numeric limits by name: what options declare as their ``cap``."""
        out: dict[str, float] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f.name] = value
        return out
