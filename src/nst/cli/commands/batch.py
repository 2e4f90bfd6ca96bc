"""``nst batch``: every content x style pair, or a manifest's rows, on Ray."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from ...batch.cluster import Cluster
from ...errors import ConfigError, NstError, one_line
from ..options import with_config
from ..output import fail, format_time, say
from ..run import CheckpointEvery, check_writable, guarded


class BatchProgress:
    """One bar over the jobs (done, failed, skipped, jobs per minute, ETA); with ``verbose``
    a line per job; ``log`` gets every job's events and outcome as JSON lines."""

    def __init__(self, total: int, verbose: bool, quiet: bool, log: TextIO | None) -> None:
        self.total = total
        self.verbose = verbose
        self.quiet = quiet
        self.log = log
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        self.start = time.monotonic()
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.last_line = 0.0
        self.workers: dict[str, dict[str, Any]] = {}  # worker -> node, jobs, seconds
        #: warnings about the jobs' settings, each once, said when the workers are ready
        self.advice: list[str] = []

    def __call__(self, event: Any) -> None:
        from ...batch import JobDone, JobEvents, Retry, WorkersReady

        if isinstance(event, WorkersReady):
            # jobs per minute and the ETA count from here, not from Ray's start-up
            self.start = time.monotonic()
            for line in () if self.quiet else self.advice:  # once the batch really runs
                self._line(f"nst: warning: {line}")
            if self.verbose and not self.quiet:
                self._line(f"{event.workers} workers ready in {event.seconds:.1f} s")
            return
        if isinstance(event, JobEvents):
            self._log([{"job": event.job.name, **r} for r in event.records])
            for r in () if self.quiet else event.records:
                if r.get("type") == "notice":  # a painter's threads changed with the load
                    self._line(f"nst: {r['message']}")
            return
        if isinstance(event, Retry):
            if not self.quiet:
                self._line(
                    f"{event.job.name}: {event.reason}; trying again (attempt {event.attempt + 1})"
                )
            return
        assert isinstance(event, JobDone)
        rec = event.record
        self.counts[rec["status"]] += 1
        if rec.get("worker"):
            w = self.workers.setdefault(rec["worker"], {"node": rec.get("node"), "jobs": 0,
                                                        "seconds": 0.0})  # fmt: skip
            w["jobs"] += 1
            w["seconds"] += float(rec.get("seconds") or 0.0)
        self._log([{"job": event.job.name, "type": "job", **rec}])
        if self.verbose and not self.quiet:
            extra = (
                f" ({rec['seconds']:.1f} s, loss {rec['loss']:.4g}, {rec['worker']})"
                if rec["status"] == "ok"
                else ""
            )
            error = f": {rec['error']}" if rec["status"] == "failed" else ""
            self._line(f"{rec['status']} {event.job.name}{extra}{error}")
        self.draw()

    def _log(self, records: list[dict[str, Any]]) -> None:
        if self.log is None:
            return
        try:
            for r in records:
                self.log.write(json.dumps(r) + "\n")
            self.log.flush()
        except OSError as exc:
            say(f"warning: cannot write the log any more ({exc.strerror}); the batch goes on")
            self.log = None

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def throughput(self) -> list[str]:
        """A line per worker: its node, jobs, seconds at work and jobs per minute of work."""
        lines = []
        for name, w in sorted(self.workers.items(), key=lambda kv: (str(kv[1]["node"]), kv[0])):
            rate = w["jobs"] / w["seconds"] * 60 if w["seconds"] > 0 else 0.0
            jobs = f"{w['jobs']} job" + ("" if w["jobs"] == 1 else "s")
            lines.append(
                f"  worker {name} on node {w['node'] or '?'}: {jobs}, "
                f"{w['seconds']:.1f} s at work, {rate:.1f} jobs/min"
            )
        return lines

    def draw(self, final: bool = False) -> None:
        if self.quiet:
            return
        c = self.counts
        finished = sum(c.values())
        ran = c["ok"] + c["failed"]
        minutes = (time.monotonic() - self.start) / 60
        rate = ran / minutes if minutes > 0 and ran else 0.0
        left = self.total - finished
        eta = format_time(left / rate * 60) if rate > 0 else "-"
        fill = int(24 * finished / max(1, self.total))
        text = (
            f"[{'#' * fill}{'-' * (24 - fill)}] {finished}/{self.total}: {c['ok']} ok, "
            f"{c['failed']} failed, {c['skipped']} skipped, {rate:.1f} jobs/min, ETA {eta}"
        )
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K" + ("\n" if final else ""))
            self.stream.flush()
        elif final or time.monotonic() - self.last_line > 10:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_line = time.monotonic()


def show_plan(run: list[Any], skip: list[Any], records: Any, workers: int, threads: int) -> None:
    """``--dry-run``: a line per job to run, and the time they would take (stdout)."""
    from ...batch.estimate import content_aspect, from_records, job_work, test_run
    from ...process import current

    lines = [f"dry run: {len(run)} jobs to run, {len(skip)} recorded as done (skipped)"]
    if not run:
        typer.echo(lines[0])
        return
    speed = from_records(records.path)
    if speed is None:
        say("measuring this machine's speed with a short test run...")
        speed = test_run(run[0], threads, fit=current().threads is None)  # as the painters
    total = 0.0
    aspects: dict[str, float] = {}
    for job in run:
        if job.content not in aspects:
            aspects[job.content] = content_aspect(job.content)
        seconds = speed.seconds_per_iteration_megapixel * job_work(job.config, aspects[job.content])
        total += seconds
        c = job.config
        lines.append(
            f"  {job.name}  {job.row}  {c.size} px, {c.text('iterations')} iterations, "
            f"~{format_time(seconds)}"
        )
    k = min(workers, len(run))
    lines.append(
        f"estimate: {format_time(total)} of work at "
        f"{speed.seconds_per_iteration_megapixel:.3g} s per iteration-megapixel "
        f"(measured: {speed.basis}); about {format_time(total / k)} with {k} worker(s) "
        "on machines like this one"
    )
    typer.echo("\n".join(lines))


@with_config(cls=Cluster, name="cluster")
@with_config(mode="stylize", replaced=("seed",), raw=True)  # --seed defaults to 0
def batch(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the results.")],
    contents: Annotated[
        list[str] | None,
        typer.Option(
            "--contents",
            help="Content images: a folder, a glob or files (repeat).",
            rich_help_panel="Jobs",
        ),
    ] = None,
    styles: Annotated[
        list[str] | None,
        typer.Option(
            "--styles",
            help="Style images: a folder, a glob or files (repeat).",
            rich_help_panel="Jobs",
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="jobs.csv or jobs.jsonl: content, style(s), output and any option "
            "by name, one job per row (the options given here are the defaults).",
            rich_help_panel="Jobs",
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Random seed of every job (rows may set their own).",
            rich_help_panel="Optimization",
        ),
    ] = 0,
    force: Annotated[bool, typer.Option(help="Run jobs recorded as done again.")] = False,
    checkpoint_every: CheckpointEvery = "60",
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List the jobs and estimate the time from measured speed (earlier records "
            "in OUTPUT, else a short test run here); start nothing.",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per job.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
    log: Annotated[
        Path | None, typer.Option(help="Every job's events and outcome as JSON lines.")
    ] = None,
    *,
    options: dict[str, Any],
    cluster: Cluster,
) -> None:
    """Many stylizations, resumable: every content x style pair or a manifest's rows, on a
    local Ray or a cluster. Results and OUTPUT/batch.jsonl go to OUTPUT."""
    from ...checkpoints import parse_every
    from ...config import start_advice

    try:
        keep_every = parse_every(checkpoint_every)
        jobs = _jobs(output, contents, styles, manifest, {"seed": seed, **options}, log, dry_run)
        records, run, skip = _split(output, jobs, force)
        advice = list(dict.fromkeys(a for job in run for a in start_advice(job.config, True)))
        if dry_run:
            for line in () if quiet else advice:
                say(f"warning: {line}")  # once for all the jobs it concerns
            local = max(1, (os.cpu_count() or 1) // cluster.threads)
            show_plan(run, skip, records, cluster.workers or local, cluster.threads)
            return
        log_file = None
        if log is not None:
            check_writable(log, "log file")
            log_file = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed in _run
    except NstError as exc:
        fail(exc)
    progress = BatchProgress(len(jobs), verbose, quiet, log_file)
    progress.advice = advice
    _run(run, skip, records, cluster, progress, keep_every, quiet)


def _jobs(
    output: Path, contents: list[str] | None, styles: list[str] | None, manifest: Path | None,
    defaults: dict[str, Any], log: Path | None, dry_run: bool,
) -> list[Any]:  # fmt: skip
    """The batch's jobs, from the folders or the manifest, once every file is checked."""
    from ...batch import cross, expand
    from ...batch import manifest as read_manifest

    if manifest is None and not (contents and styles):
        raise ConfigError("give --contents and --styles, or a --manifest")
    if manifest is not None and (contents or styles):
        raise ConfigError("give a --manifest or --contents and --styles, not both")
    check_writable(output / "batch.jsonl", "output folder", make=not dry_run)
    records_file = (output / "batch.jsonl").resolve()
    for what, given in (("manifest", manifest), ("log", log)):
        if given is not None and given.resolve() == records_file:
            raise ConfigError(
                f"{what} {given} is the output folder's record file; give another -o "
                "folder or file name"
            )
    if manifest is not None and log is not None and log.resolve() == manifest.resolve():
        raise ConfigError(f"log {log} is the manifest; give the log another name")
    if manifest is not None:
        return list(read_manifest(manifest, defaults, output))
    assert contents and styles
    return list(cross(expand(contents, "contents"), expand(styles, "styles"), defaults, output))


def _split(output: Path, jobs: list[Any], force: bool) -> tuple[Any, list[Any], list[Any]]:
    """(the folder's records, the jobs to run, those recorded as done), with a warning per
    damaged record."""
    from ...batch import Records, split_done

    records = Records(output)
    run, skip = split_done(jobs, records, force)
    for warning in records.warnings:
        say(f"warning: {warning}")
    return records, run, skip


def _run(
    run: list[Any], skip: list[Any], records: Any, cluster: Cluster, progress: BatchProgress,
    keep_every: float | None, quiet: bool,
) -> None:  # fmt: skip
    """Run the jobs with a progress bar; the summary (exit 1 when a job failed)."""
    from ...batch import run_batch

    total = len(run) + len(skip)
    start = time.monotonic()
    log_file = progress.log

    def interrupted() -> str:
        progress.draw(final=True)
        c = progress.counts
        left = total - sum(c.values())
        return f"interrupted: {c['ok']} done, {left} left; the same command finishes the rest"

    with guarded(interrupted, [log_file] if log_file is not None else []):
        every = 1.0 if log_file is not None else None  # events only when logged
        counts = run_batch(run, records, cluster, progress, skipped=skip, drain_every=every,
                           checkpoint_every=keep_every)  # fmt: skip
    progress.draw(final=True)
    if not quiet and progress.workers:
        typer.echo("throughput per worker:\n" + "\n".join(progress.throughput()), err=True)
    took = format_time(time.monotonic() - start)
    summary = (
        f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
        f"in {took}; records in {records.path}"
    )
    if counts["failed"]:
        fail(ConfigError(f"{counts['failed']} of {total} jobs failed: {one_line(summary)}"), 1)
    typer.echo(f"batch: {summary}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(batch)
