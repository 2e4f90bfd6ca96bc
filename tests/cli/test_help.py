"""Help and argument errors are instant: they never load torch, ray, av or cv2, and the help
reads as the user sees it (the commands' order, no markup eaten, no source line breaks)."""

import json
import subprocess
import sys

import pytest
import typer
from rich.text import Text

from nst.cli.app import build_app

HEAVY = ("torch", "ray", "av", "cv2")
# run the console script in a fresh interpreter and report the heavy modules it loaded
PROBE = f"""
import json, sys
sys.argv = ["nst", *sys.argv[1:]]
from nst.cli import main
try:
    main()
finally:
    loaded = [m for m in {HEAVY!r} if m in sys.modules]
    sys.stderr.write("\\nLOADED=" + json.dumps(loaded) + "\\n")
"""


@pytest.fixture
def run_cli():
    """Runs ``nst`` in a fresh interpreter: (exit code, output, heavy modules it loaded)."""

    def run(*args: str) -> tuple[int, str, list[str]]:
        r = subprocess.run(
            [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
        )
        *rest, marker = r.stderr.rstrip("\n").rsplit("\n", 1)
        assert marker.startswith("LOADED="), r.stderr
        return r.returncode, r.stdout + "".join(rest), json.loads(marker[len("LOADED=") :])

    return run


def command_paths() -> list[list[str]]:
    root = typer.main.get_command(build_app())
    paths = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            paths += [[name, sub] for sub in cmd.commands]
        paths.append([name])
    return paths


def test_every_help_loads_no_heavy_module(run_cli):
    for path in [[], *command_paths()]:
        code, out, loaded = run_cli(*path, "--help")
        assert code == 0, (path, out)
        assert "Usage" in out, path
        assert loaded == [], (path, loaded)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stylize", "a.png", "b.png", "--size", "banana"], "size: 'banana' is not an integer"),
        (["stylize", "a.png", "b.png", "--memory-limit", "lots"], "memory-limit: 'lots'"),
        (["stylize", "a.png", "b.png", "--preset", "nope"], "preset must be one of"),
        (["video", "a.mp4", "b.png", "-o", "c.mp4", "--flow", "x"], "flow"),
        (["nonsense"], "nst: error: no such command 'nonsense' (see 'nst --help')"),
    ],
)
def test_a_bad_argument_fails_in_one_line_without_loading_torch(args, message, run_cli):
    code, out, loaded = run_cli(*args)
    assert code == 2, out
    assert message in out
    assert loaded == []


def test_commands_come_in_their_natural_order():
    names = list(typer.main.get_command(build_app()).commands)  # type: ignore[attr-defined]
    assert names[:4] == ["stylize", "demo", "serve", "video"]
    assert names.index("batch") < names.index("score") < names.index("saliency")


def test_help_texts_survive_rich_markup_and_have_no_source_line_breaks():
    root = typer.main.get_command(build_app())
    seen = 0
    for path in command_paths():
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        for paragraph in (cmd.help or "").split("\n\n"):
            assert "\n" not in paragraph, (path, paragraph)
        for param in cmd.params:
            text = getattr(param, "help", None) or ""
            # rich eats an unescaped [default: x] or [@x] as markup: the user would not see it
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, text)
            seen += 1
    assert seen > 100


def test_help_says_what_a_missing_preset_and_figures_only_mean():
    root = typer.main.get_command(build_app())
    stylize = {p.name: p for p in root.commands["stylize"].params}  # type: ignore[attr-defined]
    preset = stylize["preset"].help or ""
    assert "default: none" not in preset and "Without one (the default)" in preset
    assert "the paper's method" in preset
    figures = {p.name: p for p in root.commands["figures"].params}  # type: ignore[attr-defined]
    from nst.figures import FIGURES

    shown = figures["only"].help or ""
    for name in FIGURES:
        number = name.removeprefix("fig")
        assert name in shown or (number.isdigit() and "fig3 … fig7" in shown), name
