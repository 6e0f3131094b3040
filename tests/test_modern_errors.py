"""The airbench-style network and its recipe refuse bad input as the classic path does (issue 34): each error
names the argument, what it got and what to do; nothing trains silently on input it cannot use."""
import copy
import dataclasses

import pytest
import torch

from tests.helpers import tiny_cifar
from vgg_helpers import build_vgg
from vgg_helpers.data import RunBudget, make_loaders
from vgg_helpers.modern import (ModernConfig, ModernRecipe, ModernVGG, Muon, build_modern_vgg, init_whitening,
                                orthogonalize, train_modern)

RECIPE = ModernRecipe(epochs=1, batch_size=64, whiten_images=100)
TOO_MANY_POOLS = ["W", 8, "M", 8, "M", 8, "M", 8, "M", 8, "M", "G"]


@pytest.fixture(scope="module")
def loaders():
    run = RunBudget(train_size=256, val_size=64, test_size=100, epochs=1, batch_size=64)
    return make_loaders(tiny_cifar(300, 100), run, seed=0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_modern_vgg("modern-128")


def _with_train(loaders, **changes):
    """``loaders`` whose training loader's tensors were changed after it was built."""
    train = copy.copy(loaders.train)
    for k, v in changes.items():
        setattr(train, k, v(train))
    return dataclasses.replace(loaders, train=train)


@pytest.mark.parametrize("changes,match", [
    (dict(images=lambda t: t.images.float() / 255), r"^loaders.train: images must be uint8 .*got torch.float32.*"
                                                     r"\(images \* 255\)\.round\(\)"),
    (dict(images=lambda t: t.images.permute(0, 2, 3, 1)), r"^loaders.train: images must have shape \(N, 3, H, W\).*"
                                                           r"permute\(0, 3, 1, 2\)"),
    (dict(labels=lambda t: t.labels + 5), r"^loaders.train: labels must be class indices 0 to 9; got values from 5 "
                                          r"to 14\. The network has 10 outputs: build it with num_classes=15"),
    (dict(labels=lambda t: t.labels - 1), r"labels must be class indices 0 to 9; got values from -1 to 8\.$"),
    (dict(labels=lambda t: t.labels[:10]), r"^loaders.train: \d+ images but 10 labels: give one label per image"),
])
def test_train_modern_checks_the_images_and_labels_it_trains_on(model, loaders, changes, match):
    with pytest.raises(ValueError, match=match):
        train_modern(model, _with_train(loaders, **changes), RECIPE, measure_on=None)


def test_fewer_images_than_one_batch_is_an_error_not_an_empty_history(model, loaders):
    with pytest.raises(ValueError, match=r"^\d+ training images give no full batch of recipe.batch_size=1024, so "
                                         r"nothing would be trained: .*ModernRecipe\(batch_size=\d+\)"):
        train_modern(model, loaders, ModernRecipe(epochs=1), measure_on=None)


@pytest.mark.parametrize("what,call,error,match", [
    ("a network of another kind", lambda m, L: train_modern(torch.nn.Sequential(torch.nn.Flatten()), L, RECIPE),
     TypeError, r"model must be a ModernVGG from build_modern_vgg .* or a VGG from build_vgg; got Sequential\."),
    ("muon for a classic VGG", lambda m, L: train_modern(build_vgg("vgg11", head="cifar", input_size=32,
                                                                  width=0.125), L,
                                                        dataclasses.replace(RECIPE, optimizer="muon")),
     ValueError, r"optimizer='muon' needs a ModernVGG .*use optimizer='sgd' for a VGG"),
    ("a recipe dict", lambda m, L: train_modern(m, L, dataclasses.asdict(RECIPE)), TypeError,
     r"recipe must be a ModernRecipe: write ModernRecipe\(\*\*recipe\)"),
    ("one loader", lambda m, L: train_modern(m, L.train, RECIPE), TypeError,
     r"loaders must be the Loaders that data.make_loaders returns .*got TensorLoader"),
    ("a test set the run has", lambda m, L: train_modern(m, L, RECIPE, measure_on="hold-out"), ValueError,
     r"measure_on must be 'val', 'test' or None; got 'hold-out'"),
    ("no validation split", lambda m, L: train_modern(m, dataclasses.replace(L, val=None), RECIPE), ValueError,
     r"measure_on='val' but the loaders have no val set"),
    ("a flag as text", lambda m, L: train_modern(m, L, RECIPE, eval_every_epoch="yes"), TypeError,
     r"eval_every_epoch must be True or False; got 'yes'"),
    ("a printout, not a function", lambda m, L: train_modern(m, L, RECIPE, on_epoch="print"), TypeError,
     r"on_epoch must be a function of an epoch's row"),
    ("too many pools", lambda m, L: train_modern(ModernVGG(ModernConfig(layers=TOO_MANY_POOLS)), L, RECIPE),
     ValueError, r"this ModernVGG pools 5 times after its 2x2 whitening, so it needs images of at least 33x33"),
])
def test_train_modern_names_the_bad_argument(model, loaders, what, call, error, match):
    with pytest.raises(error, match=match):
        call(model, loaders)


@pytest.mark.parametrize("x,error,match", [
    (torch.randn(2, 1, 32, 32), ValueError, r"RGB images shaped \(N, 3, H, W\); got shape \(2, 1, 32, 32\)\. "
                                            r"Grayscale images: repeat the channel"),
    (torch.randn(3, 32, 32), ValueError, r"For one image use x\.unsqueeze\(0\)"),
    (torch.randn(2, 32, 32, 3), ValueError, r"They look like \(N, H, W, 3\): pass x\.permute\(0, 3, 1, 2\)"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), TypeError, r"normalised floating-point images; got torch\.uint8"),
    ([[0.0]], TypeError, r"expects a tensor of images"),
    (torch.randn(2, 3, 8, 8), ValueError, r"pools 3 times after its 2x2 whitening, so it needs images of at least "
                                          r"9x9 pixels; got \(8, 8\)"),
])
def test_modern_vgg_checks_its_input(model, x, error, match):
    with pytest.raises(error, match=match):
        model(x)


def test_too_many_pools_fail_at_the_first_batch_in_plain_words():
    net = ModernVGG(ModernConfig(layers=TOO_MANY_POOLS))
    with pytest.raises(ValueError, match="Use fewer 'M' in its layers"):
        net(torch.randn(2, 3, 32, 32))
    assert net(torch.randn(2, 3, 33, 33)).shape == (2, 10)       # the smallest side it names works


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(layers="modern-128"), TypeError, r"layers must be a list .*For a named configuration use "
                                           r"build_modern_vgg\(name\)"),
    (dict(bn_momentum=2.0), ValueError, r"bn_momentum must be a number in \[0, 1\]"),
    (dict(bn_eps=0), ValueError, r"bn_eps must be a number in \(0, inf\]"),
    (dict(whiten="no"), TypeError, r"whiten must be True or False"),
])
def test_modern_config_names_the_bad_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        ModernConfig(**kwargs)


def test_build_modern_vgg_suggests_the_field_for_a_typo():
    with pytest.raises(TypeError, match=r"'num_class' is not a ModernConfig field\. Did you mean 'num_classes'\?"):
        build_modern_vgg("modern-128", num_class=10)


@pytest.mark.parametrize("call,error,match", [
    (lambda m: init_whitening(build_vgg("vgg11", head="cifar", input_size=32, width=0.125), torch.randn(4, 3, 32, 32)),
     TypeError, r"model must be a ModernVGG"),
    (lambda m: init_whitening(m, torch.zeros(4, 3, 32, 32, dtype=torch.uint8)), ValueError,
     r"normalised float images .*data\.normalize_images"),
    (lambda m: init_whitening(m, torch.randn(0, 3, 32, 32)), ValueError, r"at least one image"),
    (lambda m: orthogonalize(torch.randn(4, 3, 3, 3)), ValueError, r"g must be a 2-D tensor .*reshape"),
    (lambda m: orthogonalize(torch.randn(4, 9), steps=-1), ValueError, r"steps must be a whole number >= 0"),
    (lambda m: Muon([torch.nn.Parameter(torch.randn(2, 2, 3, 3))], lr="0.1", momentum=0.5), TypeError,
     r"lr must be a number in \(0, inf\]; got '0\.1' \(str\)\. Write lr=0\.1"),
    (lambda m: Muon([torch.nn.Parameter(torch.randn(2, 2, 3, 3))], lr=0.1, momentum=1.0), ValueError,
     r"momentum must be a number in \[0, 1\)"),
])
def test_the_whitening_and_muon_refuse_bad_arguments(model, call, error, match):
    with pytest.raises(error, match=match):
        call(model)
