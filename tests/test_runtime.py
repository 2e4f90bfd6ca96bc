"""--precision auto: bf16 where the hardware runs it natively, fp32 elsewhere (detection mocked)."""

from __future__ import annotations

import pytest
import torch

from nst import runtime
from nst.errors import ConfigError


@pytest.fixture
def flags(monkeypatch):
    def set_flags(*names: str) -> None:
        monkeypatch.setattr(runtime, "cpu_flags", lambda: set(names))
        runtime.cpu_has_fast_bf16.cache_clear()

    yield set_flags
    runtime.cpu_has_fast_bf16.cache_clear()


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (("avx2", "fma"), ("fp32", None)),
        (("avx512f", "avx512bw", "avx512_vnni"), ("fp32", None)),  # AVX-512 emulates bf16
        (("avx512f", "avx512_bf16"), ("bf16", torch.bfloat16)),
        (("amx_tile", "amx_bf16"), ("bf16", torch.bfloat16)),
    ],
)
def test_auto_on_the_cpu_follows_the_flags(flags, cpu, expected):
    flags(*cpu)
    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected


def test_explicit_precisions_are_kept_whatever_the_cpu(flags):
    flags("avx512_bf16")
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("fp32", cpu) == ("fp32", None)  # the paper's values
    flags("avx2")
    assert runtime.resolve_precision("bf16", cpu) == ("bf16", torch.bfloat16)
    with pytest.raises(ConfigError, match="precision fp16 needs a GPU"):
        runtime.resolve_precision("fp16", cpu)


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    label, dtype = runtime.resolve_precision("auto", torch.device("cuda"))
    assert label == expected
    assert dtype == (torch.bfloat16 if bf16 else torch.float16)


def test_flags_come_from_proc_cpuinfo(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16 avx2\nbugs\t: none\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(info if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert runtime.cpu_flags() == {"fpu", "sse2", "avx512_bf16", "avx2"}


class _FakeLibc:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


@pytest.fixture
def libc(monkeypatch):
    """glibc's malloc as :func:`runtime.keep_freed_memory` sees it, recording its calls."""
    fake = _FakeLibc()
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: fake)
    monkeypatch.setattr(runtime.platform, "system", lambda: "Linux")
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("glibc", "2.36"))
    runtime.keep_freed_memory.cache_clear()
    yield fake
    runtime.keep_freed_memory.cache_clear()


def test_freed_memory_is_kept_by_two_mallopt_calls_once(libc):
    assert runtime.keep_freed_memory()
    assert runtime.keep_freed_memory()  # once per process
    # the mmap threshold first (setting either ends glibc's adaptive thresholds)
    assert libc.calls == [(-3, 32 * 2**20), (-1, 2**30)]


def test_freed_memory_elsewhere_than_glibc_changes_nothing(libc, monkeypatch):
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("", ""))
    assert not runtime.keep_freed_memory()
    runtime.keep_freed_memory.cache_clear()
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(runtime.platform, "system", lambda: "Darwin")
    assert not runtime.keep_freed_memory()
    assert libc.calls == []
    runtime.keep_freed_memory.cache_clear()
    monkeypatch.setattr(runtime.platform, "system", lambda: "Linux")
    libc.answer = 0  # glibc refused the value
    assert not runtime.keep_freed_memory()
    assert libc.calls == [(-3, 32 * 2**20)]


@pytest.mark.skipif(
    runtime.platform.system() != "Linux" or runtime.platform.libc_ver()[0] != "glibc",
    reason="glibc only",
)
def test_glibc_takes_the_values():
    runtime.keep_freed_memory.cache_clear()
    assert runtime.keep_freed_memory()
