import pytest
import torch

from nst.layers import CONV_NAMES
from nst.model import normalization as N
from nst.model.vgg import VGG19Features
from tests.conftest import gen, requires_weights, tiny_weights


def _images():
    g0 = torch.Generator().manual_seed(1)
    return [torch.rand(1, 3, 24, 24, generator=g0) * 255 for _ in range(3)]


def test_normalized_network_computes_the_same_up_to_a_per_filter_scale():
    w = tiny_weights()
    means = N.floor_means(N.measure_means(w, "avg", _images()))
    nw = N.normalize_weights(w, means)
    x = torch.rand(1, 3, 32, 32, generator=gen(12)) * 255
    raw = VGG19Features(w, "avg")(x, CONV_NAMES)
    norm = VGG19Features(nw, "avg")(x, CONV_NAMES)
    for name in CONV_NAMES:
        expected = raw[name] / means[name].view(1, -1, 1, 1)
        scale = float(expected.abs().max())
        assert torch.allclose(norm[name], expected, rtol=1e-3, atol=1e-4 * scale), name


def test_each_filter_then_averages_one_on_the_measured_images():
    w = tiny_weights()
    raw = N.measure_means(w, "max", _images())
    means = N.floor_means(raw)
    after = N.measure_means(N.normalize_weights(w, means), "max", _images())
    for name in CONV_NAMES:
        live = means[name] == raw[name]  # filters that were not floored
        assert torch.allclose(after[name][live], torch.ones(int(live.sum())), rtol=1e-3), name


def test_nearly_silent_filters_are_floored_at_a_tenth_of_the_median():
    means = {"conv1_1": torch.tensor([1.0, 2.0, 3.0, 4.0, 1e-6])}
    floored = N.floor_means(means)["conv1_1"]
    assert floored.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0, 0.2])


def test_other_weights_are_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "CALIBRATION_IMAGES", ("chelsea",))
    monkeypatch.setattr(N, "SCALES", (32,))
    N.means_for.cache_clear()
    calls = []
    real = N.measure_means
    monkeypatch.setattr(N, "measure_means", lambda *a: calls.append(1) or real(*a))
    w = tiny_weights(seed=3)
    first = N.normalized(w, "avg")
    second = N.normalized(w, "avg")
    assert len(calls) == 1
    assert list(tmp_path.glob("vgg19-norm-tiny3-avg.pt"))
    assert torch.equal(first.convs["conv2_1"][0], second.convs["conv2_1"][0])


@requires_weights
def test_shipped_means_belong_to_the_builtin_weights_and_hold_out():
    from nst.model.weights import load_builtin

    w = load_builtin()
    table = N._builtin_table()
    assert table["weights_key"] == w.key
    held_out = N.reference_batches(N.HELD_OUT_IMAGES, scales=(224,))
    after = N.measure_means(N.normalized(w, "avg"), "avg", held_out)
    for name in CONV_NAMES:
        assert 0.6 < float(after[name].mean()) < 1.6, name
