"""The lecture's sheets: feature inversion with and without a natural-image prior, and
one sheet following "Visualizing and Understanding" from saliency to textures.

* inversion: conv1_1 … conv5_1 reconstructed from white noise, without a prior and with
  Mahendran & Vedaldi's (TV, beta = 2, plus the alpha-norm, alpha = 6).
* lecture: saliency by the three backward rules for the strongest conv5_1 neurons of a
  photo; gradient-ascent images for a channel of each block, in pixels and with Lucid's
  Fourier parameterization, decorrelated colours and transforms; the top patches of a
  conv5_1 channel over scikit-image's photos; inversions; Gram textures.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..explain.targets import Target
from ..layers import parse_layer_weights
from .paper import up_to
from .registry import Context, Roles, figure
from .sheets import Cell, Job, Sheet, runner

LAYERS = tuple(f"conv{b}_1" for b in range(1, 6))
#: the prior of the inversion sheets (weights in the calibrated units; measured to clean
#: up conv5_1 inversions at 128-256 px without blurring conv1_1's)
PRIOR = {"tv_weight": 10.0, "tv_beta": 2.0, "alpha_weight": 1.0, "alpha_norm": 6.0}
#: one channel per block for the gradient-ascent row (each gave a clear pattern)
ASCENT_CHANNELS = ("conv1_1:5", "conv2_1:10", "conv3_1:20", "conv4_1:12", "conv5_1:30")
PATCH_TARGET = "conv5_1:30"
PATCHES = 5
SALIENCY_LAYER = "conv5_1"
SALIENCY_NEURONS = 2
LECTURE_PHOTO = "builtin:chelsea"


@dataclass(frozen=True)
class SaliencySpec:
    """The saliency of the ``rank``-th strongest neuron of ``layer`` on the job's source."""

    layer: str
    rank: int
    method: str  # gradient | deconvnet | guided
    size: int


@dataclass(frozen=True)
class AscentSpec:
    """Gradient ascent to ``target`` from zeros at ``size`` px."""

    target: str
    size: int
    iterations: int
    lucid: bool = False  # Fourier, decorrelated colours and transforms (Olah et al.)


@dataclass(frozen=True)
class PatchSpec:
    """The ``rank``-th of the ``k`` top patches of ``target``, the photos seen at ``size``."""

    target: str
    rank: int
    k: int
    size: int


def _inversion_row(source: str, ctx: Context, prior: bool) -> list[Cell]:
    cfg = ctx.base.replace(seed=ctx.base.seed or 0, **(PRIOR if prior else {}))
    row = []
    for layer in LAYERS:
        c = cfg.replace(content_layers=parse_layer_weights([layer]))
        row.append(Cell(layer, Job("content", source, None, c)))
    return row


@figure(
    "inversion",
    "feature inversion from conv1_1 … conv5_1, without and with the "
    "natural-image prior of Mahendran & Vedaldi",
)
def inversion(roles: Roles, ctx: Context) -> Sheet | str:
    source = roles.content or LECTURE_PHOTO
    rows = [
        [Cell("photo", source=source), *_inversion_row(source, ctx, prior=False)],
        [Cell("", source=None), *_inversion_row(source, ctx, prior=True)],
    ]
    return Sheet(
        "inversion",
        "Feature inversion, without and with a prior (Mahendran & Vedaldi 2015)",
        rows,
        ["no prior", "TV + alpha-norm"],
        "from white noise; prior: TV beta=2 weight 10, alpha-norm alpha=6 weight 1",
    )


@figure(
    "lecture",
    "the lecture, in order: saliency (gradient, deconvnet, guided) for conv5_1 "
    "neurons, gradient ascent from conv1 to conv5, top patches, inversions, textures",
)
def lecture(roles: Roles, ctx: Context) -> Sheet | str:
    main = roles.main_style()
    texture_source = main[1] if main else "builtin:swirls"
    photo = roles.content or LECTURE_PHOTO  # the given photo (--content, --images)
    size = ctx.base.size
    rows: list[list[Cell]] = []
    labels: list[str] = []
    for rank in range(SALIENCY_NEURONS):
        row = [Cell("photo", source=photo)]
        for method in ("gradient", "deconvnet", "guided"):
            job = Job(
                "saliency", photo, None, ctx.base,
                spec=SaliencySpec(SALIENCY_LAYER, rank, method, size),
            )  # fmt: skip
            row.append(Cell(method, job))
        rows.append(row)
        labels.append(f"saliency, neuron {rank + 1}")
    ascent = ctx.base.replace(seed=0)
    steps = ctx.base.budget
    rows.append(
        [Cell(t, Job("ascent", photo, None, ascent, spec=AscentSpec(t, size, steps)))
         for t in ASCENT_CHANNELS]
    )  # fmt: skip
    labels.append("gradient ascent")
    rows.append(
        [Cell(t, Job("ascent", photo, None, ascent, spec=AscentSpec(t, size, steps, True)))
         for t in ASCENT_CHANNELS]
    )  # fmt: skip
    labels.append("ascent (Lucid)")
    patch = [PatchSpec(PATCH_TARGET, k, PATCHES, size) for k in range(PATCHES)]
    rows.append(
        [Cell(f"{PATCH_TARGET} #{s.rank + 1}", Job("patch", photo, None, ctx.base, spec=s))
         for s in patch]
    )  # fmt: skip
    labels.append("top patches")
    rows.append(_inversion_row(photo, ctx, prior=True))
    labels.append("inversion (prior)")
    tex = ctx.base.replace(seed=ctx.base.seed or 0)
    rows.append(
        [
            Cell(
                "conv1_1" if k == 1 else f"… conv{k}_1",
                Job(
                    "texture",
                    texture_source,
                    None,
                    tex.replace(style_layers=up_to(k)),
                    ctx.texture_size,
                ),
            )
            for k in range(1, 6)
        ]
    )
    labels.append("texture (Gram)")
    return Sheet(
        "lecture",
        "Visualizing and understanding VGG19: saliency, gradient ascent, "
        "top patches, inversion, texture",
        rows,
        labels,
        f"saliency on {photo} (each map's neuron below it); ascent from zeros; "
        "patches over scikit-image's photos",
    )


@functools.lru_cache(maxsize=16)
def _strongest(source: str, layer: str, rank: int, size: int) -> Target:
    """The rank-th strongest neuron of ``layer`` on ``source``: channels ordered by their
    largest response, each at the position of that response, skipping peaks within two
    positions of a stronger one (so the neurons look at different places)."""
    from ..explain.network import network
    from ..explain.saliency import resize_differentiable, working_size
    from ..planning import load

    net = network()
    img = load(source)
    wh = working_size(img.shape[1], img.shape[2], size)
    with torch.no_grad():
        fmap = net.features(resize_differentiable(img[None] * 255, wh), [layer])[layer][0].float()
    peaks = fmap.flatten(1).max(dim=1)
    chosen: list[Target] = []
    for channel in torch.argsort(peaks.values, descending=True).tolist():
        row, col = divmod(int(peaks.indices[channel]), fmap.shape[2])
        if all(abs(row - t.row) + abs(col - t.col) > 2 for t in chosen if t.row is not None):
            chosen.append(Target("neuron", channel, layer, row, col))
            if len(chosen) > rank:
                break
    return chosen[min(rank, len(chosen) - 1)]


@functools.lru_cache(maxsize=4)
def _patches(target: str, k: int, size: int) -> tuple[torch.Tensor, ...]:
    from ..explain.patches import top_patches

    return tuple(p.image for p in top_patches(target, k=k, size=size))


@runner("saliency")
def run_saliency(job: Job) -> tuple[torch.Tensor, str]:
    from ..explain.saliency import display, saliency

    spec = job.spec
    assert isinstance(spec, SaliencySpec)
    target = _strongest(job.source, spec.layer, spec.rank, spec.size)
    s = saliency(job.source, target, spec.method, size=spec.size)
    return display(s.gradient, "magnitude" if spec.method == "gradient" else "rgb"), target.label


@runner("ascent")
def run_ascent(job: Job) -> torch.Tensor:
    from ..explain.ascent import VisualizeConfig, visualize

    spec = job.spec
    assert isinstance(spec, AscentSpec)
    config = VisualizeConfig(size=spec.size, seed=0, iterations=spec.iterations)
    if spec.lucid:
        config = config.replace(param="fourier", decorrelate=True, transforms="jitter,scale,rotate")
    return visualize(spec.target, config).image


@runner("patch")
def run_patch(job: Job) -> torch.Tensor:
    spec = job.spec
    assert isinstance(spec, PatchSpec)
    patches = _patches(spec.target, spec.k, spec.size)
    return patches[spec.rank] if spec.rank < len(patches) else torch.zeros(3, 16, 16)
