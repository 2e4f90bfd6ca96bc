"""The paper's normalized VGG19.

Gatys et al. rescale the network so that every filter's mean rectified response
over images and positions is 1. Because ReLU and both poolings commute with a
positive per-channel scale, dividing filter i of layer l by its mean m_li and
multiplying the next layer's input weights by the same m_li keeps what the
network computes, up to that per-filter scale:

    W'_l[i, j] = W_l[i, j] * m_{l-1, j} / m_{l, i},    b'_l[i] = b_l[i] / m_{l, i}

The means are measured once on the original network, on a fixed set of natural
photographs that ship with scikit-image, at three scales each. A filter that is
nearly silent on those images would otherwise be scaled up by orders of
magnitude (measured: ~1e4 on conv1_2, which made L-BFGS diverge), so each mean
is floored at ``FLOOR`` times its layer's median.

For the built-in weights the means ship in ``data/vgg19_normalization.pt``,
made by ``python -m nst.model.normalization`` (this module); for other weights
they are measured on first use and cached under ``~/.cache/nst``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsError
from ..layers import CONV_NAMES
from .vgg import VGG19Features
from .weights import VGGWeights, load_builtin

FLOOR = 0.1
SCALES = (224, 320, 448)
#: scikit-image photos the means are measured on (all bundled with the package)
CALIBRATION_IMAGES = (
    "astronaut", "chelsea", "rocket", "hubble_deep_field", "stereo_motorcycle",
    "immunohistochemistry", "retina", "brick", "gravel", "camera", "coins", "moon",
)  # fmt: skip
#: held out, used only to check that the normalization generalizes
HELD_OUT_IMAGES = ("coffee", "grass", "cell")
DATA_FILE = "vgg19_normalization.pt"


def skimage_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as an RGB uint8 array (H, W, 3)."""
    from skimage import data

    loaded = getattr(data, name)()
    img = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)  # stereo pairs
    if img.dtype != np.uint8:
        img = (img.astype(np.float64) / max(float(img.max()), 1.0) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _scaled(img: np.ndarray, longest: int) -> torch.Tensor:
    from PIL import Image

    pil = Image.fromarray(img)
    w, h = pil.size
    k = longest / max(w, h)
    pil = pil.resize((max(16, round(w * k)), max(16, round(h * k))), Image.Resampling.LANCZOS)
    arr = np.asarray(pil, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def reference_batches(names: Sequence[str], scales: Sequence[int] = SCALES) -> list[torch.Tensor]:
    """Every image of ``names`` at every scale, as (1, 3, H, W) RGB 0..255 tensors."""
    return [_scaled(skimage_photo(n), s) for n in names for s in scales]


@torch.no_grad()
def measure_means(
    weights: VGGWeights, pooling: str, images: Iterable[torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Mean rectified response of every filter of every conv layer.

    Each image contributes its spatial mean with equal weight.
    """
    names = [n for n in CONV_NAMES if n in weights.convs]
    model = VGG19Features(weights, pooling=pooling, last_layer=names[-1])
    sums = {name: torch.zeros(weights.convs[name][0].shape[0], dtype=torch.float64)
            for name in names}  # fmt: skip
    count = 0
    for x in images:
        feats = model(x, names)
        for name, f in feats.items():
            sums[name] += f.double().mean(dim=(0, 2, 3))
        count += 1
    if count == 0:
        raise ValueError("no images to measure the normalization on")
    return {name: (s / count).float() for name, s in sums.items()}


def floor_means(means: dict[str, torch.Tensor], floor: float = FLOOR) -> dict[str, torch.Tensor]:
    """Raise every mean to at least ``floor`` times its layer's median."""
    out = {}
    for name, m in means.items():
        limit = floor * float(m.median())
        out[name] = m.clamp(min=max(limit, 1e-12))
    return out


def normalize_weights(weights: VGGWeights, means: dict[str, torch.Tensor]) -> VGGWeights:
    """Scale the weights so that filter i of layer l responds ``1/m_li`` times as strongly."""
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    prev: torch.Tensor | None = None
    for name in (n for n in CONV_NAMES if n in weights.convs):
        w, b = weights.convs[name]
        m = means[name].to(w.dtype).clamp_min(1e-12)  # a dead filter stays dead, not NaN
        w = w / m.view(-1, 1, 1, 1)
        if prev is not None:
            w = w * prev.view(1, -1, 1, 1)
        convs[name] = (w.contiguous(), (b / m).contiguous())
        prev = m
    # the classifier is dropped: it was trained on the unnormalized responses
    return VGGWeights(convs, weights.input_space, weights.source + "+normalized", weights.key,
                      None, weights.name)  # fmt: skip


def _builtin_table() -> dict[str, dict[str, torch.Tensor]]:
    path = importlib.resources.files("nst.model") / "data" / DATA_FILE
    try:
        with importlib.resources.as_file(path) as p:
            data = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"normalization data {DATA_FILE} is missing from the package") from None
    return data


def _cache_dir() -> Path:
    root = os.environ.get("NST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nst"
    )
    return Path(root)


@functools.lru_cache(maxsize=8)
def means_for(weights_key: str, source: str, pooling: str) -> dict[str, torch.Tensor]:
    """Floored means for the weights identified by ``weights_key`` (see :func:`normalized`)."""
    if source.startswith("builtin:"):
        table = _builtin_table()
        if table.get("weights_key") == weights_key:
            return table[pooling]
    cache = _cache_dir() / f"vgg19-norm-{weights_key}-{pooling}.pt"
    if cache.is_file():
        try:
            return torch.load(cache, map_location="cpu", weights_only=True)
        except Exception:
            pass  # a damaged cache is measured again
    return {}


def normalized(weights: VGGWeights, pooling: str) -> VGGWeights:
    """``weights`` normalized as in the paper (means shipped, cached or measured now)."""
    means = means_for(weights.key, weights.source, pooling)
    if not means:
        means = floor_means(measure_means(weights, pooling, reference_batches(CALIBRATION_IMAGES)))
        cache = _cache_dir() / f"vgg19-norm-{weights.key}-{pooling}.pt"
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp-{os.getpid()}")
            torch.save(means, tmp)
            os.replace(tmp, cache)
        except OSError:
            pass  # caching is an optimisation only
        means_for.cache_clear()
    return normalize_weights(weights, means)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the shipped means of the built-in weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).parent / "data" / DATA_FILE
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    weights = load_builtin()
    table: dict[str, object] = {
        "weights_key": weights.key,
        "images": ",".join(CALIBRATION_IMAGES),
        "scales": ",".join(map(str, SCALES)),
        "floor": FLOOR,
    }
    batches = reference_batches(CALIBRATION_IMAGES)
    held_out = reference_batches(HELD_OUT_IMAGES)
    for pooling in ("avg", "max"):
        raw = measure_means(weights, pooling, batches)
        means = floor_means(raw)
        floored = sum(int((means[n] > raw[n]).sum()) for n in CONV_NAMES)
        table[pooling] = means
        check = measure_means(normalize_weights(weights, means), pooling, held_out)
        lo = min(float(check[n].min()) for n in CONV_NAMES)
        hi = max(float(check[n].max()) for n in CONV_NAMES)
        layer_means = [float(check[n].mean()) for n in CONV_NAMES]
        print(
            f"{pooling}: {floored} filters floored; held-out filter means {lo:.3g}..{hi:.3g}, "
            f"layer averages {min(layer_means):.3f}..{max(layer_means):.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(table, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
