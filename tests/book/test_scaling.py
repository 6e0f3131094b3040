"""The runs on several processes: a plan becomes the training command's flags, and the flags give the plan back."""
import pytest

from vgg_helpers.book.plans import SCALING
from vgg_helpers.book.scaling import scaling_args, script_args
from vgg_helpers.distributed import DEFAULT_MODEL, DEFAULT_RUN, command_args, parse_command


@pytest.mark.parametrize("budget", ["smoke", "cpu", "gpu"])
def test_the_flags_describe_the_plan_exactly(budget):
    plan = SCALING[budget]
    args, sizes, model, config = parse_command(["--out", "x", *script_args(plan), "--seed", "2"])
    assert sizes == plan.run and model == dict(plan.model)
    assert config == plan.train_config(seed=2)
    assert (args.split_seed, args.augment) == (plan.split_seed, plan.augment)
    assert scaling_args(budget) == script_args(plan)


def test_later_flags_override_the_plans():
    args, sizes, model, config = parse_command(["--out", "x", *scaling_args("cpu"), "--width", "0.125",
                                                "--lr", "0.005", "--no-augment"])
    assert model["width"] == 0.125 and config.lr == 0.005 and not args.augment
    assert sizes.train_size == SCALING["cpu"].run.train_size


def test_the_command_alone_trains_the_default_network():
    args, sizes, model, config = parse_command(["--out", "x"])
    assert sizes == DEFAULT_RUN and model == DEFAULT_MODEL and config.lr == 0.1 and config.nesterov


def test_a_setting_the_command_cannot_take_is_refused():
    with pytest.raises(ValueError, match="no flag for dropout"):
        command_args(DEFAULT_RUN, {"dropout": 0.3}, {})
    with pytest.raises(ValueError, match="no flag for epochs"):
        command_args(DEFAULT_RUN, {}, {"epochs": 3})
