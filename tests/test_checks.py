"""The shared argument checks: the wrong kind is a TypeError, the wrong size a ValueError, and both say why."""
import math

import numpy as np
import pytest
import torch

from vgg_helpers.checks import choice, describe, flag, real_number, whole_number


def test_whole_numbers_accept_every_integer_kind_and_return_python_ints():
    for value in (3, np.int64(3), np.int32(3), torch.tensor(3)):
        out = whole_number("n", value, 1)
        assert out == 3 and type(out) is int
    assert whole_number("n", None, 1, none_means="all") is None


@pytest.mark.parametrize("value, error, message", [
    (2.5, TypeError, r"^n must be a whole number >= 1; got 2\.5 \(float\)\.$"),
    (4.0, TypeError, r"got 4\.0 \(float\)\. Write n=4\.$"),
    ("8", TypeError, r"got '8' \(str\)\. Write n=8 \(a number, not a string\)\.$"),
    (True, TypeError, r"got True \(bool\)"),
    (None, TypeError, r"got None \(NoneType\)"),
    (0, ValueError, r"^n must be a whole number >= 1; got 0\.$"),
])
def test_whole_number_messages(value, error, message):
    with pytest.raises(error, match=message):
        whole_number("n", value, 1)


def test_bounds_examples_and_fixes_are_shown():
    with pytest.raises(ValueError, match=r"^seed must be a whole number from 0 to 9 \(e\.g\. 0\); got 10\. Try 0\.$"):
        whole_number("seed", 10, 0, "e.g. 0", maximum=9, fix=" Try 0.")
    with pytest.raises(TypeError, match=r"\(or None for all\); got 'all' \(str\)"):
        whole_number("size", "all", 1, none_means="all")


def test_real_numbers():
    assert real_number("lr", np.float32(0.5), 0, 1) == 0.5 and type(real_number("lr", 1, 0, 1)) is float
    with pytest.raises(ValueError, match=r"^lr must be a number in \(0, 1\]; got 0\.$"):
        real_number("lr", 0, 0, 1, low_ok=False)
    with pytest.raises(ValueError, match=r"got nan"):
        real_number("lr", math.nan)
    with pytest.raises(TypeError, match=r"^p must be a probability; got '0\.5' \(str\)\. Write p=0\.5"):
        real_number("p", "0.5", 0, 1, expected="a probability")
    with pytest.raises(TypeError, match=r"got True \(bool\)"):
        real_number("p", True, 0, 1)


def test_flags_choices_and_descriptions():
    assert flag("f", np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"^f must be True or False; got 1 \(int\)\.$"):
        flag("f", 1)
    assert choice("head", "cifar", ("imagenet", "cifar")) == "cifar"
    with pytest.raises(ValueError, match=r"^head must be one of 'imagenet', 'cifar'; got 'CIFAR' \(str\)\. Lower"):
        choice("head", "CIFAR", ("imagenet", "cifar"), " Lower case.")
    assert describe(torch.zeros(2, 3)) == "a Tensor of shape (2, 3)"
    assert describe("x" * 100).endswith("... (str)") and len(describe("x" * 100)) < 80
