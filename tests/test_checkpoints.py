"""Checkpoints on disk (nst/checkpoints.py) and ``nst stylize`` continuing after any stop:
a real process killed with SIGKILL at random iterations of every kind of stage, then the
same command again, against the picture of the run that never stopped."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst import checkpoints, execution, planning
from nst.checkpoints import WorkFolder, differences, fingerprint, parse_every, work_folder
from nst.config import Config
from nst.errors import ConfigError
from tests.conftest import default_sigint, picture

ROOT = Path(__file__).resolve().parent.parent
#: ``nst`` in a fresh interpreter on the tiny network (the tests' random VGG19)
TINY_NST = """
import os
import sys
import torch
# one thread: with two, a fresh process's first sliced-Wasserstein gradient is now and then
# not bit-identical (about 1 process in 40; Adam's first step, the gradient's sign, makes
# it visible), so two uninterrupted runs would differ; with one, 150 in 150 agreed
# (docs/RELIABILITY.md). What is tested here is the checkpoint, not the threads. Through
# NST_THREADS: the command sets its number at the run's start (the suite's would be 2)
os.environ["NST_THREADS"] = "1"
torch.set_num_threads(1)
from nst import runtime
from nst.model.vgg import build_extractor
from tests.conftest import tiny_weights

def load(weights, pooling, normalize, device, dtype):
    return build_extractor(tiny_weights(), ["pool5"], pooling=pooling, device=device,
                           dtype=dtype)

runtime.load_network = load
sys.argv = ["nst", *sys.argv[1:]]
from nst.cli import main
main()
"""


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def a_state(images, tiny_network, **options):
    """A real RunState from a short run (the last one saved)."""
    config = Config(**{"size": 40, "iterations": 3, "seed": 1, "init": "noise",
                       "precision": "fp32", **options})  # fmt: skip
    plan = planning.plan_stylize(images["content"], images["style"], config)
    states = []

    class Every:
        def due(self):
            return True

        def save(self, state):
            import copy

            states.append(copy.deepcopy(state))

    execution.execute(plan, checkpoint=Every())
    return plan, states


def test_a_checkpoint_round_trips_and_alternates_two_generations(images, tiny_network, tmp_path):
    plan, states = a_state(images, tiny_network, scales=(32, 40))
    folder = WorkFolder(tmp_path / "out.png", {"settings": {"a": 1}}, every=0)
    for state in states[:3]:
        folder.save(state)
    assert sorted(p.name for p in folder.path.iterdir()) == [
        "checkpoint-0.nst", "checkpoint-1.nst", "last"]  # fmt: skip
    loaded = WorkFolder(tmp_path / "out.png", {"settings": {"a": 1}}).load()
    assert loaded.notes == [] and loaded.state is not None
    got, want = loaded.state, states[2]
    assert (got.stage, got.iteration, got.seed, got.stages) == (
        want.stage, want.iteration, want.seed, want.stages)  # fmt: skip
    assert torch.equal(got.optimizer.x, want.optimizer.x)
    assert torch.equal(got.optimizer.memory["sy"], want.optimizer.memory["sy"])
    whole = execution.execute(plan)
    assert torch.equal(execution.execute(plan, resume=got), whole)
    assert folder.written > 0 and folder.saves == 3


def test_an_auto_runs_checkpoint_keeps_its_last_checked_picture(images, tiny_network, tmp_path):
    from nst.options import AUTO

    plan, states = a_state(images, tiny_network, iterations=AUTO, max_iterations=200)
    picked = states[len(states) // 2]
    assert picked.optimizer is not None and picked.optimizer.reference is not None
    folder = WorkFolder(tmp_path / "out.png", {"settings": {"a": 1}}, every=0)
    folder.save(picked)
    got = WorkFolder(tmp_path / "out.png", {"settings": {"a": 1}}).load().state
    assert got is not None and got.optimizer is not None
    assert got.optimizer.reference.dtype == torch.uint8
    assert torch.equal(got.optimizer.reference, picked.optimizer.reference)
    assert got.optimizer.recent == picked.optimizer.recent
    whole = execution.execute(plan)
    assert torch.equal(execution.execute(plan, resume=got), whole)


def test_a_damaged_checkpoint_is_named_and_the_older_one_used(images, tiny_network, tmp_path):
    _, states = a_state(images, tiny_network)
    out = tmp_path / "out.png"
    folder = WorkFolder(out, {"settings": {}}, every=0)
    folder.save(states[1])  # sequence 1 -> checkpoint-1
    folder.save(states[2])  # sequence 2 -> checkpoint-0, the newest
    newest = folder.path / "checkpoint-0.nst"
    data = newest.read_bytes()
    for damage, words in [
        (data[:-10], "cut short ({0} of {1} bytes)"),
        (data[:-1] + bytes([data[-1] ^ 1]), "its checksum does not match"),
        (data.replace(b'"nst": "', b'"nst": "9', 1), "from another version of nst (90.1.0)"),
        (b"PK\x03\x04 something else", "not an nst checkpoint"),
    ]:
        newest.write_bytes(damage)
        body = len(data.split(b"\n", 2)[2])  # the tensors and the trailer
        words = words.format(body - 10, body)
        loaded = WorkFolder(out, {"settings": {}}).load()
        assert loaded.notes == [f"{newest}: {words}; using the other checkpoint"]
        assert loaded.state is not None and loaded.state.iteration == states[1].iteration
    (folder.path / "checkpoint-1.nst").write_bytes(b"")
    loaded = WorkFolder(out, {"settings": {}}).load()
    assert loaded.state is None and loaded.notes[-1] == "no usable checkpoint: starting afresh"


def test_another_command_for_the_same_output_is_refused_naming_what_differs(tmp_path, images):
    photo = tmp_path / "photo.png"
    Image.fromarray(picture(40, 30, 0)).save(photo)
    before = fingerprint({"size": 64, "iterations": 500}, {"content": str(photo)})
    Image.fromarray(picture(40, 30, 1)).save(photo)  # same name, other bytes
    after = fingerprint({"size": 64, "iterations": 300}, {"content": str(photo)})
    assert differences(before, after) == [
        "iterations (500 there, 300 now)",
        f"content {photo} changed since the checkpoint",
    ]
    assert differences(before, before) == []
    assert fingerprint({}, {"style": "builtin:swirls"})["inputs"]["style"]["builtin"]
    folder = WorkFolder(tmp_path / "o.png", before, every=0)
    folder.save(execution.RunState(0, 1, (), x=torch.zeros(1, 3, 4, 4)))
    with pytest.raises(ConfigError) as info:
        WorkFolder(tmp_path / "o.png", after).load()
    assert str(info.value) == (
        f"{work_folder(tmp_path / 'o.png')} holds a run with other settings: iterations (500 "
        f"there, 300 now); content {photo} changed since the checkpoint; run the same command "
        "to continue it, or add --restart to discard it"
    )


def test_checkpoints_are_due_by_time_and_every_is_parsed():
    clock = Clock()
    folder = WorkFolder("x.png", {}, every=60, clock=clock)
    assert not folder.due()
    clock.now = 59.9
    assert not folder.due()
    clock.now = 60.0
    assert folder.due()
    assert not WorkFolder("x.png", {}, every=None, clock=clock).due()
    assert parse_every("60") == 60 and parse_every("0") == 0 and parse_every("none") is None
    for bad, message in [
        ("soon", "checkpoint-every: 'soon' is not a number of seconds or none"),
        ("-1", "checkpoint-every: give 0 to 10000000 seconds, or none (got -1)"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_every(bad)


# -- a real process, killed --------------------------------------------------------------
@pytest.fixture
def tiny_nst():
    """Starts ``nst`` on the tiny network in a process of its own (a test using it is
    slow: ``make test-fast`` leaves it out)."""

    def start(args, cwd, **kwargs):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-c", TINY_NST, *map(str, args)], cwd=cwd,
                                env=env, stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint, **kwargs)  # fmt: skip

    return start


def steps_in(log: Path) -> int:
    try:
        return sum('"type": "step"' in line for line in log.read_text().splitlines())
    except OSError:
        return 0


KINDS = {
    "one stage": ["--size", "48", "--iterations", "150"],
    "coarse to fine": ["--size", "64", "--scales", "32,64", "--iterations", "150"],
    "tiled": ["--size", "64", "--tile", "32", "--iterations", "120"],
    "masks": ["--size", "48", "--iterations", "150", "--mask", "MASK", "--regions",
              "#ff0000=1,#0000ff=content"],
    "two styles": ["--size", "48", "--iterations", "150", "STYLE2", "--style-blend", "0.7,0.3"],
    # (L-BFGS stops at once on the tiny network's swd: its directions change every step)
    "swd": ["--size", "48", "--iterations", "150", "--style-loss", "swd", "--optimizer", "adam"],
    "w2 averaged": ["--size", "48", "--iterations", "150", "--style-loss", "w2",
                    "--average", "0.95"],
    "adam": ["--size", "48", "--iterations", "200", "--optimizer", "adam"],
    "preset quality": ["--size", "64", "--preset", "quality", "--start-size", "32",
                       "--iterations", "120"],
}  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_run_killed_at_a_random_iteration_continues_to_the_same_picture(tmp_path, kind, tiny_nst):
    content, style, style2, mask = (tmp_path / f"{n}.png" for n in ("c", "s", "s2", "m"))
    Image.fromarray(picture(48, 32, 0)).save(content)
    Image.fromarray(picture(40, 40, 1)).save(style)
    Image.fromarray(picture(40, 40, 2)).save(style2)
    arr = np.zeros((32, 48, 3), np.uint8)
    arr[:, :24] = (255, 0, 0)
    arr[:, 24:] = (0, 0, 255)
    Image.fromarray(arr).save(mask)
    extra = [str(mask) if a == "MASK" else a for a in KINDS[kind] if a != "STYLE2"]
    styles = [style, style2] if "STYLE2" in KINDS[kind] else [style]
    # fp32: bf16's kernels are not deterministic under CPU contention (docs/RELIABILITY.md)
    base = ["stylize", content, *styles, "--seed", "5", "--init", "noise", "-q",
            "--precision", "fp32", *extra]  # fmt: skip
    whole = tmp_path / "whole.png"
    ref = tiny_nst([*base, "-o", whole, "--checkpoint-every", "none"], tmp_path)
    assert ref.wait(timeout=300) == 0, ref.stderr.read() if ref.stderr else ""
    out, log = tmp_path / "out.png", tmp_path / "run.jsonl"
    cmd = [*base, "-o", out, "--checkpoint-every", "0", "--log", log]
    rng = random.Random(kind)
    kills = 0
    for _ in range(2 if kind == "coarse to fine" else 1):  # killed at random iterations
        at = steps_in(log) + rng.randint(3, 40)
        proc = tiny_nst(cmd, tmp_path)
        try:
            while proc.poll() is None and steps_in(log) < at:
                time.sleep(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert out.with_name("out.png.work").is_dir() or proc.returncode == 0
    assert kills >= 1, "the runs finished before they could be killed"
    last = tiny_nst(cmd, tmp_path, stdout=subprocess.DEVNULL)
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    assert not out.with_name("out.png.work").exists()  # a finished run removes its folder
    a = np.asarray(Image.open(whole), dtype=np.int16)
    b = np.asarray(Image.open(out), dtype=np.int16)
    assert a.shape == b.shape and int(np.abs(a - b).max()) <= 1, int(np.abs(a - b).max())
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    resumed = [r for r in records if r["type"] == "resumed"]
    assert len(resumed) == kills and all(r["type"] != "step" or "loss" in r for r in records)


def test_the_cli_says_where_it_continues_and_restart_starts_anew(tmp_path, tiny_nst):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(picture(48, 32, 0)).save(content)
    Image.fromarray(picture(40, 40, 1)).save(style)
    out = tmp_path / "o.png"
    base = ["stylize", content, style, "-o", out, "--size", "48", "--seed", "1", "--init",
            "noise", "--scales", "32,48", "--iterations", "200"]  # fmt: skip
    proc = tiny_nst([*base, "--checkpoint-every", "0"], tmp_path)
    folder = work_folder(out)
    while proc.poll() is None and not (folder / "checkpoint-0.nst").exists():
        time.sleep(0.01)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert " (the same command continues from " in line and line.startswith("nst: interrupted")
    assert line.endswith(f"; wrote the last image to {out}")
    again = tiny_nst([*base, "--iterations", "201"], tmp_path)  # another command
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2
    assert err.strip() == (
        f"nst: error: {folder} holds a run with other settings: iterations (200 there, 201 "
        "now); run the same command to continue it, or add --restart to discard it"
    )
    cont = tiny_nst(base, tmp_path)
    _, err = cont.communicate(timeout=120)
    assert cont.returncode == 0, err
    head = [ln for ln in err.splitlines() if ln.startswith("nst: continuing from ")]
    assert len(head) == 1 and checkpoints.describe.__doc__
    assert head[0].startswith(("nst: continuing from stage 1, iteration ",
                               "nst: continuing from stage 2, iteration ",
                               "nst: continuing from the start of stage 2"))  # fmt: skip
    assert "s before the stop)" in head[0]
    fresh = tiny_nst([*base, "--restart", "-q"], tmp_path)
    _, err = fresh.communicate(timeout=120)
    assert fresh.returncode == 0 and "continuing" not in err


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def test_tensors_read_back_are_fresh_aligned_buffers_and_each_iteration_continues_exactly(
    images, tiny_network, tmp_path
):
    """Read back, a tensor is not a view into the file's bytes at whatever offset the header
    left it: vectorized dot products round by their operands' alignment, and a batch job
    continued from iteration 1 drifted from the run it continued (loss 46.3 against 42.8)."""
    plan, states = a_state(images, tiny_network, iterations=6)
    whole = execution.execute(plan)
    aligned = torch.empty(1000).data_ptr() % 64 == 0
    for state in states[1:]:
        out = tmp_path / f"out{state.iteration}.png"
        WorkFolder(out, {"settings": {}}, every=0).save(state)
        got = WorkFolder(out, {"settings": {}}).load().state
        assert got is not None and got.optimizer is not None
        from nst.checkpoints import _to_plain

        tensors = [t for t in _tensors(_to_plain(got)) if t.numel()]
        assert len(tensors) >= 4
        starts = {t.untyped_storage().data_ptr() for t in tensors}
        assert len(starts) == len(tensors)  # each its own buffer
        if aligned:
            assert all(t.data_ptr() % 64 == 0 for t in tensors), state.iteration
        assert torch.equal(execution.execute(plan, resume=got), whole), state.iteration


def test_a_header_that_lies_about_its_tensors_is_damaged_not_allocated(
    images, tiny_network, tmp_path
):
    """The header is not covered by the checksum: a tensor it says is larger than the file,
    negative, out of order or of an unknown dtype makes the file damaged, and nothing of
    the size it claims is allocated."""
    _, states = a_state(images, tiny_network)
    out = tmp_path / "out.png"
    folder = WorkFolder(out, {"settings": {}}, every=0)
    folder.save(states[1])
    file = folder.path / "checkpoint-1.nst"
    data = file.read_bytes()
    head, rest = data[len(checkpoints.MAGIC) :].split(b"\n", 1)
    header = json.loads(head)
    for change in (
        lambda t: t[0].update(nbytes=10**15),
        lambda t: t[0].update(nbytes=-4),
        lambda t: t[1].update(offset=t[1]["offset"] + 4),
        lambda t: t[0].update(dtype="object"),
        lambda t: t.__setitem__(0, 7),
    ):
        bad = json.loads(head)
        change(bad["tensors"])
        file.write_bytes(checkpoints.MAGIC + json.dumps(bad).encode() + b"\n" + rest)
        with pytest.raises(checkpoints.Damaged, match="^its header is damaged$"):
            checkpoints.read(file)
    assert len(header["tensors"]) >= 2
