"""nst batch on a Ray cluster of three nodes on this machine (``ray.cluster_utils``): a
head with no CPUs for work and two worker nodes of one CPU each. The batch spreads over
both nodes (the records name them); a worker node killed in the middle of a batch loses
no job, and every output is written once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import picture, ray_nodes, requires_weights

ray = pytest.importorskip("ray", reason="make test installs nst[batch]")
pytestmark = [requires_weights, pytest.mark.cluster]


@pytest.fixture(scope="module")
def three_nodes():
    with ray_nodes(2) as made:
        yield made


def make_jobs(tmp_path: Path, out: Path, n: int, iterations: int):
    from nst.batch import cross, expand

    folder = tmp_path / "photos"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(picture(48, 36, i)).save(folder / f"p{i}.png")
    style = tmp_path / "style.png"
    Image.fromarray(picture(40, 40, 9)).save(style)
    options = {"size": 48, "iterations": iterations, "seed": 0}
    return cross(expand([str(folder)], "c"), expand([str(style)], "s"), options, out)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]


def test_a_batch_spreads_over_the_nodes_and_survives_losing_one(three_nodes, tmp_path):
    from nst.batch import Cluster, JobDone, Records, run_batch

    cluster, nodes = three_nodes
    ids = {n.node_id[:12]: n for n in nodes}
    out = tmp_path / "out"
    out.mkdir()
    jobs = make_jobs(tmp_path, out, 4, 4)
    where = Cluster(address=cluster.address, retries=2)
    counts = run_batch(jobs, Records(out), where, lambda e: None)
    assert counts == {"ok": 4, "failed": 0, "skipped": 0}
    first = records(out)
    assert {r["node"] for r in first} == set(ids)  # both worker nodes painted
    assert all(r["options"]["size"] == 48 and r["seed"] == 0 and r["nst"] for r in first)

    # again, longer jobs: when the first one ends, the node running the other is killed
    out2 = tmp_path / "out2"
    out2.mkdir()
    jobs = make_jobs(tmp_path, out2, 6, 40)
    killed: list[str] = []
    lock = threading.Lock()

    def on_event(event):
        if isinstance(event, JobDone) and event.record["status"] == "ok":
            with lock:
                if not killed:
                    other = next(n for n in ids if n != event.record["node"])
                    cluster.remove_node(ids[other], allow_graceful=False)
                    killed.append(other)

    counts = run_batch(jobs, Records(out2), where, on_event)
    assert killed
    assert counts == {"ok": 6, "failed": 0, "skipped": 0}
    recs = records(out2)
    assert Counter(r["output"] for r in recs) == Counter(j.name for j in jobs)  # each once
    assert any(r["attempts"] == 2 for r in recs)  # the job that was on the lost node
    # after the kill the other node paints (the lost one may have finished one job
    # already when it went: its result was in hand)
    after = Counter(r["node"] for r in recs[1:])
    assert after[killed[0]] <= 1 and sum(after.values()) == 5
    for j in jobs:
        with Image.open(j.output) as im:
            im.load()
            assert im.size == (48, 36)
    assert not [p for p in out2.iterdir() if p.name.endswith(".tmp")]
