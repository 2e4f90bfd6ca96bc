import pytest

from nst.config import Config
from nst.errors import ConfigError


def test_defaults_are_the_papers():
    c = Config()
    assert c.content_layers == (("conv4_2", 1.0),)
    assert c.style_layers == tuple((f"conv{b}_1", 0.2) for b in range(1, 6))
    assert c.content_weight / c.style_weight == pytest.approx(1e-3)
    assert c.pooling == "avg" and c.normalize and c.optimizer == "lbfgs" and c.init == "noise"


def test_layer_strings_are_parsed_and_config_is_frozen():
    c = Config(style_layers="relu1_1,relu2_1")
    assert c.style_layers == (("conv1_1", 0.5), ("conv2_1", 0.5))
    with pytest.raises(AttributeError):
        c.size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 8}, "size must be between 16 and 16384 (got 8)"),
        ({"iterations": -1}, "iterations must be between 0 and 1000000 (got -1)"),
        ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam (got 'sgd')"),
        ({"style_weight": -1.0}, "style-weight must be >= 0 (got -1.0)"),
        ({"content_weight": float("nan")}, "content-weight must be a finite number (got nan)"),
        ({"lr": 0.0}, "lr must be > 0 (got 0.0)"),
        ({"pooling": "sum"}, "pooling must be one of avg, max (got 'sum')"),
        ({"style_blend": (0.0, 0.0)}, "style-blend: the weights must not all be 0"),
        ({"scales": (512, 256)}, "scales: give the stage sizes from small to large, e.g. 256,512"),
        ({"precision": "int8"}, "precision must be one of auto, fp32, bf16, fp16 (got 'int8')"),
    ],
)
def test_validation_messages(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        Config(**kwargs)
    assert str(exc.value) == message


def test_from_dict_converts_form_strings_and_refuses_unknown_keys():
    c = Config.from_dict(
        {
            "size": "64",
            "style_weight": "1e4",
            "normalize": "false",
            "seed": "",
            "style_blend": "0.7,0.3",
        }
    )
    assert c.size == 64 and c.style_weight == 1e4 and c.normalize is False and c.seed is None
    assert c.style_blend == (0.7, 0.3)
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\): colour"):
        Config.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="size: '1.5' is not a number"):
        Config.from_dict({"size": 1.5})


def test_round_trip_through_dict():
    c = Config(size=200, style_layers="conv1_1:0.3,conv3_1:0.7", scales=(100,), seed=4)
    assert Config.from_dict(c.to_dict()) == c


def test_coarse_to_fine_stages():
    assert Config(size=512).stage_sizes == (512,)
    assert Config(size=1024).stage_sizes == (512, 1024)
    assert Config(size=2048).stage_sizes == (512, 1024, 2048)
    assert Config(size=1000, scales=(250, 500)).stage_sizes == (250, 500, 1000)
    assert Config(size=1024, scales=(1024,)).stage_sizes == (1024,)
    assert Config(size=1024, iterations=300).stage_iterations == (300, 150)
    assert Config(iterations=0, size=2048).stage_iterations == (0, 0, 0)


def test_learning_rate_defaults_by_optimizer():
    assert Config().learning_rate == 1.0
    assert Config(optimizer="adam").learning_rate == 5.0
    assert Config(optimizer="adam", lr=2.0).learning_rate == 2.0
