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
    spread_from: int = option(
        2048, "Posters: jobs of this size or larger run last, each on every worker at once "
        "(its tiles spread over them; 0: never).", INT, lo=0, hi=65536, panel="Ray",
        identity=False, unit="px",
    )  # fmt: skip

    @property
    def threads(self) -> int:
        return self.threads_per_worker

    @property
    def gpus(self) -> float:
        return self.gpus_per_worker


@declare
@dataclass(frozen=True)
class Spreading(Declared):
    """One picture over several workers (``nst stylize``): a tiled stage's tiles on Ray."""

    address: str | None = option(
        None, "Spread a large stage's tiles over a Ray cluster: HOST:6379 or auto (joined as "
        "nst batch joins one).", TEXT, nullable=True, panel="Workers", identity=False,
    )  # fmt: skip
    workers: int | None = option(
        None, "Tile workers (without --address: a local Ray with this many; with it: default "
        "the cluster's CPUs over --threads-per-worker).", INT, lo=1, hi=4096, nullable=True,
        panel="Workers", identity=False,
    )  # fmt: skip
    threads_per_worker: int = option(
        1, "Torch threads (and Ray CPUs) per tile worker.", INT, lo=1, hi=256,
        panel="Workers", identity=False,
    )  # fmt: skip

    @property
    def wanted(self) -> bool:
        """Whether tiles go to workers at all."""
        return self.address is not None or self.workers is not None

    def cluster(self) -> Cluster:
        return Cluster(address=self.address, workers=self.workers,
                       threads_per_worker=self.threads_per_worker)  # fmt: skip
