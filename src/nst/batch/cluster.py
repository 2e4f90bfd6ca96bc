"""Where a batch runs: one declaration per option of the cluster (``nst batch``'s Ray
flags derive from it), without torch or Ray."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import FLOAT, INT, TEXT, Declared, declare, option


@declare
@dataclass(frozen=True)
class Cluster(Declared):
    """Where to run: no address = a local Ray on this machine."""

    address: str | None = option(
        None, "Join a Ray cluster: HOST:6379 or auto (its token is read as Ray reads it: "
        "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token; default: a local Ray).",
        TEXT, nullable=True, panel="Ray", identity=False,
    )  # fmt: skip
    workers: int | None = option(
        None, "Workers (default: the CPUs divided by --threads-per-worker).", INT, lo=1,
        hi=4096, nullable=True, panel="Ray", identity=False,
    )  # fmt: skip
    threads_per_worker: int = option(
        1, "Torch threads (and Ray CPUs) per worker.", INT, lo=1, hi=256, panel="Ray",
        identity=False,
    )  # fmt: skip
    gpus_per_worker: float = option(
        0.0, "GPUs per worker (e.g. 0.5: two per GPU).", FLOAT, lo=0, hi=64, panel="Ray",
        identity=False,
    )  # fmt: skip
    retries: int = option(
        2, "Runs more of a job whose worker died.", INT, lo=0, hi=100, panel="Ray",
        identity=False,
    )  # fmt: skip

    @property
    def threads(self) -> int:
        return self.threads_per_worker

    @property
    def gpus(self) -> float:
        return self.gpus_per_worker
