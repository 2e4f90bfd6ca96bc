"""Hostile manifests, options, folders and state files for ``nst batch``: each case gets
exit 2 and exactly the one line expected, before any work (Ray is never started: a
refusal comes first, and a run whose jobs are all recorded as done has nothing to start).
Damaged ``batch.jsonl`` lines are skipped with a warning naming their line number."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nst.batch.jobs import Records, append_line
from nst.cli import app
from tests.robustness import corpus

runner = CliRunner()
DIGITS = "9" * 5000


@pytest.fixture
def place(tmp_path, monkeypatch) -> Path:
    """``c/a.png``, ``s/b.png``, a text file and a pickle; the test runs in ``tmp_path``."""
    for folder in ("c", "s"):
        (tmp_path / folder).mkdir()
    (tmp_path / "c" / "a.png").write_bytes(corpus.png(48, 36, 0))
    (tmp_path / "s" / "b.png").write_bytes(corpus.png(40, 40, 1))
    (tmp_path / "s" / "b2.png").write_bytes(corpus.png(40, 40, 2))
    (tmp_path / "notes.png").write_text("a text file named like an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path)

    def no_ray() -> None:
        raise AssertionError("Ray was started: the case was not refused before work")

    monkeypatch.setattr("nst.batch.engine.import_ray", no_ray)
    return tmp_path


def batch(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["batch", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.strip().splitlines()


def refused(args: list[str], line: str) -> None:
    code, lines = batch(*args)
    assert (code, lines) == (2, [f"nst: error: {line}"])
    assert not Path("out", "batch.jsonl").exists()


# -- manifest rows: each bad value in a CSV cell and in a JSON-lines field --------------------
BASE_ROW = {"content": "c/a.png", "style": "s/b.png"}
#: (field, value, the message after "manifest jobs.EXT ROW: ")
BAD_VALUES: list[tuple[str, object, str]] = [
    ("size", "abc", "size: 'abc' is not an integer"),
    ("size", DIGITS[:1000], "size: a number of 1,000 digits is out of range (at most 18 digits)"),
    ("size", DIGITS, "'size' is 5,000 characters long (at most 4,096)"),
    ("size", "8", "size must be between 16 and 16384 (got 8)"),
    ("size", "1.5", "size: '1.5' is not an integer"),
    ("size", "100000", "size must be between 16 and 16384 (got 100000)"),
    ("iterations", "0", "iterations must be between 1 and 1000000 (got 0)"),
    ("iterations", "-5", "iterations must be between 1 and 1000000 (got -5)"),
    ("iterations", "1e9", "iterations: '1e9' is not an integer"),
    ("seed", "9" * 30, "seed: a number of 30 digits is out of range (at most 18 digits)"),
    ("style_weight", "nan", "style-weight must be a finite number (got nan)"),
    ("style_weight", "1e999", "style-weight must be a finite number (got inf)"),
    ("style_weight", "lots", "style-weight: 'lots' is not a number"),
    ("content_weight", "-1", "content-weight must be between 0 and 1e+12 (got -1)"),
    ("style_scale", "0", "style-scale must be > 0 and at most 8 (got 0)"),
    ("style_scale", "600", "style-scale must be > 0 and at most 8 (got 600)"),
    ("style_layers", "conv9_9", "unknown layer 'conv9_9' (known: conv1_1 … conv5_4 or relu1_1 … "
     "relu5_4, pool1 … pool5)"),
    ("style_layers", "conv1_1:" + DIGITS[:400], "style-layers: weight of 'conv1_1' must be a "
     "finite number >= 0"),
    ("precision", "fp8", "precision must be one of auto, fp32, bf16, fp16 (got 'fp8')"),
    ("optimizer", "sgd", "optimizer must be one of lbfgs, adam (got 'sgd')"),
    ("memory_limit", DIGITS[:400] + "G", "memory-limit: '999999999999999999999...' "
     "(401 characters) is too large"),
    ("mask", "notes.png", "mask notes.png: not an image file, or a format nst cannot read"),
    ("mask", "missing.png", "mask missing.png: no such file"),
    ("init", "notes.png", "init notes.png: not an image file, or a format nst cannot read"),
    ("init", "empty.png", "init empty.png: empty file (0 bytes)"),
    ("content", "notes.png", "content notes.png: not an image file, or a format nst cannot "
     "read"),
    ("content", "missing.png", "content missing.png: no such file"),
    ("content", "c", "content c: is a directory, not an image file"),
    ("content", "builtin:nope", "builtin:nope: no such built-in image (known: builtin:chelsea, "
     "builtin:astronaut, builtin:coffee, builtin:rocket, builtin:swirls, builtin:mosaic)"),
    ("style", "empty.png", "style empty.png: empty file (0 bytes)"),
    ("style", "notes.png", "style notes.png: not an image file, or a format nst cannot read"),
    ("output", "../x.png", "output '../x.png' must be a plain file name"),
    ("output", ".png", "output '.png' must be a plain file name"),
    ("output", "x.txt", "output 'x.txt': use one of .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp"),
    ("bogus", "1", "unknown parameter(s): bogus"),
    ("content", "c/" + "x" * 5000, "'content' is 5,002 characters long (at most 4,096)"),
]  # fmt: skip
# the blend of one style with a weight for two, and regions whose style is not given
BAD_VALUES += [
    ("style_blend", "0.5;0.5", "style-blend has 2 weights for 1 style image(s)"),
]


def _ids(cases: list[tuple[str, object, str]]) -> list[str]:
    return [f"{f}={str(v)[:12]}" for f, v, _ in cases]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES, ids=_ids(BAD_VALUES))
def test_a_bad_manifest_value_is_one_line_naming_the_row(place, kind, field, value, message):
    row = {**BASE_ROW, field: value}
    if field == "mask":
        row["regions"] = "#ff0000=1"
    if field == "style_blend" and kind == "jsonl":
        row[field] = [float(x) for x in str(value).split(";")]
    path = place / f"jobs.{kind}"
    if kind == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(row))
        writer.writerow([str(v).replace(";", ",") for v in row.values()])
        path.write_text(buf.getvalue())
        where = "row 2"
    else:
        path.write_text(json.dumps(row) + "\n")
        where = "line 1"
    refused(["--manifest", path.name, "-o", "out"],
            f"manifest {path.name} {where}: " + message.format(d=place))  # fmt: skip


# -- the manifest file itself --------------------------------------------------------------
MANIFESTS: dict[str, tuple[str, bytes, str]] = {
    "duplicated CSV column": ("jobs.csv", b"content,style,size,size\nc/a.png,s/b.png,32,40\n",
                              "manifest jobs.csv: column 'size' appears twice"),
    "duplicated JSON key": ("jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","size":32,'
                            b'"size":40}\n',
                            "manifest jobs.jsonl line 1: key 'size' appears twice"),
    "CSV cell over the csv module's limit": (
        "jobs.csv", b"content,style\nc/a.png," + b"x" * 200_000 + b"\n",
        "manifest jobs.csv row 2: a cell longer than 65,536 characters"),
    "JSON integer past Python's digit limit": (
        "jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","size":' + DIGITS.encode() + b"}\n",
        "manifest jobs.jsonl line 1: a number with too many digits"),
    "JSON NaN": ("jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","style_weight":NaN}\n',
                 "manifest jobs.jsonl line 1: NaN is not a finite number"),
    "JSON Infinity": ("jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","tv_weight":'
                      b"-Infinity}\n", "manifest jobs.jsonl line 1: -Infinity is not a finite "
                      "number"),
    "JSON nested too deeply": ("jobs.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n",
                               "manifest jobs.jsonl line 1: nested too deeply"),
    "JSON syntax": ("jobs.jsonl", b'{"content": "c/a.png",\n', "manifest jobs.jsonl line 1: not "
                    "valid JSON (Expecting property name enclosed in double quotes at column 23)"),
    "JSON list": ("jobs.jsonl", b'["c/a.png", "s/b.png"]\n',
                  "manifest jobs.jsonl line 1: not a JSON object"),
    "JSON without content": ("jobs.jsonl", b'{"style": "s/b.png"}\n',
                             "manifest jobs.jsonl line 1: no content"),
    "JSON content not text": ("jobs.jsonl", b'{"content": 5, "style": "s/b.png"}\n',
                              "manifest jobs.jsonl line 1: no content"),
    "JSON output not text": ("jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","output":1}\n',
                             "manifest jobs.jsonl line 1: output must be text"),
    "no style": ("jobs.csv", b"content,style\nc/a.png,\n",
                 "manifest jobs.csv row 2: no style image"),
    "more cells than columns": ("jobs.csv", b"content,style\nc/a.png,s/b.png,extra\n",
                                "manifest jobs.csv row 2: more cells than columns"),
    "no content column": ("jobs.csv", b"photo,style\nc/a.png,s/b.png\n", "manifest jobs.csv: the "
                          "first line must name the columns, content among them"),
    "no rows": ("jobs.csv", b"content,style\n", "manifest jobs.csv: no jobs in it"),
    "empty file": ("jobs.csv", b"", "manifest jobs.csv: empty file (0 bytes)"),
    "not UTF-8": ("jobs.csv", b"content,style\n\xff\xfe,s/b.png\n", "manifest jobs.csv: cannot "
                  "read it as text ('utf-8' codec can't decode byte 0xff in position 14: invalid "
                  "start byte)"),
    "a text file": ("jobs.txt", b"content,style\n", "manifest jobs.txt: use a .csv or .jsonl file"),
    "two jobs, one output": ("jobs.csv", b"content,style,output\nc/a.png,s/b.png,x.png\n"
                             b"c/a.png,s/b2.png,x.png\n", "manifest jobs.csv row 3: writes x.png "
                             "like manifest jobs.csv row 2; give one of them another output name"),
    "regions name a style not given": (
        "jobs.jsonl", b'{"content":"c/a.png","style":"s/b.png","mask":"c/a.png","regions":'
        b'"#ff0000=2"}\n', "manifest jobs.jsonl line 1: regions: style 2 is used but only 1 given"),
    "a style no region uses": (
        "jobs.jsonl", b'{"content":"c/a.png","styles":["s/b.png","s/b2.png"],"mask":"c/a.png",'
        b'"regions":"#ff0000=1"}\n',
        "manifest jobs.jsonl line 1: regions: style 2 is given but no region uses it"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_a_bad_manifest_is_one_line(place, name):
    file, data, line = MANIFESTS[name]
    (place / file).write_bytes(data)
    refused(["--manifest", file, "-o", "out"], line)


def test_a_missing_or_special_manifest(place):
    refused(["--manifest", "nope.csv", "-o", "out"], "manifest nope.csv: no such file")
    refused(["--manifest", "c", "-o", "out"], "manifest c: is a directory, not an image file")
    os.mkfifo(place / "jobs.csv")
    refused(["--manifest", "jobs.csv", "-o", "out"],
            "manifest jobs.csv: not a regular file (a pipe, device or socket)")  # fmt: skip


# -- options and folders -------------------------------------------------------------------
JOBS = ["--contents", "c", "--styles", "s"]
OPTIONS: dict[str, tuple[list[str], str]] = {
    "no jobs": (["-o", "out"], "give --contents and --styles, or a --manifest"),
    "both kinds of jobs": ([*JOBS, "--manifest", "m.csv", "-o", "out"],
                           "give a --manifest or --contents and --styles, not both"),
    "workers 0": ([*JOBS, "-o", "out", "--workers", "0"], "workers must be between 1 and 4096 "
                  "(got 0)"),
    "threads 0": ([*JOBS, "-o", "out", "--threads-per-worker", "0"], "threads-per-worker must be "
                  "between 1 and 256 (got 0)"),
    "gpus negative": ([*JOBS, "-o", "out", "--gpus-per-worker", "-1"], "gpus-per-worker must be "
                      "between 0 and 64 (got -1)"),
    "retries negative": ([*JOBS, "-o", "out", "--retries", "-1"], "retries must be between 0 and "
                         "100 (got -1)"),
    "iterations 0": ([*JOBS, "-o", "out", "--iterations", "0"], "iterations must be between 1 "
                     "and 1000000 (got 0)"),
    "size digits": ([*JOBS, "-o", "out", "--size", DIGITS], "size: a number of 5,000 digits is "
                    "out of range (at most 18 digits)"),
    "output is the contents folder": (["--contents", "c", "--styles", "s", "-o", "c"],
                                      "a.png x b.png: c/a.png is in the output folder c; results "
                                      "would become inputs of the next run (use another -o "
                                      "folder)"),
    "output is the styles folder": (["--contents", "c", "--styles", "s", "-o", "s"],
                                    "a.png x b.png: s/b.png is in the output folder s; results "
                                    "would become inputs of the next run (use another -o "
                                    "folder)"),
    "a glob into the output folder": (["--contents", "c/*.png", "--styles", "s/b.png", "-o",
                                       "c/"], "a.png x b.png: c/a.png is in the output folder "
                                      "c; results would become inputs of the next run (use "
                                      "another -o folder)"),
    "output folder through a symlink": (["--contents", "link", "--styles", "s", "-o", "c"],
                                        "a.png x b.png: link/a.png is in the output folder c; "
                                        "results would become inputs of the next run (use "
                                        "another -o folder)"),
    "no images in contents": (["--contents", "s/none*.png", "--styles", "s", "-o", "out"],
                              "contents: s/none*.png: the pattern matches no file"),
    "output under a file": ([*JOBS, "-o", "notes.png/out"], "output folder notes.png/out/"
                            "batch.jsonl: cannot make the folder notes.png/out (Not a directory)"),
    "the manifest is the record file": (["--manifest", "out/batch.jsonl", "-o", "out"],
                                        "manifest out/batch.jsonl is the output folder's record "
                                        "file; give another -o folder or file name"),
    "the log is the record file": ([*JOBS, "-o", "out", "--log", "out/batch.jsonl"],
                                   "log out/batch.jsonl is the output folder's record file; "
                                   "give another -o folder or file name"),
    "the log is the manifest": (["--manifest", "jobs.csv", "-o", "out", "--log", "jobs.csv"],
                                "log jobs.csv is the manifest; give the log another name"),
    "a manifest row in the output folder": (["--manifest", "jobs.csv", "-o", "c"],
                                            "manifest jobs.csv row 2: c/a.png is in the output "
                                            "folder c; results would become inputs of the next "
                                            "run (use another -o folder)"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(OPTIONS))
def test_a_bad_option_or_folder_is_one_line(place, name):
    (place / "link").symlink_to(place / "c")
    (place / "jobs.csv").write_text("content,style\nc/a.png,s/b.png\n")
    (place / "out").mkdir()
    (place / "out" / "batch.jsonl").write_text('{"content": "c/a.png", "style": "s/b.png"}\n')
    args, line = OPTIONS[name]
    before = (place / "out" / "batch.jsonl").read_bytes()
    code, lines = batch(*args)
    assert (code, lines) == (2, [f"nst: error: {line}"])
    assert [p.relative_to(place).as_posix() for p in place.glob("*/batch.jsonl")] == [
        "out/batch.jsonl"
    ]
    assert (place / "out" / "batch.jsonl").read_bytes() == before


# -- the state file ------------------------------------------------------------------------
DAMAGED: dict[str, tuple[bytes, str | None]] = {
    "cut short": (b'{"output": "x.png", "status": "o', "not a JSON record (cut short?)"),
    "not UTF-8": (b'{"output": "\xff\xfe.png", "status": "ok"}', "not UTF-8 text"),
    "a list": (b'["x.png", "ok"]', "not a record of a job"),
    "a string": (b'"ok"', "not a record of a job"),
    "no output": (b'{"status": "ok"}', "not a record of a job"),
    "output not text": (b'{"output": 5, "status": "ok"}', "not a record of a job"),
    "digits": (b'{"output": "x.png", "n": ' + DIGITS.encode() + b"}",
               "not a JSON record (cut short?)"),
    "NaN": (b'{"output": "x.png", "loss": NaN, "status": "failed"}', "not a JSON record (cut "
            "short?)"),
    "deep": (b"[" * 50_000 + b"]" * 50_000, "not a JSON record (cut short?)"),
    "NUL bytes": (b"\x00" * 64, "not a JSON record (cut short?)"),
    "blank": (b"   ", None),
}  # fmt: skip


@pytest.mark.parametrize("last", [False, True], ids=["between", "last"])
@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_record_is_skipped_with_its_line_number(place, name, last):
    """The job recorded ok stays skipped; the damaged line is named; a record written
    after a cut line starts on a line of its own."""
    (place / "jobs.csv").write_text("content,style,output\nc/a.png,s/b.png,done.png\n")
    out = place / "out"
    out.mkdir()
    (out / "done.png").write_bytes(corpus.png(32, 24, 5))
    ok = json.dumps({"output": "done.png", "status": "ok"}).encode()
    damaged, why = DAMAGED[name]
    lines = [ok, damaged] if last else [damaged, ok]
    (out / "batch.jsonl").write_bytes(b"\n".join(lines) + (b"" if last else b"\n"))
    code, err = batch("--manifest", "jobs.csv", "-o", "out")
    assert code == 0, err
    number = 2 if last else 1
    warning = f"nst: warning: out/batch.jsonl line {number}: {why}; skipped"
    warnings = [] if why is None else [warning]
    assert [x for x in err if x.startswith("nst:")] == warnings
    assert err[-1].startswith("batch: 0 ok, 0 failed, 1 skipped in 0:0")
    data = (out / "batch.jsonl").read_bytes()
    assert data.startswith(b"\n".join(lines))
    record = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[1])  # the last line, whole
    assert record["status"] == "skipped" and record["output"] == "done.png"


def test_many_damaged_records_are_named_up_to_a_limit(place):
    out = place / "out"
    out.mkdir()
    (out / "batch.jsonl").write_bytes(b"\n".join([b"{cut"] * 30) + b"\n")
    records = Records(out)
    assert records.done() == {}
    assert len(records.warnings) == 11
    assert records.warnings[-1] == f"{out}/batch.jsonl: more damaged lines; skipped"


def _append_many(path: str, tag: int) -> None:
    for i in range(200):
        append_line(Path(path), json.dumps({"output": f"{tag}-{i}.png", "status": "ok",
                                            "pad": "x" * (i * 37 % 3000)}))  # fmt: skip


def test_concurrent_runs_into_one_folder_never_interleave_records(tmp_path):
    """Two processes append 200 records each (some of 3 kB) to one batch.jsonl."""
    path = tmp_path / "batch.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), t)) for t in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    records = Records(tmp_path)
    done = records.done()
    assert records.warnings == []
    assert sorted(done) == sorted(f"{t}-{i}.png" for t in (1, 2) for i in range(200))


def test_a_record_after_a_cut_line_starts_on_its_own_line(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b'{"output": "a.png", "status": "ok"}\n{"output": "b.png", "sta')
    append_line(path, json.dumps({"output": "c.png", "status": "ok"}))
    records = Records(tmp_path)
    assert sorted(records.done()) == ["a.png", "c.png"]
    assert records.warnings == [f"{path} line 2: not a JSON record (cut short?); skipped"]
