"""Tables 1-5 as data: names, layer lists, parameter arithmetic, validation, the LRN constants, the results."""
import pytest
import torch
from torch import nn

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
    ("init", "glorot", "init"), ("width", 0, "width"),
])
def test_config_validation(field, value, msg):
    with pytest.raises((TypeError, ValueError), match=msg):   # the wrong kind is a TypeError (tests/test_checks.py)
        VGGConfig(**{field: value})


# ---- LRN: nn.LocalResponseNorm as configured computes Krizhevsky's formula ----

def lrn_by_hand(a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4,
                beta: float = 0.75) -> torch.Tensor:
    """b_i = a_i / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a_j^2) ** beta, channel by channel."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(1)) ** beta
    return out


def test_lrn_params_give_the_papers_formula():
    from vgg_helpers.configs import LRN_PAPER, LRN_PARAMS

    assert LRN_PAPER == {"n": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}       # AlexNet sec. 3.3
    assert LRN_PARAMS["size"] == 5 and LRN_PARAMS["alpha"] == pytest.approx(5e-4)
    # activations large enough that the sum matters: alpha * sum a^2 is about 1 next to k = 2
    a = torch.randn(2, 7, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 50
    expected = lrn_by_hand(a)
    got = nn.LocalResponseNorm(**LRN_PARAMS)(a)
    assert torch.allclose(got, expected, rtol=1e-10, atol=0)
    # the check can fail: PyTorch's own reading of alpha (divided by n) gives another result
    weaker = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert not torch.allclose(weaker, expected, rtol=1e-3)
    assert torch.allclose(weaker, lrn_by_hand(a, alpha=1e-4 / 5), rtol=1e-10, atol=0)


# ---- Tables 3-5 of sec. 4 as data ----

from vgg_helpers.configs import RESULT_TABLES, TABLE3, TABLE4, TABLE5, PaperResult, result_rows  # noqa: E402

J = "[256;512]"
# Read from the project's paper fact sheet (Tables 3, 4, 5 of arXiv:1409.1556v6): (config, train S, test Q) -> errors.
EXPECTED3 = {("A", "256", "256"): (29.6, 10.4), ("A-LRN", "256", "256"): (29.7, 10.5),
             ("B", "256", "256"): (28.7, 9.9), ("C", "256", "256"): (28.1, 9.4), ("C", "384", "384"): (28.1, 9.3),
             ("C", J, "384"): (27.3, 8.8), ("D", "256", "256"): (27.0, 8.8), ("D", "384", "384"): (26.8, 8.7),
             ("D", J, "384"): (25.6, 8.1), ("E", "256", "256"): (27.3, 9.0), ("E", "384", "384"): (26.9, 8.7),
             ("E", J, "384"): (25.5, 8.0)}
EXPECTED4 = {("B", "256"): (28.2, 9.6), ("C", "256"): (27.7, 9.2), ("C", "384"): (27.8, 9.2),
             ("C", J): (26.3, 8.2), ("D", "256"): (26.6, 8.6), ("D", "384"): (26.5, 8.6), ("D", J): (24.8, 7.5),
             ("E", "256"): (26.9, 8.7), ("E", "384"): (26.7, 8.6), ("E", J): (24.8, 7.5)}
EXPECTED5 = {("D", "dense"): (24.8, 7.5), ("D", "multi-crop"): (24.6, 7.5), ("D", "multi-crop & dense"): (24.4, 7.2),
             ("E", "dense"): (24.8, 7.5), ("E", "multi-crop"): (24.6, 7.4), ("E", "multi-crop & dense"): (24.4, 7.1)}


def test_table3_values():
    got = {(r.paper_name, r.train_label(), r.test_label()): (r.top1, r.top5) for r in TABLE3}
    assert got == EXPECTED3 and len(TABLE3) == 12


def test_table4_values_and_test_scales():
    got = {(r.paper_name, r.train_label()): (r.top1, r.top5) for r in TABLE4}
    assert got == EXPECTED4 and len(TABLE4) == 10
    for r in TABLE4:       # Q = {S - 32, S, S + 32} for fixed S; {S_min, middle, S_max} for jittered S
        lo, hi = r.train_scale
        assert r.test_scales == ((lo, (lo + hi) // 2, hi) if r.jittered else (lo - 32, lo, lo + 32))


def test_table5_values():
    got = {(r.paper_name, r.evaluation): (r.top1, r.top5) for r in TABLE5}
    assert got == EXPECTED5 and len(TABLE5) == 6
    assert all(r.train_scale == (256, 512) and r.test_scales == (256, 384, 512) for r in TABLE5)


def test_tables_are_consistent():
    assert set(r.arch for r in TABLE3) == set(ALL)                      # every column of Table 1
    assert all(isinstance(r, PaperResult) for t in RESULT_TABLES.values() for r in t)
    for table in RESULT_TABLES.values():
        keys = [(r.arch, r.train_scale, r.test_scales, r.evaluation) for r in table]
        assert len(set(keys)) == len(keys)                             # no row twice
        assert all(0 < r.top5 < r.top1 < 100 for r in table)
    for r in TABLE3:                      # one test scale: Q = S, or the middle of [S_min, S_max]
        assert r.test_scales == (sum(r.train_scale) // 2,)
    assert all(r.evaluation is None for r in TABLE3 + TABLE4)
    # Table 5's dense rows repeat Table 4's jittered rows for D and E (the same evaluation)
    dense = {r.arch: (r.top1, r.top5) for r in TABLE5 if r.evaluation == "dense"}
    assert dense == {r.arch: (r.top1, r.top5) for r in TABLE4 if r.jittered and r.arch in dense}


def _row(table, letter, s=(256, 256), evaluation=None):
    return next(r for r in table if r.paper_name == letter and r.train_scale == s and r.evaluation == evaluation)


def test_the_papers_conclusions_follow_from_the_tables():
    jit = (256, 512)
    # sec. 4.1: LRN does not help (A-LRN is no better than A)
    assert _row(TABLE3, "A-LRN").top1 >= _row(TABLE3, "A").top1
    # sec. 4.1: error falls with depth from A to D; C (1x1) beats B, D (3x3) beats C
    assert [_row(TABLE3, c).top1 for c in "ABCD"] == sorted([_row(TABLE3, c).top1 for c in "ABCD"], reverse=True)
    # sec. 4.1: scale jittering in training beats either fixed S, at one test scale
    for c in "CDE":
        fixed = [r for r in TABLE3 if r.paper_name == c and not r.jittered]
        assert all(_row(TABLE3, c, jit).top1 < r.top1 and _row(TABLE3, c, jit).top5 < r.top5 for r in fixed)
    # sec. 4.2: several test scales beat one, for the same trained net
    for r4 in TABLE4:
        r3 = _row(TABLE3, r4.paper_name, r4.train_scale)
        assert r4.top1 < r3.top1 and r4.top5 <= r3.top5
    # sec. 4.3: multi-crop is slightly better than dense, and their combination beats both
    for c in "DE":
        dense, crops, both = (_row(TABLE5, c, jit, e) for e in ("dense", "multi-crop", "multi-crop & dense"))
        assert crops.top1 < dense.top1 and both.top1 < crops.top1 and both.top5 < min(crops.top5, dense.top5)


def test_result_rows_for_display():
    rows = result_rows("Table 5")
    assert rows[2] == {"config": "D", "train S": J, "test Q": "256,384,512", "evaluation": "multi-crop & dense",
                       "top-1": 24.4, "top-5": 7.2}
    assert result_rows(TABLE3)[0] == {"config": "A", "train S": "256", "test Q": "256", "top-1": 29.6, "top-5": 10.4}
    with pytest.raises(ValueError, match="Table 3"):
        result_rows("Table 6")
