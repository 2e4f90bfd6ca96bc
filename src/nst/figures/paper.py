"""The paper's experiments, one builder per figure, named by the paper's figure number.

* fig1: content reconstructions lose pixel detail with depth but keep the layout;
  style reconstructions match the style at larger scales as layers are added.
* fig3: the content photo in each style at the paper's alpha/beta.
* fig4: the alpha/beta x style-layer grid.
* fig5: content matched on conv2_2 vs conv4_2.
* fig6: fixed initialisations repeat exactly, noise seeds differ.
* fig7: photorealistic transfer, a photo as the style.

(The paper's Figure 2 is the method's diagram: nothing to run.)
"""

from __future__ import annotations

import torch

from ..layers import parse_layer_weights
from .registry import DEFAULT_RATIO, Context, Roles, figure
from .sheets import Cell, Job, Result, Sheet, runner


def _ratio(ratio: float) -> dict[str, float]:
    return {"content_weight": 1.0, "style_weight": 1.0 / ratio}


def up_to(k: int) -> tuple[tuple[str, float], ...]:
    """conv1_1 ... convk_1 at equal weights."""
    return parse_layer_weights([f"conv{b}_1" for b in range(1, k + 1)])


def short(ratio: float) -> str:
    return f"{ratio:.0e}".replace("e-0", "e-")


@figure("fig1", "content reconstructions from conv1_2 … conv5_2; style reconstructions from "
        "{conv1_1} … {conv1_1 … conv5_1}", needs=("content", "style"))  # fmt: skip
def fig1(roles: Roles, ctx: Context) -> Sheet | str:
    content, main, cfg = roles.photo(), roles.style(), ctx.seeded
    content_row = [Cell("content photo", source=content)]
    for b in range(1, 6):
        layer = f"conv{b}_2"
        job = Job("content", content, None, cfg.replace(content_layers=((layer, 1.0),)))
        content_row.append(Cell(layer, job))
    style_row = [Cell(f"style: {main[0]}", source=main[1])]
    for k in range(1, 6):
        job = Job("texture", main[1], None, cfg.replace(style_layers=up_to(k)), ctx.texture_size)
        style_row.append(Cell("conv1_1" if k == 1 else f"conv1_1 … conv{k}_1", job))
    return Sheet("fig1", "Content and style reconstructions (paper Fig. 1)",
                 [content_row, style_row], ["content", "style"],
                 f"from white noise, seed {cfg.seed}")  # fmt: skip


@figure("fig3", "the content photo in each style at the paper's α/β: Shipwreck 1e-3, "
        "Starry Night 8e-4, Scream 5e-3, Femme nue assise 5e-4",
        needs=("content", "styles"))  # fmt: skip
def fig3(roles: Roles, ctx: Context) -> Sheet | str:
    content, cfg = roles.photo(), ctx.seeded
    top = [Cell("", source=None)]
    bottom = [Cell("content photo", source=content)]
    for name, (path, ratio) in roles.styles.items():
        top.append(Cell(name, source=path))
        job = Job("stylize", content, path, cfg.replace(**_ratio(ratio)))
        bottom.append(Cell(f"alpha/beta {short(ratio)}", job))
    return Sheet("fig3", "Style transfer at the paper's alpha/beta (paper Fig. 3)",
                 [top, bottom], ["style", "result"], f"init noise, seed {cfg.seed}")  # fmt: skip


@figure("fig4", "α/β 1e-5 … 1e-2 × style layers up to conv1_1 … conv5_1",
        needs=("content", "style"))  # fmt: skip
def fig4(roles: Roles, ctx: Context) -> Sheet | str:
    content, main, cfg = roles.photo(), roles.style(), ctx.seeded
    rows, labels = [], []
    for ratio in (1e-5, 1e-4, 1e-3, 1e-2):
        row = []
        for k in range(1, 6):
            c = cfg.replace(style_layers=up_to(k), **_ratio(ratio))
            label = "conv1_1" if k == 1 else f"… conv{k}_1"
            row.append(Cell(label, Job("stylize", content, main[1], c)))
        rows.append(row)
        labels.append(f"alpha/beta {short(ratio)}")
    return Sheet("fig4", f"alpha/beta x style layers, style {main[0]} (paper Fig. 4)", rows,
                 labels, f"columns: style layers up to conv1_1 … conv5_1; init noise, "
                 f"seed {cfg.seed}")  # fmt: skip


@figure("fig5", "content matched on conv2_2 vs conv4_2", needs=("content", "style"))
def fig5(roles: Roles, ctx: Context) -> Sheet | str:
    content, main, cfg = roles.photo(), roles.style(), ctx.seeded
    row = [Cell("content photo", source=content), Cell(main[0], source=main[1])]
    for layer in ("conv2_2", "conv4_2"):
        c = cfg.replace(content_layers=((layer, 1.0),), **_ratio(main[2]))
        row.append(Cell(f"content {layer}", Job("stylize", content, main[1], c)))
    return Sheet("fig5", "Content matched on conv2_2 vs conv4_2 (paper Fig. 5)", [row], [],
                 f"alpha/beta {short(main[2])}, init noise, seed {cfg.seed}")  # fmt: skip


def note_differences(sheet: Sheet, results: dict[int, Result]) -> None:
    """Under each image: how far it is from the first image of its kind (its init)."""
    first = {}
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


@figure("fig6", "init from content, from style (each twice: identical), from noise with three "
        "seeds (different)", needs=("content", "style"))  # fmt: skip
def fig6(roles: Roles, ctx: Context) -> Sheet | str:
    content, main = roles.photo(), roles.style()
    c = ctx.base.replace(**_ratio(main[2]))
    row = []
    for init in ("content", "style"):
        for s in (1, 2):
            job = Job("stylize", content, main[1], c.replace(init=init, seed=s))
            row.append(Cell(f"init {init}, seed {s}" + (" (again)" if s == 2 else ""), job))
    for s in (1, 2, 3):
        job = Job("stylize", content, main[1], c.replace(init="noise", seed=s))
        row.append(Cell(f"init noise, seed {s}", job))
    return Sheet("fig6", "Initialisation: content, style, noise (paper Fig. 6)", [row], [],
                 f"alpha/beta {short(main[2])}; differences to the first of each kind below "
                 "the images", after=note_differences)  # fmt: skip


@figure("fig7", "photorealistic transfer: a night photo as the style of a day photo",
        needs=("photo_content", "photo_style"))  # fmt: skip
def fig7(roles: Roles, ctx: Context) -> Sheet | str:
    content, style = roles.photo_pair()
    cfg = ctx.seeded.replace(**_ratio(DEFAULT_RATIO))
    row = [
        Cell("content photo", source=content),
        Cell("style photo", source=style),
        Cell(f"alpha/beta {short(DEFAULT_RATIO)}", Job("stylize", content, style, cfg)),
    ]
    return Sheet("fig7", "Photorealistic style transfer (paper Fig. 7)", [row], [],
                 f"init noise, seed {cfg.seed}")  # fmt: skip


# -- the runners of the paper's jobs ----------------------------------------------------------
@runner("stylize")
def run_stylize(job: Job) -> torch.Tensor:
    from .. import api

    assert job.style is not None
    return api.stylize(job.source, job.style, job.config)


@runner("content")
def run_content(job: Job) -> torch.Tensor:
    from .. import api

    return api.reconstruct_content(job.source, job.config)


@runner("texture")
def run_texture(job: Job) -> torch.Tensor:
    from .. import api

    return api.synthesize_texture(job.source, job.config, size=job.size)
