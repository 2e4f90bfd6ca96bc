"""Memory: what a stage of a run needs, the budget (``--memory-limit``) and the tile that
fits it (``--tile``), decided before any work.

A stage holds, besides the process itself and the network (measured: the process's
resident memory when it plans), the optimizer's image-sized vectors, the L-BFGS history,
the content targets, and the network's activations for one evaluation: of the whole
image, or of one padded tile when the stage is evaluated in tiles
(:mod:`nst.objective.tiling`). The per-pixel factors below were measured with
``benchmarks/print_size.py`` (docs/PRINT.md); the estimate errs on the high side.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError, TooLarge
from .layers import CHANNELS, INDEX, NAMES, deepest, pools_through
from .numbers import quote

if TYPE_CHECKING:  # torch is imported where a device is measured, so that checking
    import torch  # a --memory-limit on the command line stays instant

    from .objective.tiling import Tiling

#: ``--memory-limit auto``: this fraction of the memory available when the run is planned
#: (RAM, or free GPU memory on CUDA)
AUTO_FRACTION = 0.7
#: image-sized float32 buffers alive at once besides the history (the iterate, gradient,
#: direction, line-search point and its gradient, the step, the tiled gradient, the
#: image terms' temporaries)
VECTORS = 10
#: bytes held per activation value of one evaluation with autograd (forward and backward
#: of the network, the Gram matrices' float32 copies), per byte of the network's dtype,
#: when the rectifier writes a new tensor (bf16: 4-6% faster per evaluation; the peak
#: measured 0.3 higher at 1024 px, benchmarks/memory.py)
EVAL_FACTOR = 1.9
#: the same, rectifying in place: other dtypes and devices, tiles, and a whole image that
#: fits only so (:class:`Need` ``lean``)
LEAN_EVAL_FACTOR = 1.6
#: the same for a forward pass without autograd (encoding a target; the first tiled pass)
FORWARD_FACTOR = 0.7
#: the first (statistics) pass of a tiled evaluation costs this fraction of the second
#: (forward and backward): what :func:`cost` adds to the halos' overhead (measured 0.14-0.19
#: at 2048 px, benchmarks/print_size.py)
FIRST_PASS_SHARE = 0.2
#: what a run holds beyond the process measured at planning, the weights and the terms
#: below (torch's allocator caches, the loaded weight file): measured ~300 MB at 1024 px
RUNTIME_BYTES = 320 << 20
#: ``--style-loss mrf``: bytes one evaluation holds per value of a patch layer's features
#: (the features and the matched patches folded onto them in float64, their products'
#: temporaries): 20, with the style patches and the matching's bands counted apart
#: (:func:`_patch_target`), brings the estimate of an untiled 1024x768 mrf stage to its
#: measured peak (benchmarks/print_size.py --style-loss mrf; docs/PRINT.md)
PATCH_BYTES = 20
#: mrf's target is the style's patches: one style image's features at the patch layers
#: are held whole (assembled from tiles) while its patches are taken, the image and its
#: four views one after another; the largest is the view scaled by 1.1 (its area: 1.21).
#: (Encoding a 2048x1536 style image measured +1064 MB, estimated 1413 MB; all five views'
#: features at once, as before, +1437 MB: benchmarks/print_size.py --mrf-encoding.)
PATCH_VIEW_AREA = 1.21
#: mrf's matching holds this many (rows x style patches) tensors of a band at a time
#: (the cosines, the scores, the normalized rows' product)
PATCH_BANDS = 3
#: what identical runs of a tiled mrf stage spread over beyond the rest (the allocator's
#: caches of the bands' temporaries): a 1024x768 stage in tiles of 512 peaked at 1257-1394 MB
#: over five runs, tiles of 192-384 px 8-12% over the estimate without it (docs/PRINT.md)
PATCH_SLACK = 128 << 20
#: the smallest tile tried (px, before rounding to the network's stride)
MIN_TILE = 64
#: what the network's weights take per byte of their dtype (VGG19 to conv5_4: 20M values)
WEIGHT_VALUES = 20_024_384

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_limit(text: str, device: torch.device | None = None) -> int | None:
    """``--memory-limit``: ``auto`` -> the default budget, ``none`` -> None (never tile),
    ``4G``, ``3.5GB``, ``1500M``, ``2GiB`` -> bytes. Raises ConfigError in one line."""
    t = text.strip().lower()
    if t == "none":
        return None
    if t == "auto":
        return auto_limit(device)
    m = _SIZE.fullmatch(t)
    if m is None:
        raise ConfigError(
            f"memory-limit: {quote(text)} is not a size (e.g. 4G, 1500M, auto or none)"
        )
    number = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not number < 1 << 62:  # also infinity, from hundreds of digits
        raise ConfigError(f"memory-limit: {quote(text, 24)} is too large")
    value = int(number)
    if value < 256 << 20:
        raise ConfigError(f"memory-limit: {text} is too small (at least 256M)")
    return value


def check_limit(text: str) -> None:
    """Refuse a malformed ``--memory-limit`` without measuring the machine."""
    if text.strip().lower() not in ("auto", "none"):
        parse_limit(text)


def available(device: torch.device | None = None) -> int:
    """Bytes this run may still take: free GPU memory on CUDA; on the CPU, the RAM the
    kernel says is available (MemAvailable), bounded by a cgroup limit, plus what this
    process holds already."""
    if device is not None and device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free) + torch.cuda.memory_allocated(device)
    free = _meminfo("MemAvailable") or 8 << 30
    cap = _cgroup_room()
    if cap is not None:
        free = min(free, cap)
    return free + resident()


def auto_limit(device: torch.device | None = None) -> int:
    return int(AUTO_FRACTION * available(device))


def resident() -> int:
    """This process's resident memory in bytes (0 where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _cgroup_room() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        return max(0, int(text) - used)
    except (OSError, ValueError):
        return None


def activation_values(layers: Sequence[str]) -> float:
    """Values per input pixel that one pass through the network (cut after the deepest of
    ``layers``) computes: every layer's channels over its pooling area, and the input."""
    last = INDEX[deepest(list(layers))]
    return 3.0 + sum(CHANNELS[n] / 4 ** pools_through(n) for n in NAMES[: last + 1])


@dataclass(frozen=True)
class Need:
    """What a stage needs (bytes): ``fixed`` for the whole image whatever the tiling, and
    ``evaluation``, the activations of one evaluation (of one padded tile when tiled);
    ``pairs`` L-BFGS pairs are counted in ``fixed``."""

    fixed: int
    evaluation: int
    tile: int | None
    pairs: int
    #: what ``fixed`` is made of, by name (bytes), for a refusal that explains the floor
    parts: tuple[tuple[str, int], ...] = ()
    #: the network rectifies in place (less memory, ~5% slower); tiles always do
    lean: bool = False

    @property
    def total(self) -> int:
        return self.fixed + self.evaluation


@dataclass(frozen=True)
class Workload:
    """What the estimate reads of a run: the layers, the content layers (targets kept
    for the whole image), the network's bytes per value, the largest style image's
    pixels, the L-BFGS history asked for and the process's baseline."""

    layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    value_bytes: int
    style_pixels: int
    history: int
    baseline: int
    #: positions beyond a tile's core the style terms read (mrf: 1): a wider halo
    reach: int = 0
    #: the layers whose patches a style term matches (mrf's style layers), else empty
    patch_layers: tuple[str, ...] = ()
    #: the network rectifies into new tensors unless lean (``nst.model.vgg.rectifies_apart``)
    apart: bool = False


def _patch_target(work: Workload) -> int:
    """What mrf holds whatever the tile: each patch layer's kept style patches, in float32
    and cast to the network's precision, and a band of the matching's cosines (its
    products, scores and their temporaries: ``PATCH_BANDS`` of them), and the allocator's
    spread on them (``PATCH_SLACK``)."""
    if not work.patch_layers:
        return 0
    from .objective.mrf import MATCH_ROWS, MOST_STYLE_PATCHES, PATCH

    rows = sum(PATCH * PATCH * CHANNELS[n] for n in work.patch_layers) * MOST_STYLE_PATCHES
    bands = PATCH_BANDS * MATCH_ROWS * MOST_STYLE_PATCHES * work.value_bytes
    return rows * (4 + work.value_bytes) + bands + PATCH_SLACK


def _tiling(layers: Sequence[str], tile: int, reach: int = 0) -> Tiling:
    from .objective.tiling import Tiling

    return Tiling.for_layers(layers, tile, reach=reach)


def need(work: Workload, size: tuple[int, int], tile: int | None, lean: bool = False) -> Need:
    """The estimated peak of a stage of ``size`` (h, w), evaluated untiled or in tiles
    of ``tile`` px (``lean``: untiled, rectifying in place; tiles always do)."""
    from .optimize import HISTORY_BYTES, MIN_PAIRS

    h, w = size
    pixels = h * w
    values = activation_values(work.layers)
    if tile is None:
        eval_pixels = pixels
        style_pixels = work.style_pixels
    else:
        tiling = _tiling(work.layers, tile, work.reach)
        eval_pixels = tiling.padded_pixels(size)
        style_pixels = min(work.style_pixels, eval_pixels)
    patch_values = sum(CHANNELS[n] / 4 ** pools_through(n) for n in work.patch_layers)
    lean = lean or tile is not None
    factor = EVAL_FACTOR if work.apart and not lean else LEAN_EVAL_FACTOR
    evaluation = int((factor * values * work.value_bytes + PATCH_BYTES * patch_values)
                     * eval_pixels)  # fmt: skip
    views = PATCH_VIEW_AREA * patch_values * work.value_bytes * work.style_pixels
    encoding = int(FORWARD_FACTOR * values * work.value_bytes * max(style_pixels, eval_pixels)
                   + views)  # fmt: skip
    pair = 2 * 3 * 4 * pixels
    pairs = 0 if work.history == 0 else max(MIN_PAIRS, min(work.history, HISTORY_BYTES // pair))
    content = sum(CHANNELS[n] / 4 ** pools_through(n) for n in work.content_layers)
    parts = (
        ("this process", work.baseline),
        ("torch's runtime", RUNTIME_BYTES),
        ("the network's weights", WEIGHT_VALUES * work.value_bytes),
        ("the image's working copies", VECTORS * 3 * 4 * pixels),
        (f"{pairs} L-BFGS pairs", pairs * pair),
        ("the content targets", int(content * work.value_bytes * pixels)),
        ("mrf's style patches", _patch_target(work)),
    )
    fixed = sum(b for _, b in parts)
    return Need(fixed, max(evaluation, encoding), tile, pairs, parts, lean)


def fit(work: Workload, size: tuple[int, int], limit: int | None, tile: int | None) -> Need:
    """The stage's plan: untiled if it fits ``limit`` (or there is no limit), else
    untiled and lean, else the largest tile that fits; ``tile`` forces a tile size.
    Raises TooLarge, before any work, when even the smallest tile does not fit."""
    if tile is not None:
        return need(work, size, tile)
    whole = need(work, size, None)
    if limit is None or whole.total <= limit:
        return whole
    lean = need(work, size, None, lean=True)
    if lean.total <= limit:
        return lean
    stride = _tiling(work.layers, MIN_TILE, work.reach).stride
    lo = max(MIN_TILE, stride) // stride
    hi = max(size) // stride
    smallest = need(work, size, lo * stride)
    if smallest.total > limit:
        least = f"about {gb(smallest.total)} even in tiles of {lo * stride} px ({floor(smallest)})"
        raise TooLarge(
            f"a {size[1]}x{size[0]} px image needs {least}, more than --memory-limit "
            f"{gb(limit)}: use a smaller --size, --optimizer adam or a higher --memory-limit",
            least,
        )
    while lo < hi:  # the largest tile that fits
        mid = (lo + hi + 1) // 2
        if need(work, size, mid * stride).total <= limit:
            lo = mid
        else:
            hi = mid - 1
    return need(work, size, lo * stride)


def cost(layers: Sequence[str], size: tuple[int, int], tile: int | None, reach: int = 0
         ) -> float:  # fmt: skip
    """An evaluation's cost per pixel relative to an untiled one (for the ETA): the
    pixels the tiles run over, per pixel, and their first pass (``reach``: positions
    beyond the core a term reads, :class:`~nst.objective.tiling.Tiling`)."""
    if tile is None:
        return 1.0
    return _tiling(layers, tile, reach).overhead(size) * (1.0 + FIRST_PASS_SHARE)


def gb(value: int) -> str:
    return f"{value / (1 << 30):.1f} GB"


def floor(n: Need) -> str:
    """What no tiling lowers, in words: ``the floor, 1.1 GB whatever the tiles: this
    process 0.4 GB, ...`` (parts under 0.05 GB left out)."""
    shown = [f"{name} {gb(b)}" for name, b in n.parts if b >= (1 << 30) // 20]
    return f"the floor, {gb(n.fixed)} whatever the tiles: " + ", ".join(shown)
