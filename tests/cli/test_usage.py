"""Usage errors (a missing argument, an unknown option or command) are one line naming the
command, with exit code 2; ``NST_DEBUG=1`` shows click's full usage box instead."""

import os

import pytest

from nst.cli.app import main


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["stylize", "c.png", "-o", "x.png"],
         "nst: error: stylize: missing argument STYLE (see 'nst stylize --help')"),
        (["reconstruct", "content", "c.png"],
         "nst: error: reconstruct content: missing option '-o' / '--output' "
         "(see 'nst reconstruct content --help')"),
        (["video", "--mask"], "nst: error: video: no such option: --mask (see 'nst video --help')"),
        (["saliency", "c.png"],
         "nst: error: saliency: missing option '-o' / '--output' (see 'nst saliency --help')"),
        (["stylize", "c.png", "s.png", "-o", "x.png", "--colour", "luminance"],
         "nst: error: stylize: no such option: --colour (did you mean --preserve-colors?) "
         "(see 'nst stylize --help')"),
        (["bogus"], "nst: error: no such command 'bogus' (see 'nst --help')"),
        (["batch", "-o", "out", "--retries", "x"], "nst: error: retries: 'x' is not an integer"),
    ],
)  # fmt: skip
def test_a_usage_error_is_one_line_with_exit_code_2(capsys, monkeypatch, args, line):
    monkeypatch.delenv("NST_DEBUG", raising=False)
    code, out, err = run_main(capsys, *args)
    assert (code, out, err) == (2, "", line + "\n")


def test_nst_debug_shows_the_usage_box(capsys, monkeypatch):
    monkeypatch.setenv("NST_DEBUG", "1")
    code, _, err = run_main(capsys, "stylize", "c.png")
    assert code == 2
    assert "Usage: nst stylize" in err and "Missing argument" in err


def test_help_and_no_arguments_keep_their_exit_codes(capsys):
    assert run_main(capsys, "--help")[:2][0] == 0
    code, out, err = run_main(capsys)
    assert code == 2 and "Usage: nst" in out + err and "stylize" in out + err


def test_the_pixel_limit_comes_from_the_environment_through_the_command(
    capsys, monkeypatch, tmp_path
):
    """The library reads no environment: ``nst`` sets the limit from NST_MAX_PIXELS, and a
    bad value is one line with exit 2."""
    from PIL import Image

    from nst import process

    photo = tmp_path / "c.png"
    Image.new("RGB", (40, 30), "gray").save(photo)
    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    monkeypatch.setenv("NST_MAX_PIXELS", "1000")
    out = str(tmp_path / "x.png")
    code, _, err = run_main(capsys, "stylize", str(photo), str(photo), "-o", out, "--size", "16")
    assert code == 2
    assert err == f"nst: error: {photo}: too many pixels (40×30 = 1,200 > 1,000)\n"
    fixed = int(os.environ["NST_THREADS"])  # the suite's (tests/conftest.py)
    assert process.current() == process.ProcessSettings(
        1000, tune_convolutions=True, keep_freed_memory=True, threads=fixed
    )
    assert not (tmp_path / "x.png").exists()
    monkeypatch.setenv("NST_MAX_PIXELS", "lots")
    code, _, err = run_main(capsys, "stylize", str(photo), str(photo), "-o", "y.png")
    assert (code, err) == (2, "nst: error: NST_MAX_PIXELS must be a positive whole number "
                              "(got 'lots')\n")  # fmt: skip
    monkeypatch.delenv("NST_MAX_PIXELS")
    monkeypatch.setenv("NST_KEEP_FREED_MEMORY", "yes")
    y = str(tmp_path / "y.png")
    code, _, err = run_main(capsys, "stylize", str(photo), str(photo), "-o", y, "--size", "16")
    assert (code, err) == (2, "nst: error: NST_KEEP_FREED_MEMORY must be 0 or 1 (got 'yes')\n")
    assert not (tmp_path / "y.png").exists()
    monkeypatch.delenv("NST_KEEP_FREED_MEMORY")
    monkeypatch.setenv("NST_THREADS", "0")
    code, _, err = run_main(capsys, "stylize", str(photo), str(photo), "-o", y, "--size", "16")
    assert (code, err) == (2, "nst: error: NST_THREADS must be a whole number from 1 to 1024 "
                              "or auto (got '0')\n")  # fmt: skip
    assert not (tmp_path / "y.png").exists()


def test_the_threads_come_from_the_environment_a_number_or_auto(monkeypatch):
    """NST_THREADS: a number fixes the command's threads; unset or ``auto`` (None) fits
    them to the load (nst.threads); anything else is refused naming the variable."""
    from nst import process

    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    assert process.from_environment({}).threads is None
    assert process.from_environment({"NST_THREADS": " Auto "}).threads is None
    assert process.from_environment({"NST_THREADS": "3"}).threads == 3
    assert process.from_environment({"NST_THREADS": "1024"}).threads == 1024
    for bad in ("0", "1025", "-1", "2.5", "²", "two"):
        with pytest.raises(ValueError, match=r"^NST_THREADS must be a whole number from 1 to "
                                             r"1024 or auto \(got '"):  # fmt: skip
            process.from_environment({"NST_THREADS": bad})
    with pytest.raises(ValueError, match=r"^NST_MAX_PIXELS must be a positive whole number"):
        process.from_environment({"NST_MAX_PIXELS": "²"})  # a digit to isdigit, not to int


def test_freed_memory_is_kept_unless_the_environment_says_0(monkeypatch):
    """``nst`` keeps freed memory (glibc's malloc) by default; NST_KEEP_FREED_MEMORY=0
    leaves the allocator as it is."""
    from nst import process

    monkeypatch.setattr(process, "_current", process.ProcessSettings())  # restored after
    assert process.from_environment({}).keep_freed_memory
    assert not process.from_environment({"NST_KEEP_FREED_MEMORY": "0"}).keep_freed_memory
    assert process.from_environment({"NST_KEEP_FREED_MEMORY": " 1 "}).keep_freed_memory
