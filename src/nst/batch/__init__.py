"""``nst batch``: many stylizations on this machine or a Ray cluster, resumable."""

from .engine import Cluster, JobDone, JobEvents, Retry, WorkersReady, run_batch
from .jobs import BatchJob, Records, cross, expand, manifest, split_done

__all__ = [
    "BatchJob",
    "Cluster",
    "JobDone",
    "JobEvents",
    "Records",
    "Retry",
    "WorkersReady",
    "cross",
    "expand",
    "manifest",
    "run_batch",
    "split_done",
]
