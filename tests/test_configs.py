"""Table 1 / Table 2 as data: names, layer lists, parameter arithmetic, validation."""
import pytest

from vgg_helpers.configs import (CONFIGS, PAPER_NAMES, TABLE2_PARAMS_MILLIONS, VGGConfig, check_layers,
                                 layers_for, params_from_config, resolve_arch, table1_blocks, weight_layers)

ALL = list(CONFIGS)


def test_six_columns_of_table1():
    assert ALL == ["vgg11", "vgg11_lrn", "vgg13", "vgg16_1x1", "vgg16", "vgg19"]
    assert [PAPER_NAMES[n] for n in ALL] == ["A", "A-LRN", "B", "C", "D", "E"]


@pytest.mark.parametrize("name,depth", list(zip(ALL, [11, 11, 13, 16, 16, 19])))
def test_weight_layers_match_table1_headings(name, depth):
    assert weight_layers(name) == depth


@pytest.mark.parametrize("name", ALL)
def test_arithmetic_count_rounds_to_table2(name):
    assert round(params_from_config(name).total / 1e6) == TABLE2_PARAMS_MILLIONS[name]


def test_config_c_ends_blocks_3_to_5_with_1x1_conv():
    blocks = table1_blocks("C")
    assert [b[-2] for b in blocks[2:]] == ["conv1-256", "conv1-512", "conv1-512"]
    assert all("conv1" not in layer for b in blocks[:2] for layer in b)


def test_lrn_only_in_a_lrn():
    assert table1_blocks("A-LRN")[0] == ["conv3-64", "LRN", "maxpool"]
    assert all("LRN" not in CONFIGS[n] for n in ALL if n != "vgg11_lrn")


def test_paper_letters_are_aliases():
    assert resolve_arch("E") == "vgg19"
    assert resolve_arch("a-lrn") == "vgg11_lrn"
    assert resolve_arch("VGG16") == "vgg16"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        resolve_arch("vgg20")
    for name in ALL + ["A-LRN"]:
        assert name in str(e.value)


def test_width_scales_every_conv():
    half = layers_for("vgg16_1x1", width=0.5)
    assert half[:3] == [32, 32, "M"]
    assert (128, 1) in half
    assert params_from_config("vgg11", width=0.5).conv < params_from_config("vgg11").conv / 3


def test_cifar_head_counts():
    p = params_from_config("vgg16", head="cifar", input_size=32, num_classes=10, batch_norm=True)
    assert p.fc == 512 * 10 + 10
    assert p.batch_norm == 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512)


@pytest.mark.parametrize("bad", [[64, "M", 0], [64, "X"], [64, -3], [64, 2.5], [64, (64, 2)], [True], "64,M"])
def test_bad_layer_entry_is_named(bad):
    with pytest.raises(ValueError, match="expected|layer list"):
        check_layers(bad)


def test_pool_count_is_checked():
    with pytest.raises(ValueError, match="5 pool markers"):
        check_layers([64, "M", 128, "M"])


@pytest.mark.parametrize("field,value,msg", [
    ("num_classes", 0, "num_classes"), ("num_classes", -1, "num_classes"), ("num_classes", 2.0, "num_classes"),
    ("head", "tiny", "head"), ("input_size", 100, "multiple of 32"), ("dropout", 1.0, "dropout"),
    ("init", "xavier", "init"), ("width", 0, "width"),
])
def test_config_validation(field, value, msg):
    with pytest.raises((TypeError, ValueError), match=msg):   # the wrong kind is a TypeError (tests/test_checks.py)
        VGGConfig(**{field: value})
