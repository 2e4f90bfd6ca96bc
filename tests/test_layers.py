import pytest

from nst.errors import ConfigError
from nst.layers import (
    CHANNELS,
    NAMES,
    canonical,
    deepest,
    format_layer_weights,
    parse_layer_weights,
)


def test_vgg19_has_16_convs_and_5_pools_in_order():
    convs = [n for n in NAMES if n.startswith("conv")]
    assert len(convs) == 16 and NAMES.count("pool1") == 1
    assert NAMES[:5] == ("conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2")
    assert NAMES[-1] == "pool5" and CHANNELS["conv3_4"] == 256 and CHANNELS["conv5_1"] == 512


def test_relu_names_are_the_rectified_conv_layers():
    assert canonical("relu4_2") == "conv4_2"
    assert canonical(" Conv1_1 ") == "conv1_1"


def test_unknown_layer_is_refused_with_its_name():
    with pytest.raises(ConfigError) as exc:
        canonical("conv6_1")
    assert str(exc.value) == (
        "unknown layer 'conv6_1' (known: conv1_1 … conv5_4 or relu1_1 … relu5_4, pool1 … pool5)"
    )


def test_layers_without_weights_share_equally():
    assert parse_layer_weights("conv1_1,conv2_1,conv3_1,conv4_1") == (
        ("conv1_1", 0.25),
        ("conv2_1", 0.25),
        ("conv3_1", 0.25),
        ("conv4_1", 0.25),
    )
    assert parse_layer_weights("conv4_2") == (("conv4_2", 1.0),)


def test_explicit_weights_and_aliases():
    parsed = parse_layer_weights("relu1_1:0.2, conv2_1:1e-1")
    assert parsed == (("conv1_1", 0.2), ("conv2_1", 0.1))
    assert format_layer_weights(parsed) == "conv1_1:0.2,conv2_1:0.1"
    assert parse_layer_weights([("conv3_1", 2)]) == (("conv3_1", 2.0),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("conv1_1:0.5,conv2_1", "style-layers: give a weight for every layer or for none"),
        ("conv1_1,relu1_1", "style-layers: layer 'conv1_1' appears twice"),
        ("conv1_1:x", "style-layers: weight 'x' of layer 'conv1_1' is not a number"),
        ("conv1_1:-1", "style-layers: weight of 'conv1_1' must be a finite number >= 0"),
        (" , ", "style-layers: at least one layer is needed"),
    ],
)
def test_bad_layer_specs(spec, message):
    with pytest.raises(ConfigError) as exc:
        parse_layer_weights(spec, what="style-layers")
    assert str(exc.value) == message


def test_deepest():
    assert deepest(["conv1_1", "conv4_2", "conv3_1"]) == "conv4_2"
    assert deepest(["pool4", "conv4_4"]) == "pool4"
