"""Device, budget, threads, bfloat16 support and environment facts."""
import pytest
import torch

from vgg_helpers.runtime import (bf16_supported, current_budget, describe_runtime, environment_info, pick_device,
                                 set_threads)


def test_budget_is_explicit():
    assert current_budget("CPU") == "cpu" and current_budget("gpu") == "gpu"
    assert current_budget(None) == ("gpu" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        current_budget("huge")


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in ("cpu", "cuda", "mps")


def test_describe_runtime_prints_versions(capsys):
    assert describe_runtime("cpu") == torch.device("cpu")
    assert f"torch {torch.__version__}" in capsys.readouterr().out


def test_environment_info_and_threads():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        info = environment_info("cpu")
        assert info["torch_threads"] == 1 and info["device"] == "cpu" and info["torch"] == torch.__version__
    finally:
        torch.set_num_threads(before)


def test_bf16_supported_answers_for_every_device():
    assert isinstance(bf16_supported("cpu"), bool)
    assert bf16_supported("meta") is False
    if not torch.cuda.is_available():
        assert bf16_supported("cuda") is False


def test_one_process_is_its_own_world():
    from torch import nn

    from vgg_helpers.runtime import process_world, sum_across_processes, unwrap

    assert process_world() == (0, 1)
    assert sum_across_processes([1.5, 2, 3]) == [1.5, 2.0, 3.0]
    net = nn.Linear(2, 2)
    assert unwrap(nn.DataParallel(net)) is net and unwrap(net) is net
