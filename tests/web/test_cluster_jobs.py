"""``nst serve --address``: the web's jobs on a Ray cluster of three nodes on this machine
(``ray.cluster_utils``: a head with no CPUs for work, two worker nodes of one CPU each).
Progress, previews and cancel work as locally; the node running a job is killed in the
middle and the job goes on from its checkpoint on the other node."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from tests.conftest import picture, ray_nodes, requires_weights
from tests.web.helpers import BASE, submit, wait_state

ray = pytest.importorskip("ray", reason="make test installs nst[batch]")
pytestmark = [requires_weights, pytest.mark.cluster]


@pytest.fixture(scope="module")
def three_nodes():
    with ray_nodes(2) as made:
        yield made


def wait_for(check, what: str, limit: float = 300.0):
    """Polls ``check`` until it is true (a bound only against a hang, not a timing)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_a_print_size_job_spreads_its_tiles_over_a_tile_worker_beside_its_painter(
    three_nodes, tmp_path
):
    """A job at ``spread_from`` px or more: its painter starts tile workers on the free
    CPUs (here the other node's one) and computes tiles itself; the losses are those of
    the same job on its painter alone (fp32, 1e-5). (Before the test that removes a node.)"""
    from nst.batch import Cluster
    from nst.batch.engine import start_cluster
    from nst.config import Config
    from nst.events import Started, Step
    from nst.web.cluster import Shipped, WebPainter

    cluster, _ = three_nodes
    ray_, _, _ = start_cluster(Cluster(address=cluster.address))
    buf = io.BytesIO()
    Image.fromarray(picture(128, 96, 3)).save(buf, "PNG")
    style = io.BytesIO()
    Image.fromarray(picture(64, 64, 4)).save(style, "PNG")
    config = Config(size=128, tile=64, iterations=3, precision="fp32", seed=0)
    (tmp_path / "job").mkdir()
    blobs = {"c.png": buf.getvalue(), "s.png": style.getvalue()}
    painter = ray_.remote(num_cpus=1, max_concurrency=6)(WebPainter).remote(1)

    def run(tile_workers: int) -> tuple[list[float], int]:
        job = Shipped(config.to_dict(), "c.png", ("s.png",), blobs,
                      str(tmp_path / "job" / "result.png"), None, False, 0,
                      tile_workers)  # fmt: skip
        result = ray_.get(painter.run.remote(job))
        assert not isinstance(result, str), result
        events = ray_.get(painter.drain.remote())
        started = [e.workers for e in events if isinstance(e, Started)]
        return [float(e.loss) for e in events if isinstance(e, Step)], started[0]

    spread, workers = run(1)
    assert workers == 2  # the painter and the tile worker on the other node
    alone, workers = run(0)
    assert workers == 0 and len(spread) == len(alone) >= 3
    assert all(abs(a - b) <= 1e-5 * abs(b) for a, b in zip(spread, alone)), (spread, alone)
    # the tile worker it started is gone with its job: the other node's CPU is free again
    wait_for(lambda: ray_.available_resources().get("CPU", 0) >= 1, "the CPU back")
    ray_.kill(painter)


def test_web_jobs_run_on_the_cluster_and_go_on_after_losing_a_node(three_nodes, make_client):
    from nst.batch import Cluster
    from nst.web.cluster import ClusterRunner
    from nst.web.jobs import api_runner

    cluster, nodes = three_nodes
    runner = ClusterRunner(Cluster(address=cluster.address), local=api_runner, checkpoint_every=0)
    runner.open()
    client = make_client(runner=runner)
    manager = client.app.state.manager
    params = {"size": 48, "iterations": 400, "seed": 0}

    # a job stopped on the cluster keeps its last image, with its progress and previews
    first = submit(client, builtin_content="builtin:chelsea", params=params).json()
    wait_for(lambda: (manager.get(first["id"]).progress.get("done") or 0) >= 3, "steps")
    wait_for(lambda: manager.get(first["id"]).preview_version > 0, "a preview")
    client.post(f"/api/jobs/{first['id']}/cancel", headers={"Origin": BASE})
    stopped = wait_state(client, first["id"], timeout=300)
    assert stopped["state"] == "cancelled" and stopped["result"], stopped
    assert client.get(stopped["preview"]).status_code == 200
    assert stopped["progress"]["done"] < 400

    # the node running a job dies: the job goes on from its checkpoint on the other one
    job = submit(client, builtin_content="builtin:chelsea", params=params).json()
    running = manager.get(job["id"])
    wait_for(lambda: (running.progress.get("done") or 0) >= 5, "steps")
    wait_for(lambda: any(running.checkpoints.glob("checkpoint-*")), "a checkpoint")
    lost = runner.nodes[job["id"]][-1]
    cluster.remove_node(next(n for n in nodes if n.node_id == lost), allow_graceful=False)
    wait_for(lambda: len(runner.nodes[job["id"]]) == 2, "a second worker")
    wait_for(lambda: any(e["type"] == "notice" for e in running.events), "the notice")
    records = list(running.events)
    at = next(k for k, e in enumerate(records) if e["type"] == "notice")
    before = max(e["iteration"] for e in records[:at] if e["type"] == "step")
    after = wait_for(lambda: next((e for e in running.events[at:] if e["type"] == "step"), None),
                     "a step on the other node")  # fmt: skip
    # from its checkpoint, not from the start (the lost worker may have gone a few steps
    # further than the server had read: its checkpoints were written each iteration)
    assert before >= 5 and after["iteration"] >= before - 1
    done = wait_state(client, job["id"], timeout=600)
    assert done["state"] == "done", done
    where = runner.nodes[job["id"]]
    assert where[0] == lost and where[1] != lost
    result = client.get(done["result"])
    assert result.status_code == 200
    with Image.open(io.BytesIO(result.content)) as im:
        assert max(im.size) == 48
    assert not any(running.checkpoints.glob("checkpoint-*"))  # a finished run's go
