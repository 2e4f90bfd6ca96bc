"""The paper's experiments (and, later, the lecture's) as labelled contact sheets.

Every figure is a registered builder (:mod:`.registry`) that plans a :class:`Sheet`
of :class:`Cell`s (an input image to show, or a :class:`Job` to run); the sheets are
run through an *engine* (the real one calls the API; tests pass a fast fake), drawn
with their labels (:mod:`.sheets`) and listed in an ``index.html``. A figure whose
images are missing is skipped with a message; the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import Config
from ..imageio import save_image
from . import lecture, paper  # noqa: F401  (register the figures)
from .registry import FIGURES, Context, Roles
from .sheets import (
    Cell,
    Engine,
    Job,
    Result,
    Sheet,
    SheetInterrupted,
    api_engine,
    cached,
    render,
    run_sheet,
    sheet_layout,
)  # fmt: skip
from .sheets import write_index as write_index

__all__ = ["FIGURES", "Cell", "Context", "Job", "Result", "Roles", "Sheet", "make_figures",
           "plan_sheets", "render", "run_sheet", "sheet_layout"]  # fmt: skip


def plan_sheets(
    roles: Roles,
    base: Config,
    only: Sequence[str] | None = None,
    texture_size: tuple[int, int] | None = None,
) -> tuple[list[Sheet], list[str]]:
    """The sheets to make, and a message for every figure skipped for a missing image."""
    ctx = Context(base, texture_size or (round(base.size * 0.75), base.size))
    sheets: list[Sheet] = []
    skipped: list[str] = []
    for name in only or list(FIGURES):
        built = FIGURES[name].build(roles, ctx)
        if isinstance(built, Sheet):
            sheets.append(built)
        else:
            skipped.append(built)
    return sheets, skipped


def make_figures(
    roles: Roles,
    out: Path,
    base: Config,
    only: Sequence[str] | None = None,
    engine: Engine = api_engine,
    log: Callable[[str], None] = lambda msg: None,
    cache: bool = True,
) -> tuple[list[Sheet], list[str]]:
    """Plan, run, draw and index the figures into ``out``; returns (sheets made, skipped).

    With ``cache``, finished panels are kept in ``out/.panels`` and reused by a re-run.
    Interrupted (KeyboardInterrupt), the sheet so far is drawn and indexed, then the
    interruption is raised again."""
    from ..planning import load

    out.mkdir(parents=True, exist_ok=True)
    aspect = 0.75
    if roles.content:
        c = load(roles.content)
        aspect = c.shape[1] / c.shape[2]
    cell = (base.size, max(16, round(base.size * aspect)))
    sheets, skipped = plan_sheets(roles, base, only, texture_size=(cell[1], cell[0]))
    for msg in skipped:
        log(msg)
    made: list[Sheet] = []
    run = cached(engine, out / PANELS) if cache else engine
    for sheet in sheets:
        try:
            results = run_sheet(sheet, run, log)
        except SheetInterrupted as stop:
            save_image(render(sheet, stop.results, cell), out / f"{sheet.name}.png")
            write_index(out, [*made, sheet], skipped, base)
            log(f"{sheet.name}: wrote the {len(stop.results)} panels done to "
                f"{out / (sheet.name + '.png')}")  # fmt: skip
            raise
        save_image(render(sheet, results, cell), out / f"{sheet.name}.png")
        made.append(sheet)
        log(f"{sheet.name}: wrote {out / (sheet.name + '.png')} ({sheet.seconds:.0f} s)")
    write_index(out, made, skipped, base)
    return made, skipped


#: the folder (inside the output folder) that keeps finished panels for re-runs
PANELS = ".panels"
