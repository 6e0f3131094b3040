"""Every check, given something that is not the learner's function, says so (issue 34).

``None``, the function's name in quotes, its result (a number, a tensor, a list, a network), a class, or a function
with the wrong arguments: each gets one ``ExerciseError`` that names the check and the fix, the same for
every check, from ``common.expect_function``. The sweep runs over ``vgg_helpers.exercises.__all__``, so a check
added later without the guard fails here.
"""
from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap

import pytest
import torch
from torch import nn

from vgg_helpers import exercises
from vgg_helpers.configs import CONFIGS
from vgg_helpers.exercises import (
    ExerciseError,
    check_conv_params,
    check_fc_to_conv,
    check_lrn,
    check_make_layers,
)
from vgg_helpers.exercises.common import expect_function
from vgg_helpers.models import make_layers

# how each check calls the learner's function: the signature its messages show
SIGNATURES = {
    "check_conv_params": "conv_params(in_channels, out_channels, kernel_size)",
    "check_param_count": "vgg_params(layers)",
    "check_make_layers": "my_make_layers(layers, batch_norm=False)",
    "check_train_step": "train_step(model, optimizer, loss_fn, images, labels)",
    "check_train_loop": "train_loop(model, train_loader, optimizer, steps)",
    "check_activation_hook": "record_stds(model, images)",
    "check_one_cycle": "one_cycle(step, total, warmup=0.2)",
    "check_lrn": "lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75)",
    "check_fc_to_conv": "fc_to_conv(model)",
    "check_plateau_drops": "plateau_drops(val_acc, patience)",
    "check_tta": "tta_logits(model, images)",
    "check_label_smoothing": "smoothed_cross_entropy(logits, labels, smoothing)",
    "check_whitening": "whitening_filters(images, k=2, eps=5e-4)",
    "check_weight_average": "update_average(average, model, decay)",
    "check_shard": "shard(batch, rank, world_size)",
    "check_batch_stats": "batch_stats(counts, sums, squares)",
}
CHECKS = [name for name in exercises.__all__ if name.startswith("check_")]


def test_the_sweep_covers_every_check_and_each_starts_with_the_guard():
    assert sorted(SIGNATURES) == sorted(CHECKS), "add the new check's signature to SIGNATURES"
    for name in CHECKS:
        body = ast.parse(textwrap.dedent(inspect.getsource(getattr(exercises, name)))).body[0].body
        docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        first = body[1] if docstring else body[0]
        assert ast.unparse(first).startswith("if not expect_function("), f"{name} does not start with the guard"
        assert ast.unparse(first.body[0]) == "return", f"{name}: an exercise not attempted yet ends the check"
        assert SIGNATURES[name] in ast.unparse(first), f"{name}'s guard shows another signature"


@pytest.mark.parametrize("answer, got, hint", [
    pytest.param(None, r"None", r"None is what a function without `return` gives, or a name set to None; "
                 r"pass the function itself, without calling it", id="None"),
    pytest.param("answer", r"the string 'answer'", r"pass the function, not its name in quotes", id="name-in-quotes"),
    pytest.param(1792, r"1792 \(int\): a value, such as a function's result",
                 r"pass the function itself, without calling it", id="int-result"),
    pytest.param(torch.zeros(2, 10), r"a Tensor of shape \(2, 10\): a value, such as a function's result",
                 r"pass the function itself, without calling it", id="tensor-result"),
    pytest.param([64, "M"], r"\[64, 'M'\] \(list\): a value, such as a function's result",
                 r"pass the function itself, without calling it", id="list-result"),
    pytest.param(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), r"a Sequential: a network, not a function",
                 r"if it is what your function returned, pass the function itself, without calling it",
                 id="module"),
    pytest.param(nn.Sequential, r"the class Sequential", r"write a function, def \w+\(.*\): \.\.\., and pass it",
                 id="class"),
])
@pytest.mark.parametrize("name", CHECKS)
def test_a_check_given_no_function_names_the_slip_and_the_fix(name, answer, got, hint):
    with pytest.raises(ExerciseError, match=rf"^not yet: {name} expects your function, got {got}\. "
                                            rf"Hint: {hint}: {name}\(\w+\)$"):
        getattr(exercises, name)(answer)


@pytest.mark.parametrize("answer, takes", [
    pytest.param(lambda: 0, r"\(\)", id="no-arguments"),
    pytest.param(lambda a, b, c, d, e, f: 0, r"\(a, b, c, d, e, f\)", id="six-arguments"),
])
@pytest.mark.parametrize("name", CHECKS)
def test_a_function_with_the_wrong_arguments_gets_the_signature(name, answer, takes):
    signature = re.escape(SIGNATURES.get(name, "?"))
    with pytest.raises(ExerciseError, match=rf"^not yet: {name} calls your function as {signature}, but it takes "
                                            rf"{takes}.*Hint: define it as def {signature}: \.\.\.$"):
        getattr(exercises, name)(answer)


@pytest.mark.parametrize("check, answer, match", [
    (check_conv_params, lambda i, o, k, *, bias: 0, r"takes \(i, o, k, \*, bias\)"),
    (check_make_layers, lambda layers: make_layers(layers), r"takes \(layers\): it has no batch_norm argument"),
    (check_lrn, lambda x, size=5, k=2.0: x, r"takes \(x, size=5, k=2\.0\): it has no n, alpha, beta arguments"),
])
def test_a_missing_keyword_is_named(check, answer, match):
    with pytest.raises(ExerciseError, match=match):
        check(answer)


def test_the_usual_slips_of_a_learner():
    with pytest.raises(ExerciseError, match=r"got 1792 \(int\).*without calling it: check_conv_params\(conv_params\)"):
        check_conv_params((3 * 3 * 3 + 1) * 64)                    # check_conv_params(conv_params(3, 64, 3))
    with pytest.raises(ExerciseError, match=r"got a Sequential: a network.*check_make_layers\(my_make_layers\)"):
        check_make_layers(make_layers(CONFIGS["vgg11"]))           # nn.Sequential is callable: not a function here
    with pytest.raises(ExerciseError, match=r"got a LocalResponseNorm: a network.*check_lrn\(lrn\)"):
        check_lrn(nn.LocalResponseNorm(5))                         # PyTorch's layer instead of one's own function
    with pytest.raises(ExerciseError, match=r"got the string 'fc_to_conv'.*check_fc_to_conv\(fc_to_conv\)"):
        check_fc_to_conv("fc_to_conv")


class _Record:
    """A callable object (not a module): a legitimate answer."""

    def __call__(self, model: nn.Module, images: torch.Tensor) -> dict:
        return {}


@pytest.mark.parametrize("answer", [
    pytest.param(lambda model, images, level=1: 0, id="extra-defaulted-argument"),
    pytest.param(lambda *args, **kwargs: 0, id="star-args"),
    pytest.param(functools.partial(lambda scale, model, images: 0, 2.0), id="partial"),
    pytest.param(_Record(), id="callable-object"),
    pytest.param(max, id="builtin-without-signature"),
])
def test_any_function_that_takes_the_arguments_passes_the_guard(answer):
    assert expect_function(answer, "check_tta", "tta_logits(model, images)") is True


@pytest.mark.parametrize("name", CHECKS)
def test_an_exercise_not_attempted_yet_is_said_and_the_notebook_goes_on(name, capsys):
    stand_in = exercises.not_attempted(SIGNATURES[name].split("(")[0])
    assert getattr(exercises, name)(stand_in) is None                          # no error: Run All goes on
    out = capsys.readouterr().out
    assert out.startswith(f"not attempted yet: {name} checks your {stand_in.name} -- write it") and "correct" not in out
