"""Contact sheets: cells (an input to show, or a job to run), running, drawing, the index."""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from ..config import Config
from ..errors import NstError
from ..imageio import fit_size, to_pil


@dataclass(frozen=True)
class Job:
    """One run, by the runner registered for its ``kind`` (:func:`runner`): the paper's
    ``stylize`` (source = content), ``content`` (feature inversion of source), ``texture``
    (synthesis from source, output ``size`` (h, w)); the lecture's tools ``saliency``,
    ``ascent``, ``patch``, whose settings are their typed ``spec``
    (:mod:`nst.figures.lecture`)."""

    kind: str
    source: str
    style: str | None
    config: Config
    size: tuple[int, int] | None = None
    spec: Hashable | None = None  # a kind's own settings: a frozen dataclass


@dataclass
class Cell:
    label: str
    job: Job | None = None
    source: str | None = None  # an input image shown as it is
    note: str = ""


@dataclass
class Result:
    image: torch.Tensor
    seconds: float
    note: str = ""  # what the engine says about it (shown under the image)


@dataclass
class Sheet:
    name: str
    title: str
    rows: list[list[Cell]]
    row_labels: list[str] = field(default_factory=list)
    caption: str = ""
    seconds: float = 0.0
    #: run after the jobs, before drawing (e.g. notes comparing results)
    after: Callable[[Sheet, dict[int, Result]], None] | None = None


#: runs a job; returns its image, or (image, a note to show under it)
Engine = Callable[[Job], "torch.Tensor | tuple[torch.Tensor, str]"]
#: the real runner of each kind of job, filled by the modules that make such jobs
RUNNERS: dict[str, Engine] = {}


def runner(kind: str) -> Callable[[Engine], Engine]:
    """Register the real runner of ``kind`` (a decorator)."""

    def register(run: Engine) -> Engine:
        if kind in RUNNERS:
            raise ValueError(f"a runner of {kind!r} jobs exists already")
        RUNNERS[kind] = run
        return run

    return register


def api_engine(job: Job) -> torch.Tensor | tuple[torch.Tensor, str]:
    """Runs a job by the runner registered for its kind."""
    if job.kind not in RUNNERS:
        raise ValueError(f"unknown job kind {job.kind!r}")
    return RUNNERS[job.kind](job)


class SheetInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP) while a sheet ran; ``results`` holds its finished cells."""

    def __init__(self, results: dict[int, Result]) -> None:
        super().__init__()
        self.results = results


def run_sheet(sheet: Sheet, engine: Engine, log: Callable[[str], None]) -> dict[int, Result]:
    """Run every job of a sheet (identical jobs once); results by id(cell). Interrupted,
    it raises :class:`SheetInterrupted` with the cells finished so far."""
    results: dict[int, Result] = {}
    done: dict[Job, Result] = {}
    jobs = [c for row in sheet.rows for c in row if c.job is not None]
    log(f"{sheet.name}: {len(jobs)} panels: {sheet.title}")  # at once, before the first run
    for i, cell in enumerate(jobs, 1):
        assert cell.job is not None
        if cell.job in done:
            results[id(cell)] = done[cell.job]
            continue
        t = time.perf_counter()
        try:
            out = engine(cell.job)
        except KeyboardInterrupt:
            _notes(sheet, results)
            raise SheetInterrupted(results) from None
        image, note = out if isinstance(out, tuple) else (out, "")
        res = Result(image, time.perf_counter() - t, note)
        done[cell.job] = results[id(cell)] = res
        log(f"{sheet.name} {i}/{len(jobs)}: {cell.label} ({res.seconds:.1f} s)")
    sheet.seconds = sum(r.seconds for r in done.values())
    _notes(sheet, results)
    if sheet.after is not None:
        sheet.after(sheet, results)
    return results


def _notes(sheet: Sheet, results: dict[int, Result]) -> None:
    for row in sheet.rows:
        for cell in row:
            if id(cell) in results and results[id(cell)].note:
                cell.note = results[id(cell)].note


def job_key(job: Job) -> str:
    """A job's identity for the panel cache: its kind, settings and spec, and each input
    file by path, size and modification time (a changed input is run again)."""
    import hashlib
    import json

    def ident(name: str | None) -> object:
        if name is None or name.startswith(("builtin:", "skimage:")):
            return name
        try:
            st = os.stat(name)
        except OSError:
            return name
        return [os.path.abspath(name), st.st_size, st.st_mtime_ns]

    data = {
        "kind": job.kind, "source": ident(job.source), "style": ident(job.style),
        "config": job.config.to_dict(), "size": job.size, "spec": repr(job.spec),
    }  # fmt: skip
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached(engine: Engine, folder: Path) -> Engine:
    """``engine`` with each finished panel kept in ``folder`` (a PNG and its note) and
    reused when the same job comes again: a re-run after Ctrl-C, or another sheet with the
    same panel. Written atomically, so an interruption never leaves half a panel."""
    from ..imageio import atomic_write, load_image, save_image, to_tensor

    def run(job: Job) -> torch.Tensor | tuple[torch.Tensor, str]:
        key = job_key(job)
        png, note_file = folder / f"{key}.png", folder / f"{key}.txt"
        if png.is_file() and note_file.is_file():
            try:
                image = to_tensor(load_image(png))
                return image, note_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError, NstError):  # damaged: run it again
                pass
        out = engine(job)
        image, note = out if isinstance(out, tuple) else (out, "")
        folder.mkdir(parents=True, exist_ok=True)
        save_image(image.detach().float().clamp(0, 1).cpu(), png)
        atomic_write(note_file, lambda f: f.write(note.encode("utf-8")))
        return image, note

    return run


# -- drawing ---------------------------------------------------------------------------------
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def sheet_layout(sheet: Sheet, cell: tuple[int, int]) -> dict[str, object]:
    """Rows, columns and the labels a sheet shows (what tests check)."""
    return {
        "rows": len(sheet.rows),
        "columns": max(len(r) for r in sheet.rows),
        "labels": [[c.label for c in row] for row in sheet.rows],
        "row_labels": list(sheet.row_labels),
        "cell": cell,
    }


def render(
    sheet: Sheet, results: dict[int, Result], cell: tuple[int, int], pad: int = 8
) -> Image.Image:
    """The contact sheet: title, caption, a grid of images with labels under each."""
    from ..planning import load

    cw, ch = cell
    col = max(cw, MIN_COLUMN)  # a small picture's column still has room for its label
    title_font, font = _font(18), _font(12)
    label_h = 50
    left = 110 if sheet.row_labels else 0
    cols = max(len(r) for r in sheet.rows)
    top = 56
    caption = sheet.caption + (f"   ({sheet.seconds:.0f} s)" if sheet.seconds else "")
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(measure.textlength(sheet.title, font=title_font),
                 measure.textlength(caption, font=font))  # fmt: skip
    width = max(left + cols * (col + pad) + pad, int(text_w) + 2 * pad)
    height = top + len(sheet.rows) * (ch + label_h + pad) + pad
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    # labels are ASCII: Pillow's built-in font has no Greek letters
    draw.text((pad, 8), sheet.title, fill="black", font=title_font)
    draw.text((pad, 32), caption, fill=(90, 90, 90), font=font)
    for r, row in enumerate(sheet.rows):
        y = top + r * (ch + label_h + pad)
        if sheet.row_labels:
            for i, line in enumerate(_wrap(draw, sheet.row_labels[r], font, left - pad)[:3]):
                draw.text((pad, y + ch // 2 - 6 + 15 * i), line, fill="black", font=font)
        for c, cell_ in enumerate(row):
            x = left + pad + c * (col + pad)
            picture: Image.Image | None = None
            if cell_.source:
                picture = to_pil(load(cell_.source))
            elif id(cell_) in results:
                picture = to_pil(results[id(cell_)].image)
            if picture is not None:
                w, h = fit_size(picture.width, picture.height, max(cw, ch))
                if w > cw or h > ch:
                    k = min(cw / picture.width, ch / picture.height)
                    w, h = max(1, round(picture.width * k)), max(1, round(picture.height * k))
                thumb = picture.resize((w, h), Image.Resampling.LANCZOS)
                img.paste(thumb, (x + (col - w) // 2, y + (ch - h) // 2))
            lines = [
                _fit(draw, line, font, col) for line in _wrap(draw, cell_.label, font, col)[:2]
            ]
            for i, line in enumerate(lines):
                draw.text((x, y + ch + 3 + 15 * i), line, fill="black", font=font)
            room = max(1, 3 - len(lines))  # the note wraps into the lines the label left
            notes = _wrap(draw, cell_.note, font, col) if cell_.note else []
            for i, line in enumerate(notes[:room]):
                cut = i == room - 1 and len(notes) > room
                shown = _fit(draw, line + (" ..." if cut else ""), font, col)
                draw.text((x, y + ch + 3 + 15 * (len(lines) + i)), shown, fill=(0, 90, 160),
                          font=font)  # fmt: skip
    return img


#: the narrowest column of a sheet (px): a label such as ``conv5_1:197`` fits whole
MIN_COLUMN = 96


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` cut (with an ellipsis) to at most ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``width`` pixels (when possible);
    a word too wide for a line is split after a ``:`` and before an ``@`` (a target such
    as ``conv5_1:197@5,5`` reads ``conv5_1:197`` / ``@5,5``)."""
    lines: list[str] = []
    for word in text.split(" "):
        joiner = " "
        for piece in _pieces(draw, word, font, width):
            if lines and draw.textlength(f"{lines[-1]}{joiner}{piece}", font=font) <= width:
                lines[-1] = f"{lines[-1]}{joiner}{piece}"
            else:
                lines.append(piece)
            joiner = ""
    return lines or [""]


def _pieces(draw: ImageDraw.ImageDraw, word: str, font: Any, width: int) -> list[str]:
    if draw.textlength(word, font=font) <= width:
        return [word]
    return [p for p in re.split(r"(?<=:)|(?=@)", word) if p]


def _layers(layers: tuple[tuple[str, float], ...]) -> str:
    return ",".join(n for n, _ in layers)


def write_index(out: Path, sheets: Sequence[Sheet], skipped: Sequence[str], base: Config) -> Path:
    """index.html listing every sheet with its parameters and run times (atomic write)."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>nst: the experiments</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "img{max-width:100%;border:1px solid #ccc}td,th{padding:2px 8px;text-align:left}"
        "table{border-collapse:collapse;font-size:90%}tr:nth-child(even){background:#f4f4f4}</style>",
        "<h1>Gatys, Ecker &amp; Bethge (2016): the experiments</h1>",
        f"<p>size {base.size} px, {base.text('iterations')} iterations, {base.optimizer}, "
        f"pooling {base.pooling}, {'normalized' if base.normalize else 'raw'} VGG19, "
        f"weighting {base.weighting}, precision {base.precision}</p>",
    ]
    for msg in skipped:
        parts.append(f"<p><em>{html.escape(msg)}</em></p>")
    for sheet in sheets:
        parts.append(f"<h2>{html.escape(sheet.title)}</h2>")
        parts.append(f"<p>{html.escape(sheet.caption)}; {sheet.seconds:.0f} s in all</p>")
        parts.append(f"<img src='{sheet.name}.png' alt='{html.escape(sheet.title)}'>")
        parts.append("<table><tr><th>cell</th><th>kind</th><th>parameters</th><th>note</th></tr>")
        for row in sheet.rows:
            for cell in row:
                if cell.job is None:
                    continue
                c = cell.job.config
                params = (
                    f"α={c.content_weight:g} β={c.style_weight:g}; content "
                    f"{_layers(c.content_layers) if cell.job.kind != 'texture' else '-'}; "
                    f"style {_layers(c.style_layers) if cell.job.kind != 'content' else '-'}; "
                    f"TV {c.tv_weight:g}; init {c.init}; seed {c.seed}"
                )
                parts.append(
                    f"<tr><td>{html.escape(cell.label)}</td><td>{cell.job.kind}</td>"
                    f"<td>{html.escape(params)}</td><td>{html.escape(cell.note)}</td></tr>"
                )
        parts.append("</table>")
    target = out / "index.html"
    tmp = target.with_name(f".index.html.tmp-{os.getpid()}")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
