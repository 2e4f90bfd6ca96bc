"""Batch jobs: what to paint (every content × style pair, or a manifest's rows), where the
results go, and the record of what happened (``OUTDIR/batch.jsonl``).

Every job is checked before any work starts: its options parse (the command line's are
the defaults a row overrides), its input files exist and are regular files, and no two
jobs write the same output. A problem is one line naming the row.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import builtins
from ..config import Config
from ..errors import ConfigError, ImageError, NstError, one_line
from ..imageio import SAVE_FORMATS, file_problem, image_files, output_format, probe
from ..numbers import loads, quote
from ..planning import check_styles

#: manifest columns that are not stylize options
COLUMNS = ("content", "style", "styles", "output")
RECORDS = "batch.jsonl"


@dataclass(frozen=True)
class BatchJob:
    """One stylization of a batch: inputs, options and the output's path."""

    row: str  # how messages name it: "row 3" or "a.jpg x b.jpg"
    content: str
    styles: tuple[str, ...]
    config: Config
    output: Path
    options: Mapping[str, Any] = field(default_factory=dict)  # as given (for the record)

    @property
    def name(self) -> str:
        return self.output.name

    @property
    def inputs(self) -> list[str]:
        """Every file the job reads (built-ins are made on the worker)."""
        files = [self.content, *self.styles, *self.config.input_paths().values()]
        return [f for f in files if not builtins.is_builtin(f)]


def expand(specs: Iterable[str], what: str) -> list[str]:
    """Files from files, folders (their own images, not their subfolders': an output folder
    inside an input folder adds nothing) and globs."""
    return image_files(specs, what, recursive=False)


def _stem(name: str) -> str:
    stem = builtins.stem(name)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:60] or "image"


def output_name(content: str, styles: tuple[str, ...], config: Config) -> str:
    """``CONTENT_STYLE_HASH.png``: the hash covers the inputs and every option that differs
    from its default (:meth:`~nst.options.Declared.identity`), so the same job always gets
    the same name, another job another name, and an option added in a later release (at its
    default) renames nothing."""
    settings = config.identity()
    for name in config.input_paths():  # files by where they are
        settings[name] = _identity(settings[name])
    identity = json.dumps(
        {
            "content": _identity(content),
            "styles": [_identity(s) for s in styles],
            "config": settings,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    more = f"+{len(styles) - 1}" if len(styles) > 1 else ""
    return f"{_stem(content)}_{_stem(styles[0])}{more}_{digest}.png"


def _identity(name: str) -> str:
    return name if builtins.is_builtin(name) else os.path.abspath(name)


def _check_file(row: str, role: str, name: str, image: bool = True) -> None:
    """Refuse a missing or unreadable input, and (``image``) one whose header is not an
    image's: a text file given as a mask is refused here, not when its job runs."""
    if builtins.is_builtin(name):
        try:
            builtins.lookup(name)
        except NstError as exc:
            raise ConfigError(f"{row}: {exc}") from None
        return
    problem = file_problem(name)
    if problem is None and image:
        try:
            st = os.stat(name)
            problem = _header_problem(name, st.st_mtime_ns, st.st_size)
        except OSError as exc:  # gone since file_problem looked
            problem = f"cannot read ({exc.strerror or exc})"
    if problem:
        raise ConfigError(f"{row}: {role} {one_line(name)}: {problem}")


@functools.lru_cache(maxsize=4096)  # a file in thousands of jobs is read once (per version)
def _header_problem(name: str, mtime_ns: int, size: int) -> str | None:
    try:
        probe(name)
    except ImageError as exc:
        return exc.reason
    return None


def _job(
    row: str,
    content: str,
    styles: tuple[str, ...],
    options: Mapping[str, Any],
    defaults: Mapping[str, Any],
    outdir: Path,
    output: str | None = None,
    config_class: type[Config] = Config,
) -> BatchJob:
    try:
        config = config_class.from_dict({**defaults, **options})
    except NstError as exc:
        raise ConfigError(f"{row}: {exc}") from None
    if not styles:
        raise ConfigError(f"{row}: no style image")
    try:
        check_styles(config, len(styles))
    except NstError as exc:
        raise ConfigError(f"{row}: {exc}") from None
    _check_file(row, "content", content)
    for s in styles:
        _check_file(row, "style", s)
    declared = config.path_options()
    for role, value in config.input_paths().items():
        _check_file(row, role.replace("_", "-"), value, image=declared[role].image)
    if output:
        if Path(output).name != output or output.startswith("."):
            raise ConfigError(f"{row}: output '{one_line(output)}' must be a plain file name")
        try:
            output_format(output)
        except NstError:
            known = ", ".join(sorted(SAVE_FORMATS))
            raise ConfigError(f"{row}: output '{one_line(output)}': use one of {known}") from None
    name = output or output_name(content, styles, config)
    return BatchJob(row, content, styles, config, outdir / name, dict(options))


def cross(
    contents: list[str],
    styles: list[str],
    defaults: Mapping[str, Any],
    outdir: Path,
    config_class: type[Config] = Config,
) -> list[BatchJob]:
    """Every content in every style, one style per job."""
    jobs = []
    for c in contents:
        for s in styles:
            row = f"{one_line(Path(c).name)} x {one_line(Path(s).name)}"
            jobs.append(_job(row, c, (s,), {}, defaults, outdir, config_class=config_class))
    return check_unique(jobs)


def _split_styles(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return tuple(p.strip() for p in str(value or "").replace("|", ";").split(";") if p.strip())


def manifest(
    path: Path, defaults: Mapping[str, Any], outdir: Path, config_class: type[Config] = Config
) -> list[BatchJob]:
    """One job per row of a CSV (header: content, style or styles, output, any option) or a
    JSON-lines file (objects with those keys). Relative paths are relative to the
    manifest's folder; several styles are separated by ``;`` (or a JSON list)."""
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"manifest {path}: {problem}")
    base = path.parent
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"manifest {path}: cannot read it as text ({exc})") from None
    if path.suffix.lower() in (".jsonl", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"manifest {path} line {n}"
            obj = loads(line, where, object_pairs_hook=lambda pairs, w=where: _unique(pairs, w))
            if not isinstance(obj, dict):
                raise ConfigError(f"{where}: not a JSON object")
            rows.append((f"line {n}", _short(obj, where)))
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(path, text)
    else:
        raise ConfigError(f"manifest {path}: use a .csv or .jsonl file")
    if not rows:
        raise ConfigError(f"manifest {path}: no jobs in it")
    jobs = []
    for label, values in rows:
        where = f"manifest {path.name} {label}"
        content = values.pop("content", None)
        if not isinstance(content, str) or not content.strip():
            raise ConfigError(f"{where}: no content")
        style_value = values.pop("styles", None) or values.pop("style", None)
        styles = _split_styles(style_value)
        output = values.pop("output", None)
        if output is not None and not isinstance(output, str):
            raise ConfigError(f"{where}: output must be text")

        def resolve(p: str) -> str:
            return p if builtins.is_builtin(p) or Path(p).is_absolute() else str(base / p)

        options = {str(k): v for k, v in values.items()}
        for key, opt in config_class.path_options().items():
            if opt.names_file(options.get(key)):
                options[key] = resolve(options[key])
        jobs.append(
            _job(
                where,
                resolve(content.strip()),
                tuple(resolve(s) for s in styles),
                options,
                defaults,
                outdir,
                output,
                config_class,
            )
        )
    return check_unique(jobs)


#: the longest manifest cell (a path, a layer list) read; longer ones are refused
MAX_CELL = 4096


def _unique(pairs: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"{where}: key {quote(key)} appears twice")
        out[key] = value
    return out


def _short(row: dict[str, Any], where: str) -> dict[str, Any]:
    """``row``, once no text in it (nested in lists too) is longer than MAX_CELL."""

    def check(key: str, value: Any) -> None:
        if isinstance(value, str) and len(value) > MAX_CELL:
            raise ConfigError(
                f"{where}: {quote(key)} is {len(value):,} characters long (at most {MAX_CELL:,})"
            )
        if isinstance(value, (list, tuple)):
            for v in value:
                check(key, v)

    for key, value in row.items():
        if len(key) > MAX_CELL:
            raise ConfigError(f"{where}: a key {len(key):,} characters long")
        check(key, value)
    return row


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    lines = text.splitlines()
    reader = csv.DictReader(lines)
    rows: list[tuple[str, dict[str, Any]]] = []
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, 16 * MAX_CELL))  # long cells are refused below, by name
        names = reader.fieldnames
        if not names or "content" not in names:
            raise ConfigError(
                f"manifest {path}: the first line must name the columns, content among them"
            )
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"manifest {path}: column {quote(name)} appears twice")
        for row in reader:
            n = reader.line_num
            if None in row:
                raise ConfigError(f"manifest {path} row {n}: more cells than columns")
            cells = {k: v for k, v in row.items() if v not in ("", None)}
            rows.append((f"row {n}", _short(cells, f"manifest {path} row {n}")))
    except csv.Error as exc:
        n = reader.line_num + 1  # the line being read when the reader gave up
        why = (f"a cell longer than {16 * MAX_CELL:,} characters" if "field larger" in str(exc)
               else f"not valid CSV ({one_line(str(exc))[:80]})")  # fmt: skip
        raise ConfigError(f"manifest {path} row {n}: {why}") from None
    finally:
        csv.field_size_limit(limit)
    return rows


def check_unique(jobs: list[BatchJob]) -> list[BatchJob]:
    """Refuse two jobs writing one output, and inputs inside the output folder (results
    would become inputs of the next run, and an output could overwrite an input)."""
    seen: dict[Path, str] = {}
    for job in jobs:
        check_outside(job.inputs, job.output.parent, job.row)
        if job.output in seen:
            raise ConfigError(
                f"{job.row}: writes {job.output.name} like {seen[job.output]}; "
                "give one of them another output name"
            )
        seen[job.output] = job.row
    return jobs


def check_outside(inputs: Iterable[str | Path], outdir: Path, row: str) -> None:
    """Refuse an input file that lives in the output folder ``outdir``."""
    out = _real(outdir)
    for name in inputs:
        if _real(Path(name).parent) == out:
            raise ConfigError(
                f"{row}: {one_line(str(name))} is in the output folder {one_line(str(outdir))}; "
                "results would become inputs of the next run (use another -o folder)"
            )


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compared as written
        return Path(os.path.abspath(path))


# -- the record ----------------------------------------------------------------------------------
class Records:
    """``OUTDIR/batch.jsonl``: one JSON object per job outcome, appended and fsynced.

    Every record starts on a fresh line (after a line a crash cut short, a newline is
    written first) and goes down in one ``write``, so concurrent runs into one folder
    never interleave within a line. Reading is tolerant: a damaged line (cut, not JSON,
    not UTF-8) is skipped and named in :attr:`warnings` by its line number.
    """

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / RECORDS
        #: one line per damaged record met by :meth:`done`
        self.warnings: list[str] = []

    def done(self) -> dict[str, dict[str, Any]]:
        """The last ok record of each output name (from earlier runs)."""
        out: dict[str, dict[str, Any]] = {}
        self.warnings = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read ({exc.strerror})") from None
        for n, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            rec = self._parse(raw, n)
            if rec is None:
                continue
            if rec.get("status") == "ok":
                out[rec["output"]] = rec
            elif rec.get("status") == "failed":
                out.pop(rec["output"], None)
        return out

    def _parse(self, raw: bytes, n: int) -> dict[str, Any] | None:
        try:
            rec = loads(raw.decode("utf-8"), "record")
        except UnicodeDecodeError:
            why = "not UTF-8 text"
        except ConfigError:
            why = "not a JSON record (cut short?)"
        else:
            if isinstance(rec, dict) and isinstance(rec.get("output"), str):
                return rec
            why = "not a record of a job"
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"{self.path} line {n}: {why}; skipped")
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append(f"{self.path}: more damaged lines; skipped")
        return None

    def write(self, job: BatchJob, status: str, **fields: Any) -> dict[str, Any]:
        """Append one outcome: what made the picture (the inputs, every effective option:
        the command line's, the row's and the defaults, the seed, the nst version), and
        where and how it ran (``fields``: node, worker, seconds, iterations, loss, ...)."""
        from .. import __version__

        record = {
            "output": job.name,
            "status": status,
            "content": job.content,
            "styles": list(job.styles),
            "options": job.config.to_dict(),
            "row_options": dict(job.options),  # what a manifest row set itself
            "seed": job.config.seed,
            "nst": __version__,
            "time": round(time.time(), 3),
            **fields,
        }
        append_line(self.path, json.dumps(record))
        return record


#: damaged lines named one by one before the rest are counted as one warning
MAX_WARNINGS = 10


def append_line(path: Path, line: str) -> None:
    """Append ``line`` to ``path`` on a line of its own, in one write, and fsync it."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = line.encode("utf-8") + b"\n"
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short by a crash
            data = b"\n" + data
        view = memoryview(data)
        while view:  # one write for any record of a sane size; the loop for the rest
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def split_done(
    jobs: list[BatchJob], records: Records, force: bool = False
) -> tuple[list[BatchJob], list[BatchJob]]:
    """(jobs to run, jobs to skip): a job is skipped when an earlier run recorded it ok and
    its output still exists (``force`` runs everything again)."""
    if force:
        return jobs, []
    done = records.done()
    run: list[BatchJob] = []
    skip: list[BatchJob] = []
    for job in jobs:
        (skip if job.name in done and job.output.is_file() else run).append(job)
    return run, skip
