"""Device, budget, threads, bfloat16 support and environment facts."""
import os

import pytest
import torch

from vgg_helpers import runtime
from vgg_helpers.runtime import (autocast_dtype, bf16_supported, cpu_bf16_instructions, current_budget,
                                 describe_runtime, environment_info, pick_device, set_threads, usable_cores)


def test_budget_is_explicit():
    assert current_budget("CPU") == "cpu" and current_budget("gpu") == "gpu"
    assert current_budget(None) == "cpu"          # the measured budget, also on a GPU (below)
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        current_budget("huge")


def fake_gpu(monkeypatch, capability: tuple[int, int], name: str = "Tesla T4") -> None:
    """Make torch believe a CUDA GPU of ``capability`` is present (no GPU needed)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)   # what a T4 may claim


def test_a_gpu_runtime_uses_a_measured_budget_and_says_so(monkeypatch, capsys):
    fake_gpu(monkeypatch, (7, 5))
    assert "gpu" not in runtime.RUN_ON_A_GPU          # flip this test when the gpu budget is run on a GPU
    assert current_budget(None) == "cpu" and current_budget("gpu") == "gpu"
    assert describe_runtime(None, None) == torch.device("cuda")
    lines = capsys.readouterr().out.splitlines()
    assert "Tesla T4" in lines[0] and len(lines) == 2
    assert "measured cpu budget" in lines[1] and "VGG_BOOK_BUDGET=gpu" in lines[1]
    describe_runtime(None, "gpu")                      # asked for: no note
    assert len(capsys.readouterr().out.splitlines()) == 1
    monkeypatch.setattr(runtime, "RUN_ON_A_GPU", frozenset({"gpu"}))
    assert current_budget(None) == "gpu"


@pytest.mark.parametrize("capability, dtype", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                               ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_mixed_precision_is_bfloat16_only_where_native(monkeypatch, capability, dtype):
    fake_gpu(monkeypatch, capability)
    assert bf16_supported("cuda") is (dtype == torch.bfloat16)   # not what is_bf16_supported claims
    assert autocast_dtype("cuda") == dtype


def test_cpu_mixed_precision_follows_its_bfloat16_support(monkeypatch):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": False)
    assert autocast_dtype("cpu") is None               # emulated bfloat16 would be slower than float32
    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": True)
    assert autocast_dtype("cpu") == torch.bfloat16


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
        assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert info["cpu_bf16"] is bf16_supported("cpu")
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pinning a process to cores needs Linux")
def test_one_thread_per_core_the_process_may_use():
    import subprocess
    import sys
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from vgg_helpers.runtime import set_threads, usable_cores; print(usable_cores(), set_threads())")
    pinned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert pinned == ["1", "1"]          # pinned to one core: one thread, whatever os.cpu_count() says
    assert usable_cores() == len(os.sched_getaffinity(0)) >= 1


def test_bf16_supported_answers_for_every_device():
    assert isinstance(bf16_supported("cpu"), bool)
    assert bf16_supported("meta") is False
    if not torch.cuda.is_available():
        assert bf16_supported("cuda") is False


@pytest.mark.parametrize("machine, avx512_bf16, amx, onednn, expected", [
    ("x86_64", False, False, True, False),   # AVX-512 without BF16 (Intel Xeon, Ice Lake): oneDNN says yes, emulates
    ("x86_64", True, False, True, True),     # AVX512-BF16 (AMD Zen 4, Intel Cooper Lake)
    ("x86_64", False, True, True, True),     # AMX (Intel Sapphire Rapids and later)
    ("x86_64", False, False, False, False),  # AVX2 only
    ("x86_64", True, False, False, False),   # the instructions, but oneDNN told not to use them (ONEDNN_MAX_CPU_ISA)
    ("aarch64", False, False, True, True),   # ARM: oneDNN's answer
])
def test_cpu_bf16_means_the_instructions_not_what_onednn_emulates(monkeypatch, machine, avx512_bf16, amx, onednn,
                                                                   expected):
    monkeypatch.setattr(runtime.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn, raising=False)
    assert bf16_supported("cpu") is expected
    assert autocast_dtype("cpu") == (torch.bfloat16 if expected else None)


def test_cpu_bf16_follows_the_instructions_on_a_torch_without_onednn(monkeypatch):
    def no_onednn():
        raise RuntimeError("this torch was built without oneDNN")
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", no_onednn, raising=False)
    assert cpu_bf16_instructions()["onednn_says_bf16"] is None
    assert bf16_supported("cpu") is True


def test_cpu_bf16_falls_back_to_onednn_on_a_torch_without_the_instruction_checks(monkeypatch):
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert bf16_supported("cpu") is True


def test_cpu_bf16_instructions_say_none_where_torch_cannot_tell(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_supported", lambda: 1, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: 0, raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert cpu_bf16_instructions() == {"avx512": True, "avx512_bf16": False, "amx": None, "onednn_says_bf16": True}


def test_one_process_is_its_own_world():
    from torch import nn

    from vgg_helpers.runtime import process_world, sum_across_processes, unwrap

    assert process_world() == (0, 1)
    assert sum_across_processes([1.5, 2, 3]) == [1.5, 2.0, 3.0]
    net = nn.Linear(2, 2)
    assert unwrap(nn.DataParallel(net)) is net and unwrap(net) is net


def test_the_setup_line_names_device_precision_budget_and_data_in_one_short_line(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": False)     # an AVX2-only laptop
    describe_runtime("cpu", "cpu", None)
    line, = capsys.readouterr().out.splitlines()
    assert "device: cpu" in line and ", float32 ·" in line and "budget: cpu" in line and "data: download" in line
    assert len(line) <= 88, line                                                   # the page's width
    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": True)      # native bfloat16
    describe_runtime("cpu", "smoke", "/some/folder")
    line, = capsys.readouterr().out.splitlines()
    assert ", bfloat16 ·" in line and "budget: smoke" in line and "data: your folder" in line
    assert "/some/folder" not in line                                              # no machine path
