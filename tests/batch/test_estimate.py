"""``nst batch --dry-run``'s estimate (nst.batch.estimate): its test run computes as a
worker's jobs would, with the cores other programs leave."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from nst import threads as fitting
from nst.batch import cross, expand
from nst.batch.estimate import _steady_from
from nst.batch.estimate import test_run as measure
from tests.batch.test_engine import Hogged
from tests.conftest import picture, requires_weights

pytestmark = requires_weights


@pytest.fixture
def job(tmp_path):
    Image.fromarray(picture(48, 36, 0)).save(tmp_path / "photo.png")
    Image.fromarray(picture(40, 40, 5)).save(tmp_path / "paint.jpg")
    return cross(expand([str(tmp_path / "photo.png")], "c"),
                 expand([str(tmp_path / "paint.jpg")], "s"),
                 {"size": 32, "iterations": 4, "seed": 0}, tmp_path / "out")[0]  # fmt: skip


@pytest.mark.parametrize("fit", [True, False])
def test_the_test_run_beside_a_busy_program_computes_with_the_cores_it_leaves(
    job, two_threads, monkeypatch, fit
):
    """Beside a hog on one of 2 cores the test run computes with 1 thread and says so;
    with the threads fixed (NST_THREADS) with its 2; the caller's threads given back."""
    monkeypatch.setattr(fitting, "FIRST_LOOK", 0.0)
    monkeypatch.setattr(fitting, "MachineLoad", lambda: Hogged().load())
    speed = measure(job, 2, fit=fit)
    if fit:
        assert speed.basis == "a test run here (1 of 2 threads: other programs kept cores busy)"
    else:
        assert speed.basis == "a test run here (2 thread(s))"
    assert speed.seconds_per_iteration_megapixel > 0
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(
    ("used", "first"),
    [([2, 2, 1, 1, 1], 2), ([1, 1, 1], 0), ([2, 2, 2, 1, 1], 0), ([2, 2, 2, 2, 1], 0), ([], 0)],
)
def test_the_test_runs_speed_is_that_of_its_steps_at_the_last_number_of_threads(used, first):
    """Steps before the run's threads were fitted (every thread beside a busy program) are
    left out; at least two intervals at the last number, else the whole run counts."""
    assert _steady_from(used) == first
