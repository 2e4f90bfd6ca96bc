"""Planning: inputs are loaded once, sized, checked; bad input is refused before any work."""

import numpy as np
import pytest
import torch
from PIL import Image

import nst
from nst import builtins, planning, runtime
from nst.config import Config
from nst.errors import ConfigError, ImageError

FAST = dict(size=40, iterations=8, seed=1)


def two_region_mask(path, w=48, h=32):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2 :] = (0, 0, 255)
    Image.fromarray(arr).save(path)
    return path


def test_a_plan_fixes_sizes_stages_and_seed(images):
    plan = planning.plan_stylize(images["content"], images["style"], Config(size=48, scales=(24,),
                                 iterations=10, seed=5))  # fmt: skip
    assert plan.out_size == (32, 48) and plan.seed == 5
    assert [(s.height, s.width, s.iterations) for s in plan.stages] == [(16, 24, 10), (32, 48, 5)]
    assert plan.layers == ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv5_1"][:1] + [
        f"conv{b}_1" for b in range(1, 6)
    ]
    assert plan.style_longest(0) == 24 and plan.style_longest(1) == 48
    unseeded = planning.plan_stylize(images["content"], images["style"], Config(size=32))
    assert 0 <= unseeded.seed < 2**31


def test_bad_inputs_are_typed_errors(images, tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        nst.stylize(tmp_path / "nope.png", images["style"], Config(**FAST))
    with pytest.raises(ImageError, match="missing.png: no such file"):
        planning.plan_stylize(
            images["content"], images["style"], Config(**FAST, init=str(tmp_path / "missing.png"))
        )
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        runtime.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError) as exc:
        planning.plan_stylize(images["content"], [images["style"]], Config(style_blend=(1.0, 0.0)))
    assert str(exc.value) == "style-blend has 2 weights for 1 style image(s)"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError) as exc:
            runtime.resolve_device("cuda")
        assert str(exc.value) == "device cuda is not available on this machine (use --device cpu)"


def test_builtin_images_are_named_in_one_place():
    t = planning.load("builtin:swirls")
    assert t.shape == (3, 400, 512)
    assert builtins.lookup("builtin:chelsea").kind == "photo"
    assert builtins.PAINTINGS == ("swirls", "mosaic")
    assert builtins.stem("builtin:mosaic") == "mosaic" and builtins.stem("/a/b/c.jpg") == "c"
    with pytest.raises(ImageError) as exc:
        planning.load("builtin:mona_lisa")
    assert str(exc.value).startswith("builtin:mona_lisa: no such built-in image (known: builtin:")


def test_mask_errors_name_the_problem(images, tmp_path):
    mask = two_region_mask(tmp_path / "mask.png")
    with pytest.raises(ImageError) as exc:
        planning.plan_stylize(
            images["content"],
            images["style"],
            Config(size=32, mask=str(mask), regions=(("#ff0000", "1"),)),
        )
    assert str(exc.value) == (
        f"{mask}: colour #0000ff (and others) covers 50% of the mask but is not listed in --regions"
    )
    with pytest.raises(ConfigError, match="regions: style 2 is used but only 1 given"):
        planning.plan_stylize(
            images["content"], images["style"],
            Config.from_dict({"size": 32, "mask": str(mask), "regions": "#ff0000=1,#0000ff=2"}),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="regions: colour 'red' is not of the form #rrggbb"):
        Config.from_dict({"mask": str(mask), "regions": "red=1"})
    with pytest.raises(ConfigError, match="mask: say which style goes where with --regions"):
        Config(mask=str(mask))
