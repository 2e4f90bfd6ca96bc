"""VGG19 layer names and the parsing of layer specifications.

The paper names layers ``convB_I`` (block B, convolution I) and means the
*rectified* response: in the original Caffe model ReLU runs in place. So
``conv4_2`` and ``relu4_2`` are the same layer here. ``poolB`` names the
output of block B's pooling layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError
from .numbers import quote

#: convolutions per block and channels per block of VGG19
BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
#: VGG16 has the same blocks with fewer convolutions (its layers are a subset of VGG19's)
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def conv_names(blocks: tuple[tuple[int, int], ...] = BLOCKS) -> tuple[str, ...]:
    """``conv1_1`` ... for a network of these blocks."""
    return tuple(
        f"conv{b}_{i}" for b, (n, _) in enumerate(blocks, start=1) for i in range(1, n + 1)
    )


def _build_sequence() -> tuple[tuple[str, int], ...]:
    seq: list[tuple[str, int]] = []
    for b, (n_conv, channels) in enumerate(BLOCKS, start=1):
        for i in range(1, n_conv + 1):
            seq.append((f"conv{b}_{i}", channels))
        seq.append((f"pool{b}", channels))
    return tuple(seq)


#: every layer in network order with its number of channels (N_l)
SEQUENCE: tuple[tuple[str, int], ...] = _build_sequence()
NAMES: tuple[str, ...] = tuple(name for name, _ in SEQUENCE)
CONV_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n.startswith("conv"))
CHANNELS: dict[str, int] = dict(SEQUENCE)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}

LayerWeights = tuple[tuple[str, float], ...]


def canonical(name: str) -> str:
    """Return the canonical name of a layer (``relu4_2`` -> ``conv4_2``)."""
    key = name.strip().lower()
    if key.startswith("relu"):
        key = "conv" + key[4:]
    if key not in INDEX:
        raise ConfigError(
            f"unknown layer {quote(name.strip())} (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, "
            "pool1 … pool5)"
        )
    return key


def pools_through(name: str) -> int:
    """How many 2x2 poolings an image has passed when it reaches layer ``name``."""
    return sum(1 for n in NAMES[: INDEX[name] + 1] if n.startswith("pool"))


def min_side(names: Sequence[str]) -> int:
    """The smallest image side for which every layer of ``names`` has at least one
    position (each pooling halves the side, rounding down)."""
    return 2 ** max((pools_through(n) for n in names), default=0)


def feature_size(name: str, size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of layer ``name``'s feature map for an input of ``size`` (h, w)."""
    h, w = size
    for _ in range(pools_through(name)):
        h, w = h // 2, w // 2
    return h, w


def receptive_box(
    name: str,
    row: int,
    col: int,
    size: tuple[int, int],
    plan: Sequence[str] = NAMES,
) -> tuple[int, int, int, int]:
    """The input pixels that neuron (row, col) of layer ``name`` can see, as an inclusive
    box (top, left, bottom, right) clipped to an input of ``size`` (h, w). ``plan`` is the
    network's layer sequence (VGG19's by default; VGG16 has fewer convolutions).

    Walking back from the neuron: a 3x3 convolution (padding 1) widens the box by one
    position on each side; a 2x2 pooling of stride 2 maps position i to 2i .. 2i+1.
    """
    top, left, bottom, right = row, col, row, col
    for n in reversed(list(plan)[: list(plan).index(name) + 1]):
        if n.startswith("conv"):
            top, left, bottom, right = top - 1, left - 1, bottom + 1, right + 1
        else:
            top, left, bottom, right = 2 * top, 2 * left, 2 * bottom + 1, 2 * right + 1
    h, w = size
    return max(0, top), max(0, left), min(h - 1, bottom), min(w - 1, right)


def deepest(names: Sequence[str]) -> str:
    """The layer among ``names`` that lies deepest in the network."""
    return max(names, key=INDEX.__getitem__)


def parse_layer_weights(
    spec: str | Sequence[str | tuple[str, float]], what: str = "layers"
) -> LayerWeights:
    """Parse ``"conv1_1:0.2,conv2_1:0.2"`` (or a list of names or (name, weight) pairs).

    Layers given without a weight share equally: ``"conv4_2"`` is ``conv4_2:1`` and
    ``"conv1_1,conv2_1"`` is ``0.5`` each. Mixing both forms is refused, as are unknown
    layers, duplicates and negative or non-finite weights.
    """
    items: list[tuple[str, float | None]] = []
    if isinstance(spec, str):
        for part in (p for p in (s.strip() for s in spec.split(",")) if p):
            if ":" in part:
                name, _, raw = part.partition(":")
                try:
                    items.append((name, float(raw)))
                except ValueError:
                    raise ConfigError(
                        f"{what}: weight {quote(raw)} of layer {quote(name)} is not a number"
                    ) from None
            else:
                items.append((part, None))
    else:
        for entry in spec:
            if isinstance(entry, str):
                items.append((entry, None))
            else:
                name, weight = entry
                items.append((str(name), float(weight)))
    if not items:
        raise ConfigError(f"{what}: at least one layer is needed")
    given = [w is not None for _, w in items]
    if any(given) and not all(given):
        raise ConfigError(f"{what}: give a weight for every layer or for none")
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for name, given_weight in items:
        canon = canonical(name)
        if canon in seen:
            raise ConfigError(f"{what}: layer '{canon}' appears twice")
        seen.add(canon)
        w = 1.0 / len(items) if given_weight is None else given_weight
        if not (w >= 0.0 and w != float("inf")):
            raise ConfigError(f"{what}: weight of '{canon}' must be a finite number >= 0")
        out.append((canon, w))
    return tuple(out)


def format_layer_weights(layers: LayerWeights) -> str:
    """The inverse of :func:`parse_layer_weights` (``conv1_1:0.2,...``)."""
    return ",".join(f"{name}:{weight:g}" for name, weight in layers)
