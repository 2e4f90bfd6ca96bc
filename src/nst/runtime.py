"""Where and how the network runs: device, precision, and the network cache.

The cache holds whole networks (up to ``pool5``) keyed by weights, pooling,
normalization, device and dtype, at most :data:`NETWORKS_CACHED` of them, so a
long-running server never holds more; a run truncates its network after the deepest
layer it uses without copying weights.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from collections.abc import Sequence

import torch

from . import process
from .errors import ConfigError
from .layers import deepest
from .model.classifier import VGGClassifier
from .model.normalization import normalized
from .model.vgg import VGG19Features, build_extractor
from .model.weights import load_weights

#: networks kept in memory at most (e.g. avg and max pooling, or fp32 and bf16)
NETWORKS_CACHED = 2
#: :func:`keep_freed_memory`: blocks up to this size come from glibc's heap, larger ones
#: from mappings of their own (glibc's own largest adaptive threshold on 64 bits, so the
#: peak stays where it was: docs/PERFORMANCE.md)
HEAP_BLOCKS_UP_TO = 32 << 20
#: ... and up to this much free memory at the heap's top is kept, not handed back
KEPT_FREE = 1 << 30
#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable device is a ConfigError."""
    name = name.strip().lower()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda is not available on this machine (use --device cpu)")
    if device.type == "mps" and not has_mps:
        raise ConfigError("device mps is not available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


#: CPU flags (Linux /proc/cpuinfo) of native bf16 matrix instructions
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16 or AMX).

    torch's own ``mkldnn._is_mkldnn_bf16_supported`` is also true on AVX-512 CPUs that
    only emulate bf16 (slower than fp32 there), so the flags decide.
    """
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """(label, network dtype or None for fp32) for a requested precision on ``device``.

    ``auto``: bf16 on CUDA GPUs that support it (else fp16); on CPUs bf16 where they
    have native bf16 instructions (AVX512-BF16 or AMX), else fp32; fp32 on MPS. The
    paper's exact loss values are ``fp32``'s (bf16 moves them by up to ~1.3%).
    """
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu" and cpu_has_fast_bf16():
            precision = "bf16"
        else:
            precision = "fp32"
    if precision == "fp32":
        return "fp32", None
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return precision, torch.bfloat16 if precision == "bf16" else torch.float16


def load_network(
    weights: str | None, pooling: str, normalize: bool, device: str, dtype: torch.dtype
) -> VGG19Features:
    """The whole network (to ``pool5``), normalized as asked, on ``device`` in ``dtype``."""
    w = load_weights(weights)
    if normalize:
        w = normalized(w, pooling)
    return build_extractor(w, ["pool5"], pooling=pooling, device=device, dtype=dtype)


@functools.lru_cache(maxsize=NETWORKS_CACHED)
def _network(
    weights: str | None, pooling: str, normalize: bool, device: str, dtype: torch.dtype
) -> VGG19Features:
    return load_network(weights, pooling, normalize, device, dtype)


def network(
    weights: str | None,
    pooling: str,
    normalize: bool,
    layers: Sequence[str],
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> VGG19Features:
    """The cached network for these settings, truncated after the deepest of ``layers``.
    On CUDA, cuDNN's autotuner is turned on if the process's owner asked for it
    (:attr:`nst.process.ProcessSettings.tune_convolutions`)."""
    if torch.device(device).type == "cuda" and process.current().tune_convolutions:
        torch.backends.cudnn.benchmark = True
    net = _network(weights, pooling, normalize, str(device), dtype or torch.float32)
    return net.truncated(deepest(list(layers)))


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (once per process; there is no
    way back): blocks up to :data:`HEAP_BLOCKS_UP_TO` from the heap and up to
    :data:`KEPT_FREE` of free memory at its top kept. By default glibc hands freed memory
    back and the system zeroes it page by page when it is touched again, every
    evaluation (one-stage runs 9-11% faster kept, the peak 1-13% higher; ``quality``
    unchanged: benchmarks/allocator.py). Whether it was done: False where the C library
    is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # the mmap threshold first: setting either ends glibc's adaptive thresholds
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEPT_FREE)
    )


def load_classifier(weights: str | None, device: str) -> VGGClassifier | None:
    """The classifier (fc6-fc8) of ``weights`` on ``device``, or None if they have none."""
    w = load_weights(weights)
    return VGGClassifier(w).to(device) if w.classifier is not None else None


@functools.lru_cache(maxsize=NETWORKS_CACHED)
def classifier(weights: str | None, device: torch.device | str = "cpu") -> VGGClassifier | None:
    """The cached classifier of ``weights`` (None for the built-in weights: they have none)."""
    return load_classifier(weights, str(device))


def clear_cache() -> None:
    """Forget every cached network (tests; a server that changes weights)."""
    _network.cache_clear()
    classifier.cache_clear()
