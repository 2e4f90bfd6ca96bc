"""The README walked as a new user would (scripts/walk_readme.py): every ``nst`` command
and the Python API example run at small sizes in a fresh folder, and every file each one
promises is there and opens."""

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import requires_weights

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("ray", reason="make test installs nst[batch]")
pytest.importorskip("av", reason="make test installs nst[video]")


def walker():
    spec = importlib.util.spec_from_file_location("walk_readme", ROOT / "scripts/walk_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["walk_readme"] = module
    spec.loader.exec_module(module)
    return module


def test_the_commands_are_read_as_a_user_types_them():
    w = walker()
    body = "nst a b -o x.png   # a comment\n# only a comment\nnst c \\\n  --size 9 -o y.png\n"
    assert list(w.commands(body)) == ["nst a b -o x.png", "nst c    --size 9 -o y.png"]
    argv = w.rewrite(["nst", "saliency", "p.jpg", "--size", "512", "-o", "s.png"], "/bin/nst")
    assert argv == ["/bin/nst", "saliency", "p.jpg", "--size", "96", "-o", "s.png"]
    fig = w.rewrite(["nst", "figures", "--images", "../shared/images"], "nst")
    assert fig[:3] == ["nst", "figures", "--images"] and fig[3] == "images"
    assert w.promised(fig) == [Path("figs/index.html"), Path("figs/fig5.png")]
    assert w.promised(["nst", "batch", "-o", "out/"]) == [Path("out/batch.jsonl")]


@requires_weights
def test_every_readme_command_does_what_the_readme_says(tmp_path):
    outcomes = walker().walk(ROOT / "README.md", tmp_path)
    ran = [o for o in outcomes if not o.skipped]
    assert len(ran) >= 18  # stylize, score, reconstruct, figures, explain, video, batch, API
    assert [f"{o.command}: {o.problems}" for o in ran if o.problems] == []
