"""The build-it checks of chapters 1 and 3: they accept the reference and the notebook's solution, and
reject each planted mistake with a message that names it."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from torch import nn

from tests.helpers import leaves_the_random_state_alone
from vgg_helpers import CONFIGS, models, params_from_config
from vgg_helpers.exercises import (ExerciseError, check_conv_params, check_make_layers,
                                   check_param_count)

ROOT = Path(__file__).resolve().parents[2]


# ---- chapter 1: conv_params and vgg_params ----

def conv_params(in_channels: int, out_channels: int, kernel_size: int = 3) -> int:
    """Reference: weights k*k*C_in per output channel, plus one bias per output channel."""
    return (kernel_size * kernel_size * in_channels + 1) * out_channels


def make_vgg_params(conv=conv_params, fc_bias: int = 1, spatial: int = 7, chain: bool = True,
                    fc: bool = True, pairs: bool = True, fixed_flat: int | None = None,
                    skip: tuple = ("M", "LRN")):
    """A ``vgg_params`` with optional planted mistakes (the defaults give the reference)."""
    def vgg_params(layers: list) -> int:
        total, channels = 0, 3
        for v in layers:
            if v in skip:
                continue
            out, k = (v, 3) if isinstance(v, int) else (v[0], v[1] if pairs else 3)
            total += conv(channels if chain else 3, out, k)
            channels = out
        if not fc:
            return total
        flat = fixed_flat or channels * spatial * spatial
        return total + sum((n + fc_bias) * m for n, m in ((flat, 4096), (4096, 4096), (4096, 1000)))
    return vgg_params


def test_conv_params_accepts_reference(capsys):
    assert check_conv_params(conv_params) is None
    assert "correct:" in capsys.readouterr().out


def test_conv_params_accepts_other_right_forms():
    check_conv_params(lambda i, o, k: k ** 2 * i * o + o)
    check_conv_params(lambda i, o, k: float((k * k * i + 1) * o))     # 1792.0 is still 1,792


@pytest.mark.parametrize("wrong, match", [
    (lambda i, o, k: k * k * i * o, "weights only.*add the biases"),
    (lambda i, o, k: (k * i + 1) * o, "kernel_size weights per input channel.*kernel_size \\*\\* 2"),
    (lambda i, o, k: k * i * o, "kernel_size weights per input channel"),
    (lambda i, o, k: (k * k * o + 1) * i, "one bias per input channel"),
    (lambda i, o, k: k * k * i * o + i, "one bias per input channel"),
    (lambda i, o, k: k * k * i * o + 1, "a single bias"),
    (lambda i, o, k: (k * k * i + 1) * o + 1, "nn.Conv2d\\(3, 64, kernel_size=3\\) has 1,792"),
    (lambda i, o, k: "1792", "not a whole number"),
    (lambda i, o, k: 1792.5, "not a whole number"),
])
def test_conv_params_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_conv_params(wrong)


def test_param_count_accepts_reference(capsys):
    assert check_param_count(make_vgg_params()) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "all six columns" in out


def test_param_count_compares_with_the_books_numbers():
    """The reference's numbers are the package's: VGG-11 132,863,336 and VGG-19 143,667,240."""
    ref = make_vgg_params()
    assert ref(CONFIGS["vgg11"]) == params_from_config("vgg11").total == 132_863_336
    assert ref(CONFIGS["vgg19"]) == params_from_config("vgg19").total == 143_667_240


@pytest.mark.parametrize("wrong, match", [
    (make_vgg_params(conv=lambda i, o, k: k * k * i * o), "convolutions' biases are missing"),
    (make_vgg_params(conv=lambda i, o, k: (k * i + 1) * o), "kernel_size weights per input"),
    (make_vgg_params(chain=False), "counted with 3 input channels.*update the channel count"),
    (make_vgg_params(fc=False), "only the convolutions are counted"),
    (make_vgg_params(fc_bias=0), "fully connected layers' biases are missing"),
    (make_vgg_params(spatial=1), "takes only the channels.*7 \\* 7"),
    (make_vgg_params(fixed_flat=512 * 7 * 7), "always takes 512 \\* 7 \\* 7.*not 512"),
    (make_vgg_params(pairs=False), "counted as a 3x3 convolution.*1x1"),
    (make_vgg_params(conv=lambda i, o, k: (k * k * i + 1) * o + 1), "the book counts 132,863,336"),
    (lambda layers: sum(v for v in layers if isinstance(v, int)), "the book counts 132,863,336"),
    (make_vgg_params(skip=("M",)), "vgg_params\\(CONFIGS\\['vgg11_lrn'\\]\\) raised.*'LRN'"),
    (lambda layers: str(make_vgg_params()(layers)), "not a whole number"),
])
def test_param_count_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_param_count(wrong)


# ---- chapter 3: make_layers ----

def reference_make_layers(layers: list, batch_norm: bool = False, padding: int = 1,
                          relu: bool = True, pool_stride: int = 2, bn_after_relu: bool = False,
                          chain: bool = True, nested: bool = False, kernel: int = 3,
                          bias: bool = True) -> nn.Sequential:
    """The exercise's answer; the keyword arguments plant one mistake each."""
    modules: list[nn.Module] = []
    blocks: list[nn.Module] = []
    in_channels = 3
    for v in layers:
        if v == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=pool_stride))
            if nested:
                blocks.append(nn.Sequential(*modules))
                modules = []
            continue
        modules.append(nn.Conv2d(in_channels, v, kernel_size=kernel, padding=padding, bias=bias))
        norm = [nn.BatchNorm2d(v)] if batch_norm else []
        act = [nn.ReLU(inplace=True)] if relu else []
        modules += act + norm if bn_after_relu else norm + act
        if chain:
            in_channels = v
    return nn.Sequential(*(blocks if nested else modules))


def test_make_layers_accepts_reference(capsys):
    assert check_make_layers(reference_make_layers) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "correct: reference_make_layers matches make_layers" in out


def test_make_layers_accepts_the_naive_models_layer_names():
    """A plain ReLU (not in place) and nn.MaxPool2d(2) are the same network."""
    def answer(layers: list, batch_norm: bool = False) -> nn.Sequential:
        mods: list[nn.Module] = []
        c = 3
        for v in layers:
            if v == "M":
                mods.append(nn.MaxPool2d(2))
            else:
                mods += [nn.Conv2d(c, v, 3, 1, 1)] + ([nn.BatchNorm2d(v)] if batch_norm else [])
                mods.append(nn.ReLU())
                c = v
        return nn.Sequential(*mods)
    check_make_layers(answer)


def _planted(**mistake):
    return lambda layers, batch_norm=False: reference_make_layers(layers, batch_norm, **mistake)


@pytest.mark.parametrize("wrong, match", [
    (_planted(padding=0), "padding \\(0, 0\\).*30x30 out.*padding=1"),
    (_planted(relu=False), "0 ReLU layers, not 8.*one after every convolution"),
    (_planted(pool_stride=1), "stride 1.*halves height and width"),
    (_planted(bn_after_relu=True), "batch norm comes after the ReLU"),
    (_planted(chain=False), "takes 3 input channels, not 64.*set in_channels = its out_channels"),
    (_planted(nested=True), "nests its layers.*one flat nn.Sequential"),
    (_planted(kernel=5, padding=2), "kernel_size \\(5, 5\\).*3x3"),
    (_planted(bias=False), "has no bias"),
    (lambda layers: reference_make_layers(layers), "batch_norm argument"),
    (lambda layers, batch_norm=False: reference_make_layers(layers), "0 BatchNorm2d layers, not 8"),
    (lambda layers, batch_norm=False: reference_make_layers(layers, True), "8 BatchNorm2d layers, not 0"),
    (lambda layers, batch_norm=False: reference_make_layers(layers, batch_norm)[:-1],
     "4 MaxPool2d layers, not 5"),
    (lambda layers, batch_norm=False: [1, 2], "returned a list, not a module"),
    (models.make_layers, "vgg_helpers' own make_layers"),
])
def test_make_layers_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_make_layers(wrong)


def test_make_layers_rejects_a_different_computation():
    """Right layers, wrong forward: a stack that skips its last layer computes something else."""
    class Skips(nn.Sequential):
        def forward(self, x):
            for layer in list(self)[:-1]:
                x = layer(x)
            return x
    with pytest.raises(ExerciseError, match="maps a \\(2, 3, 32, 32\\) input to"):
        check_make_layers(lambda layers, batch_norm=False: Skips(*reference_make_layers(layers,
                                                                                        batch_norm)))


def test_make_layers_check_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_make_layers(reference_make_layers))


# ---- the notebooks' solution cells pass their checks ----

def _solution_source(chapter: str, defines: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / chapter, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
             and f"def {defines}(" in c.source]
    assert len(cells) == 1, f"{chapter}: expected one solution cell defining {defines}"
    i = nb.cells.index(cells[0])
    after = nb.cells[i + 1]
    assert after.cell_type == "code" and "solution" not in after.metadata.get("tags", []), \
        f"{chapter}: the cell after the solution must be the check cell"
    assert "check_" in after.source and defines in after.source
    return cells[0].source


def test_the_architecture_table_solutions_pass_their_checks():
    namespace: dict = {}
    exec(_solution_source("01-architecture-table.ipynb", "vgg_params"), namespace)
    check_conv_params(namespace["conv_params"])
    check_param_count(namespace["vgg_params"])


def test_the_refactored_model_solution_passes_its_check():
    namespace: dict = {"nn": nn}                  # the chapter imported it earlier
    exec(_solution_source("03-refactored-model.ipynb", "my_make_layers"), namespace)
    check_make_layers(namespace["my_make_layers"])


def test_make_layers_rejects_other_outputs_of_the_right_shape():
    class Doubles(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2
    with pytest.raises(ExerciseError, match="computes other outputs"):
        check_make_layers(lambda layers, batch_norm=False: Doubles(*reference_make_layers(layers,
                                                                                         batch_norm)))
