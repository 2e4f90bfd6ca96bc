import pytest

from nst.config import NOISE_ITERATIONS, OPTIONS, Config, start_advice, start_keyword
from nst.errors import ConfigError


def test_defaults_are_the_papers():
    c = Config()
    assert c.content_layers == (("conv4_2", 1.0),)
    assert c.style_layers == tuple((f"conv{b}_1", 0.2) for b in range(1, 6))
    assert c.content_weight / c.style_weight == pytest.approx(1e-3)
    assert c.pooling == "avg" and c.normalize and c.optimizer == "lbfgs"
    assert c.init == "auto" and c.iterations >= NOISE_ITERATIONS  # auto: noise, as the paper


def test_config_holds_typed_values_and_is_frozen():
    c = Config(style_layers=(("conv1_1", 0.5), ("conv2_1", 0.5)), scales=[128, 256])
    assert c.scales == (128, 256)
    with pytest.raises(AttributeError):
        c.size = 3  # type: ignore[misc]
    with pytest.raises(ConfigError) as exc:
        Config(style_layers="relu1_1,relu2_1")  # type: ignore[arg-type]
    assert str(exc.value).startswith("style-layers: 'relu1_1,relu2_1' is text; Config takes typed")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 8}, "size must be between 16 and 16384 (got 8)"),
        ({"size": 256.0}, "size must be an integer (got 256.0)"),
        ({"iterations": -1}, "iterations must be between 1 and 1000000 (got -1)"),
        ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam (got 'sgd')"),
        ({"style_weight": -1.0}, "style-weight must be between 0 and 1e+12 (got -1)"),
        ({"content_weight": float("nan")}, "content-weight must be a finite number (got nan)"),
        ({"lr": 0.0}, "lr must be > 0 and at most 10000 (got 0)"),
        ({"tv_weight": 1e30}, "tv-weight must be between 0 and 10000 (got 1e+30)"),
        ({"style_scale": 600.0}, "style-scale must be > 0 and at most 8 (got 600)"),
        ({"pooling": "sum"}, "pooling must be one of avg, max (got 'sum')"),
        ({"style_blend": (0.0, 0.0)}, "style-blend: the weights must not all be 0"),
        ({"scales": (512, 256)}, "scales: give the stage sizes from small to large, e.g. 256,512"),
        ({"precision": "int8"}, "precision must be one of auto, fp32, bf16, fp16 (got 'int8')"),
        ({"seed": -1}, "seed must be between 0 and 9223372036854775807 (got -1)"),
        ({"size": 4096, "style_scale": 8.0}, "style-scale: the style image would be 32768 px, "
         "over the 16384 px limit"),
    ],
)  # fmt: skip
def test_validation_messages(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        Config(**kwargs)
    assert str(exc.value) == message


def test_from_dict_parses_text_and_json_the_same_way():
    text = Config.from_dict(
        {"size": "64", "style_weight": "1e4", "normalize": "false", "seed": "",
         "style_blend": "0.7,0.3", "scales": "32,64", "style_layers": "relu1_1,relu2_1"}
    )  # fmt: skip
    json = Config.from_dict(
        {"size": 64, "style_weight": 1e4, "normalize": False, "seed": None,
         "style_blend": [0.7, 0.3], "scales": [32, 64], "style_layers": ["conv1_1", "conv2_1"]}
    )  # fmt: skip
    assert text == json
    assert text.size == 64 and text.normalize is False and text.seed is None
    assert text.style_layers == (("conv1_1", 0.5), ("conv2_1", 0.5))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 1}, "unknown parameter(s): colour"),
        ({"size": 1.5}, "size: 1.5 is not an integer"),
        ({"size": "1.5"}, "size: '1.5' is not an integer"),
        ({"size": True}, "size: True is not an integer"),
        ({"scales": "256.7,512"}, "scales: '256.7' is not an integer"),
        ({"scales": [256.7, 512]}, "scales: 256.7 is not an integer"),
        ({"scales": [[256]]}, "scales: [256] is not an integer"),
        ({"style_weight": float("inf")}, "style-weight must be a finite number (got inf)"),
        ({"style_weight": "nan"}, "style-weight must be a finite number (got nan)"),
        ({"style_weight": {"a": 1}}, "style-weight: {'a': 1} is not a number"),
        ({"style_layers": [["conv1_1", {"w": 1}]]}, "style-layers: {'w': 1} is not a number"),
        ({"style_layers": [[1, 2, 3]]}, "style-layers: [1, 2, 3] is not a layer or a "
         "[layer, weight] pair"),
        ({"style_layers": ""}, "style-layers: at least one layer is needed"),
        ({"regions": [["#ff0000"]]}, "regions: ['#ff0000'] is not a [colour, style] pair"),
        ({"pooling": ["avg"]}, "pooling: ['avg'] is not text"),
        ({"normalize": "maybe"}, "normalize: 'maybe' is not true or false"),
        ({"size": None}, "size: a value is needed"),
    ],
)  # fmt: skip
def test_the_boundary_parser_refuses_with_one_line(data, message):
    with pytest.raises(ConfigError) as exc:
        Config.from_dict(data)
    assert str(exc.value) == message


def test_from_dict_keeps_a_base_and_round_trips():
    c = Config.from_dict(
        {
            "size": 200,
            "style_layers": "conv1_1:0.3,conv3_1:0.7",
            "scales": "100",
            "seed": 4,
            "regions": "#ff0000=1",
            "mask": "m.png",
        }
    )
    assert Config.from_dict(c.to_dict()) == c
    assert Config.from_dict({"iterations": 7}, base=c) == c.replace(iterations=7)
    with pytest.raises(ConfigError, match="expected an object"):
        Config.from_dict(["size", 4])


def test_every_option_reaches_the_command_line_and_the_page_it_is_declared_for():
    """What the declarations promise is there: each stylize option is a flag of ``nst
    stylize --help`` with its help, and the page's schema holds exactly the options a
    browser may set, with their bounds."""
    from typer.testing import CliRunner

    from nst.cli import app

    shown = CliRunner().invoke(app, ["stylize", "--help"], env={"COLUMNS": "400"}).output
    for opt in Config.options_for("stylize").values():
        assert opt.flag in shown, opt.flag
        assert opt.help.split()[0] in shown, opt.name
    schema = {f["name"]: f for f in Config.web_schema({"max_size": 700})}
    browser = {n for n, o in OPTIONS.items() if o.web in ("main", "advanced")}
    assert set(schema) == browser and "device" not in schema and "weights" not in schema
    assert schema["pooling"]["choices"] == ["avg", "max"]
    assert (schema["size"]["min"], schema["size"]["max"]) == (16, 700)  # the cap applies


def test_coarse_to_fine_stages():
    assert Config(size=512).stage_sizes == (512,)
    assert Config(size=1024).stage_sizes == (512, 1024)
    assert Config(size=2048).stage_sizes == (512, 1024, 2048)
    assert Config(size=1000, scales=(250, 500)).stage_sizes == (250, 500, 1000)
    assert Config(size=1024, scales=(1024,)).stage_sizes == (1024,)
    assert Config(size=1024, iterations=300).stage_iterations == (300, 150)
    assert Config(iterations=1, size=2048).stage_iterations == (1, 1, 1)
    with pytest.raises(ConfigError, match="iterations must be between 1 and 1000000"):
        Config(iterations=-2)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (0, "iterations must be between 1 and 1000000 (got 0)"),
        ("0", "iterations must be between 1 and 1000000 (got 0)"),
        ("autox", "iterations: 'autox' is not an integer"),
        (True, "iterations: True is not an integer"),
        (2.5, "iterations: 2.5 is not an integer"),
    ],
)
def test_iterations_auto_is_the_word_only(given, message):
    """Only the word means auto; a number is an integer option's, messages and all."""
    with pytest.raises(ConfigError) as caught:
        Config.from_dict({"iterations": given})
    assert str(caught.value) == message
    assert type(Config.from_dict({"iterations": "12"}).iterations) is int


def test_iterations_auto_budgets_each_stage_by_max_iterations():
    from nst.options import AUTO

    c = Config.from_dict({"iterations": "Auto", "max_iterations": "600", "size": 1024})
    assert c.iterations == AUTO and c.auto and c.budget == 600
    assert c.stage_iterations == (600, 300)  # at most; each stage ends when it settles
    assert c.to_dict()["iterations"] == "auto" and c.text("iterations") == "auto"
    assert Config.from_dict(c.to_dict()) == c  # through JSON and back
    fixed = Config(iterations=300, max_iterations=600)
    assert not fixed.auto and fixed.budget == 300  # the cap applies to auto only
    with pytest.raises(ConfigError, match="max-iterations: at most 400 on this server"):
        c.check_caps({"max_iterations": 400})


def test_learning_rate_defaults_by_optimizer():
    assert Config().learning_rate == 1.0
    assert Config(optimizer="adam").learning_rate == 5.0
    assert Config(optimizer="adam", lr=2.0).learning_rate == 2.0


def test_start_size_climbs_by_the_scale_step_to_the_size():
    assert Config(size=256, start_size=128).stage_sizes == (128, 256)
    assert Config(size=256, start_size=128, scale_step=1.414).stage_sizes == (128, 181, 256)
    assert Config(size=1000, start_size=250).stage_sizes == (250, 500, 1000)
    assert Config(size=200, start_size=256).stage_sizes == (200,)
    c = Config(size=256, start_size=128, scale_step=1.414, iterations=100)
    assert c.stage_iterations == (100, 50, 25)


def test_a_preset_applies_beneath_the_options_given_with_it():
    from nst.config import PRESETS

    fast = Config.from_dict({"preset": "fast"})
    for name, value in PRESETS["fast"].items():
        assert fast.to_dict()[name] == value
    assert fast.preset == "fast"
    mine = Config.from_dict({"preset": "fast", "iterations": "7", "init": "noise"})
    assert mine.iterations == 7 and mine.init == "noise"  # explicit wins
    assert mine.style_loss == PRESETS["fast"]["style_loss"]
    paper = Config.from_dict({"preset": "paper"})
    # the paper's method is the default (auto starts from noise at the default iterations)
    assert paper.replace(preset=None, init="auto") == Config()
    assert start_keyword(Config(), True) == start_keyword(paper, True) == "noise"
    base = Config.from_dict({"size": 300})
    assert Config.from_dict({"preset": "quality"}, base=base).size == 300
    with pytest.raises(ConfigError, match="preset must be one of paper, quality, fast"):
        Config.from_dict({"preset": "best"})
    assert all(set(b) <= set(OPTIONS) for b in PRESETS.values())
    assert Config().identity() == Config.from_dict({"preset": "paper", "init": "auto"}).identity()


def test_a_preset_applies_in_config_itself_as_in_from_dict():
    from nst.config import PRESETS

    fast = Config(preset="fast")  # the Python API: no from_dict needed
    assert fast == Config.from_dict({"preset": "fast"})
    assert (fast.style_loss, fast.init, fast.iterations) == ("w2", "content", 60)
    mine = Config(preset="fast", iterations=7, style_loss="gram")  # explicit wins
    assert (mine.iterations, mine.style_loss, mine.init) == (7, "gram", "content")
    again = Config(size=300).replace(preset="quality")  # beneath the changes, over the copy
    assert again.size == 300 and again.start_size == PRESETS["quality"]["start_size"]
    assert again.replace(size=200).start_size == PRESETS["quality"]["start_size"]
    with pytest.raises(ConfigError, match="preset must be one of"):
        Config(preset="best")


def test_auto_starts_from_the_photo_when_noise_has_too_few_iterations():
    few = NOISE_ITERATIONS - 1
    assert start_keyword(Config(iterations=few), stylizing=True) == "content"
    assert start_keyword(Config(iterations=NOISE_ITERATIONS), stylizing=True) == "noise"
    assert start_keyword(Config(iterations=few), stylizing=False) == "noise"  # reconstructions
    assert start_keyword(Config(iterations=few, init="noise"), stylizing=True) == "noise"
    (switched,) = start_advice(Config(iterations=20), True)
    assert switched == (
        f"20 iterations are too few to paint from noise (it takes about {NOISE_ITERATIONS}): "
        "starting from the content photo (--init noise keeps the noise; --preset fast is made "
        "for short runs)"
    )
    (kept,) = start_advice(Config(iterations=20, init="noise"), True)
    assert (
        kept.startswith("20 iterations from noise leave mostly noise") and "--preset fast" in kept
    )
    assert start_advice(Config(iterations=20, init="content"), True) == ()
    assert start_advice(Config(), True) == () and start_advice(Config(preset="fast"), True) == ()
