"""Argument checks of the command line: one line, an exit code, nothing touched.

These run on the tiny network: no weight file is needed to refuse bad input.
"""

import pytest
from typer.testing import CliRunner

from nst.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{missing}", "{style}"], 2, "nst: error: {missing}: no such file"),
        (["{content}", "{style}", "--style-layers", "conv9_1"], 2,
         "nst: error: unknown layer 'conv9_1' (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, "
         "pool1 … pool5)"),
        (["{content}", "{style}", "-o", "{content}"], 2,
         "nst: error: output {content} is an input file; choose another name"),
        (["{content}", "{style}", "--log", "{style}"], 2,
         "nst: error: log file {style} is an input file"),
        (["{content}", "{style}", "-o", "{tmp}/o.gif"], 2,
         "nst: error: {tmp}/o.gif: unknown output extension '.gif' "
         "(use .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)"),
        (["{content}", "{style}", "--size", "4"], 2,
         "nst: error: size must be between 16 and 16384 (got 4)"),
        (["{content}", "{style}", "--size", "1.5"], 2, "nst: error: size: '1.5' is not an integer"),
        (["{content}", "{style}", "--scales", "256.7,512"], 2,
         "nst: error: scales: '256.7' is not an integer"),
        (["{content}", "{style}", "--style-weight", "lots"], 2,
         "nst: error: style-weight: 'lots' is not a number"),
        (["{content}", "{style}", "--pooling", "sum"], 2,
         "nst: error: pooling must be one of avg, max (got 'sum')"),
        (["{content}", "{notimage}"], 2,
         "nst: error: {notimage}: not an image file, or a format nst cannot read"),
        (["{content}", "{style}", "--weights", "{tmp}/none.pth"], 2,
         "nst: error: {tmp}/none.pth: no such file"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_line_and_an_exit_code(
    images, tmp_path, tiny_network, args, code, message
):
    notimage = tmp_path / "fake.jpg"
    notimage.write_text("not a jpeg")
    values = {
        "missing": tmp_path / "missing.jpg",
        "content": images["content"],
        "style": images["style"],
        "tmp": tmp_path,
        "notimage": notimage,
    }
    argv = ["stylize", *[a.format(**values) for a in args]]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.png")]
    if "--size" not in argv:
        argv += ["--size", "32"]
    before = images["content"].read_bytes()
    r = runner.invoke(app, [*argv, "--iterations", "1"])
    assert r.exit_code == code, r.output
    assert r.output.strip().splitlines() == [message.format(**values)]
    assert images["content"].read_bytes() == before
    assert not (tmp_path / "out.png").exists()


def test_the_tiny_network_runs_a_whole_command(images, tmp_path, tiny_network):
    out = tmp_path / "o.png"
    r = runner.invoke(app, ["stylize", str(images["content"]), str(images["style"]), "-o",
                            str(out), "--size", "32", "--iterations", "2", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert out.exists()
