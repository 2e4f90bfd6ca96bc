"""The Python API end to end on the real weights at tiny sizes."""

import itertools
import threading

import pytest
import torch

import nst
from nst import api, controls
from nst.config import Config
from nst.errors import ConfigError, ImageError
from nst.events import Finished, Started, Step
from tests.conftest import requires_weights

pytestmark = requires_weights
FAST = dict(size=40, iterations=8, seed=1)


def test_stylize_returns_an_image_of_the_requested_size(images):
    img = nst.stylize(images["content"], images["style"], Config(**FAST))
    assert img.shape == (3, 27, 40) and img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


def test_events_tell_the_whole_run_and_the_loss_falls(images):
    events = []
    nst.stylize(images["content"], images["style"], Config(**FAST), events.append)
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iteration for s in steps] == list(range(9))
    assert steps[0].evaluations == 1
    assert all(b.evaluations > a.evaluations for a, b in itertools.pairwise(steps))
    assert steps[-1].loss < steps[0].loss / 3
    assert set(steps[0].style_losses) == {f"conv{b}_1" for b in range(1, 6)}
    assert steps[0].style_loss == pytest.approx(
        sum(0.2 * v for v in steps[0].style_losses.values())
    )
    assert events[-1].iterations == 8 and events[-1].reason == "completed"
    assert events[0].seed == 1 and events[0].precision == "fp32"


def test_same_seed_same_image_other_seed_other_image(images):
    a = nst.stylize(images["content"], images["style"], Config(**FAST))
    b = nst.stylize(images["content"], images["style"], Config(**FAST))
    c = nst.stylize(images["content"], images["style"], Config(**{**FAST, "seed": 2}))
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.01


def test_fixed_initialisations_do_not_depend_on_the_seed(images):
    for init in ("content", "style", str(images["style2"])):
        x = nst.stylize(images["content"], images["style"], Config(**{**FAST, "init": init}))
        y = nst.stylize(
            images["content"], images["style"], Config(**{**FAST, "init": init, "seed": 9})
        )
        assert torch.equal(x, y), init


def test_unseeded_runs_report_the_seed_they_drew(images):
    events = []
    cfg = Config(size=32, iterations=1)
    nst.stylize(images["content"], images["style"], cfg, events.append)
    seed = events[0].seed
    again = []
    nst.stylize(images["content"], images["style"], cfg.replace(seed=seed), again.append)
    first = [e for e in events if isinstance(e, Step)][-1]
    second = [e for e in again if isinstance(e, Step)][-1]
    assert first.loss == second.loss


def test_stop_keeps_the_image_and_previews_arrive(images):
    stop = threading.Event()
    events = []

    def on_event(e):
        events.append(e)
        if isinstance(e, Step) and e.iteration == 3:
            stop.set()

    img = nst.stylize(
        images["content"],
        images["style"],
        Config(**{**FAST, "iterations": 50}),
        on_event,
        stop=stop,
        preview_every=2,
    )
    assert events[-1].reason == "cancelled" and events[-1].iterations == 3
    previews = [e.iteration for e in events if isinstance(e, Step) and e.preview is not None]
    assert previews == [0, 2]
    assert img.shape == (3, 27, 40)


def test_adam_runs(images):
    events = []
    nst.stylize(images["content"], images["style"], Config(**FAST, optimizer="adam"), events.append)
    steps = [e for e in events if isinstance(e, Step)]
    assert len(steps) == 9 and steps[-1].loss < steps[0].loss


def test_style_image_is_scaled_to_the_output_unless_told(images, monkeypatch):
    sizes = []
    real = api.resize_longest

    def spy(t, longest):
        sizes.append(longest)
        return real(t, longest)

    monkeypatch.setattr(api, "resize_longest", spy)
    nst.stylize(images["content"], images["style"], Config(size=40, iterations=0, seed=0))
    nst.stylize(
        images["content"], images["style"], Config(size=40, iterations=0, seed=0, style_size=24)
    )
    nst.stylize(
        images["content"], images["style"], Config(size=40, iterations=0, seed=0, style_scale=0.5)
    )
    assert sizes == [40, 24, 20]


def test_several_styles_blend_1_0_equals_the_single_style(images):
    one = nst.stylize(images["content"], images["style"], Config(**FAST))
    blend = nst.stylize(
        images["content"],
        [images["style"], images["style2"]],
        Config(**FAST, style_blend=(1.0, 0.0)),
    )
    assert torch.allclose(one, blend, atol=1e-6)
    with pytest.raises(ConfigError) as exc:
        nst.stylize(images["content"], [images["style"]], Config(**FAST, style_blend=(1.0, 0.0)))
    assert str(exc.value) == "style-blend has 2 weights for 1 style image(s)"


def test_luminance_mode_keeps_the_contents_chroma(images):
    cfg = Config(**FAST, preserve_colors="luminance")
    img = nst.stylize(images["content"], images["style"], cfg)
    content = api.resize_longest(api.load(images["content"]), 40)
    chroma_out = controls.rgb_to_yiq(img)[1:]
    chroma_in = controls.rgb_to_yiq(content)[1:]
    inside = ((img > 0.01) & (img < 0.99)).all(dim=0)  # where no channel was clipped
    assert torch.allclose(chroma_out[:, inside], chroma_in[:, inside], atol=2e-3)


def test_coarse_to_fine_runs_each_stage(images):
    events = []
    nst.stylize(
        images["content"],
        images["style"],
        Config(size=48, scales=(24,), iterations=4, seed=0),
        events.append,
    )
    starts = [e for e in events if isinstance(e, Started)]
    assert [(s.width, s.height, s.iterations) for s in starts] == [(24, 16, 4), (48, 32, 2)]
    assert events[-1].iterations == 6


def test_bad_inputs_are_typed_errors(images, tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        nst.stylize(tmp_path / "nope.png", images["style"], Config(**FAST))
    with pytest.raises(ImageError, match="missing.png: no such file"):
        nst.stylize(
            images["content"], images["style"], Config(**FAST, init=str(tmp_path / "missing.png"))
        )
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        api.resolve_precision("fp16", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError) as exc:
            api.resolve_device("cuda")
        assert str(exc.value) == "device cuda is not available on this machine (use --device cpu)"


def test_builtin_images_load():
    t = api.load("builtin:swirls")
    assert t.shape == (3, 400, 512)
    with pytest.raises(ImageError, match="no such built-in image"):
        api.load("builtin:mona_lisa")


def _two_region_mask(path, w=48, h=32):
    import numpy as np
    from PIL import Image

    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2 :] = (0, 0, 255)
    Image.fromarray(arr).save(path)
    return path


def test_masks_put_each_style_in_its_region(images, tmp_path):
    from nst.objective import gram_matrix, guided_gram_matrix, style_layer_loss

    mask = _two_region_mask(tmp_path / "mask.png")
    cfg = Config(
        size=48,
        iterations=40,
        seed=0,
        mask=str(mask),
        regions="#ff0000=1,#0000ff=2",
        style_weight=1e5,
    )
    styles = ["builtin:swirls", "builtin:mosaic"]
    img = nst.stylize(images["content"], styles, cfg)
    ex = api.extractor_for(cfg, ["conv2_1"], torch.device("cpu"))
    with torch.no_grad():
        feats = ex(img.unsqueeze(0) * 255, ["conv2_1"])["conv2_1"]
        targets = [
            gram_matrix(
                ex(api.resize_longest(api.load(s), 48).unsqueeze(0) * 255, ["conv2_1"])["conv2_1"]
            )
            for s in styles
        ]
    h, w = feats.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    right = 1 - left
    own_left = style_layer_loss(guided_gram_matrix(feats, left), targets[0])
    other_left = style_layer_loss(guided_gram_matrix(feats, left), targets[1])
    own_right = style_layer_loss(guided_gram_matrix(feats, right), targets[1])
    other_right = style_layer_loss(guided_gram_matrix(feats, right), targets[0])
    assert own_left < other_left / 2 and own_right < other_right / 2


def test_a_content_region_keeps_the_photo(images, tmp_path):
    mask = _two_region_mask(tmp_path / "mask.png")
    cfg = Config(size=48, iterations=5, seed=0, mask=str(mask), regions="#ff0000=1,#0000ff=content")
    img = nst.stylize(images["content"], images["style"], cfg)
    content = api.load(images["content"])
    assert torch.allclose(img[:, :, 30:], content[:, :, 30:], atol=1e-6)
    assert not torch.allclose(img[:, :, :18], content[:, :, :18], atol=0.05)


def test_mask_errors_name_the_problem(images, tmp_path):
    mask = _two_region_mask(tmp_path / "mask.png")
    with pytest.raises(ImageError) as exc:
        nst.stylize(
            images["content"],
            images["style"],
            Config(size=32, iterations=1, mask=str(mask), regions="#ff0000=1"),
        )
    assert str(exc.value) == (
        f"{mask}: colour #0000ff (and others) covers 50% of the mask but is not listed in --regions"
    )
    with pytest.raises(ConfigError, match="regions: style 2 is used but only 1 given"):
        nst.stylize(
            images["content"],
            images["style"],
            Config(size=32, iterations=1, mask=str(mask), regions="#ff0000=1,#0000ff=2"),
        )
    with pytest.raises(ConfigError, match="regions: colour 'red' is not of the form #rrggbb"):
        Config(mask=str(mask), regions="red=1")
    with pytest.raises(ConfigError, match="mask: say which style goes where with --regions"):
        Config(mask=str(mask))
