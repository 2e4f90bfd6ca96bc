"""The paper's experiments as labelled contact sheets, plus an index.html.

Every figure is planned as a :class:`Sheet` of :class:`Cell`s (an input image to
show, or a :class:`Job` to run), run through an *engine* (the real one calls the
API; tests pass a fast fake), then drawn with its labels. A figure whose images
are missing is skipped with a message; the others still run.

* fig1: content reconstructions lose pixel detail with depth but keep the layout;
  style reconstructions match the style at larger scales as layers are added.
* fig2: the content photo in each style at the paper's alpha/beta.
* fig3: the alpha/beta x style-layer grid.
* fig4: content matched on conv2_2 vs conv4_2.
* fig5: fixed initialisations repeat exactly, noise seeds differ.
* fig6: photorealistic transfer, a photo as the style.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from .config import Config
from .imageio import fit_size, save_image, to_pil

#: the paper's styles: file name in ../shared/images, alpha/beta, title
PAPER_STYLES: dict[str, tuple[str, float, str]] = {
    "shipwreck": ("shipwreck.jpg", 1e-3, "The Shipwreck of the Minotaur"),
    "starry_night": ("starry_night.jpg", 8e-4, "The Starry Night"),
    "the_scream": ("the_scream.jpg", 5e-3, "Der Schrei"),
    "seated-nude": ("seated-nude.jpg", 5e-4, "Femme nue assise"),
}
ROLE_FILES = {
    "content": "tubingen.jpg",
    "photo_content": "golden_gate.jpg",
    "photo_style": "hoovertowernight.jpg",
}
FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6")
DEFAULT_RATIO = 1e-3


@dataclass(frozen=True)
class Job:
    """One run: ``stylize`` (source = content), ``content`` (feature inversion of source)
    or ``texture`` (synthesis from source, output ``size`` (h, w))."""

    kind: str
    source: str
    style: str | None
    config: Config
    size: tuple[int, int] | None = None


@dataclass
class Cell:
    label: str
    job: Job | None = None
    source: str | None = None  # an input image shown as it is
    note: str = ""


@dataclass
class Sheet:
    name: str
    title: str
    rows: list[list[Cell]]
    row_labels: list[str] = field(default_factory=list)
    caption: str = ""
    seconds: float = 0.0


@dataclass
class Roles:
    """Which image plays which part; paths or ``builtin:`` names."""

    content: str | None = None
    styles: dict[str, tuple[str, float]] = field(default_factory=dict)  # name: (path, ratio)
    photo_content: str | None = None
    photo_style: str | None = None

    @classmethod
    def from_dir(
        cls,
        folder: str | os.PathLike[str] | None,
        content: str | None = None,
        styles: Sequence[str] = (),
        photo_content: str | None = None,
        photo_style: str | None = None,
    ) -> Roles:
        """Defaults from the file names of ../shared/images/README.md, then overrides.

        ``styles`` entries are ``NAME=PATH`` (alpha/beta: the paper's for its styles,
        else 1e-3) or ``NAME=PATH@RATIO``.
        """
        roles = cls()
        base = Path(folder) if folder else None

        def found(name: str) -> str | None:
            if base is None:
                return None
            p = base / name
            return str(p) if p.is_file() else None

        roles.content = content or found(ROLE_FILES["content"])
        roles.photo_content = photo_content or found(ROLE_FILES["photo_content"])
        roles.photo_style = photo_style or found(ROLE_FILES["photo_style"])
        for name, (file, ratio, _) in PAPER_STYLES.items():
            path = found(file)
            if path:
                roles.styles[name] = (path, ratio)
        for spec in styles:
            name, sep, rest = spec.partition("=")
            if not sep or not rest:
                from .errors import ConfigError

                raise ConfigError(f"style: '{spec}' is not NAME=PATH (or NAME=PATH@RATIO)")
            path, _, ratio_text = rest.partition("@")
            default = PAPER_STYLES.get(name, ("", DEFAULT_RATIO, ""))[1]
            roles.styles[name] = (path, float(ratio_text) if ratio_text else default)
        return roles

    def main_style(self) -> tuple[str, str, float] | None:
        """The style the single-style figures use: Starry Night if present, else the first."""
        if not self.styles:
            return None
        name = "starry_night" if "starry_night" in self.styles else next(iter(self.styles))
        path, ratio = self.styles[name]
        return name, path, ratio


def _ratio_weights(ratio: float) -> dict[str, float]:
    return {"content_weight": 1.0, "style_weight": 1.0 / ratio}


def _up_to(k: int) -> str:
    return ",".join(f"conv{b}_1" for b in range(1, k + 1))


def _short(ratio: float) -> str:
    return f"{ratio:.0e}".replace("e-0", "e-")


def plan_sheets(
    roles: Roles,
    base: Config,
    only: Sequence[str] | None = None,
    out_size: tuple[int, int] | None = None,
) -> tuple[list[Sheet], list[str]]:
    """The sheets to make, and a message for every figure skipped for a missing image."""
    wanted = list(only) if only else list(FIGURES)
    sheets: list[Sheet] = []
    skipped: list[str] = []
    main = roles.main_style()
    seed = base.seed if base.seed is not None else 0
    cfg = base.replace(seed=seed)
    tex_size = out_size or (round(base.size * 0.75), base.size)

    def need(fig: str, **parts: object) -> bool:
        missing = [k for k, v in parts.items() if not v]
        if missing:
            skipped.append(f"{fig}: skipped, no {' and no '.join(missing)} image")
            return False
        return True

    if "fig1" in wanted and need("fig1", content=roles.content, style=main):
        assert roles.content and main
        content_row = [Cell("content photo", source=roles.content)]
        for b in range(1, 6):
            layer = f"conv{b}_2"
            job = Job("content", roles.content, None, cfg.replace(content_layers=layer))
            content_row.append(Cell(f"{layer}", job))
        style_row = [Cell(f"style: {main[0]}", source=main[1])]
        for k in range(1, 6):
            job = Job("texture", main[1], None, cfg.replace(style_layers=_up_to(k)), tex_size)
            label = "conv1_1" if k == 1 else f"conv1_1 … conv{k}_1"
            style_row.append(Cell(label, job))
        sheets.append(Sheet("fig1", "Content and style reconstructions (paper Fig. 1)",
                            [content_row, style_row], ["content", "style"],
                            f"from white noise, seed {seed}"))  # fmt: skip
    if "fig2" in wanted and need("fig2", content=roles.content, style=roles.styles):
        assert roles.content
        top = [Cell("", source=None)]
        bottom = [Cell("content photo", source=roles.content)]
        for name, (path, ratio) in roles.styles.items():
            top.append(Cell(name, source=path))
            job = Job("stylize", roles.content, path, cfg.replace(**_ratio_weights(ratio)))
            bottom.append(Cell(f"alpha/beta {_short(ratio)}", job))
        sheets.append(Sheet("fig2", "Style transfer at the paper's alpha/beta (paper Fig. 3)",
                            [top, bottom], ["style", "result"],
                            f"init noise, seed {seed}"))  # fmt: skip
    if "fig3" in wanted and need("fig3", content=roles.content, style=main):
        assert roles.content and main
        rows, labels = [], []
        for ratio in (1e-5, 1e-4, 1e-3, 1e-2):
            row = []
            for k in range(1, 6):
                c = cfg.replace(style_layers=_up_to(k), **_ratio_weights(ratio))
                label = "conv1_1" if k == 1 else f"… conv{k}_1"
                row.append(Cell(label, Job("stylize", roles.content, main[1], c)))
            rows.append(row)
            labels.append(f"alpha/beta {_short(ratio)}")
        sheets.append(Sheet("fig3", f"alpha/beta x style layers, style {main[0]} (paper Fig. 4)",
                            rows, labels, f"columns: style layers up to conv1_1 … conv5_1; "
                            f"init noise, seed {seed}"))  # fmt: skip
    if "fig4" in wanted and need("fig4", content=roles.content, style=main):
        assert roles.content and main
        row = [Cell("content photo", source=roles.content), Cell(main[0], source=main[1])]
        for layer in ("conv2_2", "conv4_2"):
            c = cfg.replace(content_layers=layer, **_ratio_weights(main[2]))
            row.append(Cell(f"content {layer}", Job("stylize", roles.content, main[1], c)))
        caption = f"alpha/beta {_short(main[2])}, init noise, seed {seed}"
        title = "Content matched on conv2_2 vs conv4_2 (paper Fig. 5)"
        sheets.append(Sheet("fig4", title, [row], [], caption))
    if "fig5" in wanted and need("fig5", content=roles.content, style=main):
        assert roles.content and main
        c = cfg.replace(**_ratio_weights(main[2]))
        row = []
        for init in ("content", "style"):
            for repeat, s in ((1, 1), (2, 2)):
                job = Job("stylize", roles.content, main[1], c.replace(init=init, seed=s))
                row.append(
                    Cell(f"init {init}, seed {s}" + (" (again)" if repeat == 2 else ""), job)
                )
        for s in (1, 2, 3):
            job = Job("stylize", roles.content, main[1], c.replace(init="noise", seed=s))
            row.append(Cell(f"init noise, seed {s}", job))
        sheets.append(Sheet("fig5", "Initialisation: content, style, noise (paper Fig. 6)",
                            [row], [], f"alpha/beta {_short(main[2])}; differences to the first "
                            "of each kind below the images"))  # fmt: skip
    if "fig6" in wanted and need(
        "fig6", **{"photo content": roles.photo_content, "photo style": roles.photo_style}
    ):
        assert roles.photo_content and roles.photo_style
        c = cfg.replace(**_ratio_weights(DEFAULT_RATIO))
        row = [
            Cell("content photo", source=roles.photo_content),
            Cell("style photo", source=roles.photo_style),
            Cell(f"alpha/beta {_short(DEFAULT_RATIO)}",
                 Job("stylize", roles.photo_content, roles.photo_style, c)),
        ]  # fmt: skip
        sheets.append(Sheet("fig6", "Photorealistic style transfer (paper Fig. 7)", [row], [],
                            f"init noise, seed {seed}"))  # fmt: skip
    return sheets, skipped


# -- running ---------------------------------------------------------------------------------
Engine = Callable[[Job], torch.Tensor]


def api_engine(job: Job) -> torch.Tensor:
    """Runs a job through the real API."""
    from . import api

    if job.kind == "stylize":
        assert job.style is not None
        return api.stylize(job.source, job.style, job.config)
    if job.kind == "content":
        return api.reconstruct_content(job.source, job.config)
    if job.kind == "texture":
        return api.synthesize_texture(job.source, job.config, job.size)
    raise ValueError(f"unknown job kind {job.kind!r}")


@dataclass
class Result:
    image: torch.Tensor
    seconds: float


def run_sheet(sheet: Sheet, engine: Engine, log: Callable[[str], None]) -> dict[int, Result]:
    """Run every job of a sheet (identical jobs once); results by id(cell)."""
    results: dict[int, Result] = {}
    done: dict[Job, Result] = {}
    jobs = [c for row in sheet.rows for c in row if c.job is not None]
    for i, cell in enumerate(jobs, 1):
        assert cell.job is not None
        if cell.job in done:
            results[id(cell)] = done[cell.job]
            continue
        t = time.perf_counter()
        image = engine(cell.job)
        res = Result(image, time.perf_counter() - t)
        done[cell.job] = results[id(cell)] = res
        log(f"{sheet.name} {i}/{len(jobs)}: {cell.label} ({res.seconds:.1f} s)")
    sheet.seconds = sum(r.seconds for r in done.values())
    if sheet.name == "fig5":
        _note_differences(sheet, results)
    return results


def _note_differences(sheet: Sheet, results: dict[int, Result]) -> None:
    """Under each fig5 image: how far it is from the first image of its kind."""
    first: dict[str, torch.Tensor] = {}
    for cell in sheet.rows[0]:
        if cell.job is None or id(cell) not in results:
            continue
        kind = cell.job.config.init
        img = results[id(cell)].image
        if kind not in first:
            first[kind] = img
            cell.note = "first of its kind"
        else:
            diff = (img - first[kind]).abs()
            same = bool((diff == 0).all())
            cell.note = "identical" if same else f"mean diff {float(diff.mean()) * 255:.1f}/255"


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
    cw, ch = cell
    title_font, font = _font(18), _font(12)
    label_h = 50
    left = 110 if sheet.row_labels else 0
    cols = max(len(r) for r in sheet.rows)
    top = 56
    width = left + cols * (cw + pad) + pad
    height = top + len(sheet.rows) * (ch + label_h + pad) + pad
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    # labels are ASCII: Pillow's built-in font has no Greek letters
    draw.text((pad, 8), sheet.title, fill="black", font=title_font)
    caption = sheet.caption + (f"   ({sheet.seconds:.0f} s)" if sheet.seconds else "")
    draw.text((pad, 32), caption, fill=(90, 90, 90), font=font)
    for r, row in enumerate(sheet.rows):
        y = top + r * (ch + label_h + pad)
        if sheet.row_labels:
            draw.text((pad, y + ch // 2 - 6), sheet.row_labels[r], fill="black", font=font)
        for c, cell_ in enumerate(row):
            x = left + pad + c * (cw + pad)
            picture: Image.Image | None = None
            if cell_.source:
                from .api import load

                picture = to_pil(load(cell_.source))
            elif id(cell_) in results:
                picture = to_pil(results[id(cell_)].image)
            if picture is not None:
                w, h = fit_size(picture.width, picture.height, max(cw, ch))
                if w > cw or h > ch:
                    k = min(cw / picture.width, ch / picture.height)
                    w, h = max(1, round(picture.width * k)), max(1, round(picture.height * k))
                thumb = picture.resize((w, h), Image.Resampling.LANCZOS)
                img.paste(thumb, (x + (cw - w) // 2, y + (ch - h) // 2))
            elif cell_.job is not None:
                draw.rectangle((x, y, x + cw - 1, y + ch - 1), outline=(200, 0, 0))
                draw.text((x + 4, y + 4), "failed", fill=(200, 0, 0), font=font)
            lines = _wrap(draw, cell_.label, font, cw)[:2]
            for i, line in enumerate(lines):
                draw.text((x, y + ch + 3 + 15 * i), line, fill="black", font=font)
            if cell_.note:
                note_y = y + ch + 3 + 15 * len(lines)
                draw.text((x, note_y), cell_.note, fill=(0, 90, 160), font=font)
    return img


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``width`` pixels (when possible)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def write_index(out: Path, sheets: Sequence[Sheet], skipped: Sequence[str], base: Config) -> Path:
    """index.html listing every sheet with its parameters and run times (atomic write)."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>nst: the paper's experiments</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "img{max-width:100%;border:1px solid #ccc}td,th{padding:2px 8px;text-align:left}"
        "table{border-collapse:collapse;font-size:90%}tr:nth-child(even){background:#f4f4f4}</style>",
        "<h1>Gatys, Ecker &amp; Bethge (2016): the experiments</h1>",
        f"<p>size {base.size} px, {base.iterations} iterations, {base.optimizer}, "
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
                    f"init {c.init}; seed {c.seed}"
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


def _layers(layers: tuple[tuple[str, float], ...]) -> str:
    return ",".join(n for n, _ in layers)


def make_figures(
    roles: Roles,
    out: Path,
    base: Config,
    only: Sequence[str] | None = None,
    engine: Engine = api_engine,
    log: Callable[[str], None] = lambda msg: None,
) -> tuple[list[Sheet], list[str]]:
    """Plan, run, draw and index the figures into ``out``; returns (sheets made, skipped)."""
    out.mkdir(parents=True, exist_ok=True)
    aspect = 0.75
    if roles.content:
        from .api import load

        c = load(roles.content)
        aspect = c.shape[1] / c.shape[2]
    cell = (base.size, max(16, round(base.size * aspect)))
    sheets, skipped = plan_sheets(roles, base, only, out_size=(cell[1], cell[0]))
    for msg in skipped:
        log(msg)
    made = []
    for sheet in sheets:
        results = run_sheet(sheet, engine, log)
        save_image(render(sheet, results, cell), out / f"{sheet.name}.png")
        made.append(sheet)
        log(f"{sheet.name}: wrote {out / (sheet.name + '.png')} ({sheet.seconds:.0f} s)")
    write_index(out, made, skipped, base)
    return made, skipped
