"""The settings of the explain tools (``nst saliency``, ``nst visualize``, ``nst
top-patches``, the Explore page): one declaration per option, kept apart from the
computation so the command line can read them without torch."""

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
#: the backward rules at each ReLU (nst.explain.rules)
RULES = ("gradient", "deconvnet", "guided")
#: the attribution methods beyond a rule (nst.explain.attribution)
ATTRIBUTIONS = ("gradcam", "gradcam++", "integrated", "smoothgrad")
SALIENCY_METHODS = (*RULES, *ATTRIBUTIONS)
#: integrated gradients' starting images
BASELINES = ("black", "blur", "noise")
#: how a saliency map is drawn (nst.explain.saliency.display)
DISPLAYS = ("rgb", "magnitude", "signed", "heat")
POOLINGS = ("max", "avg")


@declare
@dataclass(frozen=True)
class ModelConfig(Declared):
    """The network an explain tool looks into."""

    weights: str | None = option(
        None, "A torchvision VGG19/VGG16 state_dict; with classifier.* for class: targets "
        "(default: the built-in VGG19 convolutions).", TEXT, nullable=True, panel="Model",
        web="server", path=True, identity=False,
    )  # fmt: skip
    pooling: str = option(
        "max", "max (the network as trained) or avg.", TEXT, choices=POOLINGS, panel="Model",
        web="server",
    )  # fmt: skip
    device: str = option(
        "auto", "auto, cpu, cuda or mps.", TEXT, panel="Model", web="server", identity=False,
    )  # fmt: skip


@declare
@dataclass(frozen=True)
class SaliencyConfig(Declared):
    """What a saliency map shows and how it is computed and drawn (``nst saliency``)."""

    target: str = option(
        "auto", "conv5_1:12 (a channel), conv5_1:12@3,4 (the neuron at row 3, column 4 of its "
        "map), class:283 or class:tabby (needs --weights); auto: the channel of conv5_1 that "
        "responds most to this image (conv4_1:auto: of conv4_1), named in the output.", TEXT,
        panel="Target",
    )  # fmt: skip
    method: str = option(
        "guided", "gradient, deconvnet or guided (the backward rule at each ReLU); gradcam or "
        "gradcam++ (a layer's maps weighted by the gradient); integrated (integrated "
        "gradients); smoothgrad (--rule averaged over noisy copies).", TEXT,
        choices=SALIENCY_METHODS, panel="Target",
    )  # fmt: skip
    layer: str | None = option(
        None, "Grad-CAM: the layer whose maps are weighed (default: the target's own; conv5_4 "
        "for a class).", TEXT, nullable=True, panel="Attribution",
    )  # fmt: skip
    steps: int = option(
        64, "Integrated gradients: steps of the path.", INT, lo=1, hi=4096, panel="Attribution",
    )  # fmt: skip
    baseline: str = option(
        "black", "Integrated gradients: black, blur or noise.", TEXT, choices=BASELINES,
        panel="Attribution",
    )  # fmt: skip
    samples: int = option(
        25, "SmoothGrad: noisy copies.", INT, lo=1, hi=1024, panel="Attribution",
    )  # fmt: skip
    noise: float = option(
        0.15, "SmoothGrad: sigma as a fraction of the image's range.", FLOAT, lo=0, hi=1,
        panel="Attribution",
    )  # fmt: skip
    rule: str = option(
        "gradient", "SmoothGrad: the rule averaged (gradient, deconvnet, guided).", TEXT,
        choices=RULES, panel="Attribution",
    )  # fmt: skip
    seed: int = option(
        0, "SmoothGrad's noise and the noise baseline.", INT, lo=0, hi=2**63 - 1,
        panel="Attribution",
    )  # fmt: skip
    size: int | None = option(
        None, "Longest side the network sees (default: the image's own, up to 512).", INT,
        lo=16, hi=4096, nullable=True, panel="Output", cap="max_size", unit="px",
    )  # fmt: skip
    clip: float = option(
        99.5, "The display's percentile clip of the non-zero |values|.", FLOAT, lo=0,
        lo_open=True, hi=100, panel="Output",
    )  # fmt: skip
    display: str | None = option(
        None, "rgb (the gradient, grey at 0), magnitude (max |gradient| over the colours), "
        "signed (blue < 0 < red) or heat; default: magnitude for gradient and smoothgrad of "
        "it, signed for integrated, heat over the photo for gradcam, rgb for the others.",
        TEXT, choices=DISPLAYS, nullable=True, panel="Output",
    )  # fmt: skip
    overlay: bool = option(False, "Draw the map over the photo.", BOOL, panel="Output")

    def _check_together(self) -> None:
        if self.layer is not None and not self.method.startswith("gradcam"):
            raise ConfigError("layer: only gradcam and gradcam++ take a --layer")

    @property
    def drawn_as(self) -> str:
        """The display mode: the one asked, else the method's own."""
        if self.display is not None:
            return self.display
        shown = self.rule if self.method == "smoothgrad" else self.method
        if self.method == "integrated":
            return "signed"
        if self.method.startswith("gradcam"):
            return "heat"
        return "magnitude" if shown == "gradient" else "rgb"

    @property
    def on_photo(self) -> bool:
        """Whether the map is drawn over the photo (asked, or Grad-CAM's default)."""
        return self.overlay or (self.method.startswith("gradcam") and self.display is None)


@declare
@dataclass(frozen=True)
class PatchesConfig(Declared):
    """How the top patches of a channel are looked for (``nst top-patches``)."""

    k: int = option(8, "How many patches.", INT, lo=1, hi=256, panel="Patches", short="-k")
    size: int = option(
        224, "Longest side each image is seen at.", INT, lo=16, hi=2048, panel="Patches",
        unit="px",
    )  # fmt: skip
    per_image: int = option(
        2, "At most this many patches per image.", INT, lo=1, hi=64, panel="Patches",
    )  # fmt: skip


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
