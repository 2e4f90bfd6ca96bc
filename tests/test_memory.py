"""Memory planning: --memory-limit and --tile, the tile chosen, refusals before work."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from nst import api, memory
from nst.cli import app
from nst.config import Config
from nst.errors import ConfigError, ResourceError
from nst.planning import plan_stylize

runner = CliRunner()
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4G", 4 << 30), ("1500M", 1500 << 20), ("2GiB", 2 << 30), ("3.5gb", int(3.5 * (1 << 30))),
     (" 1t ", 1 << 40), ("none", None)],
)  # fmt: skip
def test_memory_limits_are_read_with_units(text, expected):
    assert memory.parse_limit(text) == expected


def test_auto_is_a_fraction_of_what_is_available(monkeypatch):
    """available = the kernel's MemAvailable, bounded by a cgroup's room, plus what the
    process holds; auto is a fixed fraction of it (machine facts replaced by numbers)."""
    gib = 1 << 30
    monkeypatch.setattr(memory, "resident", lambda: 1 * gib)
    monkeypatch.setattr(memory, "_meminfo", lambda key: {"MemAvailable": 10 * gib}.get(key))
    monkeypatch.setattr(memory, "_cgroup_room", lambda: None)
    assert memory.available() == 11 * gib
    assert memory.parse_limit("auto") == int(memory.AUTO_FRACTION * 11 * gib)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 3 * gib)  # a container's limit
    assert memory.available() == 4 * gib
    monkeypatch.setattr(memory, "_meminfo", lambda key: None)  # no /proc/meminfo: 8 GiB
    monkeypatch.setattr(memory, "_cgroup_room", lambda: None)
    assert memory.available() == 9 * gib


@pytest.mark.parametrize(
    ("text", "message"),
    [("lots", "memory-limit: 'lots' is not a size (e.g. 4G, 1500M, auto or none)"),
     ("4X", "memory-limit: '4X' is not a size (e.g. 4G, 1500M, auto or none)"),
     ("100M", "memory-limit: 100M is too small (at least 256M)")],
)  # fmt: skip
def test_a_bad_memory_limit_is_refused_in_one_line(text, message):
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"memory_limit": text})
    assert str(info.value) == message


def work(**changes) -> memory.Workload:
    spec = dict(
        layers=LAYERS,
        content_layers=("conv4_2",),
        value_bytes=2,
        style_pixels=1 << 20,
        history=50,
        baseline=400 << 20,
        apart=True,  # bf16 on the CPU
    )
    spec.update(changes)
    return memory.Workload(**spec)  # type: ignore[arg-type]


def test_the_estimate_grows_with_pixels_and_the_tile_bounds_the_evaluation():
    small = memory.need(work(), (768, 1024), None)
    large = memory.need(work(), (1536, 2048), None)
    assert large.evaluation == pytest.approx(4 * small.evaluation, rel=0.01)
    tiled = memory.need(work(), (3072, 4096), 512)
    assert tiled.tile == 512
    # one padded tile: (512 + 2 * 80)^2 px of activations, whatever the image's size
    per_pixel = memory.LEAN_EVAL_FACTOR * memory.activation_values(LAYERS) * 2
    assert tiled.evaluation == int(per_pixel * (512 + 160) ** 2)
    # the history shrinks to fit its cap, never below MIN_PAIRS; Adam keeps none
    assert (small.pairs, large.pairs, tiled.pairs) == (21, 5, 3)
    assert memory.need(work(history=0), (768, 1024), None).pairs == 0


def test_an_mrf_stage_counts_its_patch_layers_and_the_style_views_features():
    """mrf holds float64 copies of its patch layers per evaluation (conv3_1: 256 values
    per 16 px, conv4_1: 512 per 64: 24 per pixel) and, while encoding, the features of the
    largest view of the style image there (scaled by 1.1: 1.21 its area; the views are
    encoded one at a time); its tiles are one stride wider each side."""
    layers = ("conv3_1", "conv4_1", "conv4_2")
    plain = work(layers=layers, style_pixels=0, history=0)
    mrf = work(layers=layers, style_pixels=0, history=0, patch_layers=("conv3_1", "conv4_1"),
               reach=1)  # fmt: skip
    size = (768, 1024)
    extra = memory.need(mrf, size, None).evaluation - memory.need(plain, size, None).evaluation
    assert extra == pytest.approx(memory.PATCH_BYTES * 24 * 768 * 1024, rel=1e-6)
    # whatever the tile: 4096 style patches of 9C values per layer in float32 and bf16, and
    # three (2048 x 4096) bf16 tensors of the matching's band, and 128 MiB of slack
    patches = 4096 * 9 * (256 + 512) * (4 + 2) + 3 * 2048 * 4096 * 2 + (128 << 20)
    for tile in (None, 256):
        parts = dict(memory.need(mrf, size, tile).parts)
        assert parts["mrf's style patches"] == patches
        assert dict(memory.need(plain, size, tile).parts)["mrf's style patches"] == 0
    big_style = memory.need(replace(mrf, style_pixels=4096 * 3072), size, None)
    views = 1.21 * 24 * 2 * 4096 * 3072  # bf16 features
    assert big_style.evaluation == pytest.approx(
        memory.FORWARD_FACTOR * memory.activation_values(layers) * 2 * 4096 * 3072 + views,
        rel=1e-6,
    )
    halo = memory._tiling(layers, 256, 1).halo
    assert (halo, memory._tiling(layers, 256).halo) == (48, 40)
    tiled = memory.need(mrf, size, 256)
    per_pixel = (
        memory.LEAN_EVAL_FACTOR * memory.activation_values(layers) * 2 + memory.PATCH_BYTES * 24
    )
    assert tiled.evaluation == int(per_pixel * (256 + 2 * 48) ** 2)


def test_fit_keeps_untiled_what_fits_and_picks_the_largest_tile_otherwise():
    size = (1536, 2048)
    whole = memory.need(work(), size, None)
    assert memory.fit(work(), size, None, None).tile is None
    assert memory.fit(work(), size, whole.total, None).tile is None
    assert not whole.lean
    # just short of it: untiled still, the network rectifying in place
    lean = memory.fit(work(), size, whole.total - 1, None)
    assert lean.tile is None and lean.lean
    values = memory.activation_values(LAYERS) * 2 * size[0] * size[1]
    assert whole.evaluation - lean.evaluation == pytest.approx(
        (memory.EVAL_FACTOR - memory.LEAN_EVAL_FACTOR) * values, rel=1e-6
    )
    fp32 = work(value_bytes=4, apart=False)  # float32 rectifies in place anyway
    assert memory.need(fp32, size, None) == replace(memory.need(fp32, size, None, lean=True),
                                                   lean=False)  # fmt: skip
    limit = whole.total // 2
    chosen = memory.fit(work(), size, limit, None)
    assert chosen.tile is not None and chosen.total <= limit
    assert memory.need(work(), size, chosen.tile + 16).total > limit
    assert memory.fit(work(), size, None, 256).tile == 256  # forced


def test_what_does_not_fit_even_in_tiles_is_refused_before_work():
    with pytest.raises(ResourceError) as info:
        memory.fit(work(), (6144, 8192), 4 << 30, None)
    assert re.fullmatch(
        r"a 8192x6144 px image needs about [\d.]+ GB even in tiles of 64 px \(the floor, "
        r"[\d.]+ GB whatever the tiles: .*the image's working copies [\d.]+ GB, \d+ L-BFGS "
        r"pairs [\d.]+ GB.*\), more than --memory-limit 4\.0 GB: use a smaller --size, "
        r"--optimizer adam or a higher --memory-limit",
        str(info.value),
    )
    assert info.value.exit_code == 2  # a refusal of the input, before any work


def test_a_plan_tiles_the_stages_that_need_it(images, tiny_network):
    config = Config.from_dict({"size": 64, "scales": "32,64", "tile": 48})
    plan = plan_stylize(images["content"], images["style"], config)
    assert [s.tile for s in plan.stages] == [None, 48]
    assert all(s.memory > 0 and s.history > 0 for s in plan.stages)
    record = plan.stages[1].to_record()
    assert record["tile"] == 48 and record["memory_mb"] == round(plan.stages[1].memory / 2**20)
    with pytest.raises(ConfigError, match="style-loss swd cannot be evaluated in tiles"):
        plan_stylize(images["content"], images["style"], config.replace(style_loss="swd"))


def test_a_tiled_run_gives_the_untiled_picture(images, tiny_network):
    """fp32, a few L-BFGS iterations: the same image (the evaluations agree to rounding,
    tests/objective/test_tiling.py; over iterations the rounding may grow a little)."""
    results = []
    for tile in (None, 32):
        config = Config.from_dict({"size": 64, "iterations": 3, "seed": 3, "precision": "fp32",
                                   "tile": tile, "init": "content"})  # fmt: skip
        results.append(api.stylize(images["content"], images["style"], config))
    plain, tiled = results
    assert float((plain - tiled).abs().max()) < 1e-3
    assert float((plain - torch.zeros_like(plain)).abs().max()) > 0


def test_the_cli_says_which_stages_are_tiled(images, tmp_path, tiny_network):
    out = tmp_path / "o.png"
    args = ["stylize", str(images["content"]), str(images["style"]), "-o", str(out)]
    r = runner.invoke(app, [*args, "--size", "64", "--iterations", "1", "--tile", "32"])
    assert r.exit_code == 0, r.output
    assert re.search(r"64x43 px, 1 iterations on cpu \(\w+\), in tiles of 32 px, ~[\d.]+ GB peak",
                     r.output), r.output  # fmt: skip
    r = runner.invoke(app, [*args, "--size", "64", "--memory-limit", "300M"])
    assert r.exit_code != 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst: error: a 64x43 px image needs about")


def test_a_coarse_to_fine_refusal_names_the_asked_size_and_the_stage(images, tmp_path,
                                                                     tiny_network):  # fmt: skip
    """Not the first stage's size as if it were the run's, and exit 2 (a refusal of the
    input): the size asked for, the stage that does not fit, what the floor is made of."""
    out = tmp_path / "o.png"
    args = ["stylize", str(images["content"]), str(images["style"]), "-o", str(out)]
    r = runner.invoke(app, [*args, "--scales", "32,64", "--size", "64", "--memory-limit", "300M"])
    assert r.exit_code == 2, r.output
    (line,) = r.output.strip().splitlines()
    assert re.fullmatch(
        r"nst: error: --size 64 \(64x43 px\) does not fit --memory-limit 0\.3 GB: its "
        r"coarse-to-fine stage 1 of 2 \(32x22 px\) already needs about [\d.]+ GB even in tiles "
        r"of \d+ px \(the floor, [\d.]+ GB whatever the tiles: this process [\d.]+ GB, torch's "
        r"runtime 0\.3 GB.*\), and the later stages more; use a smaller --size, --optimizer "
        r"adam or a higher --memory-limit",
        line,
    ), line
    assert not out.exists()
