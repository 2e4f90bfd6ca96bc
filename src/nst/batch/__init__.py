"""``nst batch``: many stylizations on this machine or a Ray cluster, resumable.

The names are imported on first use, so reading the cluster's declared options
(``nst batch --help``) loads neither torch nor Ray."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, install

if TYPE_CHECKING:
    from .cluster import Cluster
    from .dispatch import JobDone, JobEvents, Retry, WorkersReady
    from .engine import run_batch
    from .jobs import BatchJob, Records, cross, expand, manifest, split_done

_WHERE = homes(
    cluster=["Cluster"],
    dispatch=["JobDone", "JobEvents", "Retry", "WorkersReady"],
    engine=["run_batch"],
    jobs=["BatchJob", "Records", "cross", "expand", "manifest", "split_done"],
)
__all__ = [
    "BatchJob", "Cluster", "JobDone", "JobEvents", "Records", "Retry", "WorkersReady",
    "cross", "expand", "manifest", "run_batch", "split_done",
]  # fmt: skip
install(__name__, _WHERE)
