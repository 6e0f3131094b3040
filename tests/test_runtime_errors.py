"""Device, seeds, threads and budget refuse values that cannot work here, naming VGG_BOOK_DEVICE (issue 16).

No GPU is needed: availability is monkeypatched."""
import numpy as np
import pytest
import torch

from vgg_helpers.runtime import (bf16_supported, current_budget, environment_info, pick_device, seed_everything,
                                 set_threads)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_cuda_without_a_gpu_names_the_variable(no_gpu):
    with pytest.raises(ValueError) as e:
        pick_device("cuda")
    assert str(e.value) == ("VGG_BOOK_DEVICE / device='cuda' asks for CUDA but torch.cuda.is_available() is False "
                            "on this machine; unset it or use cpu")


def test_mps_without_mps_names_the_variable(no_gpu):
    with pytest.raises(ValueError, match=r"^VGG_BOOK_DEVICE / device='mps' asks for Apple's MPS but "
                                         r"torch\.backends\.mps\.is_available\(\) is False on this machine; "
                                         r"unset it or use cpu$"):
        pick_device("mps")


def test_a_cuda_index_the_machine_lacks(one_gpu):
    with pytest.raises(ValueError, match=r"^VGG_BOOK_DEVICE / device='cuda:1' asks for CUDA device 1 but this "
                                         r"machine has 1 \(only cuda:0\); unset it or use cuda:0$"):
        pick_device("cuda:1")
    assert pick_device(" CUDA ") == torch.device("cuda")
    assert pick_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.parametrize("bad,hint", [("gpu", " (for an NVIDIA GPU use cuda)"), ("cuda0", ""), (3, "")])
def test_not_a_device(bad, hint):
    with pytest.raises(ValueError) as e:
        pick_device(bad)
    assert str(e.value) == (f"VGG_BOOK_DEVICE / device={bad!r} is not a device{hint}: use cpu, cuda, cuda:N "
                            f"(N = 0, 1, ...) or mps, or unset it for the best device available.")


def test_a_device_the_book_does_not_train_on():
    with pytest.raises(ValueError, match=r"device='meta' is not a device the book trains on"):
        pick_device("meta")


def test_cpu_and_the_default_still_work(no_gpu):
    assert pick_device("cpu") == pick_device(torch.device("cpu")) == pick_device() == pick_device("") \
        == torch.device("cpu")


def test_other_device_arguments_are_checked(no_gpu):
    with pytest.raises(ValueError, match=r"^device='gpu' is not a device \(for an NVIDIA GPU use cuda\): use cpu"):
        bf16_supported("gpu")
    with pytest.raises(ValueError, match=r"^device='cuda' asks for CUDA but torch\.cuda\.is_available\(\) is False"):
        environment_info("cuda")
    assert bf16_supported("cuda") is False and bf16_supported("meta") is False


@pytest.mark.parametrize("bad", ["a", -1, 2**32, 1.5, True, None])
def test_seed_must_be_a_whole_number_numpy_accepts(bad):
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match=r"^seed must be a whole number from 0 to 4294967295 \(NumPy's limit; "
                                         r"e\.g\. 0\); got "):
        seed_everything(bad)


def test_numpy_seed_repeats():
    seed_everything(np.int64(3))
    a = torch.rand(1)
    seed_everything(3)
    assert torch.equal(a, torch.rand(1))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_threads_must_be_at_least_one(bad):
    before = torch.get_num_threads()
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match=r"^threads must be a whole number >= 1 \(e\.g\. 2, or None for one per "
                                         r"logical core\); got "):
        set_threads(bad)
    assert torch.get_num_threads() == before


def test_numpy_threads_work():
    before = torch.get_num_threads()
    try:
        assert set_threads(np.int64(1)) == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [1, ["cpu"]])
def test_budget_must_be_a_name(bad):
    with pytest.raises(ValueError, match=r"^the budget \(VGG_BOOK_BUDGET\) must be one of smoke, cpu, gpu; got "):
        current_budget(bad)
