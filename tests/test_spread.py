"""One picture over several workers (``nst.spread``): a tiled stage's tiles on Ray actors
give the losses of the one-process tiled run (fp32, within 1e-5 relative); a worker lost
between evaluations is replaced and the run goes on with the same losses; on a cluster of
three nodes (``ray.cluster_utils``) a node killed mid-stage loses nothing."""

from __future__ import annotations

import pytest

from tests.conftest import ray_nodes, requires_weights

ray = pytest.importorskip("ray", reason="make test installs nst[batch]")
pytestmark = [requires_weights]


def plan_for(iterations: int = 4, size: int = 128, tile: int | None = 64, style_loss="gram"):
    from nst.config import Config
    from nst.planning import plan_stylize

    given = {"size": size, "scales": str(size), "tile": tile, "iterations": iterations,
             "seed": 0, "precision": "fp32", "style_loss": style_loss}  # fmt: skip
    config = Config.from_dict(given)
    return plan_stylize("builtin:chelsea", ["builtin:swirls"], config)


def losses_of(plan, spread=None, on_step=None) -> tuple[list[float], list[dict]]:
    from nst.events import Started, Step
    from nst.execution import execute

    losses: list[float] = []
    started: list[dict] = []

    def on_event(event):
        if isinstance(event, Step):
            losses.append(float(event.loss))
            if on_step is not None:
                on_step(event)
        elif isinstance(event, Started):
            started.append(event.to_record())

    execute(plan, on_event, spread=spread)
    return losses, started


def spread_for(plan, workers: int = 2, address: str | None = None):
    from nst.batch import Cluster
    from nst.spread import NetworkSpec, RaySpread

    c = plan.config
    spec = NetworkSpec(c.weights, c.pooling, c.normalize, tuple(plan.layers), "float32")
    spread = RaySpread(Cluster(address=address), spec, workers)
    assert spread.open() == workers
    return spread


def close_to(a: list[float], b: list[float], rel: float = 1e-5) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= rel * abs(y) for x, y in zip(a, b))


@pytest.fixture
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_tiles_on_two_workers_give_the_one_process_losses_even_after_losing_one(local_ray):
    plan = plan_for()
    alone, _ = losses_of(plan)
    spread = spread_for(plan)
    try:
        spread_losses, started = losses_of(plan, spread)
        assert close_to(spread_losses, alone), (spread_losses, alone)
        assert started[0]["workers"] == 2
        windows = 4  # 128 x 85 in 64 px cores
        stats = [t for t in spread.traffic if t.kind == "stats"]
        assert stats and all(t.tiles == windows and t.sent > 0 and t.received > 0 for t in stats)
        # a worker killed after the first step: its tiles run again on a new one
        killed: list[bool] = []

        def kill_one(step):
            if not killed:
                ray.kill(spread.pool[0], no_restart=True)
                killed.append(True)

        again, _ = losses_of(plan, spread, kill_one)
        assert killed and spread.lost >= 1
        assert close_to(again, alone), (again, alone)
    finally:
        spread.close()


def test_one_evaluation_on_workers_gives_the_one_process_loss_and_gradient(local_ray):
    """Tiles cut for the workers (a worker keeps a tile's forward for its gradient pass)
    or for memory (it keeps only the region): the total and the gradient of one tiled
    evaluation as in one process, either way; with mrf (coverage), each style patch's
    best cosine is gathered from the workers' tiles first (the same workers: their
    network reads the Gram run's layers, which hold mrf's)."""
    import torch

    from nst import runtime
    from nst.execution import build_objective, start_image, tile_for_workers

    cases = []
    for loss in ("gram", "mrf"):
        plan = plan_for(size=256, tile=None, style_loss=loss)
        stage = plan.stages[0]
        hw = (stage.height, stage.width)
        net = runtime.network(None, "avg", True, plan.layers, "cpu", torch.float32)
        objective = build_objective(plan, 0, net)
        whole = objective.value_and_grad(start_image(plan, hw))[0]
        objective.tiling = tile_for_workers(plan, hw, 2, net.plan)
        assert len(objective.tiling.windows(hw)) == 2
        assert objective.tiling.halo == (48 if loss == "mrf" else 80)  # conv4_2 + 1 / conv5_1
        tiled = objective.value_and_grad(start_image(plan, hw))[0]  # the untiled value
        assert abs(float(tiled) - float(whole)) <= 1e-5 * abs(float(whole)), loss
        x = start_image(plan, hw) + torch.randn(
            1, 3, *hw, generator=torch.Generator().manual_seed(0)
        )
        cases.append((loss, plan, objective, x, objective.value_and_grad(x)))
    assert set(cases[1][1].layers) <= set(cases[0][1].layers)
    spread = spread_for(cases[0][1])
    try:
        for loss, _, objective, x, (total, grad, terms) in cases:
            objective.spread = spread
            for keep_graph in (False, True):
                spread.keep_graph = keep_graph
                total2, grad2, terms2 = objective.value_and_grad(x)
                scale = float(grad.abs().max())
                assert abs(float(total2) - float(total)) <= 1e-5 * abs(float(total)), loss
                assert float((grad2 - grad).abs().max()) <= 1e-5 * scale, loss
                assert torch.allclose(terms2.stacked, terms.stacked, rtol=1e-5), loss
    finally:
        spread.close()


@pytest.mark.cluster
def test_a_node_killed_mid_stage_loses_nothing():
    with ray_nodes(3) as (cluster, nodes):
        plan = plan_for()
        alone, _ = losses_of(plan)
        spread = spread_for(plan, workers=2, address=cluster.address)
        where = set(ray.get([w.ready.remote() for w in spread.pool]))
        victim = next(n for n in nodes if n.node_id in where)
        gone: list[bool] = []

        def kill_node(step):
            if not gone:
                cluster.remove_node(victim, allow_graceful=False)
                gone.append(True)

        try:
            spread_losses, _ = losses_of(plan, spread, kill_node)
        finally:
            spread.close()
        assert gone and spread.lost >= 1
        assert close_to(spread_losses, alone), (spread_losses, alone)


@pytest.mark.cluster
def test_with_no_worker_left_the_run_stops_as_an_interruption_with_its_image():
    from nst.errors import Interrupted

    with ray_nodes(1) as (cluster, (node,)):
        plan = plan_for(iterations=20)
        spread = spread_for(plan, workers=1, address=cluster.address)
        spread.replace_within = 5.0
        gone: list[bool] = []

        def kill_node(step):
            if step.iteration >= 2 and not gone:
                cluster.remove_node(node, allow_graceful=False)
                gone.append(True)

        try:
            with pytest.raises(Interrupted) as stopped:
                losses_of(plan, spread, kill_node)
        finally:
            spread.close()
        assert str(stopped.value).startswith("no new worker for this picture's tiles started")
        assert stopped.value.image.shape == (3, 85, 128)  # chelsea, 128 px wide
        assert 2 <= stopped.value.iteration < 20  # where it was: its checkpoint goes on


def test_a_tile_call_run_before_its_stage_call_waits_for_it():
    """A painter runs calls on several threads, so a tile may start before the ``stage``
    call sent ahead of it: it waits for the stage's terms instead of failing."""
    import threading

    from nst.spread import Tiles

    worker = Tiles()
    worker.tile_lock = threading.Lock()
    worker.staged = threading.Condition(worker.tile_lock)
    worker.key, worker.terms, worker.kept = -1, [], {}
    waiting, seen = threading.Event(), []

    def early_tile():
        with worker.staged:
            waiting.set()
            worker._staged(1)  # releases the lock while it waits
            seen.append(worker.key)

    thread = threading.Thread(target=early_tile)
    thread.start()
    waiting.wait()
    worker.stage(1, [])
    thread.join()
    assert seen == [1]
