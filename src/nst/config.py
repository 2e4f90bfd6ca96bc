"""The one frozen configuration every front end builds and the core reads.

Every field is declared once, with :func:`nst.options.option` (kind, range or
choices, help, panel, web placement). ``Config`` holds typed values and checks
them; text and JSON from the outside (CLI strings, web form fields) are parsed
by :meth:`Config.from_dict`, the one boundary parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from .errors import ConfigError
from .layers import LayerWeights, pools_through
from .options import (
    AUTO,
    BOOL,
    FLOAT,
    FLOATS,
    INT,
    INT_OR_AUTO,
    INTS,
    LAYERS,
    REGIONS,
    TEXT,
    Declared,
    declare,
    option,
)

#: the modes of each kind of run (:data:`nst.options.MODES`)
ONE_IMAGE = ("stylize", "video", "metrics")  # a content and style(s): stylize, frames, scoring
NOT_METRICS = ("stylize", "video", "content", "texture")

PAPER_STYLE_LAYERS: LayerWeights = tuple((f"conv{b}_1", 0.2) for b in range(1, 6))
PAPER_CONTENT_LAYERS: LayerWeights = (("conv4_2", 1.0),)

# the choices of the options that have them, as types (mypy catches optimizer="lbgfs")
Optimizer = Literal["lbfgs", "adam"]
Pooling = Literal["avg", "max"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Weighting = Literal["calibrated", "reference", "paper"]
ColorMode = Literal["none", "luminance", "histogram"]
StyleLossName = Literal["gram", "w2", "swd", "mrf"]
PatchMatch = Literal["coverage", "nearest"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
POOLINGS: tuple[str, ...] = get_args(Pooling)
PRECISIONS: tuple[str, ...] = get_args(Precision)
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
COLOR_MODES: tuple[str, ...] = get_args(ColorMode)
PATCH_MATCHES: tuple[str, ...] = get_args(PatchMatch)


@dataclass(frozen=True)
class StyleLoss:
    """What a style statistic (``--style-loss``) can do, declared here without torch so
    that options are checked before any is loaded; the statistic registered under the
    same name (:mod:`nst.objective.statistics`) implements it (a test checks they agree)."""

    name: str
    #: it can be guided by region masks (``--mask``)
    guides: bool
    #: it can be evaluated in tiles (print sizes under a memory limit)
    tiles: bool
    #: options it brings with it when they are not given (typed values): mrf's style
    #: layers and optimizer
    implies: tuple[tuple[str, object], ...] = ()
    #: the shallowest block it can work at (1: any layer)
    from_block: int = 1
    #: the positions each side of a style layer needs, in the picture and the style
    patch: int = 1


#: mrf's style layers (CNNMRF's relu3_1 and relu4_1): a patch there spans 3x3 positions of
#: 4 and 8 pixels; shallower layers have 16 to 64 times as many patches to match
MRF_STYLE_LAYERS: LayerWeights = (("conv3_1", 0.5), ("conv4_1", 0.5))

#: the style statistics: the paper's Gram matrices, the 2-Wasserstein distance of
#: Gaussians (mean and covariance), the sliced Wasserstein distance, nearest patches
STYLE_LOSS_KINDS = {
    k.name: k
    for k in (StyleLoss("gram", True, True), StyleLoss("w2", True, True),
              StyleLoss("swd", guides=False, tiles=False),
              StyleLoss("mrf", guides=True, tiles=True, from_block=3, patch=3,
                        implies=(("style_layers", MRF_STYLE_LAYERS), ("optimizer", "adam"))))
}  # fmt: skip
STYLE_LOSSES = tuple(STYLE_LOSS_KINDS)
if get_args(StyleLossName) != STYLE_LOSSES:  # pragma: no cover - a declaration's slip
    raise AssertionError("STYLE_LOSS_KINDS and StyleLossName must name the same losses")


def style_losses_that(can: str) -> str:
    """The style losses that can ``guides`` or ``tiles``, as advice: ``gram or w2``."""
    names = [k.name for k in STYLE_LOSS_KINDS.values() if getattr(k, can)]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


INIT_KEYWORDS = ("auto", "noise", "content", "style")
#: L-BFGS iterations a run from noise takes to become a picture: fewer leave grain over a
#: barely recognisable photo (measured with the paper's defaults at 128 and 256 px:
#: 25 iterations noise, 50 recognisable but grainy, 100 clean; docs/QUALITY.md)
NOISE_ITERATIONS = 100
DEFAULT_LR = {"lbfgs": 1.0, "adam": 5.0}
#: named bundles of options (``--preset``); the options given with one win. Chosen by
#: measurement (benchmarks/quality.py, docs/QUALITY.md).
#: The style weights put ``quality`` and ``fast`` at the paper default's distance to the
#: photo (benchmarks/pareto.py, mean over three built-in pairs at 256 px).
PRESETS: dict[str, dict[str, object]] = {
    "paper": {"style_loss": "gram", "init": "noise", "optimizer": "lbfgs", "average": 0.0,
              "tv_weight": 0.0},
    "quality": {"style_loss": "w2", "init": "content", "start_size": 128, "scale_step": 1.414,
                "style_weight": 780.0},
    "fast": {"style_loss": "w2", "init": "content", "iterations": 60, "style_weight": 860.0},
}  # fmt: skip


def _preset_help() -> str:
    def show(v: object) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    parts = [
        f"{name} ({', '.join(f'{k.replace(chr(95), chr(45))} {show(v)}' for k, v in b.items())})"
        for name, b in PRESETS.items()
    ]
    return (
        "A named bundle of options; options given explicitly win: " + "; ".join(parts) + ". "
        "Without one (the default), each option has its own default: the paper's method, as "
        "paper."
    )


#: sizes above this get coarse-to-fine stages by default
AUTO_SCALES_ABOVE = 512
#: the largest side of any image nst works on (output, style, stages)
MAX_SIDE = 16384
#: style images at most this many times the output's size
MAX_STYLE_SCALE = 8.0


@declare
@dataclass(frozen=True)
class Config(Declared):
    """Every parameter of a style-transfer run.

    Weights: the objective is ``content_weight * L_content + style_weight * L_style``
    (alpha and beta of the paper). ``weighting`` says in which units the two terms
    are measured (see docs/LOSSES.md): ``"calibrated"`` (default) makes both terms
    independent of the image size and is calibrated so that the paper's alpha/beta
    ratios give the paper's look; ``"reference"`` uses the scales of the authors'
    released code; ``"paper"`` the formulas exactly as printed.
    The loss log always reports the paper's exact terms.
    """

    preset: str | None = option(
        None, _preset_help(), TEXT, choices=tuple(PRESETS), nullable=True, panel="Output",
        web="main", label="Preset", identity=False, web_default="fast",
    )  # fmt: skip
    # geometry
    size: int = option(
        512, "Longest side of the output in pixels.", INT, lo=16, hi=MAX_SIDE,
        panel="Output", web="main", label="Size (longest side)", cap="max_size", unit="px",
        web_default=256,  # a first try on the page: smaller than the command's
    )  # fmt: skip
    style_size: int | None = option(
        None, "Longest side of the style image(s) in pixels (default: size * style-scale).",
        INT, lo=16, hi=MAX_SIDE, nullable=True, panel="Output", label="Style size",
        cap="max_size", unit="px", modes=(*ONE_IMAGE, "texture"),
    )  # fmt: skip
    style_scale: float = option(
        1.0, "Style image size relative to the output (0.5: half, 2: twice).", FLOAT,
        lo=0, lo_open=True, hi=MAX_STYLE_SCALE, panel="Output", web="main",
        label="Style scale", modes=ONE_IMAGE,
    )  # fmt: skip
    # optimisation
    iterations: int = option(
        500,
        "Optimizer steps (L-BFGS iterations; each may evaluate the loss several times, "
        "both are reported). With coarse-to-fine, the first stage's; later stages get half "
        "as many each. auto: each stage ends when the saved picture stops changing "
        "(at most --max-iterations).",
        INT_OR_AUTO, lo=1, hi=1_000_000, panel="Optimization", web="main", label="Iterations",
        cap="max_iterations", web_default=300,
    )  # fmt: skip
    max_iterations: int = option(
        1000, "With --iterations auto: the most the first stage may take (later stages "
        "half as many each).", INT, lo=1, hi=1_000_000, panel="Optimization",
        label="Most iterations (auto)", cap="max_iterations", web="hidden",
    )  # fmt: skip
    optimizer: Optimizer = option(
        "lbfgs", "lbfgs (default, as the paper) or adam.", TEXT, choices=OPTIMIZERS,
        panel="Optimization", label="Optimizer",
    )  # fmt: skip
    lr: float | None = option(
        None, "Step size: L-BFGS 1 (default), Adam 5 (pixel units 0..255).", FLOAT,
        lo=0, lo_open=True, hi=1e4, nullable=True, panel="Optimization", label="Step size",
    )  # fmt: skip
    lbfgs_history: int = option(
        50, "L-BFGS memory (pairs kept; fewer where they would pass 384 MiB, never below 3).",
        INT, lo=1, hi=1000,
        panel="Optimization", label="L-BFGS history",
    )  # fmt: skip
    average: float = option(
        0.0,
        "Average the iterates: an exponential moving average with this decay (e.g. 0.99; "
        "bias-corrected, per coarse-to-fine stage) is what is saved, shown and carried to "
        "the next stage; 0: the last iterate.",
        FLOAT, lo=0, hi=0.9999, panel="Optimization", label="Iterate averaging",
    )  # fmt: skip
    # objective
    content_weight: float = option(
        1.0, "alpha, the weight of the content loss.", FLOAT, lo=0, hi=1e12,
        web="main", label="Content weight (α)", modes=ONE_IMAGE,
    )  # fmt: skip
    style_weight: float = option(
        1e3, "beta, the weight of the style loss (default alpha/beta = 1e-3).", FLOAT,
        lo=0, hi=1e12, web="main", label="Style weight (β)", modes=ONE_IMAGE,
    )  # fmt: skip
    content_layers: LayerWeights = option(
        PAPER_CONTENT_LAYERS, "Content layers with weights, e.g. conv4_2 or "
        "conv2_2:0.5,conv4_2:0.5.", LAYERS, label="Content layers",
        modes=(*ONE_IMAGE, "content"),
    )  # fmt: skip
    style_layers: LayerWeights = option(
        PAPER_STYLE_LAYERS, "Style layers with weights w_l (default conv1_1 … conv5_1 at 1/5).",
        LAYERS, label="Style layers", modes=(*ONE_IMAGE, "texture"),
    )  # fmt: skip
    style_loss: StyleLossName = option(
        "gram",
        "What the style term matches per layer: gram (the paper's Gram matrices), w2 (mean "
        "and covariance, 2-Wasserstein), swd (the whole distribution, sliced "
        "Wasserstein) or mrf (each 3x3 patch pulled to its nearest style patch, Li & Wand "
        "2016; with style layers conv3_1 and conv4_1 and the adam optimizer unless "
        "--style-layers or --optimizer is given). "
        "See docs/QUALITY.md.",
        TEXT, choices=STYLE_LOSSES, label="Style loss", modes=(*ONE_IMAGE, "texture"),
    )  # fmt: skip
    style_views: bool = option(
        True, "With style-loss mrf: match the style's patches also turned by +-15 degrees "
        "and scaled by 0.9 and 1.1 (CNNMRF): the painting's motifs at more angles and sizes, "
        "not one copy of them repeated; --no-style-views keeps the style upright as it is "
        "(letters, a horizon).", BOOL, label="Turned style patches (mrf)",
        modes=(*ONE_IMAGE, "texture"),
    )  # fmt: skip
    patch_match: PatchMatch = option(
        "coverage", "With style-loss mrf: which style patch a patch of the picture is pulled "
        "to: coverage (the nearest, its distance divided by how close the picture already "
        "comes to that style patch elsewhere: the whole painting is used, all its colours) "
        "or nearest (CNNMRF's highest correlation: many patches may take the same few).",
        TEXT, choices=PATCH_MATCHES, label="Patch matching (mrf)",
        modes=(*ONE_IMAGE, "texture"),
    )  # fmt: skip
    weighting: Weighting = option(
        "calibrated",
        "Loss units: calibrated (size-independent; the paper's alpha/beta give the paper's "
        "look), reference (the authors' released code) or paper (the formulas as printed). "
        "See docs/LOSSES.md.",
        TEXT, choices=WEIGHTINGS, label="Weighting",
    )  # fmt: skip
    tv_weight: float = option(
        0.0, "Total-variation prior weight against low-level noise (try 1-10).", FLOAT,
        lo=0, hi=1e4, web="main", label="Smoothness (TV weight)",
    )  # fmt: skip
    tv_beta: float = option(
        2.0, "Exponent beta of the TV prior R_V^beta (Mahendran & Vedaldi): 2 smooths, "
        "1 keeps edges sharp.", FLOAT, lo=0.5, hi=4, label="TV exponent (β)",
    )  # fmt: skip
    alpha_weight: float = option(
        0.0, "Weight of the alpha-norm prior (Mahendran & Vedaldi): keeps pixels within the "
        "natural range (0: off).", FLOAT, lo=0, hi=1e6, label="Alpha-norm weight",
    )  # fmt: skip
    alpha_norm: float = option(
        6.0, "Exponent alpha of the alpha-norm prior.", FLOAT, lo=1, hi=32,
        label="Alpha-norm exponent (α)",
    )  # fmt: skip
    style_blend: tuple[float, ...] | None = option(
        None, "Blend weights of several style images, e.g. 0.7,0.3 (default: equal).", FLOATS,
        lo=0, hi=1e6, nullable=True, label="Style blend", modes=ONE_IMAGE,
    )  # fmt: skip
    preserve_colors: ColorMode = option(
        "none",
        "Keep the content's colours: luminance (transfer on luminance only) or histogram "
        "(match the style's colour statistics to the content first).",
        TEXT, choices=COLOR_MODES, panel="Colour and regions", web="main",
        label="Keep content colours", modes=ONE_IMAGE,
    )  # fmt: skip
    mask: str | None = option(
        None,
        "Region label image (same framing as the content); its colours select a style per "
        "region (see --regions).",
        TEXT, nullable=True, panel="Colour and regions", web="server", label="Mask",
        path=True, image=True, modes=("stylize",),
    )  # fmt: skip
    regions: tuple[tuple[str, str], ...] = option(
        (),
        "Style of each mask colour: '#ff0000=1,#0000ff=2,#00ff00=content' (style numbers "
        "count from 1; content keeps the photo there).",
        REGIONS, panel="Colour and regions", web="hidden", label="Regions",
        modes=("stylize",),
    )  # fmt: skip
    start_size: int | None = option(
        None,
        "Coarse to fine from this size up to --size, each stage --scale-step times the last "
        "(default: automatic above 512 px).",
        INT, lo=16, hi=MAX_SIDE, nullable=True, panel="Optimization",
        label="Coarse-to-fine start", cap="max_size", unit="px",
    )  # fmt: skip
    scale_step: float = option(
        2.0, "Size ratio between coarse-to-fine stages (with --start-size; 1.414: crowsonkb's "
        "sqrt 2).", FLOAT, lo=1.1, hi=4.0, panel="Optimization", label="Coarse-to-fine step",
    )  # fmt: skip
    scales: tuple[int, ...] = option(
        (),
        "Coarse-to-fine stage sizes, e.g. 256,512,1024 (default: automatic above 512 px; "
        "give the output size alone for a single stage).",
        INTS, lo=16, hi=MAX_SIDE, panel="Optimization", label="Coarse-to-fine sizes",
        cap="max_size", unit="px",
    )  # fmt: skip
    # network
    pooling: Pooling = option(
        "avg", "Pooling: avg (the paper's choice) or max.", TEXT, choices=POOLINGS,
        panel="Model", web="main", label="Pooling",
    )  # fmt: skip
    normalize: bool = option(
        True, "Use the paper's normalized VGG19 (mean filter response 1).", BOOL,
        panel="Model", label="Normalized VGG19",
    )  # fmt: skip
    weights: str | None = option(
        None, "A torchvision VGG19 state_dict file (default: the original Caffe VGG19).",
        TEXT, nullable=True, panel="Model", web="server", label="Weights file", path=True,
    )  # fmt: skip
    # start and randomness
    init: str = option(
        "auto",
        "Start image: noise (the paper's), content, style or an image path; auto: noise, "
        f"or the content photo when there are fewer than {NOISE_ITERATIONS} iterations "
        "(too few to paint from noise).",
        TEXT,
        panel="Optimization", web="main", label="Start from", path=True, image=True,
        keywords=INIT_KEYWORDS, modes=NOT_METRICS,
    )  # fmt: skip
    seed: int | None = option(
        None, "Random seed (noise init); the same seed repeats a run.", INT, lo=0,
        hi=2**63 - 1, nullable=True, panel="Optimization", web="main", label="Seed",
        modes=NOT_METRICS, default_text="random, printed",
    )  # fmt: skip
    # hardware
    device: str = option(
        "auto", "auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps.", TEXT, panel="Model",
        web="server", label="Device", identity=False,
    )  # fmt: skip
    precision: Precision = option(
        "auto",
        "auto (bf16 on GPUs and on CPUs with native bf16, else fp32), fp32 (the paper's "
        "exact loss values), bf16 or fp16 (GPU).",
        TEXT, choices=PRECISIONS, panel="Model", label="Precision",
    )  # fmt: skip
    memory_limit: str = option(
        "auto",
        "Peak memory a run may take (RAM, or GPU memory on CUDA), e.g. 4G or 1500M: a "
        "stage that would need more is evaluated in tiles, with the same result "
        "(docs/PRINT.md); auto: 70% of what is available; none: never tile.",
        TEXT, panel="Model", web="server", label="Memory limit", modes=NOT_METRICS,
        identity=False,
    )  # fmt: skip
    tile: int | None = option(
        None,
        "Evaluate every stage above this size in tiles of this many px (rounded up to the "
        "network's stride); default: only where --memory-limit needs it.",
        INT, lo=16, hi=MAX_SIDE, nullable=True, panel="Model", web="server", label="Tile",
        unit="px", modes=NOT_METRICS, identity=False,
    )  # fmt: skip

    @classmethod
    def with_preset(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The preset beneath ``given`` (:meth:`Declared.with_preset`), and beneath both
        what the style loss they name brings with it (mrf: its style layers and Adam) for
        the options not given."""
        merged = super().with_preset(given)
        loss = merged.get("style_loss")
        kind = STYLE_LOSS_KINDS.get(loss.strip()) if isinstance(loss, str) else None
        for name, value in kind.implies if kind is not None else ():
            if merged.get(name) in (None, ""):
                merged[name] = value
        return merged

    @classmethod
    def implied(cls) -> dict[str, dict[str, dict[str, Any]]]:
        """What a choice brings with it when the other option is not given, as JSON
        (option -> value -> option -> value): a web form sets the field when the choice
        changes, as :meth:`with_preset` does."""
        return {"style_loss": {
            k.name: {n: cls.OPTIONS[n].to_json(v) for n, v in k.implies}
            for k in STYLE_LOSS_KINDS.values() if k.implies
        }}  # fmt: skip

    def _check_together(self) -> None:
        """Checks that involve more than one option."""
        from .memory import check_limit

        check_limit(self.memory_limit)
        if self.style_blend is not None:
            if not self.style_blend:
                raise ConfigError("style-blend: give one weight per style image")
            if sum(self.style_blend) <= 0:
                raise ConfigError("style-blend: the weights must not all be 0")
        if list(self.scales) != sorted(self.scales):
            raise ConfigError("scales: give the stage sizes from small to large, e.g. 256,512")
        if self.regions and not self.mask:
            raise ConfigError("regions: give a --mask image whose colours they refer to")
        if self.mask and not STYLE_LOSS_KINDS[self.style_loss].guides:
            raise ConfigError(f"style-loss {self.style_loss}: masks are not supported; use "
                              f"{style_losses_that('guides')}")  # fmt: skip
        if self.mask and not self.regions:
            raise ConfigError("mask: say which style goes where with --regions, e.g. #ff0000=1")
        kind = STYLE_LOSS_KINDS[self.style_loss]
        shallow = [n for n, _ in self.style_layers if pools_through(n) + 1 < kind.from_block]
        if shallow:
            raise ConfigError(
                f"style-layers: style-loss {kind.name} works at conv{kind.from_block}_1 or "
                f"deeper (got {shallow[0]}: too many patches to match); e.g. "
                + ",".join(
                    f"{n}:{w:g}" for n, w in cast(LayerWeights, dict(kind.implies)["style_layers"])
                )
            )
        if not self.init.strip():
            raise ConfigError("init: give noise, content, style or an image path")
        style_side = self.style_size or self.size * self.style_scale
        if style_side > MAX_SIDE:
            raise ConfigError(
                f"style-scale: the style image would be {style_side:.0f} px, over the "
                f"{MAX_SIDE} px limit"
            )

    # -- derived values ------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """``lr`` or the optimiser's default (L-BFGS: 1, Adam: 5 pixel units)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def style_longest(self) -> int:
        """Longest side of the style image(s) at the output's size."""
        return self.style_size or max(16, round(self.size * self.style_scale))

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Longest side of every coarse-to-fine stage, the last being ``size``.

        Without ``scales``, sizes above 512 start at the size halved until it is at most
        512 (1024 -> 512, 1024; 2048 -> 512, 1024, 2048).
        """
        if self.scales:
            stages = tuple(s for s in self.scales if s < self.size)
            return (*stages, self.size)
        if self.start_size is not None:
            steps: list[int] = []
            side = float(self.start_size)
            while round(side) < self.size:
                if not steps or round(side) > steps[-1]:
                    steps.append(round(side))
                side *= self.scale_step
            return (*steps, self.size)
        sizes = [self.size]
        while sizes[0] > AUTO_SCALES_ABOVE:
            sizes.insert(0, (sizes[0] + 1) // 2)
        return tuple(sizes)

    @property
    def auto(self) -> bool:
        """``--iterations auto``: stages end when the picture stops changing."""
        return self.iterations == AUTO

    @property
    def budget(self) -> int:
        """The first stage's iterations: ``iterations``, or at most ``max_iterations`` when
        auto."""
        return self.max_iterations if self.auto else self.iterations

    @property
    def stage_iterations(self) -> tuple[int, ...]:
        """Iterations of every stage (auto: the most it may take): the budget for the
        first, half as many for each following one (a stage at twice the size costs four
        times as much per iteration)."""
        n = len(self.stage_sizes)
        if n == 1:
            return (self.budget,)
        return tuple(max(1, self.budget >> k) for k in range(n))


def start_keyword(config: Config, stylizing: bool) -> str:
    """What ``init`` starts from: ``auto`` is noise, or the content photo when a
    stylization has too few iterations to paint from noise (:data:`NOISE_ITERATIONS`)."""
    init = config.init.strip()
    if init != "auto":
        return init
    return "content" if stylizing and config.budget < NOISE_ITERATIONS else "noise"


def start_advice(config: Config, stylizing: bool) -> tuple[str, ...]:
    """The warning a short run from noise deserves (one line with the fix), if any."""
    if config.budget >= NOISE_ITERATIONS:
        return ()
    n = config.budget
    needs = f"it takes about {NOISE_ITERATIONS}"
    if config.init.strip() == "auto" and stylizing:
        return (
            f"{n} iterations are too few to paint from noise ({needs}): starting from the "
            "content photo (--init noise keeps the noise; --preset fast is made for short "
            "runs)",
        )
    if start_keyword(config, stylizing) == "noise":
        fix = "--init content or --preset fast" if stylizing else "--iterations 100 or more"
        return (f"{n} iterations from noise leave mostly noise ({needs}): use {fix}",)
    return ()


Config.PRESETS = {name: dict(bundle) for name, bundle in PRESETS.items()}
Config.PRESET_OPTION = "preset"
OPTIONS = Config.OPTIONS
