"""The one frozen configuration that every front end builds and the core reads.

The CLI derives its options from these fields, the web form and batch manifests
go through :meth:`Config.from_dict`, and the Python API takes a ``Config``
directly. Validation happens here, once, at the boundary.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError
from .layers import LayerWeights, format_layer_weights, parse_layer_weights

PAPER_STYLE_LAYERS: LayerWeights = tuple((f"conv{b}_1", 0.2) for b in range(1, 6))
PAPER_CONTENT_LAYERS: LayerWeights = (("conv4_2", 1.0),)

OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("avg", "max")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
WEIGHTINGS = ("calibrated", "reference", "paper")
COLOR_MODES = ("none", "luminance", "histogram")
INIT_KEYWORDS = ("noise", "content", "style")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 5.0}
#: sizes above this get coarse-to-fine stages by default
AUTO_SCALES_ABOVE = 512


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text (shared by the CLI, the web form and the docs)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Config:
    """Every parameter of a style-transfer run.

    Weights: the objective is ``content_weight * L_content + style_weight * L_style``
    (alpha and beta of the paper). ``weighting`` says in which units the two terms
    are measured (see docs/LOSSES.md): ``"calibrated"`` (default) makes both terms
    independent of the image size and is calibrated so that the paper's alpha/beta
    ratios give the paper's look; ``"reference"`` uses the scales of the authors'
    released code; ``"paper"`` the formulas exactly as printed.
    The loss log always reports the paper's exact terms.
    """

    # geometry
    size: int = _f(512, "Longest side of the output in pixels.")
    style_size: int | None = _f(
        None, "Longest side of the style image(s) in pixels (default: size * style-scale)."
    )
    style_scale: float = _f(1.0, "Style image size relative to the output (0.5: half).")
    # optimisation
    iterations: int = _f(
        500,
        "Optimizer steps (L-BFGS iterations; each may evaluate the loss several times, "
        "both are reported). With coarse-to-fine, the first stage's; later stages get half "
        "as many each.",
    )
    optimizer: str = _f("lbfgs", "lbfgs (default, as the paper) or adam.", choices=OPTIMIZERS)
    lr: float | None = _f(None, "Step size: L-BFGS 1 (default), Adam 5 (pixel units 0..255).")
    lbfgs_history: int = _f(50, "L-BFGS memory (pairs kept; capped at 1 GiB).")
    # objective
    content_weight: float = _f(1.0, "alpha, the weight of the content loss.")
    style_weight: float = _f(1e3, "beta, the weight of the style loss (default alpha/beta = 1e-3).")
    content_layers: LayerWeights = _f(
        PAPER_CONTENT_LAYERS,
        "Content layers with weights, e.g. conv4_2 or conv2_2:0.5,conv4_2:0.5.",
    )
    style_layers: LayerWeights = _f(
        PAPER_STYLE_LAYERS, "Style layers with weights w_l (default conv1_1 … conv5_1 at 1/5)."
    )
    weighting: str = _f(
        "calibrated",
        "Loss units: calibrated (size-independent; the paper's alpha/beta give the paper's "
        "look), reference (the authors' released code) or paper (the formulas as printed). "
        "See docs/LOSSES.md.",
        choices=WEIGHTINGS,
    )
    tv_weight: float = _f(0.0, "Total-variation prior weight against low-level noise (try 1-10).")
    style_blend: tuple[float, ...] | None = _f(
        None, "Blend weights of several style images, e.g. 0.7,0.3 (default: equal)."
    )
    preserve_colors: str = _f(
        "none",
        "Keep the content's colours: luminance (transfer on luminance only) or histogram "
        "(match the style's colour statistics to the content first).",
        choices=COLOR_MODES,
    )
    mask: str | None = _f(
        None,
        "Region label image (same framing as the content); its colours select a style per "
        "region (see --regions).",
    )
    regions: tuple[tuple[str, str], ...] = _f(
        (),
        "Style of each mask colour: '#ff0000=1,#0000ff=2,#00ff00=content' (style numbers "
        "count from 1; content keeps the photo there).",
    )
    scales: tuple[int, ...] = _f(
        (),
        "Coarse-to-fine stage sizes, e.g. 256,512,1024 (default: automatic above 512 px; "
        "give the output size alone for a single stage).",
    )
    # network
    pooling: str = _f("avg", "Pooling: avg (the paper's choice) or max.", choices=POOLINGS)
    normalize: bool = _f(True, "Use the paper's normalized VGG19 (mean filter response 1).")
    weights: str | None = _f(
        None, "A torchvision VGG19 state_dict file (default: the original Caffe VGG19)."
    )
    # start and randomness
    init: str = _f("noise", "Start image: noise, content, style or an image path.")
    seed: int | None = _f(None, "Random seed (noise init); the same seed repeats a run.")
    # hardware
    device: str = _f("auto", "auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps.")
    precision: str = _f(
        "auto", "auto (bf16 on GPUs, fp32 on CPUs), fp32, bf16 or fp16 (GPU).", choices=PRECISIONS
    )

    LIMITS: ClassVar[dict[str, int]] = {"size": 16384, "iterations": 1_000_000}
    _layer_fields: ClassVar[tuple[str, ...]] = ("content_layers", "style_layers")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in self._layer_fields:
            value = getattr(self, name)
            set_(self, name, parse_layer_weights(value, what=name.replace("_", "-")))
        if isinstance(self.style_blend, str):
            set_(self, "style_blend", _parse_floats(self.style_blend, "style-blend"))
        elif self.style_blend is not None:
            set_(self, "style_blend", tuple(float(v) for v in self.style_blend))
        if isinstance(self.regions, str):
            set_(self, "regions", parse_regions(self.regions))
        else:
            set_(self, "regions", tuple((str(c), str(t)) for c, t in self.regions))
        if isinstance(self.scales, str):
            set_(self, "scales", tuple(int(v) for v in _parse_floats(self.scales, "scales")))
        else:
            set_(self, "scales", tuple(int(v) for v in self.scales))
        self._validate()

    # -- validation --------------------------------------------------------------------------
    def _validate(self) -> None:
        _int_range("size", self.size, 16, self.LIMITS["size"])
        if self.style_size is not None:
            _int_range("style-size", self.style_size, 16, self.LIMITS["size"])
        _positive("style-scale", self.style_scale)
        _int_range("iterations", self.iterations, 0, self.LIMITS["iterations"])
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            _positive("lr", self.lr)
        _int_range("lbfgs-history", self.lbfgs_history, 1, 1000)
        _non_negative("content-weight", self.content_weight)
        _non_negative("style-weight", self.style_weight)
        _non_negative("tv-weight", self.tv_weight)
        _choice("weighting", self.weighting, WEIGHTINGS)
        _choice("preserve-colors", self.preserve_colors, COLOR_MODES)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("precision", self.precision, PRECISIONS)
        if self.style_blend is not None:
            if not self.style_blend:
                raise ConfigError("style-blend: give one weight per style image")
            for w in self.style_blend:
                _non_negative("style-blend", w)
            if sum(self.style_blend) <= 0:
                raise ConfigError("style-blend: the weights must not all be 0")
        for s in self.scales:
            _int_range("scales", s, 16, self.LIMITS["size"])
        if list(self.scales) != sorted(self.scales):
            raise ConfigError("scales: give the stage sizes from small to large, e.g. 256,512")
        if self.regions and not self.mask:
            raise ConfigError("regions: give a --mask image whose colours they refer to")
        if self.mask and not self.regions:
            raise ConfigError("mask: say which style goes where with --regions, e.g. #ff0000=1")
        if self.seed is not None and not (0 <= self.seed < 2**63):
            raise ConfigError(f"seed must be between 0 and 2**63-1 (got {self.seed})")
        if not self.init.strip():
            raise ConfigError("init: give noise, content, style or an image path")

    # -- derived values ------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """``lr`` or the optimiser's default (L-BFGS: 1, Adam: 5 pixel units)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Longest side of every coarse-to-fine stage, the last being ``size``.

        Without ``scales``, sizes above 512 start at the size halved until it is at most
        512 (1024 -> 512, 1024; 2048 -> 512, 1024, 2048).
        """
        if self.scales:
            stages = tuple(s for s in self.scales if s < self.size)
            return (*stages, self.size)
        sizes = [self.size]
        while sizes[0] > AUTO_SCALES_ABOVE:
            sizes.insert(0, (sizes[0] + 1) // 2)
        return tuple(sizes)

    @property
    def stage_iterations(self) -> tuple[int, ...]:
        """Iterations of every stage: ``iterations`` for the first, half as many for each
        following one (a stage at twice the size costs four times as much per iteration)."""
        n = len(self.stage_sizes)
        if n == 1:
            return (self.iterations,)
        return tuple(max(1, self.iterations >> k) if self.iterations else 0 for k in range(n))

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; layer weights as ``"conv1_1:0.2,..."`` strings."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._layer_fields:
                value = format_layer_weights(value)
            elif f.name == "regions":
                value = ",".join(f"{c}={t}" for c, t in value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build a config from JSON-like data (web form, batch manifest).

        Unknown keys are refused with their name; values are converted from strings
        where a form sends strings.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            kwargs[key] = _coerce(key, value)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # pragma: no cover - guarded by the checks above
            raise ConfigError(str(exc)) from None


_INT_FIELDS = {"size", "style_size", "iterations", "lbfgs_history", "seed"}
_FLOAT_FIELDS = {"style_scale", "lr", "content_weight", "style_weight", "tv_weight"}
_BOOL_FIELDS = {"normalize"}


def _coerce(key: str, value: Any) -> Any:
    if value is None or value == "":
        nullable = {"style_size", "lr", "seed", "weights", "style_blend", "mask"}
        return None if key in nullable else value
    try:
        if key in _INT_FIELDS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if key in _FLOAT_FIELDS:
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key.replace('_', '-')}: '{value}' is not a number") from None
    if key in _BOOL_FIELDS:
        if isinstance(value, str):
            if value.lower() in {"1", "true", "yes", "on"}:
                return True
            if value.lower() in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{key}: '{value}' is not true or false")
        return bool(value)
    return value


def parse_regions(text: str) -> tuple[tuple[str, str], ...]:
    """``"#ff0000=1, #00ff00=content"`` -> (("#ff0000", "1"), ("#00ff00", "content"))."""
    out: list[tuple[str, str]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        colour, sep, target = part.partition("=")
        colour, target = colour.strip().lower(), target.strip().lower()
        if not sep or not target:
            raise ConfigError(f"regions: '{part}' is not COLOUR=STYLE (e.g. #ff0000=1)")
        parse_colour(colour)
        if target != "content" and not (target.isdigit() and int(target) >= 1):
            raise ConfigError(
                f"regions: '{target}' is neither a style number (1, 2, ...) nor 'content'"
            )
        out.append((colour, target))
    return tuple(out)


def parse_colour(text: str) -> tuple[int, int, int]:
    """``#rrggbb`` (or ``rrggbb``) -> (r, g, b)."""
    hexa = text.strip().lower().removeprefix("#")
    if len(hexa) != 6 or any(ch not in "0123456789abcdef" for ch in hexa):
        raise ConfigError(f"regions: colour '{text}' is not of the form #rrggbb")
    return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)


def _parse_floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what}: '{text}' is not a comma-separated list of numbers") from None


def _int_range(what: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer (got {value!r})")
    if not lo <= value <= hi:
        raise ConfigError(f"{what} must be between {lo} and {hi} (got {value})")


def _finite(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number (got {value!r})")


def _positive(what: str, value: float) -> None:
    _finite(what, value)
    if value <= 0:
        raise ConfigError(f"{what} must be > 0 (got {value})")


def _non_negative(what: str, value: float) -> None:
    _finite(what, value)
    if value < 0:
        raise ConfigError(f"{what} must be >= 0 (got {value})")


def _choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(choices)} (got {value!r})")
