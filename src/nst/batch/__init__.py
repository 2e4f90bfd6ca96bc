"""``nst batch``: many stylizations on this machine or a Ray cluster, resumable."""

from .dispatch import JobDone, JobEvents, Retry, WorkersReady
from .engine import Cluster, run_batch
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
