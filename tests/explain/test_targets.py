"""Targets: syntax, ImageNet class names, and checks against a network."""

import pytest

from nst.errors import ConfigError
from nst.explain import classes, targets
from nst.layers import feature_size, receptive_box


def test_targets_parse():
    assert targets.parse("conv5_1:12") == targets.Target("channel", 12, "conv5_1")
    assert targets.parse("relu5_1:12@3,4") == targets.Target("neuron", 12, "conv5_1", 3, 4)
    assert targets.parse("class:283").label == "class 283 (Persian cat)"
    assert targets.parse("class:tabby").index == 281
    assert targets.parse("class:Tabby_Cat").index == 281
    assert [t.index for t in targets.parse_range("conv4_1:0-3,7")] == [0, 1, 2, 3, 7]
    assert len(classes.table()) == 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv9_1:1", "unknown layer 'conv9_1'"),
        ("conv5_1", "target 'conv5_1' is not LAYER:CHANNEL"),
        ("class:crane", "class: 'crane' names 134 (crane) and 517 (crane); use class:N"),
        ("class:unicorn", "class: no ImageNet class is called 'unicorn' (use class:N, 0-999)"),
        ("class:1000", "target class:1000: class 1000 is out of range (0-999)"),
        ("conv5_1:1@x,2", "is not LAYER:CHANNEL"),
    ],
)
def test_bad_targets_are_one_line(text, message):
    with pytest.raises(ConfigError) as exc:
        targets.parse(text)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_targets_are_checked_against_the_network():
    channels = {"conv5_1": 512, "conv1_1": 64}
    with pytest.raises(
        ConfigError, match=r"channel 512 is out of range \(conv5_1 has channels 0-511\)"
    ):
        targets.check(targets.parse("conv5_1:512"), channels, 0)
    with pytest.raises(
        ConfigError, match=r"neuron \(2, 9\) is outside the conv5_1 map, which is 2x3"
    ):
        targets.check(targets.parse("conv5_1:1@2,9"), channels, 0, (32, 48))
    with pytest.raises(ConfigError, match="class scores need a classifier; pass --weights"):
        targets.check(targets.parse("class:tabby"), channels, 0)
    with pytest.raises(ConfigError, match="at 8x8 px conv5_1 has no positions"):
        targets.check(targets.parse("conv5_1:1"), channels, 0, (8, 8))
    targets.check(targets.parse("conv5_1:1@1,2"), channels, 0, (32, 48))


def test_receptive_field_geometry_by_hand():
    assert feature_size("conv3_1", (32, 40)) == (8, 10)
    assert receptive_box("conv1_1", 5, 5, (32, 32)) == (4, 4, 6, 6)
    assert receptive_box("conv1_2", 0, 0, (32, 32)) == (0, 0, 2, 2)  # clipped at the border
    # pool1 position 1 sees conv1_2 positions 2..3, which see the input 0..5
    assert receptive_box("pool1", 1, 1, (32, 32)) == (0, 0, 5, 5)


def test_auto_names_the_strongest_channel_of_a_layer_to_come():
    from nst.explain.targets import Target, parse

    assert parse("auto") == Target("auto", -1, "conv5_1")
    assert parse("conv4_1:auto") == Target("auto", -1, "conv4_1")
    assert parse("relu3_1:auto").layer == "conv3_1"
    assert parse("conv4_1:auto").label == "conv4_1:auto"
