"""The settings of a gradient-ascent run (``nst visualize``): one declaration per option,
kept apart from the computation so the command line can read them without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import ConfigError
from ..options import BOOL, FLOAT, INT, TEXT, Declared, declare, option

Start = Literal["zeros", "noise"]
Param = Literal["pixel", "fourier"]
STARTS: tuple[str, ...] = get_args(Start)
PARAMS: tuple[str, ...] = get_args(Param)
TRANSFORMS = ("jitter", "scale", "rotate")


@declare
@dataclass(frozen=True)
class VisualizeConfig(Declared):
    """The settings of a gradient-ascent run (``nst visualize``)."""

    size: int = option(
        128,
        "Side of the (square) image in pixels.",
        INT,
        lo=16,
        hi=2048,
        panel="Output",
        web="main",
        label="Size",
        cap="max_size",
        unit="px",
    )
    iterations: int = option(
        200,
        "Gradient-ascent steps.",
        INT,
        lo=1,
        hi=100_000,
        panel="Optimization",
        web="main",
        label="Iterations",
        cap="max_iterations",
    )
    lr: float = option(
        4.0,
        "Step size (Adam) in pixel units 0..255.",
        FLOAT,
        lo=0,
        lo_open=True,
        hi=255,
        panel="Optimization",
        label="Step size",
    )
    l2: float = option(
        0.0,
        "L2 penalty lambda on the image (minus the mean pixel, in 0..1 "
        "units): the lecture's argmax f(I) - lambda |I|^2.",
        FLOAT,
        lo=0,
        hi=1e6,
        panel="Regularizers",
        web="main",
        label="L2 (λ)",
    )
    blur_every: int = option(
        4,
        "Blur the image every N steps (0: never).",
        INT,
        lo=0,
        hi=10_000,
        panel="Regularizers",
        web="main",
        label="Blur every",
    )
    blur_sigma: float = option(
        0.5,
        "Standard deviation of that blur, in pixels.",
        FLOAT,
        lo=0,
        hi=20,
        panel="Regularizers",
        label="Blur sigma",
    )
    clip_value: float = option(
        0.0,
        "Set to zero the pixels whose norm is below this percentile (0-100; 0: off).",
        FLOAT,
        lo=0,
        hi=100,
        panel="Regularizers",
        label="Clip small pixels (%)",
    )
    clip_grad: float = option(
        0.0,
        "Set to zero the pixels whose contribution |I*grad| is "
        "below this percentile (0-100; 0: off).",
        FLOAT,
        lo=0,
        hi=100,
        panel="Regularizers",
        label="Clip small-gradient pixels (%)",
    )
    jitter: int = option(
        4,
        "Roll the image by up to N pixels before each step.",
        INT,
        lo=0,
        hi=64,
        panel="Regularizers",
        web="main",
        label="Jitter",
    )
    tv_weight: float = option(
        0.0,
        "Total-variation penalty (0..1 pixel units).",
        FLOAT,
        lo=0,
        hi=1e6,
        panel="Regularizers",
        label="TV weight",
    )
    start: Start = option(
        "zeros",
        "Start from zeros (the mean pixel) or seeded noise.",
        TEXT,
        choices=STARTS,
        panel="Optimization",
        label="Start",
    )
    param: Param = option(
        "pixel",
        "The image's parameterization: pixel, or fourier (a 1/f-scaled spectrum, as in "
        "Olah et al.'s Feature Visualization; with any of --param fourier, --decorrelate, "
        "--transforms or --diversity the run is Lucid's: Adam on the parameters, the pixel "
        "regularizers above unused).",
        TEXT,
        choices=PARAMS,
        panel="Lucid",
        web="main",
        label="Parameterization",
    )
    decorrelate: bool = option(
        False,
        "Colours from ImageNet's decorrelated colour basis (a fixed 3x3, the square root of "
        "the colour covariance) through a sigmoid.",
        BOOL,
        panel="Lucid",
        web="main",
        label="Decorrelate colours",
    )
    transforms: str = option(
        "",
        "Random transformations before each step, e.g. jitter,scale,rotate (robustness: "
        "jitter 8 px, scale 0.9-1.1, rotate +-10 degrees; seeded).",
        TEXT,
        panel="Lucid",
        web="advanced",
        label="Transforms",
    )
    diversity: int = option(
        1,
        "A batch of N images pushed apart (the cosine similarity of their Gram matrices at "
        "the target's layer is penalized, as Lucid's diversity objective).",
        INT,
        lo=1,
        hi=16,
        panel="Lucid",
        label="Diversity (images)",
    )
    seed: int = option(
        0,
        "Seed of the noise start and of the jitter.",
        INT,
        lo=0,
        hi=2**63 - 1,
        panel="Optimization",
        label="Seed",
    )

    def _check_together(self) -> None:
        for name in self.transform_list:
            if name not in TRANSFORMS:
                raise ConfigError(f"transforms: '{name}' is not one of {', '.join(TRANSFORMS)}")

    @property
    def transform_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.transforms.split(",") if p.strip())

    @property
    def lucid(self) -> bool:
        """Whether the run is Lucid's (a parameterization other than pixels, decorrelated
        colours, transformations or a diverse batch) rather than Simonyan/Yosinski's."""
        return (self.param != "pixel" or self.decorrelate or bool(self.transform_list)
                or self.diversity > 1)  # fmt: skip
